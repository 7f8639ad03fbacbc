"""The app's lifecycle: one shared session opened at startup and closed at cleanup."""

from __future__ import annotations

import asyncio
import logging

import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpClient

from {{ cookiecutter.package_name }}.__main__ import log_startup, main
from {{ cookiecutter.package_name }}.app import create_app
from {{ cookiecutter.package_name }}.settings import Settings
from {{ cookiecutter.package_name }}.web.keys import UPSTREAM

from .conftest import REQUIRED
from .fake_upstream import FakeUpstream


async def test_app_opens_a_client_at_startup_and_closes_it_at_cleanup(
    aiohttp_client: AiohttpClient, upstream_settings: Settings, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.add({"id": 1, "name": "one"})
    app = create_app(upstream_settings)
    client = await aiohttp_client(app)

    response = await client.get("/api/items/1")
    assert response.status == 200
    upstream = app[UPSTREAM]
    assert not upstream.closed

    await client.close()
    assert upstream.closed


def test_bad_setting_exits_2_with_one_line_naming_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PORT", "abc")

    assert main() == 2
    err = capsys.readouterr().err
    assert err.startswith("error: PORT='abc' is invalid")
    assert err.count("\n") == 1


def test_the_startup_banner_is_one_log_line(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)

    # What aiohttp's run_app prints once it listens, framed for a terminal.
    log_startup("======== Running on http://127.0.0.1:8080 ========\n(Press CTRL+C to quit)")

    assert [record.getMessage() for record in caplog.records] == [
        "Running on http://127.0.0.1:8080"
    ]


@pytest.mark.usefixtures("restore_logging")
def test_main_serves_the_app_with_settings_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    served: dict[str, object] = {}

    def fake_run_app(app: web.Application, **options: object) -> None:
        served.update(options, app=app)
        loop = options["loop"]
        assert isinstance(loop, asyncio.AbstractEventLoop)
        loop.close()

    monkeypatch.setattr(web, "run_app", fake_run_app)
    for name, value in REQUIRED.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("PORT", "9123")
    monkeypatch.setenv("SHUTDOWN_TIMEOUT", "4")

    assert main() == 0
    assert served["port"] == 9123
    assert served["host"] == "127.0.0.1"
    assert served["shutdown_timeout"] == 4.0
    assert served["print"] is log_startup
    assert isinstance(served["app"], web.Application)
