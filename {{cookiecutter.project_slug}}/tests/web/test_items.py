"""The items API end to end: the service, its real client, and the fake Example API behind it.
Bad input is refused with a 4xx before anything is sent upstream."""

from __future__ import annotations

import logging
from dataclasses import replace

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from {{ cookiecutter.package_name }}.app import create_app
from {{ cookiecutter.package_name }}.settings import Settings

from ..fake_upstream import FakeUpstream, Reply

Client = TestClient[web.Request, web.Application]


@pytest.fixture
async def service(aiohttp_client: AiohttpClient, upstream_settings: Settings) -> Client:
    """The service with its own client, calling the fake upstream."""
    return await aiohttp_client(create_app(upstream_settings))


async def test_a_listing_is_filtered_collected_across_pages_and_cut_at_the_limit(
    service: Client, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.add(*({"id": n, "name": f"n{n}", "color": "red"} for n in range(1, 251)))
    fake_upstream.add({"id": 251, "name": "blue", "color": "blue"})

    response = await service.get("/api/items", params={"color": "red", "limit": "150"})

    assert response.status == 200
    items = (await response.json())["items"]
    assert [item["id"] for item in items] == list(range(1, 151))  # integers stay integers
    assert items[0] == {"id": 1, "name": "n1", "color": "red"}  # extra fields pass through
    assert fake_upstream.queries == ["_limit=100&_page=1&color=red", "_limit=100&_page=2&color=red"]


async def test_a_listing_ends_with_the_last_page(
    service: Client, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.add({"id": "a", "name": "only"})

    response = await service.get("/api/items")

    assert response.status == 200
    assert await response.json() == {"items": [{"id": "a", "name": "only"}]}
    assert fake_upstream.queries == ["_limit=100&_page=1"]


@pytest.mark.parametrize(
    "query",
    [
        "size=1",  # not a declared filter
        "_page=2",  # the upstream's paging controls are not the caller's
        "name=a&name=b",  # repeated
        "limit=0",
        "limit=1001",
        "limit=ten",
        "limit=%EF%BC%91",  # a full-width digit is not a number here
        "name=" + "x" * 201,
    ],
)
async def test_a_bad_listing_query_is_a_400_and_nothing_is_sent(
    service: Client, fake_upstream: FakeUpstream, query: str
) -> None:
    response = await service.get(f"/api/items?{query}")

    assert response.status == 400
    assert "error" in await response.json()
    assert fake_upstream.methods == []


async def test_an_item_is_created_with_the_callers_key_and_its_id_type_kept(
    service: Client, fake_upstream: FakeUpstream
) -> None:
    response = await service.post(
        "/api/items", json={"name": "lamp", "watts": 40}, headers={"Idempotency-Key": "abc-1"}
    )

    assert response.status == 201
    assert await response.json() == {"id": 1, "name": "lamp", "watts": 40}
    assert fake_upstream.idempotency_keys == ["abc-1"]
    assert fake_upstream.items == {"1": {"id": 1, "name": "lamp", "watts": 40}}


async def test_without_a_key_each_request_gets_its_own(
    service: Client, fake_upstream: FakeUpstream
) -> None:
    await service.post("/api/items", json={"name": "a"})
    await service.post("/api/items", json={"name": "b"})

    first, second = fake_upstream.idempotency_keys
    assert first is not None
    assert second is not None
    assert first != second


async def test_with_keys_declared_a_retried_create_is_made_once(
    aiohttp_client: AiohttpClient, upstream_settings: Settings, fake_upstream: FakeUpstream
) -> None:
    keyed = replace(upstream_settings, upstream_idempotency_keys=True)
    service = await aiohttp_client(create_app(keyed))
    fake_upstream.queue(Reply(status=503))

    response = await service.post("/api/items", json={"name": "lamp"})

    assert response.status == 201
    assert fake_upstream.methods == ["POST", "POST"]
    assert len(set(fake_upstream.idempotency_keys)) == 1
    assert len(fake_upstream.items) == 1


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"name": ""}, "name"),
        ({"color": "red"}, "name: Field required"),
        ({"name": "a", "id": 5}, "the upstream chooses the id"),
        ([{"name": "a"}], "body"),
        ({"name": 12345678}, "name"),
    ],
)
async def test_a_body_of_the_wrong_shape_is_a_400_naming_the_field_not_the_value(
    service: Client, fake_upstream: FakeUpstream, body: object, named: str
) -> None:
    response = await service.post("/api/items", json=body)

    assert response.status == 400
    message = (await response.json())["error"]
    assert named in message
    assert "12345678" not in message
    assert fake_upstream.methods == []


@pytest.mark.parametrize(
    ("headers", "data", "status"),
    [
        ({"Idempotency-Key": "has space"}, b'{"name": "a"}', 400),
        ({"Idempotency-Key": "k" * 256}, b'{"name": "a"}', 400),
        ({}, b'{"name": ', 400),
        ({"Content-Type": "text/plain"}, b'{"name": "a"}', 415),
        ({}, b'{"name": "' + b"x" * (64 * 1024) + b'"}', 413),
    ],
)
async def test_a_bad_write_request_is_refused_and_nothing_is_sent(
    service: Client, fake_upstream: FakeUpstream, headers: dict[str, str], data: bytes, status: int
) -> None:
    sent = {"Content-Type": "application/json", **headers}

    response = await service.post("/api/items", data=data, headers=sent)

    assert response.status == status
    assert "error" in await response.json()
    assert fake_upstream.methods == []


async def test_an_item_is_updated_then_deleted(
    service: Client, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.add({"id": 7, "name": "lamp", "color": "red"})

    updated = await service.patch("/api/items/7", json={"color": "blue"})
    deleted = await service.delete("/api/items/7")
    again = await service.delete("/api/items/7")

    assert (updated.status, await updated.json()) == (
        200,
        {"id": 7, "name": "lamp", "color": "blue"},
    )
    assert fake_upstream.bodies[0] == b'{"color":"blue"}'  # only what changes is sent
    assert deleted.status == 204
    assert await deleted.read() == b""
    assert again.status == 404
    assert fake_upstream.items == {}


async def test_a_failed_call_logs_the_upstreams_request_id_and_never_the_query(
    service: Client, fake_upstream: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    fake_upstream.default = Reply(status=500, headers={"X-Request-ID": "upstream-42"})

    with caplog.at_level(logging.WARNING):
        response = await service.get("/api/items", params={"name": "secret@example.com"})

    assert response.status == 502
    (line,) = [record.getMessage() for record in caplog.records]
    assert line.endswith("(upstream request id upstream-42)")
    assert "secret" not in line
