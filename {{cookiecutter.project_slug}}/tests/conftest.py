"""Shared fixtures: settings, a mocked upstream client, the test client and a fake upstream."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from unittest.mock import AsyncMock, create_autospec

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from pytest_aiohttp import AiohttpClient, AiohttpServer

from {{ cookiecutter.package_name }}.app import create_app
from {{ cookiecutter.package_name }}.clients import {{ cookiecutter.__upstream_class }}
from {{ cookiecutter.package_name }}.settings import Settings
from {{ cookiecutter.package_name }}.upstreams import open_{{ cookiecutter.__upstream_module }}

from .fake_upstream import FakeUpstream


@pytest.fixture
def settings() -> Settings:
    """Settings for tests: no retry backoff, so retried tests do not wait."""
    return Settings(
        upstream_base_url="http://upstream.invalid",
        upstream_timeout=2.0,
        upstream_retries=2,
        upstream_retry_backoff=0.0,
        upstream_concurrency=3,
    )


@pytest.fixture
def upstream() -> AsyncMock:
    """A mock of our own client; ``spec`` makes a misspelled method fail the test."""
    mock: AsyncMock = create_autospec({{ cookiecutter.__upstream_class }}, instance=True)
    return mock


@pytest.fixture
async def client(
    aiohttp_client: AiohttpClient, settings: Settings, upstream: AsyncMock
) -> TestClient[web.Request, web.Application]:
    """The service over real HTTP, with the mocked upstream client injected."""
    return await aiohttp_client(create_app(settings, upstream=upstream))


@pytest.fixture
async def fake_upstream(aiohttp_server: AiohttpServer) -> AsyncIterator[FakeUpstream]:
    """A scripted upstream API listening on 127.0.0.1."""
    fake = FakeUpstream()
    server: TestServer = await aiohttp_server(fake.app, host="127.0.0.1")
    fake.base_url = f"http://{server.host}:{server.port}"
    yield fake
    fake.release()


@pytest.fixture
def upstream_settings(settings: Settings, fake_upstream: FakeUpstream) -> Settings:
    """Settings pointing the real client at the fake upstream."""
    return replace(settings, upstream_base_url=fake_upstream.base_url)


@pytest.fixture
async def upstream_client(
    upstream_settings: Settings,
) -> AsyncIterator[{{ cookiecutter.__upstream_class }}]:
    """The real client, talking to the fake upstream over loopback."""
    async with open_{{ cookiecutter.__upstream_module }}(upstream_settings) as api:
        yield api


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """Undo a test's changes to the root logger, which pytest's own capture relies on."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
