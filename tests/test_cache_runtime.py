"""The response cache on started services (``python -m``): ``cache=memory`` bounded and
expiring, ``cache=redis`` shared by two processes through a real ``redis-server``, and Redis
down or slow costing no 5xx.

Everything listens on 127.0.0.1, every wait is bounded, and every process is stopped by pid.
"""

from __future__ import annotations

import asyncio
import itertools
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import aiohttp
import pytest
from conftest import Bake, Install
from matrix import DEFAULT_PYTHON
from support.fake_upstream import item
from support.processes import redis_server
from support.prometheus import scrape, value
from test_runtime_contract import Service, running_service, upstream_stats

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("cache-runtime")]

CACHE_LOOKUPS = "cache_requests_total"
WRITE_LANDS = 0.2  # seconds for a background cache write to reach Redis, generously


@pytest.fixture(scope="module")
def memory_python(bake: Bake, install: Install) -> Path:
    return install(bake(cache="memory"), DEFAULT_PYTHON)


@pytest.fixture(scope="module")
def redis_python(bake: Bake, install: Install) -> Path:
    return install(bake(cache="redis"), DEFAULT_PYTHON)


def lookups(service: Service) -> tuple[float, float]:
    """(hits, misses) so far, from the service's /metrics."""
    samples = scrape(service.url)
    return value(samples, CACHE_LOOKUPS, result="hit"), value(samples, CACHE_LOOKUPS, result="miss")


def upstream_calls(upstream: str, item_id: str) -> int:
    paths: list[str] = upstream_stats(upstream)["paths"]
    return paths.count(f"/items/{item_id}")


def test_memory_cache_answers_repeats_evicts_the_least_recent_and_expires(
    memory_python: Path, tmp_path: Path, upstream: str
) -> None:
    settings = {"CACHE_MAX_ENTRIES": "2", "CACHE_TTL_SECONDS": "1"}
    with running_service(memory_python, tmp_path, upstream, **settings) as service:
        for item_id in ["ok-1", "ok-1", "ok-2", "ok-1", "ok-3", "ok-1", "ok-2"]:
            response = service.get(f"/api/items/{item_id}")
            assert (response.status, response.body) == (200, item(item_id))
        # ok-1 was asked for last before ok-3 came: ok-2 was the least recent, and went.
        calls = {item: upstream_calls(upstream, item) for item in ("ok-1", "ok-2", "ok-3")}
        assert calls == {"ok-1": 1, "ok-2": 2, "ok-3": 1}
        assert lookups(service) == (3, 4)

        time.sleep(1.2)  # past CACHE_TTL_SECONDS
        assert service.get("/api/items/ok-1").status == 200
        assert upstream_calls(upstream, "ok-1") == 2


def test_cache_control_no_store_and_max_age_are_followed(
    memory_python: Path, tmp_path: Path, upstream: str
) -> None:
    with running_service(memory_python, tmp_path, upstream) as service:
        for _ in range(2):
            assert service.get("/api/items/nostore-1").status == 200
            assert service.get("/api/items/maxage1-1").status == 200
        assert upstream_calls(upstream, "nostore-1") == 2  # never kept
        assert upstream_calls(upstream, "maxage1-1") == 1  # kept, for a second only
        time.sleep(1.2)
        assert service.get("/api/items/maxage1-1").status == 200
        assert upstream_calls(upstream, "maxage1-1") == 2


def test_two_processes_share_one_redis_cache(
    redis_python: Path, tmp_path: Path, upstream: str, redis_url: str
) -> None:
    with (
        running_service(redis_python, tmp_path, upstream, REDIS_URL=redis_url) as first,
        running_service(redis_python, tmp_path, upstream, REDIS_URL=redis_url) as second,
    ):
        assert first.get("/api/items/ok-shared").body == item("ok-shared")
        time.sleep(WRITE_LANDS)
        assert second.get("/api/items/ok-shared").body == item("ok-shared")
        assert first.get("/api/items/nostore-2").status == 200
        time.sleep(WRITE_LANDS)
        assert second.get("/api/items/nostore-2").status == 200

        assert upstream_calls(upstream, "ok-shared") == 1
        assert upstream_calls(upstream, "nostore-2") == 2
        assert lookups(first) == (0, 2)
        assert lookups(second) == (1, 1)


def load(
    services: list[Service], seconds: float, during: float, act: Callable[[], object]
) -> list[int]:
    """Statuses of ``GET /api/items/ok-k<n>`` over 20 ids, 20 clients alternating between the
    services, for ``seconds``; ``act()`` is called once, ``during`` seconds in."""

    async def run() -> list[int]:
        statuses: list[int] = []
        numbers = itertools.count()
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
            end = time.monotonic() + seconds
            asyncio.get_running_loop().call_later(during, act)

            async def client() -> None:
                while time.monotonic() < end:
                    n = next(numbers)
                    url = f"{services[n % len(services)].url}/api/items/ok-k{n % 20}"
                    async with session.get(url) as response:
                        await response.read()
                        statuses.append(response.status)
                    await asyncio.sleep(0.01)

            await asyncio.gather(*(client() for _ in range(20)))
        return statuses

    return asyncio.run(asyncio.wait_for(run(), timeout=seconds + 30))


def warnings_about_redis(service: Service) -> int:
    return sum("Redis cache failed" in line for line in service.log.read_text().splitlines())


def test_redis_killed_mid_load_costs_no_5xx_and_one_warning(
    redis_python: Path, tmp_path: Path, upstream: str
) -> None:
    with (
        redis_server() as (redis, url),
        running_service(redis_python, tmp_path, upstream, REDIS_URL=url) as first,
        running_service(redis_python, tmp_path, upstream, REDIS_URL=url) as second,
    ):
        statuses = load([first, second], seconds=3.0, during=1.0, act=redis.kill)
        readiness = [service.get("/health/ready").status for service in (first, second)]
        hits = lookups(first)[0] + lookups(second)[0]
        warned = [warnings_about_redis(service) for service in (first, second)]

    assert len(statuses) > 100
    assert set(statuses) == {200}
    assert readiness == [200, 200]
    assert hits > 0  # Redis served before it went
    assert warned == [1, 1]  # one warning per process and interval, not one per request


@pytest.fixture
def black_hole() -> Iterator[str]:
    """A 'Redis' that accepts connections and never answers: a stuck or overloaded server."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield f"redis://127.0.0.1:{listener.getsockname()[1]}/0"


def test_a_redis_that_never_answers_costs_one_timeout_then_is_left_alone(
    redis_python: Path, tmp_path: Path, upstream: str, black_hole: str
) -> None:
    settings = {"REDIS_URL": black_hole, "REDIS_TIMEOUT": "0.2"}
    with running_service(redis_python, tmp_path, upstream, **settings) as service:
        timings = []
        for n in range(5):
            started = time.monotonic()
            response = service.get(f"/api/items/ok-hole-{n}")
            timings.append(time.monotonic() - started)
            assert (response.status, response.body) == (200, item(f"ok-hole-{n}"))
        ready = service.get("/health/ready").status

    assert ready == 200
    assert 0.2 <= timings[0] < 2.0  # the first lookup waited out REDIS_TIMEOUT, no more
    assert max(timings[1:]) < 0.2  # then Redis is left alone: no request waits for it
    assert warnings_about_redis(service) == 1
