"""Load shedding: past MAX_IN_FLIGHT API requests, the next get 503 at once; probes never."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from unittest.mock import AsyncMock

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from {{ cookiecutter.package_name }}.app import create_app
from {{ cookiecutter.package_name }}.common.jsonlib import JSONValue
from {{ cookiecutter.package_name }}.settings import Settings

Client = TestClient[web.Request, web.Application]
LIMIT = 2


class HeldUpstream:
    """``get_item`` answers only once released, so requests stay in flight as long as needed."""

    def __init__(self, upstream: AsyncMock) -> None:
        self.entered = asyncio.Semaphore(0)
        self.release = asyncio.Event()
        upstream.get_item.side_effect = self.get_item

    async def get_item(self, item_id: str) -> JSONValue:
        self.entered.release()
        await self.release.wait()
        return {"id": item_id}

    async def occupy(self, client: Client, count: int) -> list[asyncio.Task[int]]:
        """Start ``count`` item requests; return once each is held here, with their statuses
        to come."""

        async def status(number: int) -> int:
            async with client.get(f"/api/items/{number}") as response:
                return response.status

        requests = [asyncio.create_task(status(number)) for number in range(count)]
        for _ in range(count):
            await self.entered.acquire()
        return requests


async def limited_client(
    aiohttp_client: AiohttpClient, settings: Settings, upstream: AsyncMock
) -> Client:
    return await aiohttp_client(create_app(replace(settings, max_in_flight=LIMIT), upstream))


@dataclass
class AtTheLimit:
    """A service with ``LIMIT`` requests in flight, held until ``held.release`` is set."""

    held: HeldUpstream
    client: Client
    accepted: list[asyncio.Task[int]]


@pytest.fixture
async def full(
    aiohttp_client: AiohttpClient, settings: Settings, upstream: AsyncMock
) -> AtTheLimit:
    held = HeldUpstream(upstream)
    client = await limited_client(aiohttp_client, settings, upstream)
    return AtTheLimit(held, client, await held.occupy(client, LIMIT))


async def test_past_the_limit_api_requests_get_503_with_retry_after_at_once(
    full: AtTheLimit, upstream: AsyncMock
) -> None:
    client = full.client

    refused = await client.get("/api/items/late")
    refused_batch = await client.post("/api/items/batch", json={"ids": ["1"]})

    assert refused.status == 503
    assert refused.headers["Retry-After"] == "1"
    assert set(await refused.json()) == {"error"}
    assert refused_batch.status == 503
    assert upstream.get_item.await_count == LIMIT  # the refused ones never reached the client
    full.held.release.set()
    assert await asyncio.gather(*full.accepted) == [200] * LIMIT


async def test_probes_and_unknown_paths_are_never_refused(full: AtTheLimit) -> None:
    for path in ("/health", "/health/live", "/health/ready", "/openapi.json"):
        assert (await full.client.get(path)).status == 200, path
    assert (await full.client.get("/nowhere")).status == 404

    full.held.release.set()
    assert await asyncio.gather(*full.accepted) == [200] * LIMIT


async def test_finished_requests_free_their_places_whatever_their_outcome(
    aiohttp_client: AiohttpClient, settings: Settings, upstream: AsyncMock
) -> None:
    client = await limited_client(aiohttp_client, settings, upstream)
    upstream.get_item.side_effect = RuntimeError("a bug")
    for _ in range(LIMIT + 1):
        assert (await client.get("/api/items/1")).status == 500
    assert (await client.get("/api/items/bad id")).status == 400

    upstream.get_item.side_effect = None
    upstream.get_item.return_value = {"id": "1"}
    statuses = [(await client.get("/api/items/1")).status for _ in range(LIMIT + 1)]

    assert statuses == [200] * (LIMIT + 1)


async def test_zero_turns_the_limit_off(
    aiohttp_client: AiohttpClient, settings: Settings, upstream: AsyncMock
) -> None:
    held = HeldUpstream(upstream)
    app = create_app(replace(settings, max_in_flight=0), upstream)
    client = await aiohttp_client(app)
    many = 3 * LIMIT
    requests = await held.occupy(client, many)  # returns only once all are in flight at once

    held.release.set()

    assert await asyncio.gather(*requests) == [200] * many
