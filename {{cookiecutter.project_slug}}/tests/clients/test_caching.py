"""The response cache: what is kept and for how long, and the client answering from it."""

from __future__ import annotations
{% if cookiecutter.cache == "redis" %}
import asyncio
import logging
{%- endif %}
from collections.abc import AsyncIterator
from dataclasses import replace
{%- if cookiecutter.cache == "redis" %}
from typing import Any
{%- endif %}
from unittest.mock import Mock

import pytest
{%- if cookiecutter.cache == "redis" %}
from fakeredis import FakeAsyncRedis
from redis.exceptions import ConnectionError as RedisConnectionError
{%- endif %}

from {{ cookiecutter.package_name }}.clients import {{ cookiecutter.__upstream_class }}
from {{ cookiecutter.package_name }}.clients.caching import {% if cookiecutter.cache == "memory" %}MemoryCache{% else %}KEY_PREFIX, RedisCache{% endif %}, time_to_live
from {{ cookiecutter.package_name }}.clients.core import MISS, Instruments, UpstreamObserver
from {{ cookiecutter.package_name }}.common.errors import UpstreamNotFoundError
from {{ cookiecutter.package_name }}.settings import Settings
from {{ cookiecutter.package_name }}.upstreams import open_{{ cookiecutter.__upstream_module }}

from ..fake_upstream import FakeUpstream, Reply

TTL = 30.0


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("cache_control", "seconds"),
    [
        (None, TTL),
        ("public", TTL),
        ("max-age=5", 5.0),
        ("public, max-age=300", TTL),  # the setting is the most ever kept
        ("max-age=60, s-maxage=7", 7.0),  # a shared cache follows s-maxage
        ("max-age=0", 0.0),
        ("no-store", 0.0),
        ("No-Cache", 0.0),
        ("private, max-age=60", 0.0),
        ("max-age=soon", 0.0),
    ],
)
def test_time_to_live_follows_the_setting_and_the_upstreams_cache_control(
    cache_control: str | None, seconds: float
) -> None:
    assert time_to_live(cache_control, TTL) == seconds
{%- if cookiecutter.cache == "memory" %}


async def test_answers_expire_after_their_time_to_live() -> None:
    clock = Clock()
    cache = MemoryCache(TTL, max_entries=10, clock=clock)
    cache.store("a", b'{"id":"a"}', None)
    cache.store("b", b'{"id":"b"}', "max-age=5")

    clock.now += 6
    assert await cache.lookup("a") == b'{"id":"a"}'
    assert await cache.lookup("b") is MISS
    clock.now += TTL
    assert await cache.lookup("a") is MISS


async def test_memory_is_bounded_and_the_least_recently_used_goes_first() -> None:
    cache = MemoryCache(TTL, max_entries=2)
    cache.store("a", b"1", None)
    cache.store("b", b"2", None)
    assert await cache.lookup("a") == b"1"  # now "b" is the least recently used

    cache.store("c", b"3", None)

    assert len(cache) == 2
    assert [await cache.lookup(key) for key in ("a", "b", "c")] == [b"1", MISS, b"3"]


async def test_a_written_key_is_forgotten() -> None:
    cache = MemoryCache(TTL, max_entries=2)
    cache.store("a", b"1", None)

    await cache.forget("a")
    await cache.forget("never stored")

    assert await cache.lookup("a") is MISS
{%- else %}


@pytest.fixture
async def redis() -> AsyncIterator[FakeAsyncRedis]:
    """An in-process stand-in for Redis (fakeredis), with expiry. Pinged once here: its first
    command reads a file of command descriptions, a blocking read that blockbuster would blame
    on the cache's code (see conftest.py)."""
    fake = FakeAsyncRedis()
    await fake.ping()
    yield fake
    await fake.aclose()


async def test_answers_are_kept_in_redis_with_their_time_to_live(redis: FakeAsyncRedis) -> None:
    cache = RedisCache(redis, TTL, timeout=1.0, namespace="api")
    cache.store("a", b'{"id":"a"}', None)
    cache.store("b", b'{"id":"b"}', "max-age=5")
    cache.store("c", b'{"id":"c"}', "no-store")
    await cache.close()  # waits for the background writes

    prefix = f"{KEY_PREFIX}api:"
    assert sorted(await redis.keys()) == [f"{prefix}a".encode(), f"{prefix}b".encode()]
    assert 29_000 < await redis.pttl(f"{prefix}a") <= 30_000
    assert 4_000 < await redis.pttl(f"{prefix}b") <= 5_000


async def test_a_time_to_live_under_a_millisecond_is_still_a_valid_expiry(
    redis: FakeAsyncRedis, caplog: pytest.LogCaptureFixture
) -> None:
    cache = RedisCache(redis, ttl=0.0004, timeout=1.0, namespace="api")

    with caplog.at_level(logging.WARNING):
        cache.store("brief", b"1", None)
        await cache.close()

    assert caplog.records == []  # Redis refuses PX 0: that would be a failure and a pause


async def test_lookups_read_what_any_process_wrote(redis: FakeAsyncRedis) -> None:
    writer = RedisCache(redis, TTL, timeout=1.0, namespace="api")
    reader = RedisCache(redis, TTL, timeout=1.0, namespace="api")
    writer.store("a", b'{"id":"a"}', None)
    writer.store("nothing", b"null", None)
    await writer.close()

    assert await reader.lookup("a") == b'{"id":"a"}'
    assert await reader.lookup("nothing") == b"null"
    assert await reader.lookup("b") is MISS


async def test_a_write_makes_every_process_forget_the_key(redis: FakeAsyncRedis) -> None:
    writer = RedisCache(redis, TTL, timeout=1.0, namespace="api")
    other = RedisCache(redis, TTL, timeout=1.0, namespace="api")
    writer.store("a", b'{"id":"a"}', None)
    await writer.close()

    await other.forget("a")

    assert await writer.lookup("a") is MISS


class FailingRedis:
    """Redis as it looks when it is down: every command fails, and is counted."""

    def __init__(self) -> None:
        self.calls = 0

    async def get(self, *args: Any) -> Any:
        self.calls += 1
        raise RedisConnectionError("connection refused")

    async def set(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        raise RedisConnectionError("connection refused")

    async def aclose(self) -> None:
        pass


async def test_a_failing_redis_is_a_miss_with_one_warning_and_a_pause(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock, redis = Clock(), FailingRedis()
    cache = RedisCache(redis, TTL, timeout=1.0, namespace="api", clock=clock)  # type: ignore[arg-type]

    with caplog.at_level(logging.WARNING):
        lookups = [await cache.lookup("a") for _ in range(20)]
        cache.store("a", b"1", None)
        clock.now += 2  # the pause is over: Redis is tried again, and fails again
        lookups.append(await cache.lookup("a"))
    await cache.close()

    assert lookups == [MISS] * 21
    assert redis.calls == 2  # once, then not again until the pause ended
    warnings = [r for r in caplog.records if r.name.endswith(".caching")]
    assert len(warnings) == 1  # the second failure came within the warning interval
    assert "upstream" in warnings[0].getMessage()
{%- endif %}


@pytest.fixture
async def cached_client(
    upstream_settings: Settings,
{%- if cookiecutter.cache == "redis" %}
    redis: FakeAsyncRedis,
    monkeypatch: pytest.MonkeyPatch,
{%- endif %}
) -> AsyncIterator[tuple[{{ cookiecutter.__upstream_class }}, Mock]]:
    """The real client with its cache, talking to the fake upstream; and its observer."""
{%- if cookiecutter.cache == "redis" %}
    # The client opens its cache from REDIS_URL; here, on the in-process fake instead.
    monkeypatch.setattr("redis.asyncio.Redis.from_url", lambda *args, **kwargs: redis)
{%- endif %}
    observer = Mock(spec=UpstreamObserver)
    instruments = Instruments(observer=observer)
    settings = replace(upstream_settings, cache_ttl_seconds=TTL)
    async with open_{{ cookiecutter.__upstream_module }}(settings, instruments) as api:
        yield api, observer


async def test_a_second_read_is_answered_from_the_cache(
    cached_client: tuple[{{ cookiecutter.__upstream_class }}, Mock],
    fake_upstream: FakeUpstream,
) -> None:
    api, observer = cached_client
    fake_upstream.default = Reply(json={"id": "7"})

    first = await api.get_json("items", "7")
{%- if cookiecutter.cache == "redis" %}
    await settle_writes()
{%- endif %}
    second = await api.get_json("items", "7")

    assert first == second == {"id": "7"}
    assert fake_upstream.requests == ["7"]
    hits = [call.kwargs["hit"] for call in observer.cache_used.call_args_list]
    assert hits == [False, True]


async def test_no_store_and_errors_are_never_cached(
    cached_client: tuple[{{ cookiecutter.__upstream_class }}, Mock],
    fake_upstream: FakeUpstream,
) -> None:
    api, _ = cached_client
    fake_upstream.add({"id": "1", "name": "one"})
    fake_upstream.queue(
        Reply(json={"id": "1"}, headers={"Cache-Control": "no-store"}),
        Reply(status=404, json={"detail": "gone"}),
    )

    assert await api.get_json("items", "1") == {"id": "1"}
    with pytest.raises(UpstreamNotFoundError):
        await api.get_json("items", "2")
{%- if cookiecutter.cache == "redis" %}
    await settle_writes()
{%- endif %}
    await api.get_json("items", "1")
    with pytest.raises(UpstreamNotFoundError):
        await api.get_json("items", "2")

    assert fake_upstream.requests == ["1", "2", "1", "2"]
{%- if cookiecutter.cache == "redis" %}


async def settle_writes() -> None:
    """Let the cache's background writes reach the (in-process) Redis."""
    for _ in range(10):
        await asyncio.sleep(0)
{%- endif %}
