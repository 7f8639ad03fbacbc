"""The HTTP API with our own client mocked: every status mapping, every bad request."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import replace
from unittest.mock import AsyncMock

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from {{ cookiecutter.package_name }}.app import create_app
from {{ cookiecutter.package_name }}.common.errors import (
    UpstreamCircuitOpenError,
    UpstreamError,
    UpstreamNotFoundError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
)
from {{ cookiecutter.package_name }}.settings import Settings
from {{ cookiecutter.package_name }}.web.keys import LIFECYCLE

Client = TestClient[web.Request, web.Application]


async def test_health_is_ok_without_calling_the_upstream(
    client: Client,
    upstream: AsyncMock,
) -> None:
    response = await client.get("/health")

    assert response.status == 200
    assert await response.json() == {"status": "ok"}
    assert upstream.mock_calls == []


async def test_get_item_returns_the_upstream_item(client: Client, upstream: AsyncMock) -> None:
    upstream.get_item.return_value = {"id": "7", "name": "seven"}

    response = await client.get("/api/items/7")

    assert response.status == 200
    assert await response.json() == {"id": "7", "name": "seven"}
    upstream.get_item.assert_awaited_once_with("7")


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (UpstreamNotFoundError("not found upstream"), 404),
        (UpstreamUnavailableError("upstream answered 503"), 502),
        (UpstreamTimeoutError("no answer within 10s"), 504),
    ],
)
async def test_upstream_errors_map_to_statuses(
    client: Client, upstream: AsyncMock, error: UpstreamError, status: int
) -> None:
    upstream.get_item.side_effect = error

    response = await client.get("/api/items/1")

    assert response.status == status
    assert await response.json() == {"error": str(error)}


async def test_a_missing_item_is_logged_at_info_and_an_upstream_failure_as_a_warning(
    client: Client, upstream: AsyncMock, caplog: pytest.LogCaptureFixture
) -> None:
    upstream.get_item.side_effect = [
        UpstreamNotFoundError("not found upstream"),
        UpstreamUnavailableError("upstream answered 503"),
    ]
    caplog.set_level(logging.INFO)

    assert (await client.get("/api/items/gone")).status == 404
    assert (await client.get("/api/items/down")).status == 502

    logged = [(r.levelno, r.getMessage()) for r in caplog.records if r.name != "aiohttp.access"]
    assert logged == [
        (logging.INFO, "upstream answered 404: GET '/api/items/gone' -> not found upstream"),
        (logging.WARNING, "upstream call failed: GET '/api/items/down' -> upstream answered 503"),
    ]


async def test_service_keeps_serving_after_an_upstream_failure(
    client: Client, upstream: AsyncMock
) -> None:
    upstream.get_item.side_effect = [UpstreamUnavailableError("down"), {"id": "1"}]

    assert (await client.get("/api/items/1")).status == 502
    assert (await client.get("/api/items/1")).status == 200


async def test_unexpected_bug_is_a_json_500_not_a_traceback(
    client: Client, upstream: AsyncMock
) -> None:
    upstream.get_item.side_effect = RuntimeError("secret detail")

    response = await client.get("/api/items/1")

    assert response.status == 500
    assert await response.json() == {"error": "internal server error"}


@pytest.mark.parametrize(
    "item_id",
    ["..", ".hidden", "a..b", "%2e%2e", "a%2Fb", "x" * 129, "a%3Fq=1"],
)
async def test_unsafe_item_ids_are_rejected(
    client: Client, upstream: AsyncMock, item_id: str
) -> None:
    response = await client.get(f"/api/items/{item_id}")

    assert response.status in {400, 404}
    assert "error" in await response.json()
    upstream.get_item.assert_not_awaited()


async def test_batch_returns_results_in_order_with_inline_errors(
    client: Client, upstream: AsyncMock
) -> None:
    async def get_item(item_id: str) -> object:
        if item_id == "2":
            raise UpstreamNotFoundError("not found upstream")
        return {"id": item_id}

    upstream.get_item.side_effect = get_item

    response = await client.post("/api/items/batch", json={"ids": ["1", "2", 3]})

    assert response.status == 200
    assert await response.json() == {
        "results": [
            {"id": "1", "item": {"id": "1"}},
            {"id": "2", "error": "not found upstream", "status": 404},
            {"id": 3, "item": {"id": "3"}},  # each id of the JSON type it was sent as
        ]
    }


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[1, 2]",
        b'{"ids": "1"}',
        b'{"ids": []}',
        b'{"ids": [true]}',
        b'{"ids": [{"id": 1}]}',
        b'{"ids": ["../etc"]}',
        b'{"ids": [' + b",".join(b'"%d"' % i for i in range(101)) + b"]}",
    ],
)
async def test_bad_batch_bodies_are_400(client: Client, upstream: AsyncMock, body: bytes) -> None:
    response = await client.post(
        "/api/items/batch", data=body, headers={"Content-Type": "application/json"}
    )

    assert response.status == 400
    assert response.reason == "Bad Request"  # the detail goes in the body, not the status line
    assert "error" in await response.json()
    upstream.get_item.assert_not_awaited()


async def test_batch_without_json_content_type_is_415(client: Client) -> None:
    response = await client.post("/api/items/batch", data=b'{"ids": ["1"]}')

    assert response.status == 415
    assert response.reason == "Unsupported Media Type"
    assert await response.json() == {"error": "expected Content-Type: application/json"}


async def test_oversized_body_is_413(client: Client) -> None:
    response = await client.post(
        "/api/items/batch",
        data=b" " * (64 * 1024 + 1),
        headers={"Content-Type": "application/json"},
    )

    assert response.status == 413
    assert "error" in await response.json()


@pytest.mark.looptime
async def test_a_body_that_does_not_arrive_in_time_is_408(
    aiohttp_client: AiohttpClient, settings: Settings, upstream: AsyncMock
) -> None:
    impatient = replace(settings, request_body_timeout=0.2)
    client = await aiohttp_client(create_app(impatient, upstream=upstream))
    assert client.port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
    # Declares 1,000 bytes, sends one, then waits: the handler must not wait with it forever.
    writer.write(
        b"POST /api/items/batch HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1000\r\n\r\n{"
    )
    await writer.drain()

    async with asyncio.timeout(5):
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        length = int(head.lower().split("content-length: ")[1].split("\r\n")[0])
        body = await reader.readexactly(length)
    writer.close()

    assert head.startswith("HTTP/1.1 408 ")
    assert json.loads(body) == {"error": "request body not received within 0.2s"}
    upstream.get_item.assert_not_awaited()


async def test_unknown_route_is_json_404(client: Client) -> None:
    response = await client.get("/nowhere")

    assert response.status == 404
    assert await response.json() == {"error": "Not Found"}


async def test_wrong_method_is_json_405_with_allow_header(client: Client) -> None:
    response = await client.delete("/health")

    assert response.status == 405
    assert await response.json() == {"error": "Method Not Allowed"}
    assert "GET" in response.headers["Allow"]


async def test_a_valid_caller_request_id_is_echoed(client: Client) -> None:
    response = await client.get("/health", headers={"X-Request-ID": "caller-42"})

    assert response.headers["X-Request-ID"] == "caller-42"


@pytest.mark.parametrize("bad_id", ["", "x" * 65, "has space", "new\\nline", "<script>"])
async def test_an_unsafe_request_id_is_replaced(client: Client, bad_id: str) -> None:
    response = await client.get("/health", headers={"X-Request-ID": bad_id})

    assert response.headers["X-Request-ID"] != bad_id
    assert len(response.headers["X-Request-ID"]) == 32


async def test_every_response_gets_a_fresh_id_when_the_caller_sends_none(client: Client) -> None:
    first = await client.get("/health")
    second = await client.get("/nowhere")

    assert first.headers["X-Request-ID"] != second.headers["X-Request-ID"]


async def test_open_circuit_is_503(client: Client, upstream: AsyncMock) -> None:
    upstream.get_item.side_effect = UpstreamCircuitOpenError("upstream is failing")

    response = await client.get("/api/items/1")

    assert response.status == 503
    assert await response.json() == {"error": "upstream is failing"}


async def test_probes_answer_live_and_ready(client: Client, upstream: AsyncMock) -> None:
    live = await client.get("/health/live")
    ready = await client.get("/health/ready")

    assert (live.status, await live.json()) == (200, {"status": "ok"})
    assert (ready.status, await ready.json()) == (200, {"status": "ready"})
    upstream.get_item.assert_not_called()


async def test_readiness_is_503_while_draining_and_liveness_stays_200(
    aiohttp_client: AiohttpClient, settings: Settings, upstream: AsyncMock
) -> None:
    app = create_app(settings, upstream=upstream)
    app[LIFECYCLE].draining = True  # what SIGTERM sets when a drain is configured
    client = await aiohttp_client(app)

    ready = await client.get("/health/ready")
    live = await client.get("/health/live")

    assert (ready.status, await ready.json()) == (503, {"status": "draining"})
    assert live.status == 200


async def test_responses_name_neither_the_framework_nor_versions(client: Client) -> None:
    for path in ("/health", "/nowhere", "/api/items/..", "/openapi.json"):
        server = (await client.get(path)).headers.get("Server", "").lower()
        assert server
        assert "aiohttp" not in server
        assert "python" not in server
