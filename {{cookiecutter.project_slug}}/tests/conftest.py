"""Shared fixtures: settings, a mocked upstream client, the test client and a fake upstream."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from typing import Any
from unittest.mock import AsyncMock, create_autospec

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from blockbuster import blockbuster_ctx
{%- if cookiecutter.upstream_auth != "none" %}
from pydantic import SecretStr
{%- endif %}
from pytest_aiohttp import AiohttpClient, AiohttpServer

from {{ cookiecutter.package_name }}.app import create_app
from {{ cookiecutter.package_name }}.clients import {{ cookiecutter.__upstream_class }}
from {{ cookiecutter.package_name }}.settings import Settings
from {{ cookiecutter.package_name }}.upstreams import open_{{ cookiecutter.__upstream_module }}

from .fake_upstream import FakeUpstream

# What must be set for the service to start at all{% if cookiecutter.upstream_auth != "none" %}: the upstream's credentials{% else %} (nothing){% endif %}.
{%- if cookiecutter.upstream_auth == "none" %}
REQUIRED: dict[str, str] = {}
{%- else %}
REQUIRED: dict[str, str] = {
{%- if cookiecutter.upstream_auth == "api_key" %}
    "UPSTREAM_API_KEY": "key-1",
{%- elif cookiecutter.upstream_auth == "bearer" %}
    "UPSTREAM_BEARER_TOKEN": "token-1",
{%- elif cookiecutter.upstream_auth == "oauth2_client_credentials" %}
    "UPSTREAM_TOKEN_URL": "https://auth.example.com/oauth/token",
    "UPSTREAM_CLIENT_ID": "client-1",
    "UPSTREAM_CLIENT_SECRET": "secret-1",
{%- endif %}
}
{%- endif %}


def settings_for_tests(**changes: Any) -> Settings:
    """Settings for tests, with ``changes``: no retry backoff, so retried tests do not wait."""
    defaults: dict[str, Any] = {
        "upstream_base_url": "https://upstream.invalid",
        "upstream_timeout": 2.0,
        "upstream_retries": 2,
        "upstream_retry_backoff": 0.0,
        "upstream_concurrency": 3,
{%- if cookiecutter.upstream_auth == "api_key" %}
        "upstream_api_key": SecretStr("key-for-tests"),
{%- elif cookiecutter.upstream_auth == "bearer" %}
        "upstream_bearer_token": SecretStr("token-for-tests"),
{%- elif cookiecutter.upstream_auth == "oauth2_client_credentials" %}
        "upstream_token_url": "https://upstream.invalid/oauth/token",
        # Characters that form-urlencoding must escape before HTTP Basic (RFC 6749 2.3.1).
        "upstream_client_id": SecretStr("client for tests:1"),
        "upstream_client_secret": SecretStr("secret/for+tests=%"),
{%- endif %}
    }
    return Settings(**(defaults | changes))


@pytest.fixture
def settings() -> Settings:
    """The settings of most tests (``settings_for_tests()``)."""
    return settings_for_tests()


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
    """Settings pointing the real client at the fake upstream{% if cookiecutter.upstream_auth != "none" %}, which wants their credentials{% endif %}."""
{%- if cookiecutter.upstream_auth == "api_key" %}
    key = settings.upstream_api_key.get_secret_value()
    fake_upstream.credentials = {settings.upstream_api_key_header: key}
{%- elif cookiecutter.upstream_auth == "bearer" %}
    token = settings.upstream_bearer_token.get_secret_value()
    fake_upstream.credentials = {"Authorization": f"Bearer {token}"}
{%- elif cookiecutter.upstream_auth == "oauth2_client_credentials" %}
    fake_upstream.requires_token = True
    fake_upstream.client_id = settings.upstream_client_id.get_secret_value()
    fake_upstream.client_secret = settings.upstream_client_secret.get_secret_value()
    return replace(
        settings,
        upstream_base_url=fake_upstream.base_url,
        upstream_token_url=f"{fake_upstream.base_url}/oauth/token",
    )
{%- endif %}
{%- if cookiecutter.upstream_auth != "oauth2_client_credentials" %}
    return replace(settings, upstream_base_url=fake_upstream.base_url)
{%- endif %}


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


# In asyncio's debug mode (the CI's debug leg), a callback or task step that holds the event
# loop longer than this fails its test. asyncio's own default, 0.1 s, is below what debug mode's
# bookkeeping costs in a busy test (up to 0.18 s measured on a clean suite); 0.5 s leaves room
# for a slow CI machine and still catches a handler that computes or blocks for that long.
SLOW_CALLBACK_SECONDS = 0.5


class SlowCallbacks(logging.Handler):
    """Keeps what asyncio's debug mode logs for a callback or task step that held an event loop
    ``SLOW_CALLBACK_SECONDS`` or longer (any loop: a library may run one of its own, whose
    ``slow_callback_duration`` is still asyncio's 0.1 s)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.found: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        # asyncio logs ("Executing %s took %.3f seconds", handle, seconds).
        if record.msg == "Executing %s took %.3f seconds" and isinstance(record.args, tuple):
            _, seconds = record.args
            if isinstance(seconds, float) and seconds >= SLOW_CALLBACK_SECONDS:
                self.found.append(record.getMessage())


@pytest.fixture(autouse=True)
async def async_bugs_fail_the_test() -> AsyncIterator[None]:
    """Fail the test when its event loop reported an exception nobody handled (a callback that
    raised, a task whose exception was never retrieved), when a task it started is still
    running at its end, or, in asyncio's debug mode, when a callback held the loop too long:
    asyncio only logs the first and the last, and pytest-asyncio quietly cancels the second.
    Autouse, so it is set up first and checks after every other fixture closed."""
    loop = asyncio.get_running_loop()
    unhandled: list[str] = []

    def record(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        error = context.get("exception")
        unhandled.append(f"{context['message']}: {error!r}" if error else context["message"])

    previous = loop.get_exception_handler()
    loop.set_exception_handler(record)
    loop.slow_callback_duration = SLOW_CALLBACK_SECONDS
    slow = SlowCallbacks()
    logging.getLogger("asyncio").addHandler(slow)
    try:
        yield
        running = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in running:
            task.cancel()
        gc.collect(1)  # a dead task whose exception nobody read reports it when collected
    finally:
        loop.set_exception_handler(previous)
        logging.getLogger("asyncio").removeHandler(slow)
    if running:
        names = ", ".join(sorted(f"{task.get_name()} ({task.get_coro()!r})" for task in running))
        pytest.fail(f"tasks still running when the test ended: {names}", pytrace=False)
    if unhandled:
        pytest.fail("the event loop reported: " + "; ".join(unhandled), pytrace=False)
    if slow.found:
        pytest.fail("a callback blocked the event loop: " + "; ".join(slow.found), pytrace=False)


@pytest.fixture(autouse=True)
def no_blocking_calls_in_the_event_loop(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a test when this package's code blocks the event loop (``time.sleep``, blocking file
    or socket I/O): blockbuster, watching only calls made from this package, raises
    ``BlockingError`` there. A test that blocks on purpose says so with
    ``@pytest.mark.blocking_allowed``."""
    if request.node.get_closest_marker("blocking_allowed") is not None:
        yield
        return
    with blockbuster_ctx("{{ cookiecutter.package_name }}"):
        yield
