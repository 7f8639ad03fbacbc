{%- if cookiecutter.upstream_auth == "api_key" -%}
"""The upstream's credentials: an API key in a header of every request.

The key is set once on the client's session (``UpstreamClient.open(credentials=...)``), so a
request pays nothing for it. A 401 or 403 from the upstream is an ``UpstreamAuthError`` at
once: no retry can make a refused key valid.
"""

from __future__ import annotations

from collections.abc import Mapping

from multidict import istr
from pydantic import SecretStr


def api_key_headers(header: str, key: SecretStr) -> Mapping[str, str]:
    """The header that carries ``key`` (the settings checked its name). Its name is an
    ``istr``, aiohttp's case-insensitive header name: the session copies its headers into
    every request, and a plain ``str`` name is case-folded again on each copy."""
    return {istr(header): key.get_secret_value()}
{%- elif cookiecutter.upstream_auth == "bearer" -%}
"""The upstream's credentials: a static bearer token (``Authorization: Bearer <token>``).

The header is set once on the client's session (``UpstreamClient.open(credentials=...)``), so
a request pays nothing for it. A 401 or 403 from the upstream is an ``UpstreamAuthError`` at
once: no retry can make a refused token valid.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import SecretStr


def bearer_headers(token: SecretStr) -> Mapping[str, str]:
    """The ``Authorization`` header that carries ``token``."""
    return {"Authorization": f"Bearer {token.get_secret_value()}"}
{%- else -%}
"""The upstream's credentials: OAuth2 client credentials (RFC 6749 section 4.4).

The service's access token is fetched from the token endpoint on first use and kept until
shortly before it expires (``expires_in``, less a margin). The client core asks
``ClientCredentials`` for it on every call (see ``TokenSource`` in ``core.py``):

- One fetch at a time: every call that finds no valid token waits for the same fetch (single
  flight); a call that finds a valid one never waits.
- A token the upstream answered 401 to is dropped, unless a newer one has replaced it already;
  the core then replays the call once with a fresh token.
- While the token endpoint fails, it is asked again at most once per ``RETRY_INTERVAL`` seconds
  in each process: calls in between fail at once with the last error.
- The token request follows no redirect, fits in the calling call's time budget and reads a
  capped answer. Errors say what failed, never what was sent or answered.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote_plus, urlencode

import aiohttp
from pydantic import SecretStr
from yarl import URL

from ..common.errors import (
    UpstreamAuthError,
    UpstreamError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
)
from .core import NO_INSTRUMENTS, Instruments, read_capped

DEFAULT_LIFETIME = 300.0  # seconds a token is kept when the endpoint sends no expires_in
EXPIRY_MARGIN = 30.0  # a token is renewed this long before it expires (at most half its life)
RETRY_INTERVAL = 1.0  # seconds between two requests to a failing token endpoint, at least
MAX_TOKEN_RESPONSE_BYTES = 64 * 1024
TOO_LARGE = "the token endpoint's answer is too large"
# RFC 6749 section 5.2's error codes are short names: anything else is not repeated.
_ERROR_CODE = re.compile(r"[a-z_]{1,64}")
# What may follow "Bearer " in a header (RFC 6750's b64token).
_ACCESS_TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")

TokenAuthMethod = Literal["client_secret_basic", "client_secret_post"]


@dataclass(frozen=True, slots=True)
class _Token:
    authorization: str  # "Bearer <access token>"
    renew_at: float  # on the clock of ClientCredentials


@dataclass(frozen=True, slots=True)
class _Failure:
    error: UpstreamError
    retry_at: float


class ClientCredentials:
    """The access token of one client of one token endpoint (the core's ``TokenSource``)."""

    def __init__(
        self,
        token_url: str,
        client_id: SecretStr,
        client_secret: SecretStr,
        *,
        scope: str = "",
        auth_method: str = "client_secret_basic",
        upstream: str = "upstream",
        instruments: Instruments = NO_INSTRUMENTS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._token_url = URL(token_url)
        self._form = {"grant_type": "client_credentials"}
        if scope:
            self._form["scope"] = scope
        self._headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if auth_method == "client_secret_post":
            self._form["client_id"] = client_id.get_secret_value()
            self._form["client_secret"] = client_secret.get_secret_value()
        else:  # client_secret_basic: each part form-urlencoded first (RFC 6749 section 2.3.1)
            pair = f"{_form_encoded(client_id)}:{_form_encoded(client_secret)}"
            self._headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        self._upstream = upstream
        self._instruments = instruments
        self._clock = clock
        self._token: _Token | None = None
        self._fetching: asyncio.Future[_Token] | None = None
        self._failure: _Failure | None = None

    def current(self) -> str | None:
        token = self._token
        if token is not None and self._clock() < token.renew_at:
            return token.authorization
        return None

    async def fresh(self, session: aiohttp.ClientSession, time_budget: float) -> str:
        authorization = self.current()
        if authorization is not None:
            return authorization
        failure = self._failure
        if failure is not None and self._clock() < failure.retry_at:
            raise _again(failure.error)
        fetching = self._fetching
        if fetching is None:
            fetching = asyncio.ensure_future(self._fetch(session, time_budget))
            fetching.add_done_callback(self._fetched)
            self._fetching = fetching
        try:
            async with asyncio.timeout(time_budget):
                token = await asyncio.shield(fetching)
        except TimeoutError:
            raise UpstreamTimeoutError("no access token within the call's time budget") from None
        except UpstreamError as error:
            raise _again(error) from None
        return token.authorization

    def refused(self, authorization: str) -> None:
        token = self._token
        if token is not None and token.authorization == authorization:
            self._token = None

    def _fetched(self, fetching: asyncio.Future[_Token]) -> None:
        """Keep what a fetch got: the token, or the failure that holds off the next fetch."""
        self._fetching = None
        if fetching.cancelled():
            return
        error = fetching.exception()
        if error is None:
            self._token, self._failure = fetching.result(), None
        elif isinstance(error, UpstreamError):
            self._failure = _Failure(error, self._clock() + RETRY_INTERVAL)

    async def _fetch(self, session: aiohttp.ClientSession, time_budget: float) -> _Token:
        """One token request, counted and traced like an attempt to the upstream."""
        observer, trace_attempt = self._instruments.observer, self._instruments.trace_attempt
        outcome: Literal["ok", "error", "timeout"] = "error"
        try:
            if trace_attempt is None:
                token = await self._request(session, time_budget, {})
            else:
                with trace_attempt(self._upstream, "POST", self._token_url) as trace_headers:
                    token = await self._request(session, time_budget, trace_headers)
            outcome = "ok"
            return token
        except UpstreamTimeoutError:
            outcome = "timeout"
            raise
        finally:
            if observer is not None:
                observer.token_requested(self._upstream, outcome)

    async def _request(
        self, session: aiohttp.ClientSession, time_budget: float, extra: Mapping[str, str]
    ) -> _Token:
        headers = {**self._headers, **extra}
        try:
            async with session.post(
                self._token_url,
                data=urlencode(self._form),
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=time_budget),
                allow_redirects=False,
            ) as response:
                length = response.content_length
                body = await read_capped(response, length, MAX_TOKEN_RESPONSE_BYTES, TOO_LARGE)
                status = response.status
        except TimeoutError:
            raise UpstreamTimeoutError("the token endpoint did not answer in time") from None
        except aiohttp.ClientError:
            raise UpstreamUnavailableError("no answer from the token endpoint") from None
        return self._token_from(status, body)

    def _token_from(self, status: int, body: bytes) -> _Token:
        try:
            answer = json.loads(body)
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise UpstreamUnavailableError(f"the token endpoint answered {status}, not in JSON")
        if status != 200:
            code = answer.get("error")
            if status in {400, 401} and isinstance(code, str):
                shown = code if _ERROR_CODE.fullmatch(code) else "an error"
                raise UpstreamAuthError(f"the token endpoint refused the credentials: {shown}")
            raise UpstreamUnavailableError(f"the token endpoint answered {status}")
        access_token = answer.get("access_token")
        if not isinstance(access_token, str) or not _ACCESS_TOKEN.fullmatch(access_token):
            raise UpstreamUnavailableError("the token endpoint's answer has no usable token")
        token_type = answer.get("token_type")
        if not isinstance(token_type, str) or token_type.lower() != "bearer":
            raise UpstreamUnavailableError("the token endpoint's token is not a Bearer token")
        lifetime = answer.get("expires_in", DEFAULT_LIFETIME)
        if isinstance(lifetime, bool) or not isinstance(lifetime, int | float) or lifetime <= 0:
            raise UpstreamUnavailableError("the token endpoint's expires_in is not above 0")
        renew_at = self._clock() + lifetime - min(EXPIRY_MARGIN, lifetime / 2)
        return _Token(f"Bearer {access_token}", renew_at)


def _form_encoded(value: SecretStr) -> str:
    return quote_plus(value.get_secret_value(), safe="")


def _again(error: UpstreamError) -> UpstreamError:
    """A new exception like ``error``: one exception object raised in many tasks would collect
    every task's traceback."""
    return type(error)(*error.args)

{%- endif %}
