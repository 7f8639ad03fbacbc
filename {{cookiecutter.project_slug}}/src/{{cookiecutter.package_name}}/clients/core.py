"""What every upstream client shares: one pooled session, a time budget, retries, the circuit
breaker, a size cap, typed answers and typed errors. Per-upstream modules only name paths and
declare the models they read and write.

A call passes one layer per concern, top to bottom::

    get, get_json   builds the URL (query parameters sorted by name); answers from the
                    cache, if any and fresh; concurrent calls for one URL share one
                    (coalescing). Reads only: writes (post, put, patch, delete) and
                    ``request`` skip both, and a write makes the cache forget its URL
    _guarded        the circuit breaker (only when enabled)
{%- if cookiecutter.upstream_auth == "oauth2_client_credentials" %}
    _authorized     a valid access token (fetched when there is none, see ``auth.py``); a
                    401 replays the call once with a fresh one
{%- endif %}
    _with_retries   the time budget; backoff with full jitter or the server's Retry-After;
                    a write is re-sent only when that cannot duplicate it (see ``_Call``)
    _limited        waits for the upstream's rate limit, within the budget (only with one)
    _traced         a span per attempt, its context sent along (only with tracing)
    _attempt        one request, never following a redirect: headers, status, content
                    type, size cap; the raw body, validated into a model by the caller
                    (``decoding.py``); the query and body were encoded once (``encoding.py``).
                    What an observer (metrics) sees of each attempt, if there is one, is
                    told here too (a layer of its own would cost every call a coroutine)

Callers get pydantic models, plain JSON data or an ``Answer`` (status, headers, model), else an
``UpstreamError``; nothing of aiohttp's client API leaks out. A 401 or 403 is an
``UpstreamAuthError``. This module knows nothing of handlers or the application.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Coroutine, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass{% if cookiecutter.upstream_auth == "oauth2_client_credentials" %}, replace{% endif %}
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import Enum
from functools import partial
from types import MappingProxyType, TracebackType
from typing import Any, ClassVar, Generic, Literal, Protocol, Self, TypeVar
from uuid import uuid4

import aiohttp
from aiolimiter import AsyncLimiter
from yarl import URL

from ..common import request_ids
from ..common.errors import (
    UpstreamAuthError,
    UpstreamError,
    UpstreamNotFoundError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
)
from ..common.jsonlib import JSONValue
from .circuit_breaker import CircuitBreaker
from .coalescing import Coalescer
from .decoding import JSON_DATA, Decoder, Ignored, decoder_for
from .encoding import (
    IDEMPOTENCY_KEY_HEADER,
    CanonicalQuery,
    Query,
    canonical_query,
    checked_headers,
    encode_body,
)

# Statuses that say "try again later"; any other error status is final.
RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})
MAX_BACKOFF_SECONDS = 2.0
MAX_RETRY_AFTER_SECONDS = 5.0
MAX_DRAINED_BYTES = 64 * 1024
MAX_PAGES = 100  # a listing longer than this is refused rather than followed forever
TOO_LARGE = "upstream response too large"
NO_HEADERS: Mapping[str, str] = MappingProxyType({})
SESSION_HEADERS: Mapping[str, str] = MappingProxyType({aiohttp.hdrs.ACCEPT: "application/json"})
# Content-Type values that are JSON as they stand, no parsing needed (aiohttp's json_response
# and Express send the second).
JSON_CONTENT_TYPES = frozenset({"application/json", "application/json; charset=utf-8"})
# Idempotent by HTTP's definition: sending one twice leaves the upstream as sending it once.
SAFE_TO_RESEND = frozenset({"GET", "PUT", "DELETE"})
# Failures that prove a request never left: no connection could be opened.
NEVER_SENT = (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError)

Method = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
Outcome = Literal["ok", "not_found", "error", "timeout"]
T = TypeVar("T")


class Miss(Enum):
    """What a cache lookup gives when it has no fresh answer."""

    MISS = "miss"


MISS = Miss.MISS


class ResponseCache(Protocol):
    """Caching's seam: asked before a read, offered every 200 answer's raw body, told to forget
    a URL that was written to (see ``caching.py``). It keeps bytes, not models: a hit is
    validated once, from bytes, like an answer off the wire.

    No method may raise: a cache that fails is a cache that misses.
    """

    async def lookup(self, key: str) -> bytes | Miss: ...

    def store(self, key: str, body: bytes, cache_control: str | None) -> None:
        """Keep ``body`` as long as the settings and the upstream's Cache-Control allow."""

    async def forget(self, key: str) -> None:
        """Drop ``key``: the resource behind it was written to."""

    async def close(self) -> None: ...


{%- if cookiecutter.upstream_auth == "oauth2_client_credentials" %}


class TokenSource(Protocol):
    """Authentication's seam for tokens that expire (``auth.py``): the ``Authorization`` value
    of a valid token, a fetch when there is none, and word of a token the upstream refused."""

    def current(self) -> str | None:
        """A valid token's header value, at once; None when there is none."""

    async def fresh(self, session: aiohttp.ClientSession, time_budget: float) -> str:
        """A valid token's header value, fetched if need be within ``time_budget`` seconds.
        Raises an UpstreamError when the token endpoint fails."""

    def refused(self, authorization: str) -> None:
        """The upstream answered 401 to ``authorization``: drop it, if still the current one."""


{%- endif %}


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
    # Whether the upstream documents that it honours Idempotency-Key: only then is a POST or
    # PATCH that may have reached it sent again.
    idempotency_keys: bool = False


@dataclass(frozen=True, slots=True)
class Answer(Generic[T]):
    """An upstream's answer whole, for callers that need more than the body."""

    status: int
    headers: Mapping[str, str]
    body: T


class UpstreamObserver(Protocol):
    """Where metrics attach: told of every attempt sent, every retry and, with a circuit
    breaker, each time it opens or closes; with a cache, of every lookup{% if cookiecutter.upstream_auth == "oauth2_client_credentials" %}; of every token
    request{% endif %}."""

    def attempt_finished(self, upstream: str, outcome: Outcome, seconds: float) -> None: ...

    def retrying(self, upstream: str) -> None: ...

    def circuit_changed(self, upstream: str, is_open: bool) -> None: ...

    def cache_used(self, upstream: str, hit: bool) -> None: ...
{%- if cookiecutter.upstream_auth == "oauth2_client_credentials" %}

    def token_requested(self, upstream: str, outcome: Literal["ok", "error", "timeout"]) -> None:
        """A request to the token endpoint finished (``auth.py``)."""
{%- endif %}


# Tracing's seam: wraps each attempt to an upstream (its name, the method, the URL without its
# query); yields the headers that carry the trace context to it, and sees the attempt's
# exception, if any.
TraceAttempt = Callable[[str, str, URL], AbstractContextManager[Mapping[str, str]]]


@dataclass(frozen=True, slots=True)
class Instruments:
    """What watches an upstream's calls: an observer (metrics) and a tracer of attempts."""

    observer: UpstreamObserver | None = None
    trace_attempt: TraceAttempt | None = None


NO_INSTRUMENTS = Instruments()


@dataclass(slots=True)  # not frozen: a frozen dataclass costs 0.6 µs more to make, per call
class _Call:
    """One call as every attempt sends it: the same body, headers and idempotency key. Never
    changed once made.

    ``resendable``: whether an attempt that may have reached the upstream can be sent again.
    True for GET, PUT and DELETE, and for a POST or PATCH with an idempotency key to an
    upstream declared to honour them. Any call is re-sent when no connection could be opened.
    (aiohttp itself re-sends an idempotent request once when a pooled keep-alive connection
    turns out to be dead, before any of this sees it.)
    """

    method: str
    url: URL
    timeout: float
    retries: int
    resendable: bool = True
    body: bytes | None = None
    headers: Mapping[str, str] | None = None
{%- if cookiecutter.upstream_auth == "oauth2_client_credentials" %}
    # The one exception to "never changed": ``_authorized`` sets the access token's header
    # value before each send (a new field, not a new dict of headers: the common path is free).
    authorization: str | None = None
{%- endif %}


@dataclass(slots=True)
class _Reply:
    """What one attempt got: status, headers, the raw body and the ``rel="next"`` link."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    next_url: URL | None = None


_GONE = _Reply(404, NO_HEADERS, b"")  # a re-sent DELETE found nothing: the first one did it
Send = Callable[[_Call, aiohttp.ClientTimeout], Awaitable[_Reply]]


class _RetryableStatusError(Exception):
    """An answer worth another attempt; never leaves this module."""

    def __init__(self, status: int, retry_after: float | None, upstream_id: str | None) -> None:
        super().__init__(status)
        self.status = status
        self.retry_after = retry_after
        self.upstream_request_id = upstream_id


# Transient failures: another attempt may succeed.
_TRANSIENT = (_RetryableStatusError, aiohttp.ClientConnectionError, TimeoutError)


class UpstreamClient:
    """Calls one upstream API at ``base_url`` through one shared ``ClientSession``.

    The whole call, retries included, fits in ``policy.timeout`` (or the call's ``time_budget``).
    The retry loop is written out rather than delegated to a library: it is a dozen lines with
    one path, and the common case (first attempt succeeds) allocates nothing for it.
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
{%- if cookiecutter.upstream_auth == "oauth2_client_credentials" %}
        tokens: TokenSource | None = None,
{%- endif %}
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self._session = session
        self._base_url = URL(base_url)
        self._policy = policy
        self._breaker = breaker
        self._cache = cache
        self._observer = observer
        self._jitter = jitter
        self._first_budget = session.timeout
        # Counts writes started and ended: a read that saw it change while in flight may hold
        # a pre-write answer, so it is neither cached nor shared with reads that start later.
        self._writes = 0
        self._coalescer: Coalescer[Any] | None = Coalescer() if policy.coalesce else None
        # Without a tracer or a rate limit, attempts skip their layers: nothing is paid for them.
        attempt: Send = self._attempt
        if trace_attempt is not None:
            attempt = partial(self._traced, trace_attempt)
        if policy.rate_limit > 0:
            attempt = partial(self._limited, AsyncLimiter(policy.rate_limit, 1.0), attempt)
        self._send = attempt
        # A layer is only passed when in use: each one costs every await of every call.
        self._call: Callable[[_Call], Coroutine[Any, Any, _Reply]] = self._with_retries
{%- if cookiecutter.upstream_auth == "oauth2_client_credentials" %}
        if tokens is not None:
            self._call = partial(self._authorized, tokens)
{%- endif %}
        if breaker is not None:
            self._call = partial(self._guarded, breaker, self._call)

    @classmethod
    def open(
        cls,
        base_url: str,
        policy: UpstreamPolicy,
        instruments: Instruments = NO_INSTRUMENTS,
        *,
        credentials: Mapping[str, str] = NO_HEADERS,
{%- if cookiecutter.upstream_auth == "oauth2_client_credentials" %}
        tokens: TokenSource | None = None,
{%- endif %}
    ) -> Self:
        """Open the shared session; call from a running event loop, close with ``close()``.

        ``credentials``: headers every request carries (an API key, a static token), set once
        on the session{% if cookiecutter.upstream_auth == "oauth2_client_credentials" %}; ``tokens``: where each call gets an access token that expires{% endif %}.
        """
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
                # The loop's clock: the cool-down follows virtual time in tests (looptime).
                clock=asyncio.get_running_loop().time,
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
            headers={**SESSION_HEADERS, **credentials},
        )
        return cls(
            session,
            base_url,
            policy,
            breaker=breaker,
            cache=None if policy.cache is None else policy.cache(cls.name),
            observer=observer,
            trace_attempt=instruments.trace_attempt,
{%- if cookiecutter.upstream_auth == "oauth2_client_credentials" %}
            tokens=tokens,
{%- endif %}
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

    # Reads: cached and coalesced.

    def get(
        self,
        model: type[T],
        *segments: str,
        params: Query | None = None,
        time_budget: float | None = None,
        retries: int | None = None,
    ) -> Coroutine[Any, Any, T]:
        """``GET {base_url}/{segments...}?{params}``, validated as ``model`` (a pydantic model,
        or any type pydantic validates, such as ``list[Item]``): ``await client.get(...)``.
        Segments and parameters are percent-encoded; a ``/`` in a segment would split it, so
        callers pass validated ids. Parameters are sent sorted by name, so the same ones in
        another order are the same call for coalescing and the cache. ``time_budget``
        (seconds, retries included) and ``retries`` replace the policy's. (A plain function
        returning the read's coroutine: one frame less on the hottest path.)

        Raises UpstreamNotFoundError, UpstreamUnavailableError, UpstreamTimeoutError,
        UpstreamSchemaError (the answer is not a ``model``), or UpstreamCircuitOpenError while
        the circuit breaker (if enabled) is open.
        """
        return self._read(decoder_for(model), segments, params, time_budget, retries)

    async def get_json(self, *segments: str, params: Query | None = None) -> JSONValue:
        """Like ``get``, as untyped JSON data, for callers that want no model."""
        return await self._read(JSON_DATA, segments, params, None, None)

    async def _read(
        self,
        decoder: Decoder[T],
        segments: tuple[str, ...],
        params: Query | None,
        time_budget: float | None,
        retries: int | None,
    ) -> T:
        url, query = self._url(segments, params)
        key = (decoder, self._writes, segments, query)
        if self._cache is not None:
            cached = await self._cache.lookup(str(url))
            if self._observer is not None:
                self._observer.cache_used(self.name, hit=cached is not MISS)
            if cached is not MISS:
                return decoder.decode(cached)
        call = self._new_call("GET", url, time_budget, retries)
        if self._cache is None:
            # Nothing to store: the call's reply is shared as it is, each caller decodes it
            # (one coroutine less on every read: ``_fetch`` is the cache's layer).
            if self._coalescer is None:
                reply = await self._call(call)
            else:
                reply = await self._coalescer.run(key, self._call, call)
            return decoder.decode(reply.body)
        if self._coalescer is None:
            return await self._fetch(decoder, call)
        shared: T = await self._coalescer.run(key, self._fetch, decoder, call)
        return shared

    def _url(self, segments: tuple[str, ...], params: Query | None) -> tuple[URL, CanonicalQuery]:
        """The URL of a call, and its query in the canonical order (empty without one)."""
        url = self._base_url.joinpath(*segments)
        if not params:
            return url, ()
        query = canonical_query(params)
        return url.with_query(query), query

    def _new_call(
        self,
        method: str,
        url: URL,
        time_budget: float | None,
        retries: int | None,
        resendable: bool = True,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> _Call:
        """A call with the policy's time budget and retries, unless the caller gave its own."""
        policy = self._policy
        return _Call(
            method,
            url,
            policy.timeout if time_budget is None else time_budget,
            policy.retries if retries is None else retries,
            resendable,
            body,
            headers,
        )

    async def _fetch(self, decoder: Decoder[T], call: _Call) -> T:
        writes = self._writes
        reply = await self._call(call)
        value = decoder.decode(reply.body)
        if self._cache is not None and reply.status == 200 and writes == self._writes:
            self._cache.store(str(call.url), reply.body, reply.headers.get("Cache-Control"))
        return value

    async def pages(
        self,
        page: type[list[T]],
        *segments: str,
        params: Query | None = None,
        max_pages: int = MAX_PAGES,
        time_budget: float | None = None,
    ) -> AsyncGenerator[list[T]]:
        """Each page of a listing, validated as ``page`` (``list[Item]``), following the
        upstream's ``Link: <...>; rel="next"`` (RFC 8288; relative targets resolved) until there
        is none. The whole listing fits in ``time_budget`` (the policy's, by default); a listing of
        more than ``max_pages`` pages, or a next page on another origin than ``base_url`` (an
        upstream must not send this service elsewhere), is an UpstreamUnavailableError. Pages
        are neither cached nor coalesced.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (self._policy.timeout if time_budget is None else time_budget)
        decoder = decoder_for(page)
        url, _ = self._url(segments, params)
        for _ in range(max_pages):
            left = deadline - loop.time()
            if left <= 0:
                raise UpstreamTimeoutError("the listing did not finish within its time budget")
            reply = await self._call(self._new_call("GET", url, left, None))
            yield decoder.decode(reply.body)
            if reply.next_url is None:
                return
            if _origin(reply.next_url) != _origin(self._base_url):
                raise UpstreamUnavailableError("upstream's next page is on another origin")
            url = reply.next_url
        raise UpstreamUnavailableError(f"upstream's listing has more than {max_pages} pages")

    # Writes, and any call whole: never cached, never coalesced.

    async def post(
        self,
        model: type[T],
        *segments: str,
        json: object = None,
        form: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
        **options: Any,
    ) -> T:
        """``POST`` a JSON (or form) body; the answer validated as ``model``. Options as
        ``request``'s."""
        answer = await self.request(
            "POST", *segments, model=model, json=json, form=form,
            idempotency_key=idempotency_key, **options,
        )  # fmt: skip
        return answer.body

    async def put(self, model: type[T], *segments: str, json: object, **options: Any) -> T:
        """``PUT`` a whole resource; the answer validated as ``model``."""
        return (await self.request("PUT", *segments, model=model, json=json, **options)).body

    async def patch(
        self,
        model: type[T],
        *segments: str,
        json: object,
        idempotency_key: str | None = None,
        **options: Any,
    ) -> T:
        """``PATCH`` part of a resource; the answer validated as ``model``."""
        answer = await self.request(
            "PATCH", *segments, model=model, json=json, idempotency_key=idempotency_key, **options
        )
        return answer.body

    async def delete(self, *segments: str, **options: Any) -> None:
        """``DELETE`` a resource. A re-sent attempt answered 404 counts as done (the first one
        did it, its answer lost); a 404 to the first attempt is an UpstreamNotFoundError."""
        await self.request("DELETE", *segments, model=Ignored, **options)

    async def request(
        self,
        method: Method,
        *segments: str,
        model: type[T],
        params: Query | None = None,
        json: object = None,
        form: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
        headers: Mapping[str, str] | None = None,
        time_budget: float | None = None,
        retries: int | None = None,
    ) -> Answer[T]:
        """Any call, its answer whole: status, headers and the body validated as ``model``.

        ``json`` (a pydantic model is sent without its unset fields) or ``form`` is the body,
        serialized once. A POST or PATCH carries ``idempotency_key``, or one minted here, on
        every attempt. ``headers`` are added to the request but may not replace the core's own
        (``OWNED_HEADERS``); ``time_budget`` (seconds, retries included) and ``retries``
        replace the policy's.
        """
        url, _ = self._url(segments, params)
        call_headers = dict(checked_headers(headers))
        body = encode_body(json, form, call_headers)
        resendable = method in SAFE_TO_RESEND
        if method in {"POST", "PATCH"}:
            call_headers[IDEMPOTENCY_KEY_HEADER] = idempotency_key or uuid4().hex
            resendable = self._policy.idempotency_keys
        call = self._new_call(method, url, time_budget, retries, resendable, body, call_headers)
        decoder = decoder_for(model)
        if method == "GET":
            reply = await self._call(call)
        else:
            reply = await self._written(call)
        return Answer(reply.status, reply.headers, decoder.decode(reply.body))

    async def _written(self, call: _Call) -> _Reply:
        """Send a write; reads in flight meanwhile are not cached, and the cache forgets the
        written URL once it is done (whatever the outcome: a failed write may have landed)."""
        self._writes += 1
        try:
            return await self._call(call)
        finally:
            self._writes += 1
            if self._cache is not None:
                await self._cache.forget(str(call.url))

    # The layers every call passes.

    async def _guarded(
        self,
        breaker: CircuitBreaker,
        inner: Callable[[_Call], Coroutine[Any, Any, _Reply]],
        call: _Call,
    ) -> _Reply:
        """Fail fast while the circuit is open. Every UpstreamError but a 404 counts as a
        failure, refused credentials included: while they are refused, every call fails."""
        breaker.before_call()
        try:
            result = await inner(call)
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

{%- if cookiecutter.upstream_auth == "oauth2_client_credentials" %}

    async def _authorized(self, tokens: TokenSource, call: _Call) -> _Reply:
        """Send the call with a valid access token; when the upstream answers 401, replay it
        once with a fresh token. The replay is the one re-send of a write that needs no
        idempotency declaration: a 401 means the upstream did not act on it. It carries the
        same idempotency key. Fetching a token counts against the call's time budget."""
        deadline = asyncio.get_running_loop().time() + call.timeout
        authorization = tokens.current()
        if authorization is None:
            authorization = await tokens.fresh(self._session, call.timeout)
            call = _within(call, deadline)
        call.authorization = authorization
        try:
            return await self._with_retries(call)
        except UpstreamAuthError as refusal:
            if refusal.upstream_status != 401:
                raise
        tokens.refused(authorization)
        call = _within(call, deadline)
        authorization = await tokens.fresh(self._session, call.timeout)
        call = _within(call, deadline)
        call.authorization = authorization
        try:
            return await self._with_retries(call)
        except UpstreamAuthError as refusal:
            if refusal.upstream_status == 401:
                tokens.refused(authorization)
            raise
{%- endif %}

    async def _with_retries(self, call: _Call) -> _Reply:
        """Attempt; while the failure is transient, the call may be sent again, and attempts
        and time are left: wait, retry."""
        policy, loop = self._policy, asyncio.get_running_loop()
        deadline = loop.time() + call.timeout
        budget = self._first_budget  # the first attempt may use all of it
        if call.timeout != policy.timeout:
            budget = aiohttp.ClientTimeout(total=call.timeout, connect=policy.connect_timeout)
        attempt = 1
        while True:
            try:
                return await self._send(call, budget)
            except _TRANSIENT as error:
                delay = self._delay(error, attempt)
                remaining = deadline - loop.time() - delay
                if (
                    attempt > call.retries
                    or remaining <= 0
                    or not (call.resendable or isinstance(error, NEVER_SENT))
                ):
                    raise self._final(error, call) from None
            except UpstreamNotFoundError:
                if attempt > 1 and call.method == "DELETE":
                    return _GONE
                raise
            if self._observer is not None:
                self._observer.retrying(self.name)
            await asyncio.sleep(delay)
            budget = aiohttp.ClientTimeout(total=remaining, connect=policy.connect_timeout)
            attempt += 1

    async def _limited(
        self, limiter: AsyncLimiter, attempt: Send, call: _Call, budget: aiohttp.ClientTimeout
    ) -> _Reply:
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            async with asyncio.timeout(budget.total):
                await limiter.acquire()
        except TimeoutError:
            raise UpstreamTimeoutError("no turn within the upstream's rate limit in time") from None
        left = (budget.total or 0.0) - (loop.time() - started)
        return await attempt(call, aiohttp.ClientTimeout(total=left, connect=budget.connect))

    async def _traced(
        self, trace_attempt: TraceAttempt, call: _Call, budget: aiohttp.ClientTimeout
    ) -> _Reply:
        with trace_attempt(self.name, call.method, call.url.with_query(None)) as trace_headers:
            return await self._attempt(call, budget, trace_headers)

    async def _attempt(
        self,
        call: _Call,
        budget: aiohttp.ClientTimeout,
        extra_headers: Mapping[str, str] = NO_HEADERS,
    ) -> _Reply:
        observer = self._observer
        started = time.perf_counter()
        try:
            headers: dict[str, str] = {request_ids.HEADER_NAME: request_ids.current.get()}
            if call.headers:
                headers.update(call.headers)
{%- if cookiecutter.upstream_auth == "oauth2_client_credentials" %}
            if call.authorization is not None:
                headers["Authorization"] = call.authorization
{%- endif %}
            if extra_headers:
                headers.update(extra_headers)
            # Redirects are never followed: an upstream must not be able to send this service
            # (and whatever it sends along) to another host. A 3xx is an error status like any
            # other.
            sent = self._session.request(
                call.method,
                call.url,
                data=call.body,
                headers=headers,
                timeout=budget,
                allow_redirects=False,
            )
            async with sent as response:
                if response.status >= 300:
                    await _drain_small_body(response)  # lets the connection be reused
                    raise _status_error(response)
                body = b""
                length = response.content_length
                if response.status != 204 and length != 0:
                    if not _is_json(response):
                        raise UpstreamUnavailableError(
                            "upstream answered with a non-JSON content type"
                        )
                    limit = self._policy.max_response_bytes
                    body = await read_capped(response, length, limit, TOO_LARGE)
                next_url = None
                if "Link" in response.headers:
                    link = response.links.get("next")
                    next_url = None if link is None else URL(str(link["url"]))
        except Exception as error:  # a cancellation is no outcome of the upstream's
            if observer is not None:
                outcome = _outcome(error)
                observer.attempt_finished(self.name, outcome, time.perf_counter() - started)
            raise
        if observer is not None:
            observer.attempt_finished(self.name, "ok", time.perf_counter() - started)
        return _Reply(response.status, response.headers, body, next_url)

    def _delay(self, error: Exception, attempt: int) -> float:
        """The server's ``Retry-After`` (capped), else exponential backoff with full jitter."""
        if isinstance(error, _RetryableStatusError) and error.retry_after is not None:
            return min(error.retry_after, MAX_RETRY_AFTER_SECONDS)
        ceiling = min(MAX_BACKOFF_SECONDS, self._policy.retry_backoff * 2.0 ** (attempt - 1))
        return self._jitter() * ceiling

    def _final(self, error: Exception, call: _Call) -> UpstreamError:
        """The error a caller sees once no attempt is left."""
        if isinstance(error, TimeoutError):
            return UpstreamTimeoutError(f"no answer within {call.timeout:g}s")
        if isinstance(error, _RetryableStatusError):
            final = UpstreamUnavailableError(f"upstream answered {error.status}")
            final.upstream_request_id = error.upstream_request_id
            return final
        if isinstance(error, NEVER_SENT):
            return UpstreamUnavailableError("could not connect to the upstream")
        return UpstreamUnavailableError("the connection to the upstream failed")


{%- if cookiecutter.upstream_auth == "oauth2_client_credentials" %}


def _within(call: _Call, deadline: float) -> _Call:
    """``call`` in what is left of its time budget; none left is an UpstreamTimeoutError."""
    left = deadline - asyncio.get_running_loop().time()
    if left <= 0:
        raise UpstreamTimeoutError(f"no answer within {call.timeout:g}s")
    return replace(call, timeout=left)
{%- endif %}


async def read_capped(
    response: aiohttp.ClientResponse, length: int | None, limit: int, too_large: str
) -> bytes:
    """Read the body, refusing more than ``limit`` bytes however it is sent: an
    UpstreamUnavailableError saying ``too_large``. (The token endpoint's answers too.)
    ``length``: the response's ``content_length``, which the caller reads once (aiohttp parses
    the header again at each access)."""
    if length is not None:
        if length > limit:
            raise UpstreamUnavailableError(too_large)
        return await response.read()
    body = bytearray()
    async for chunk in response.content.iter_any():
        body += chunk
        if len(body) > limit:
            raise UpstreamUnavailableError(too_large)
    return bytes(body)


def _origin(url: URL) -> tuple[str, str | None, int | None]:
    """Scheme, host and port, the default port filled in: ``https://a`` is ``https://a:443``."""
    return url.scheme, url.host, url.port


def _outcome(error: Exception) -> Outcome:
    if isinstance(error, UpstreamNotFoundError):
        return "not_found"
    return "timeout" if isinstance(error, TimeoutError) else "error"


def _status_error(response: aiohttp.ClientResponse) -> Exception:
    """The exception for an error status: final, or worth another attempt. It carries the
    upstream's own request id, when it sent a safe one, for the log line."""
    upstream_id = request_ids.accepted(response.headers.get(request_ids.HEADER_NAME))
    if response.status in RETRYABLE_STATUSES:
        retry_after = _parse_retry_after(response.headers.get("Retry-After"))
        return _RetryableStatusError(response.status, retry_after, upstream_id)
    error: UpstreamError
    if response.status == 404:
        error = UpstreamNotFoundError("not found upstream")
    elif response.status in {401, 403}:
        error = UpstreamAuthError(
            f"the upstream refused the service's credentials ({response.status})",
            response.status,
        )
    else:
        error = UpstreamUnavailableError(f"upstream answered {response.status}")
    error.upstream_request_id = upstream_id
    return error


async def _drain_small_body(response: aiohttp.ClientResponse) -> None:
    """Read a small error body so its keep-alive connection returns to the pool."""
    if response.content_length is not None and response.content_length <= MAX_DRAINED_BYTES:
        with contextlib.suppress(aiohttp.ClientError):
            await response.read()


def _is_json(response: aiohttp.ClientResponse) -> bool:
    """Whether the answer's media type is JSON. The usual header values are recognised as they
    are: aiohttp's ``content_type`` parses the header and keeps what it found on the response
    (attributes beyond what its instances usually hold, which cost a dict per response)."""
    if response.headers.get(aiohttp.hdrs.CONTENT_TYPE) in JSON_CONTENT_TYPES:
        return True
    content_type = response.content_type
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
