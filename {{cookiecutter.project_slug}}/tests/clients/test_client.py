"""The real upstream client against a real (fake) upstream server, failures included."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
from dataclasses import replace

import aiohttp
import pytest

from {{ cookiecutter.package_name }}.clients import {{ cookiecutter.__upstream_class }}
from {{ cookiecutter.package_name }}.clients.core import UpstreamPolicy
from {{ cookiecutter.package_name }}.clients.encoding import Query
from {{ cookiecutter.package_name }}.common import request_ids
from {{ cookiecutter.package_name }}.common.errors import (
    UpstreamCircuitOpenError,
    UpstreamNotFoundError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
)
from {{ cookiecutter.package_name }}.settings import Settings
from {{ cookiecutter.package_name }}.upstreams import open_{{ cookiecutter.__upstream_module }}

from ..fake_upstream import FakeUpstream, Reply


@pytest.fixture(autouse=True)
def scripted(fake_upstream: FakeUpstream) -> None:
    """These tests are about the core's mechanics: every answer they do not queue is this one.
    The Example API itself is exercised in ``test_{{ cookiecutter.__upstream_module }}.py``."""
    fake_upstream.default = Reply(json={"id": "default"})


async def test_get_item_returns_the_upstream_json(
    fake_upstream: FakeUpstream,
    upstream_client: {{ cookiecutter.__upstream_class }},
) -> None:
    fake_upstream.queue(Reply(json={"id": "42", "name": "answer"}))

    item = await upstream_client.get_json("items", "42")

    assert item == {"id": "42", "name": "answer"}
    assert fake_upstream.requests == ["42"]


async def test_404_raises_not_found_without_retrying(
    fake_upstream: FakeUpstream,
    upstream_client: {{ cookiecutter.__upstream_class }},
) -> None:
    fake_upstream.queue(Reply(status=404, json={"detail": "nope"}))

    with pytest.raises(UpstreamNotFoundError):
        await upstream_client.get_json("items", "missing")
    assert fake_upstream.requests == ["missing"]


async def test_a_redirect_is_never_followed_and_is_a_502(
    fake_upstream: FakeUpstream,
    upstream_client: {{ cookiecutter.__upstream_class }},
) -> None:
    elsewhere = f"{fake_upstream.base_url}/items/elsewhere"
    fake_upstream.queue(Reply(status=302, headers={"Location": elsewhere}))

    with pytest.raises(UpstreamUnavailableError, match="upstream answered 302"):
        await upstream_client.get_json("items", "1")
    assert fake_upstream.requests == ["1"]  # the Location was never asked for


async def test_server_error_is_retried_then_succeeds(
    fake_upstream: FakeUpstream,
    upstream_client: {{ cookiecutter.__upstream_class }},
) -> None:
    fake_upstream.queue(Reply(status=503), Reply(status=502), Reply(json={"id": "1"}))

    assert await upstream_client.get_json("items", "1") == {"id": "1"}
    assert len(fake_upstream.requests) == 3


async def test_server_error_after_all_retries_raises_unavailable(
    fake_upstream: FakeUpstream,
    upstream_client: {{ cookiecutter.__upstream_class }},
) -> None:
    fake_upstream.default = Reply(status=503)

    with pytest.raises(UpstreamUnavailableError, match="503"):
        await upstream_client.get_json("items", "1")
    assert len(fake_upstream.requests) == 3  # the first attempt and upstream_retries=2


async def test_non_transient_server_error_is_not_retried(
    fake_upstream: FakeUpstream,
    upstream_client: {{ cookiecutter.__upstream_class }},
) -> None:
    fake_upstream.default = Reply(status=500)

    with pytest.raises(UpstreamUnavailableError, match="500"):
        await upstream_client.get_json("items", "1")
    assert len(fake_upstream.requests) == 1


async def test_rate_limited_answer_is_retried(
    fake_upstream: FakeUpstream,
    upstream_client: {{ cookiecutter.__upstream_class }},
) -> None:
    fake_upstream.queue(Reply(status=429, headers={"Retry-After": "0"}), Reply(json=[1, 2]))

    assert await upstream_client.get_json("items", "1") == [1, 2]
    assert len(fake_upstream.requests) == 2


async def test_invalid_json_raises_unavailable(
    fake_upstream: FakeUpstream,
    upstream_client: {{ cookiecutter.__upstream_class }},
) -> None:
    fake_upstream.queue(Reply(body=b"{not json"))

    with pytest.raises(UpstreamUnavailableError, match="invalid JSON"):
        await upstream_client.get_json("items", "1")


async def test_non_json_content_type_raises_unavailable(
    fake_upstream: FakeUpstream,
    upstream_client: {{ cookiecutter.__upstream_class }},
) -> None:
    fake_upstream.queue(Reply(body=b"<html>proxy error</html>", content_type="text/html"))

    with pytest.raises(UpstreamUnavailableError, match="content type"):
        await upstream_client.get_json("items", "1")


async def test_oversized_body_raises_unavailable(
    fake_upstream: FakeUpstream,
    upstream_settings: Settings,
) -> None:
    fake_upstream.queue(Reply(json={"blob": "x" * 2048}))
    small = replace(upstream_settings, upstream_max_response_bytes=1024)

    async with open_{{ cookiecutter.__upstream_module }}(small) as api:
        with pytest.raises(UpstreamUnavailableError, match="too large"):
            await api.get_json("items", "1")


@pytest.mark.looptime
async def test_hanging_upstream_raises_timeout_at_the_end_of_the_budget(
    fake_upstream: FakeUpstream,
    upstream_settings: Settings,
) -> None:
    fake_upstream.default = Reply(hang=True)
    impatient = replace(upstream_settings, upstream_timeout=2.0)
    loop = asyncio.get_running_loop()

    async with open_{{ cookiecutter.__upstream_module }}(impatient) as api:
        started = loop.time()
        with pytest.raises(UpstreamTimeoutError):
            await api.get_json("items", "1")
        elapsed = loop.time() - started

    assert elapsed == pytest.approx(2.0, abs=1e-6)  # virtual time: no real wait, exact


@pytest.mark.looptime
async def test_backoff_with_a_fixed_jitter_takes_exactly_its_sum(
    fake_upstream: FakeUpstream,
) -> None:
    fake_upstream.queue(Reply(status=503, json={}), Reply(status=503, json={}))
    policy = UpstreamPolicy(timeout=10.0, retries=2, retry_backoff=0.5)
    loop = asyncio.get_running_loop()

    async with aiohttp.ClientSession() as session:
        # The full jitter at its top: 0.5 s, then 1 s (doubled), then the answer.
        api = {{ cookiecutter.__upstream_class }}(
            session,
            fake_upstream.base_url,
            policy,
            jitter=lambda: 1.0,
        )
        started = loop.time()
        assert await api.get_json("items", "1") == {"id": "default"}
        elapsed = loop.time() - started

    assert elapsed == pytest.approx(0.5 + 1.0, abs=1e-6)
    arrivals = fake_upstream.arrival_times
    assert [round(b - a, 6) for a, b in itertools.pairwise(arrivals)] == [0.5, 1.0]


@pytest.mark.looptime
async def test_retry_after_is_waited_out_exactly(
    fake_upstream: FakeUpstream, upstream_settings: Settings
) -> None:
    fake_upstream.queue(Reply(status=429, json={}, headers={"Retry-After": "2"}))
    patient = replace(upstream_settings, upstream_timeout=10.0)

    async with open_{{ cookiecutter.__upstream_module }}(patient) as api:
        assert await api.get_json("items", "1") == {"id": "default"}

    first, second = fake_upstream.arrival_times
    assert second - first == pytest.approx(2.0, abs=1e-6)


async def test_connection_refused_raises_unavailable(upstream_settings: Settings) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    nowhere = replace(upstream_settings, upstream_base_url=f"http://127.0.0.1:{port}")

    async with open_{{ cookiecutter.__upstream_module }}(nowhere) as api:
        with pytest.raises(UpstreamUnavailableError, match="connect"):
            await api.get_json("items", "1")


async def test_item_id_is_sent_as_one_path_segment(
    fake_upstream: FakeUpstream,
    upstream_client: {{ cookiecutter.__upstream_class }},
) -> None:
    await upstream_client.get_json("items", "a.b~c-d_e")

    assert fake_upstream.requests == ["a.b~c-d_e"]


async def test_current_request_id_is_sent_upstream(
    fake_upstream: FakeUpstream,
    upstream_client: {{ cookiecutter.__upstream_class }},
) -> None:
    token = request_ids.current.set("req-123")
    try:
        await upstream_client.get_json("items", "1")
    finally:
        request_ids.current.reset(token)

    assert fake_upstream.request_ids == ["req-123"]


async def test_every_call_asks_for_json(
    fake_upstream: FakeUpstream,
    upstream_client: {{ cookiecutter.__upstream_class }},
) -> None:
    await upstream_client.get_json("items", "1")
    await upstream_client.get_json("items", "2")

    assert fake_upstream.accepts == ["application/json", "application/json"]


async def test_cookies_the_upstream_sets_are_not_sent_with_later_calls(
    fake_upstream: FakeUpstream,
    upstream_settings: Settings,
) -> None:
    """One client serves every user of the service: a cookie set for one must not reach the
    upstream with another's request. (The upstream is called by name: cookie jars ignore
    cookies from an IP address.)"""
    by_name = fake_upstream.base_url.replace("127.0.0.1", "localhost")
    named = replace(upstream_settings, upstream_base_url=by_name)
    fake_upstream.queue(Reply(json={"id": "1"}, headers={"Set-Cookie": "session=first; Path=/"}))

    async with open_{{ cookiecutter.__upstream_module }}(named) as api:
        await api.get_json("items", "1")
        await api.get_json("items", "2")

    assert fake_upstream.cookies == [None, None]


async def test_retry_after_beyond_the_time_budget_gives_up_at_once(
    fake_upstream: FakeUpstream,
    upstream_client: {{ cookiecutter.__upstream_class }},
) -> None:
    fake_upstream.default = Reply(status=503, headers={"Retry-After": "3600"})

    with pytest.raises(UpstreamUnavailableError, match="503"):
        await upstream_client.get_json("items", "1")
    assert len(fake_upstream.requests) == 1


async def test_open_circuit_fails_fast_without_calling_the_upstream(
    fake_upstream: FakeUpstream,
    upstream_settings: Settings,
) -> None:
    fake_upstream.default = Reply(status=500)
    guarded = replace(upstream_settings, circuit_breaker_threshold=2)

    async with open_{{ cookiecutter.__upstream_module }}(guarded) as api:
        for _ in range(2):
            with pytest.raises(UpstreamUnavailableError):
                await api.get_json("items", "1")
        with pytest.raises(UpstreamCircuitOpenError):
            await api.get_json("items", "1")
    assert len(fake_upstream.requests) == 2


async def test_chunked_body_is_read_whole(
    fake_upstream: FakeUpstream,
    upstream_client: {{ cookiecutter.__upstream_class }},
) -> None:
    fake_upstream.queue(Reply(body=b'{"blob": "' + b"y" * 5000 + b'"}', chunked=True))

    assert await upstream_client.get_json("items", "1") == {"blob": "y" * 5000}


async def test_chunked_body_over_the_cap_raises_unavailable(
    fake_upstream: FakeUpstream,
    upstream_settings: Settings,
) -> None:
    fake_upstream.queue(Reply(body=b'"' + b"z" * 8192 + b'"', chunked=True))
    small = replace(upstream_settings, upstream_max_response_bytes=4096)

    async with open_{{ cookiecutter.__upstream_module }}(small) as api:
        with pytest.raises(UpstreamUnavailableError, match="too large"):
            await api.get_json("items", "1")


async def test_retry_after_as_a_past_http_date_retries_at_once(
    fake_upstream: FakeUpstream,
    upstream_client: {{ cookiecutter.__upstream_class }},
) -> None:
    past = "Wed, 21 Oct 2015 07:28:00 GMT"
    fake_upstream.queue(Reply(status=503, headers={"Retry-After": past}), Reply(json={"ok": 1}))

    assert await upstream_client.get_json("items", "1") == {"ok": 1}
    assert len(fake_upstream.requests) == 2


async def test_not_found_counts_as_a_healthy_upstream_for_the_circuit(
    fake_upstream: FakeUpstream,
    upstream_settings: Settings,
) -> None:
    fake_upstream.queue(Reply(status=500), Reply(status=404), Reply(status=500))
    guarded = replace(upstream_settings, circuit_breaker_threshold=2)

    async with open_{{ cookiecutter.__upstream_module }}(guarded) as api:
        with pytest.raises(UpstreamUnavailableError):
            await api.get_json("items", "1")
        with pytest.raises(UpstreamNotFoundError):
            await api.get_json("items", "2")
        with pytest.raises(UpstreamUnavailableError):
            await api.get_json("items", "3")
        assert await api.get_json("items", "4") == {"id": "default"}


async def test_a_cancelled_call_does_not_open_the_circuit(
    fake_upstream: FakeUpstream,
    upstream_settings: Settings,
) -> None:
    fake_upstream.queue(Reply(hang=True))
    guarded = replace(upstream_settings, circuit_breaker_threshold=1)

    async with open_{{ cookiecutter.__upstream_module }}(guarded) as api:
        call = asyncio.create_task(api.get_json("items", "1"))
        await fake_upstream.arrived.wait()
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call

        assert await api.get_json("items", "2") == {"id": "default"}


async def test_connections_are_reused_after_successes_and_errors(
    fake_upstream: FakeUpstream,
    upstream_client: {{ cookiecutter.__upstream_class }},
) -> None:
    fake_upstream.queue(Reply(status=404), Reply(status=500), Reply(status=404))

    for item_id in ["a", "b", "c", "d", "e"]:
        with contextlib.suppress(UpstreamNotFoundError, UpstreamUnavailableError):
            await upstream_client.get_json("items", item_id)

    assert len(fake_upstream.requests) == 5
    assert len(fake_upstream.peers) == 1


@pytest.mark.parametrize(("coalesce", "upstream_requests"), [(True, 1), (False, 50)])
async def test_concurrent_reads_of_one_item_share_one_upstream_request(
    upstream_settings: Settings,
    fake_upstream: FakeUpstream,
    coalesce: bool,
    upstream_requests: int,
) -> None:
    fake_upstream.queue(Reply(json={"id": "7"}, hang=True))  # the first answers when released
    fake_upstream.default = Reply(json={"id": "7"})
    shared = replace(upstream_settings, upstream_coalesce=coalesce)

    async with open_{{ cookiecutter.__upstream_module }}(shared) as api:
        readers = [asyncio.create_task(api.get_json("items", "7")) for _ in range(50)]
        await fake_upstream.arrived.wait()  # all 50 have asked by now (tasks start in order)
        fake_upstream.release()
        answers = await asyncio.gather(*readers)

    assert len(fake_upstream.requests) == upstream_requests
    assert answers == [{"id": "7"}] * 50


async def test_query_parameters_go_out_sorted_encoded_and_repeated_for_lists(
    fake_upstream: FakeUpstream,
    upstream_client: {{ cookiecutter.__upstream_class }},
) -> None:
    params: Query = {"q": "a b&c=d", "color": ["red", "blue"], "limit": 5}

    await upstream_client.get_json("items", "1", params=params)

    assert fake_upstream.queries == ["color=red&color=blue&limit=5&q=a+b%26c%3Dd"]


async def test_the_same_parameters_in_another_order_are_one_coalesced_call(
    fake_upstream: FakeUpstream,
) -> None:
    # The core alone, without a cache: each call reaches the coalescer in its first step, so
    # the three tasks below register or join in the order they start, whatever the network does.
    fake_upstream.queue(Reply(json={"id": "1"}, hang=True))  # the first answers when released
    fake_upstream.default = Reply(json={"id": "1"})
    base_url = fake_upstream.base_url
    async with {{ cookiecutter.__upstream_class }}.open(base_url, UpstreamPolicy()) as api:
        first = asyncio.create_task(api.get_json("items", "1", params={"a": "1", "b": ["x", "y"]}))
        second = asyncio.create_task(api.get_json("items", "1", params={"b": ["x", "y"], "a": "1"}))
        values_reordered = asyncio.create_task(
            api.get_json("items", "1", params={"a": "1", "b": ["y", "x"]})
        )
        await fake_upstream.arrived.wait()
        fake_upstream.release()
        answers = await asyncio.gather(first, second, values_reordered)

    assert list(answers) == [{"id": "1"}] * 3
    # A list's order is the caller's meaning: ["y", "x"] is another call.
    assert sorted(fake_upstream.queries) == ["a=1&b=x&b=y", "a=1&b=y&b=x"]


async def test_a_boolean_query_value_is_refused_before_anything_is_sent(
    fake_upstream: FakeUpstream,
    upstream_client: {{ cookiecutter.__upstream_class }},
) -> None:
    with pytest.raises(TypeError, match="query flags as strings"):
        await upstream_client.get_json("items", "1", params={"active": True})
    assert fake_upstream.requests == []


@pytest.mark.looptime
async def test_the_rate_limit_lets_a_burst_through_then_spaces_attempts(
    upstream_settings: Settings, fake_upstream: FakeUpstream
) -> None:
    limited = replace(upstream_settings, upstream_rate_limit=20.0)

    async with open_{{ cookiecutter.__upstream_module }}(limited) as api:
        await asyncio.gather(*(api.get_json("items", str(n)) for n in range(25)))

    # On virtual time: the burst of 20 at once, then one attempt every 1/20 s.
    times = sorted(fake_upstream.arrival_times)
    assert times[19] - times[0] == pytest.approx(0.0, abs=1e-6)
    gaps = [round(later - earlier, 6) for earlier, later in itertools.pairwise(times[19:])]
    assert gaps == [0.05] * 5


@pytest.mark.looptime
async def test_a_call_with_no_turn_within_its_budget_is_a_timeout_and_never_sent(
    upstream_settings: Settings, fake_upstream: FakeUpstream
) -> None:
    tight = replace(
        upstream_settings, upstream_rate_limit=1.0, upstream_timeout=0.5, upstream_retries=0
    )

    async with open_{{ cookiecutter.__upstream_module }}(tight) as api:
        results = await asyncio.gather(
            api.get_json("items", "1"), api.get_json("items", "2"), return_exceptions=True
        )

    # Which call gets the one turn is not fixed (with a cache, each first awaits its lookup).
    answered = [result for result in results if not isinstance(result, BaseException)]
    refused = [result for result in results if isinstance(result, UpstreamTimeoutError)]
    assert (answered, len(refused)) == ([{"id": "default"}], 1)
    assert len(fake_upstream.requests) == 1
