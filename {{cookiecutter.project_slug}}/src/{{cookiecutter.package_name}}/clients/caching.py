"""The response cache: upstream 200 answers kept for ``CACHE_TTL_SECONDS``, or less when the
upstream's ``Cache-Control`` says so (``no-store``, ``no-cache`` and ``private`` answers are
never kept).
{%- if cookiecutter.cache == "memory" %}

Kept in this process's memory, at most ``CACHE_MAX_ENTRIES`` answers, least recently used
first out. Each process (each worker, each replica) has its own.
{%- else %}

Kept in Redis (``REDIS_URL``), so every process and replica shares it. It is an optimisation,
never a dependency: when Redis is down or slower than ``REDIS_TIMEOUT``, lookups miss and the
upstream answers, with one warning per minute in the log, not one per request, and Redis is
left alone for a second before it is tried again.
{%- endif %}
"""

from __future__ import annotations
{% if cookiecutter.cache == "redis" %}
import asyncio
import logging
{%- endif %}
import time
from collections.abc import Callable
{%- if cookiecutter.cache == "redis" %}
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.utils import get_lib_version
{%- else %}

from cachetools import TLRUCache
{%- endif %}

from .core import MISS, Miss
{%- if cookiecutter.cache == "redis" %}

logger = logging.getLogger(__name__)

# Redis may be shared: every key starts with the service's name, then the upstream's.
KEY_PREFIX = {{ (cookiecutter.project_slug ~ ":")|quoted }}
WARNING_INTERVAL = 60.0  # seconds between two warnings that Redis fails
PAUSE_AFTER_FAILURE = 1.0  # seconds Redis is left alone after a failure
# redis-py reads its own version from the installed package's metadata on its first connection
# (a blocking file scan, then cached): read it here, at import, before any event loop runs.
get_lib_version()
{%- endif %}

# Directives after which an answer is not kept: it must not be, or must be revalidated first.
UNCACHEABLE = frozenset({"no-store", "no-cache", "private"})


def time_to_live(cache_control: str | None, default: float) -> float:
    """Seconds to keep an answer: ``default``, capped by ``s-maxage`` (else ``max-age``); 0
    when the upstream forbids keeping it (or gives a malformed age)."""
    if not cache_control:
        return default
    ages: dict[str, str] = {}
    for directive in cache_control.lower().split(","):
        name, _, argument = directive.strip().partition("=")
        if name in UNCACHEABLE:
            return 0.0
        if name in {"max-age", "s-maxage"}:
            ages[name] = argument.strip().strip('"')
    age = ages.get("s-maxage", ages.get("max-age"))
    if age is None:
        return default
    if not age.isdigit():
        return 0.0
    return min(default, float(age))
{%- if cookiecutter.cache == "memory" %}


class MemoryCache:
    """A bounded LRU of answers (raw bodies) in this process, each expiring after its own time
    to live."""

    def __init__(
        self, ttl: float, max_entries: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._ttl = ttl
        # Values are (answer, seconds to live); cachetools drops each when its time is up.
        self._entries: TLRUCache[str, tuple[bytes, float]] = TLRUCache(
            maxsize=max_entries, ttu=lambda _key, value, now: now + value[1], timer=clock
        )

    def __len__(self) -> int:
        return len(self._entries)

    async def lookup(self, key: str) -> bytes | Miss:
        entry = self._entries.get(key)
        return MISS if entry is None else entry[0]

    def store(self, key: str, body: bytes, cache_control: str | None) -> None:
        ttl = time_to_live(cache_control, self._ttl)
        if ttl > 0:
            self._entries[key] = (body, ttl)

    async def forget(self, key: str) -> None:
        self._entries.pop(key, None)

    async def close(self) -> None:
        self._entries.clear()
{%- else %}


class RedisCache:
    """Answers (raw bodies) in Redis, each with its time to live; failures are misses."""

    def __init__(
        self,
        redis: Redis,
        ttl: float,
        timeout: float,
        namespace: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._redis = redis
        self._ttl = ttl
        self._timeout = timeout
        self._prefix = f"{KEY_PREFIX}{namespace}:"
        self._clock = clock
        self._paused_until = float("-inf")
        self._next_warning = float("-inf")
        self._writes: set[asyncio.Task[None]] = set()

    @classmethod
    def open(cls, url: str, ttl: float, timeout: float, namespace: str) -> RedisCache:
        """A cache on a new connection pool to ``url`` (connections open on first use)."""
        redis = Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),  # a failed call is a miss, not something to wait for
        )
        return cls(redis, ttl, timeout, namespace)

    async def lookup(self, key: str) -> bytes | Miss:
        raw = await self._call(self._redis.get, self._prefix + key)
        return raw if isinstance(raw, bytes) else MISS

    def store(self, key: str, body: bytes, cache_control: str | None) -> None:
        """Write in the background: the answer does not wait for Redis."""
        ttl = time_to_live(cache_control, self._ttl)
        if ttl <= 0 or self._clock() < self._paused_until:
            return
        milliseconds = max(1, int(ttl * 1000))  # Redis refuses an expiry of 0
        write = self._call(self._redis.set, self._prefix + key, body, px=milliseconds)
        task: asyncio.Task[None] = asyncio.ensure_future(write)
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def forget(self, key: str) -> None:
        """Delete the key for every process; when Redis fails, its time to live still ends it."""
        await self._call(self._redis.delete, self._prefix + key)

    async def close(self) -> None:
        """Let pending writes finish (each is bounded by the timeout), then disconnect."""
        if self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)
        await self._redis.aclose()

    async def _call(self, command: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run one Redis command within the timeout; on failure, pause, warn, give None."""
        if self._clock() < self._paused_until:
            return None
        try:
            async with asyncio.timeout(self._timeout):
                return await command(*args, **kwargs)
        except (RedisError, OSError, TimeoutError) as error:
            self._failed(error)
            return None

    def _failed(self, error: Exception) -> None:
        now = self._clock()
        self._paused_until = now + PAUSE_AFTER_FAILURE
        if now >= self._next_warning:
            self._next_warning = now + WARNING_INTERVAL
            logger.warning(
                "the Redis cache failed (%s), so answers come from the upstream;"
                " next warning in %.0fs at the earliest",
                type(error).__name__,
                WARNING_INTERVAL,
            )
{%- endif %}
