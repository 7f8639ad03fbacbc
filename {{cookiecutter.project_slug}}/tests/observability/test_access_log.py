"""The access log line names its request like every other line, and keeps tokens out."""

from __future__ import annotations

import asyncio
import logging

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from {{ cookiecutter.package_name }}.observability.access_log import AccessLogger

Client = TestClient[web.Request, web.Application]


async def access_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """aiohttp logs the line just after sending the response: wait for it, boundedly."""
    for _ in range(100):
        records = [r for r in caplog.records if r.name == "aiohttp.access"]
        if records:
            return records
        await asyncio.sleep(0.01)
    return []


async def test_access_line_carries_the_request_id_and_the_http_fields(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="aiohttp.access")

    response = await client.get("/health", headers={"X-Request-ID": "trace-42"})

    assert response.status == 200
    [record] = await access_records(caplog)
    assert getattr(record, "request_id", None) == "trace-42"
    http = getattr(record, "http", {})
    assert (http["method"], http["path"], http["status"]) == ("GET", "/health", 200)
    assert http["bytes"] > len(await response.read())  # headers included, like aiohttp's %b
    assert '"GET /health" 200' in record.getMessage()


async def test_access_line_leaves_the_query_string_out(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="aiohttp.access")

    await client.get("/health?api_key=s3cret")

    [record] = await access_records(caplog)
    assert "s3cret" not in record.getMessage()
    assert "s3cret" not in str(getattr(record, "http", {}))


def test_access_logging_costs_nothing_when_info_is_off() -> None:
    logger = logging.getLogger("test.access.quiet")
    logger.setLevel(logging.WARNING)

    assert AccessLogger(logger, "").enabled is False
    logger.setLevel(logging.INFO)
    assert AccessLogger(logger, "").enabled is True
