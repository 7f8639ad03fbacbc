"""What every upstream client shares: one pooled session, a time budget, retries, the circuit
breaker, a size cap and typed errors. Per-upstream modules only name paths and shape answers.

A call passes one layer per concern, top to bottom::

    get_json        builds the URL (query parameters sorted by name); answers from the
                    cache, if any and fresh; concurrent calls for one URL share one
                    (coalescing)
    _guarded        the circuit breaker (only when enabled)
    _with_retries   the time budget; backoff with full jitter or the server's Retry-After
    _limited        waits for the upstream's rate limit, within the budget (only with one)
    _observed       what an observer (metrics) sees of each attempt (only with one)
    _traced         a span per attempt, its context sent along (only with tracing)
    _attempt        one request, never following a redirect: headers, status, content
                    type, size cap, JSON; a 200 is offered to the cache with its Cache-Control

Callers get plain JSON data or an ``UpstreamError``; nothing of aiohttp's client API leaks out.
This module knows nothing of handlers or the application.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import Enum
from functools import partial
from types import MappingProxyType, TracebackType
from typing import Any, ClassVar, Literal, Protocol, Self

import aiohttp
from aiolimiter import AsyncLimiter
from yarl import URL

from ..common import request_ids
from ..common.errors import (
    UpstreamError,
    UpstreamNotFoundError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
)
from ..common.jsonlib import JSONValue, loads
from .circuit_breaker import CircuitBreaker
from .coalescing import Coalescer

# Statuses that say "try again later"; any other error status is final.
RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})
MAX_BACKOFF_SECONDS = 2.0
MAX_RETRY_AFTER_SECONDS = 5.0
MAX_DRAINED_BYTES = 64 * 1024
NO_HEADERS: Mapping[str, str] = MappingProxyType({})
SESSION_HEADERS: Mapping[str, str] = MappingProxyType({"Accept": "application/json"})

Outcome = Literal["ok", "not_found", "error", "timeout"]
# Query parameters: a list value repeats its key (``?tag=a&tag=b``), in the list's order.
QueryValue = str | int | float
Query = Mapping[str, QueryValue | Sequence[QueryValue]]
CanonicalQuery = tuple[tuple[str, str], ...]
Send = Callable[[URL, aiohttp.ClientTimeout], Awaitable[JSONValue]]


class Miss(Enum):
    """What a cache lookup gives when it has no fresh answer (``None`` is a JSON value)."""

    MISS = "miss"


MISS = Miss.MISS


class ResponseCache(Protocol):
    """Caching's seam: asked before a call, offered every 200 answer (see ``caching.py``).

    Neither method may raise: a cache that fails is a cache that misses.
    """

    async def lookup(self, key: str) -> JSONValue | Miss: ...

    def store(self, key: str, value: JSONValue, cache_control: str | None) -> None:
        """Keep ``value`` as long as the settings and the upstream's Cache-Control allow."""

    async def close(self) -> None: ...


# Opens the cache of one upstream client, given the client's name.
OpenCache = Callable[[str], ResponseCache]


@dataclass(frozen=True, slots=True)
class UpstreamPolicy:
    """How one upstream is called; the defaults are the service's documented ones."""

    timeout: float = 10.0  # one call, retries included
    connect_timeout: float = 3.0
    retries: int = 2  # extra attempts after a transient failure
    retry_backoff: float = 0.1  # base of the exponential backoff, in seconds
    pool_size: int = 100
    max_response_bytes: int = 1024 * 1024
    circuit_breaker_threshold: int = 0  # 0: no breaker
    circuit_breaker_cooldown: float = 30.0
    coalesce: bool = True  # concurrent calls for the same URL share one request
    rate_limit: float = 0.0  # attempts per second, per process (burst: as many); 0: no limit
    cache: OpenCache | None = None  # where 200 answers are kept; None: nowhere


class UpstreamObserver(Protocol):
    """Where metrics attach: told of every attempt sent, every retry and, with a circuit
    breaker, each time it opens or closes; with a cache, of every lookup."""

    def attempt_finished(self, upstream: str, outcome: Outcome, seconds: float) -> None: ...

    def retrying(self, upstream: str) -> None: ...

    def circuit_changed(self, upstream: str, is_open: bool) -> None: ...

    def cache_used(self, upstream: str, hit: bool) -> None: ...


# Tracing's seam: wraps each attempt to an upstream (its name, the URL); yields the headers that
# carry the trace context to it, and sees the attempt's exception, if any.
TraceAttempt = Callable[[str, URL], AbstractContextManager[Mapping[str, str]]]


@dataclass(frozen=True, slots=True)
class Instruments:
    """What watches an upstream's calls: an observer (metrics) and a tracer of attempts."""

    observer: UpstreamObserver | None = None
    trace_attempt: TraceAttempt | None = None


NO_INSTRUMENTS = Instruments()


class _RetryableStatusError(Exception):
    """An answer worth another attempt; never leaves this module."""

    def __init__(self, status: int, retry_after: float | None) -> None:
        super().__init__(status)
        self.status = status
        self.retry_after = retry_after


# Transient failures: another attempt may succeed.
_TRANSIENT = (_RetryableStatusError, aiohttp.ClientConnectionError, TimeoutError)


class UpstreamClient:
    """Calls one upstream API at ``base_url`` through one shared ``ClientSession``.

    Retries cover idempotent GETs only, and the whole call, retries included, fits in
    ``policy.timeout``. The retry loop is written out rather than delegated to a library: it
    is a dozen lines with one path, and the common case (first attempt succeeds) allocates
    nothing for it.
    """

    name: ClassVar[str] = "upstream"  # labels what an observer records

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        policy: UpstreamPolicy,
        *,
        breaker: CircuitBreaker | None = None,
        cache: ResponseCache | None = None,
        observer: UpstreamObserver | None = None,
        trace_attempt: TraceAttempt | None = None,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self._session = session
        self._base_url = URL(base_url)
        self._policy = policy
        self._breaker = breaker
        self._cache = cache
        self._observer = observer
        self._jitter = jitter
        self._coalescer: Coalescer[JSONValue] | None = Coalescer() if policy.coalesce else None
        # Without an observer or a tracer, attempts skip their layers: nothing is paid for them.
        attempt: Send = self._attempt
        if trace_attempt is not None:
            attempt = partial(self._traced, trace_attempt)
        if observer is not None:
            attempt = partial(self._observed, observer, attempt)
        if policy.rate_limit > 0:
            attempt = partial(self._limited, AsyncLimiter(policy.rate_limit, 1.0), attempt)
        self._send = attempt
        # A layer is only passed when in use: each one costs every await of every call.
        self._call: Callable[[URL], Coroutine[Any, Any, JSONValue]] = self._with_retries
        if breaker is not None:
            self._call = partial(self._guarded, breaker)

    @classmethod
    def open(
        cls, base_url: str, policy: UpstreamPolicy, instruments: Instruments = NO_INSTRUMENTS
    ) -> Self:
        """Open the shared session; call from a running event loop, close with ``close()``."""
        observer = instruments.observer
        connector = aiohttp.TCPConnector(
            limit=policy.pool_size, limit_per_host=policy.pool_size, ttl_dns_cache=300
        )
        timeout = aiohttp.ClientTimeout(total=policy.timeout, connect=policy.connect_timeout)
        breaker = None
        if policy.circuit_breaker_threshold > 0:
            on_change = None if observer is None else partial(observer.circuit_changed, cls.name)
            breaker = CircuitBreaker(
                policy.circuit_breaker_threshold,
                policy.circuit_breaker_cooldown,
                on_change=on_change,
            )
            if on_change is not None:
                on_change(False)  # the circuit starts closed: say so, so the gauge exists
        # No cookie jar: the session calls the upstream on behalf of every user of the service,
        # so a cookie one answer set must never go out with another's request. Headers every
        # request carries are the session's, set once rather than merged in per request.
        session = aiohttp.ClientSession(
            connector=connector,
            timeout=timeout,
            cookie_jar=aiohttp.DummyCookieJar(),
            headers=SESSION_HEADERS,
        )
        return cls(
            session,
            base_url,
            policy,
            breaker=breaker,
            cache=None if policy.cache is None else policy.cache(cls.name),
            observer=observer,
            trace_attempt=instruments.trace_attempt,
        )

    @property
    def closed(self) -> bool:
        """Whether ``close()`` has run: no request can be made after it."""
        return self._session.closed

    async def close(self) -> None:
        """Close the session and every pooled connection, and the cache."""
        await self._session.close()
        if self._cache is not None:
            await self._cache.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def get_json(self, *segments: str, params: Query | None = None) -> JSONValue:
        """``GET {base_url}/{segments...}?{params}`` as JSON data. Segments and parameters are
        percent-encoded; a ``/`` in a segment would split it, so callers pass validated ids.
        Parameters are sent sorted by name, so the same ones in another order are the same call
        for coalescing and the cache.

        Raises UpstreamNotFoundError, UpstreamUnavailableError, UpstreamTimeoutError, or
        UpstreamCircuitOpenError while the circuit breaker (if enabled) is open.
        """
        url = self._base_url.joinpath(*segments)
        key: tuple[str, ...] | tuple[tuple[str, ...], CanonicalQuery] = segments
        if params:
            query = canonical_query(params)
            url, key = url.with_query(query), (segments, query)
        if self._cache is not None:
            cached = await self._cache.lookup(str(url))
            if self._observer is not None:
                self._observer.cache_used(self.name, hit=cached is not MISS)
            if cached is not MISS:
                return cached
        if self._coalescer is None:
            return await self._call(url)
        return await self._coalescer.run(key, partial(self._call, url))

    async def _guarded(self, breaker: CircuitBreaker, url: URL) -> JSONValue:
        breaker.before_call()
        try:
            result = await self._with_retries(url)
        except UpstreamNotFoundError:
            breaker.record_success()  # the upstream answered properly
            raise
        except UpstreamError:
            breaker.record_failure()
            raise
        except BaseException:
            breaker.release_probe()  # cancelled: no verdict on the upstream
            raise
        breaker.record_success()
        return result

    async def _with_retries(self, url: URL) -> JSONValue:
        """Attempt; while the failure is transient and attempts and time are left, wait, retry."""
        policy, loop = self._policy, asyncio.get_running_loop()
        deadline = loop.time() + policy.timeout
        budget = self._session.timeout  # the first attempt may use all of it
        attempt = 1
        while True:
            try:
                return await self._send(url, budget)
            except _TRANSIENT as error:
                delay = self._delay(error, attempt)
                remaining = deadline - loop.time() - delay
                if attempt > policy.retries or remaining <= 0:
                    raise self._final(error) from None
            if self._observer is not None:
                self._observer.retrying(self.name)
            await asyncio.sleep(delay)
            budget = aiohttp.ClientTimeout(total=remaining, connect=policy.connect_timeout)
            attempt += 1

    async def _limited(
        self, limiter: AsyncLimiter, attempt: Send, url: URL, budget: aiohttp.ClientTimeout
    ) -> JSONValue:
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            async with asyncio.timeout(budget.total):
                await limiter.acquire()
        except TimeoutError:
            raise UpstreamTimeoutError("no turn within the upstream's rate limit in time") from None
        left = (budget.total or 0.0) - (loop.time() - started)
        return await attempt(url, aiohttp.ClientTimeout(total=left, connect=budget.connect))

    async def _observed(
        self, observer: UpstreamObserver, attempt: Send, url: URL, budget: aiohttp.ClientTimeout
    ) -> JSONValue:
        started = time.perf_counter()
        try:
            result = await attempt(url, budget)
        except Exception as error:  # a cancellation is no outcome of the upstream's
            observer.attempt_finished(self.name, _outcome(error), time.perf_counter() - started)
            raise
        observer.attempt_finished(self.name, "ok", time.perf_counter() - started)
        return result

    async def _traced(
        self, trace_attempt: TraceAttempt, url: URL, budget: aiohttp.ClientTimeout
    ) -> JSONValue:
        with trace_attempt(self.name, url) as trace_headers:
            return await self._attempt(url, budget, trace_headers)

    async def _attempt(
        self, url: URL, budget: aiohttp.ClientTimeout, extra_headers: Mapping[str, str] = NO_HEADERS
    ) -> JSONValue:
        headers = {request_ids.HEADER: request_ids.current.get(), **extra_headers}
        # Redirects are never followed: an upstream must not be able to send this service (and
        # whatever it sends along) to another host. A 3xx is an error status like any other.
        get = self._session.get(url, headers=headers, timeout=budget, allow_redirects=False)
        async with get as response:
            if response.status >= 300:
                await _drain_small_body(response)  # lets the connection be reused
                raise _status_error(response)
            if not _is_json(response.content_type):
                raise UpstreamUnavailableError("upstream answered with a non-JSON content type")
            body = await self._read_capped(response)
        try:
            value = loads(body)
        except ValueError:
            raise UpstreamUnavailableError("upstream answered with invalid JSON") from None
        if self._cache is not None and response.status == 200:
            self._cache.store(str(url), value, response.headers.get("Cache-Control"))
        return value

    async def _read_capped(self, response: aiohttp.ClientResponse) -> bytes:
        """Read the body, refusing more than ``max_response_bytes`` however it is sent."""
        limit = self._policy.max_response_bytes
        if response.content_length is not None:
            if response.content_length > limit:
                raise UpstreamUnavailableError("upstream response too large")
            return await response.read()
        body = bytearray()
        async for chunk in response.content.iter_any():
            body += chunk
            if len(body) > limit:
                raise UpstreamUnavailableError("upstream response too large")
        return bytes(body)

    def _delay(self, error: Exception, attempt: int) -> float:
        """The server's ``Retry-After`` (capped), else exponential backoff with full jitter."""
        if isinstance(error, _RetryableStatusError) and error.retry_after is not None:
            return min(error.retry_after, MAX_RETRY_AFTER_SECONDS)
        ceiling = min(MAX_BACKOFF_SECONDS, self._policy.retry_backoff * 2.0 ** (attempt - 1))
        return self._jitter() * ceiling

    def _final(self, error: Exception) -> UpstreamError:
        """The error a caller sees once no attempt is left."""
        if isinstance(error, TimeoutError):
            return UpstreamTimeoutError(f"no answer within {self._policy.timeout:g}s")
        if isinstance(error, _RetryableStatusError):
            return UpstreamUnavailableError(f"upstream answered {error.status}")
        return UpstreamUnavailableError("could not connect to the upstream")


def canonical_query(params: Query) -> CanonicalQuery:
    """The parameters as (name, value) pairs sorted by name; a list value's items keep their
    order (``?tag=b&tag=a`` may mean something else than ``?tag=a&tag=b``)."""
    pairs: list[tuple[str, str]] = []
    for name in sorted(params):
        value = params[name]
        values = value if isinstance(value, Sequence) and not isinstance(value, str) else [value]
        pairs.extend((name, _query_text(item)) for item in values)
    return tuple(pairs)


def _query_text(value: QueryValue) -> str:
    if isinstance(value, bool):  # a bool is an int: say which spelling the upstream gets
        raise TypeError("pass query flags as strings ('true', '1'): upstreams disagree on them")
    return value if isinstance(value, str) else str(value)


def _outcome(error: Exception) -> Outcome:
    if isinstance(error, UpstreamNotFoundError):
        return "not_found"
    return "timeout" if isinstance(error, TimeoutError) else "error"


def _status_error(response: aiohttp.ClientResponse) -> Exception:
    """The exception for an error status: final, or worth another attempt."""
    if response.status == 404:
        return UpstreamNotFoundError("not found upstream")
    if response.status in RETRYABLE_STATUSES:
        retry_after = _parse_retry_after(response.headers.get("Retry-After"))
        return _RetryableStatusError(response.status, retry_after)
    return UpstreamUnavailableError(f"upstream answered {response.status}")


async def _drain_small_body(response: aiohttp.ClientResponse) -> None:
    """Read a small error body so its keep-alive connection returns to the pool."""
    if response.content_length is not None and response.content_length <= MAX_DRAINED_BYTES:
        with contextlib.suppress(aiohttp.ClientError):
            await response.read()


def _is_json(content_type: str) -> bool:
    return content_type == "application/json" or content_type.endswith("+json")


def _parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date)."""
    if not value:
        return None
    if value.strip().isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
