"""/metrics: exact counts under the public names and labels, read back by Prometheus's parser."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from unittest.mock import AsyncMock

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families
from pytest_aiohttp import AiohttpClient

from {{ cookiecutter.package_name }}.app import create_app
from {{ cookiecutter.package_name }}.common.errors import UpstreamTimeoutError
from {{ cookiecutter.package_name }}.settings import Settings
from {{ cookiecutter.package_name }}.web.keys import METRICS

from ..fake_upstream import FakeUpstream, Reply

Client = TestClient[web.Request, web.Application]
ITEM_ROUTE = "/api/items/{item_id}"


async def scrape(client: Client) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of ``GET /metrics``, by name and labels."""
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.content_type == "text/plain"
    text = await response.text()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def requests_counted(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], **labels: str
) -> float:
    return samples.get(
        ("http_server_request_duration_seconds_count", frozenset(labels.items())), 0.0
    )


async def test_each_request_is_counted_once_by_method_route_template_and_status(
    client: Client, upstream: AsyncMock
) -> None:
    upstream.get_item.return_value = {"id": "7"}
    for item_id in ("1", "2", "3"):
        assert (await client.get(f"/api/items/{item_id}")).status == 200
    upstream.get_item.side_effect = UpstreamTimeoutError("slow")
    assert (await client.get("/api/items/4")).status == 504

    samples = await scrape(client)

    assert requests_counted(samples, method="GET", route=ITEM_ROUTE, status="200") == 3
    assert requests_counted(samples, method="GET", route=ITEM_ROUTE, status="504") == 1
    # A raw path is never a label value: one series per route, not per id.
    assert not any("/api/items/1" in dict(labels).get("route", "") for _, labels in samples)


async def test_probes_and_the_scrape_itself_are_not_counted(client: Client) -> None:
    for path in ("/health", "/health/live", "/health/ready", "/metrics", "/openapi.json"):
        assert (await client.get(path)).status == 200

    samples = await scrape(client)

    routes = {
        dict(labels)["route"]
        for name, labels in samples
        if name == "http_server_request_duration_seconds_count"
    }
    assert routes == {"/openapi.json"}


async def test_unrouted_requests_and_unknown_methods_do_not_create_new_series(
    client: Client,
) -> None:
    for path in ("/nope", "/wp-login.php", "/nope"):
        assert (await client.get(path)).status == 404
    assert (await client.request("PROPFIND", "/api/items/1")).status == 405
    assert (await client.request("GET", "/api/items/batch")).status == 405

    samples = await scrape(client)

    assert requests_counted(samples, method="GET", route="unmatched", status="404") == 3
    assert requests_counted(samples, method="_OTHER", route="unmatched", status="405") == 1
    assert requests_counted(samples, method="GET", route="unmatched", status="405") == 1


async def test_in_flight_counts_requests_being_answered(
    client: Client, upstream: AsyncMock
) -> None:
    release, all_arrived = asyncio.Event(), asyncio.Event()

    async def slow_item(item_id: str) -> dict[str, str]:
        if upstream.get_item.await_count == 3:
            all_arrived.set()
        await release.wait()
        return {"id": item_id}

    upstream.get_item.side_effect = slow_item
    pending = [asyncio.create_task(client.get(f"/api/items/{n}")) for n in range(3)]
    await all_arrived.wait()

    during = await scrape(client)
    release.set()
    for response in await asyncio.gather(*pending):
        assert response.status == 200
    after = await scrape(client)

    assert during[("http_server_requests_in_flight", frozenset())] == 3
    assert after[("http_server_requests_in_flight", frozenset())] == 0


async def test_a_request_that_gets_no_answer_leaves_flight_uncounted(
    client: Client, upstream: AsyncMock
) -> None:
    upstream.get_item.side_effect = asyncio.CancelledError()  # as when the server stops
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await client.get("/api/items/1")

    samples = await scrape(client)

    assert samples[("http_server_requests_in_flight", frozenset())] == 0
    assert not any(dict(labels).get("route") == ITEM_ROUTE for _, labels in samples)


async def test_redirects_pass_through_and_are_counted_with_their_status(
    aiohttp_client: AiohttpClient, settings: Settings, upstream: AsyncMock
) -> None:
    async def moved(request: web.Request) -> web.Response:
        raise web.HTTPMovedPermanently("/api/items/1")

    app = create_app(settings, upstream=upstream)
    app.router.add_get("/api/old", moved)
    client = await aiohttp_client(app)

    response = await client.get("/api/old", allow_redirects=False)

    assert response.status == 301
    assert response.headers["Location"] == "/api/items/1"
    samples = await scrape(client)
    assert requests_counted(samples, method="GET", route="/api/old", status="301") == 1
    assert samples[("http_server_requests_in_flight", frozenset())] == 0


async def test_upstream_attempts_retries_and_circuit_are_counted(
    aiohttp_client: AiohttpClient, upstream_settings: Settings, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.queue(Reply(status=503), Reply(json={"id": 1, "name": "one"}), Reply(status=404))
    guarded = replace(upstream_settings, circuit_breaker_threshold=5)
    client = await aiohttp_client(create_app(guarded))  # its own client, on the fake upstream

    assert (await client.get("/api/items/1")).status == 200
    assert (await client.get("/api/items/2")).status == 404
    samples = await scrape(client)

    def value(name: str, **labels: str) -> float:
        return samples.get((name, frozenset(labels.items())), 0.0)

    upstream_name = "{{ cookiecutter.__upstream_module }}"
    attempts = "upstream_request_duration_seconds_count"
    assert value(attempts, upstream=upstream_name, outcome="error") == 1
    assert value(attempts, upstream=upstream_name, outcome="ok") == 1
    assert value(attempts, upstream=upstream_name, outcome="not_found") == 1
    assert value("upstream_retries_total", upstream=upstream_name) == 1
    assert value("upstream_circuit_open", upstream=upstream_name) == 0


async def test_cache_lookups_are_counted_by_result(client: Client) -> None:
    metrics = client.app[METRICS]
    for hit in (False, True, True):
        metrics.cache_used("{{ cookiecutter.__upstream_module }}", hit=hit)

    samples = await scrape(client)

    lookups = "cache_requests_total"
    assert samples[(lookups, frozenset({("result", "hit")}))] == 2
    assert samples[(lookups, frozenset({("result", "miss")}))] == 1
{%- if cookiecutter.upstream_auth == "oauth2_client_credentials" %}


async def test_token_requests_are_counted_by_upstream_and_outcome(
    aiohttp_client: AiohttpClient, upstream_settings: Settings, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.add(*({"id": n, "name": f"item {n}"} for n in range(4)))
    client = await aiohttp_client(create_app(upstream_settings))
    for n in range(3):  # other items each time: nothing answered from a cache
        assert (await client.get(f"/api/items/{n}")).status == 200
    fake_upstream.revoke()
    fake_upstream.queue_token(Reply(status=503, json={}))
    assert (await client.get("/api/items/3")).status == 502

    samples = await scrape(client)

    def token_requests(outcome: str) -> float:
        labels = {"upstream": "{{ cookiecutter.__upstream_module }}", "outcome": outcome}
        return samples.get(("upstream_token_requests_total", frozenset(labels.items())), 0.0)

    assert (token_requests("ok"), token_requests("error")) == (1, 1)
{%- endif %}
