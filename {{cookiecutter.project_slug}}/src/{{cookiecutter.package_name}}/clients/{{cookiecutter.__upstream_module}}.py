"""The client for the upstream API: one shared session, explicit timeouts, typed errors.

Callers get plain JSON data or one of the exceptions in ``errors``; nothing of aiohttp's
client API leaks out of this module.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Self

import aiohttp
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    stop_before_delay,
    wait_random_exponential,
)
from yarl import URL

from .. import request_ids
from ..circuit_breaker import CircuitBreaker
from ..errors import (
    UpstreamNotFoundError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
)
from ..jsonlib import JSONValue, loads
from ..settings import Settings

# Statuses that say "try again later"; any other error status is final.
RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})
MAX_BACKOFF_SECONDS = 2.0
MAX_RETRY_AFTER_SECONDS = 5.0
MAX_DRAINED_BYTES = 64 * 1024


class _RetryableStatusError(Exception):
    """A response worth another attempt; never leaves this module."""

    def __init__(self, status: int, retry_after: float | None) -> None:
        super().__init__(status)
        self.status = status
        self.retry_after = retry_after


# Named tuples of exceptions read the same on every Python (3.14 drops the parentheses).
_UPSTREAM_FAILURES = (UpstreamUnavailableError, UpstreamTimeoutError)
_UNPARSABLE_DATE = (TypeError, ValueError)
# Connection failures and per-attempt timeouts are transient too.
_RETRYABLE_ERRORS = (_RetryableStatusError, aiohttp.ClientConnectionError, TimeoutError)


class {{ cookiecutter.__upstream_class }}:
    """Calls the upstream API at ``base_url`` through one shared ``ClientSession``.

    Retries (exponential backoff with full jitter, ``Retry-After`` honoured) cover idempotent
    GETs only, and the whole call, retries included, fits in ``timeout`` seconds. They use
    tenacity rather than a hand-written loop because its stop and wait rules compose (attempt
    cap or time budget; jittered backoff or the server's delay) and are tested upstream.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        *,
        timeout: float,
        retries: int,
        retry_backoff: float,
        max_response_bytes: int,
        circuit_breaker: CircuitBreaker | None = None,
    ) -> None:
        self._session = session
        self._items_url = URL(base_url) / "items"
        self._timeout = timeout
        self._retries = retries
        self._jitter = wait_random_exponential(multiplier=retry_backoff, max=MAX_BACKOFF_SECONDS)
        self._max_response_bytes = max_response_bytes
        self._breaker = circuit_breaker

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        """Open the shared session; call from a running event loop, close with ``close()``."""
        connector = aiohttp.TCPConnector(
            limit=settings.upstream_pool_size,
            limit_per_host=settings.upstream_pool_size,
            ttl_dns_cache=300,
        )
        breaker = None
        if settings.circuit_breaker_threshold > 0:
            breaker = CircuitBreaker(
                settings.circuit_breaker_threshold, settings.circuit_breaker_cooldown
            )
        session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(
                total=settings.upstream_timeout, connect=settings.upstream_connect_timeout
            ),
        )
        return cls(
            session,
            settings.upstream_base_url,
            timeout=settings.upstream_timeout,
            retries=settings.upstream_retries,
            retry_backoff=settings.upstream_retry_backoff,
            max_response_bytes=settings.upstream_max_response_bytes,
            circuit_breaker=breaker,
        )

    @property
    def closed(self) -> bool:
        """Whether ``close()`` has run: no request can be made after it."""
        return self._session.closed

    async def close(self) -> None:
        """Close the session and every pooled connection."""
        await self._session.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def get_item(self, item_id: str) -> JSONValue:
        """Fetch ``GET {base_url}/items/{item_id}`` and return its JSON body.

        Raises UpstreamNotFoundError, UpstreamUnavailableError, UpstreamTimeoutError, or
        UpstreamCircuitOpenError while the circuit breaker (if enabled) is open.
        """
        url = self._items_url / item_id
        breaker = self._breaker
        if breaker is None:
            return await self._get_json(url)
        breaker.before_call()
        try:
            item = await self._get_json(url)
        except _UPSTREAM_FAILURES:
            breaker.record_failure()
            raise
        except UpstreamNotFoundError:
            breaker.record_success()  # the upstream answered properly
            raise
        except BaseException:
            breaker.release_probe()  # cancelled: no verdict on the upstream
            raise
        breaker.record_success()
        return item

    async def _get_json(self, url: URL) -> JSONValue:
        started = time.monotonic()
        try:
            try:
                # The common case pays for no retry machinery: the session's total timeout
                # already bounds this first attempt by the whole budget.
                return await self._attempt(url)
            except _RETRYABLE_ERRORS as error:
                if self._retries == 0:
                    raise
                first_failure: BaseException | None = error
            remaining = self._timeout - (time.monotonic() - started)
            async with asyncio.timeout(remaining):
                async for attempt in AsyncRetrying(
                    # Give up early rather than sleep past the time budget.
                    stop=stop_after_attempt(self._retries + 1) | stop_before_delay(remaining),
                    wait=self._wait,
                    retry=retry_if_exception_type(_RETRYABLE_ERRORS),
                    reraise=True,
                ):
                    with attempt:
                        if first_failure is not None:
                            # Replay the first attempt's outcome so tenacity counts it and
                            # waits (backoff or Retry-After) before the next one.
                            replayed, first_failure = first_failure, None
                            raise replayed
                        return await self._attempt(url)
        except TimeoutError:
            raise UpstreamTimeoutError(f"no answer within {self._timeout:g}s") from None
        except _RetryableStatusError as exc:
            raise UpstreamUnavailableError(f"upstream answered {exc.status}") from None
        except aiohttp.ClientConnectionError:
            raise UpstreamUnavailableError("could not connect to the upstream") from None
        raise AssertionError("unreachable: AsyncRetrying either returns or raises")

    async def _attempt(self, url: URL) -> JSONValue:
        headers = {"Accept": "application/json", request_ids.HEADER: request_ids.current.get()}
        async with self._session.get(url, headers=headers) as response:
            if response.status >= 300:
                await _drain_small_body(response)  # lets the connection be reused
                raise _status_error(response)
            if not _is_json(response.content_type):
                raise UpstreamUnavailableError("upstream answered with a non-JSON content type")
            body = await self._read_capped(response)
        try:
            return loads(body)
        except ValueError:
            raise UpstreamUnavailableError("upstream answered with invalid JSON") from None

    async def _read_capped(self, response: aiohttp.ClientResponse) -> bytes:
        """Read the body, refusing more than ``max_response_bytes`` however it is sent."""
        limit = self._max_response_bytes
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

    def _wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, _RetryableStatusError) and error.retry_after is not None:
            return min(error.retry_after, MAX_RETRY_AFTER_SECONDS)
        return self._jitter(state)


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
    except _UNPARSABLE_DATE:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
