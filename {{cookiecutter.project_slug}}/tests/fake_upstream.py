"""A real HTTP server standing in for the upstream API: the Example API, scripted per test.

It follows json-server 0.17's conventions (``npx json-server@0.17 db.json`` behaves the same):
``GET /items?<field>=<value>&_page=N&_limit=M`` (exact-match filters; a ``Link`` header with
``rel="next"`` while there is more), ``GET /items/{id}``, ``POST /items`` (201, the id chosen
here), ``PUT``/``PATCH /items/{id}`` (200), ``DELETE /items/{id}`` (200 ``{}``); 404 ``{}`` for
an unknown id. Unlike json-server it honours ``Idempotency-Key`` on writes (a repeated key gets
the first answer, nothing written twice) unless ``honours_keys`` is off.

It can also want credentials, as real APIs do: headers every request must carry
(``credentials``: an API key, a static bearer token), or an access token it issued itself at
``POST /oauth/token`` (``requires_token``; the OAuth2 client credentials grant, RFC 6749
section 4.4, with ``client_secret_basic`` or ``client_secret_post``). A request without them
gets 401.

Faking the boundary with a server (not by mocking aiohttp) tests the client exactly as it
runs in production: real sockets, real timeouts, real parsing. Queued ``Reply``s (then
``default``, when set) answer before the API does, to script faults.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus

from aiohttp import web
from yarl import URL


@dataclass(frozen=True)
class Reply:
    """One scripted answer. ``hang`` never answers until the server shuts down; ``reset`` reads
    the request whole, then drops the connection without answering."""

    status: int = 200
    json: object = None
    body: bytes | None = None
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False
    chunked: bool = False  # stream the body without a Content-Length
    reset: bool = False
    delay: float = 0.0  # seconds before answering


Item = dict[str, Any]


class FakeUpstream:
    """The Example API over ``items``; what every request carried is recorded."""

    def __init__(self) -> None:
        self.base_url = ""  # set once the server listens
        self.items: dict[str, Item] = {}  # by the id's text: json-server matches ids as text
        self.honours_keys = True
        self.latency = 0.0  # seconds every request waits before it is answered
        self.default: Reply | None = None  # answers every request not queued, when set
        self.methods: list[str] = []
        self.requests: list[str] = []  # the item id of each request ("" for the collection)
        self.queries: list[str] = []  # each request's query string, as sent on the wire
        self.bodies: list[bytes] = []
        self.idempotency_keys: list[str | None] = []
        self.request_ids: list[str | None] = []
        self.traceparents: list[str | None] = []  # W3C trace context, when tracing sends one
        self.cookies: list[str | None] = []  # the Cookie header of each request
        self.accepts: list[str | None] = []  # the Accept header of each request
        self.authorizations: list[str | None] = []  # the Authorization header of each request
        self.credentials: dict[str, str] = {}  # headers every request must carry, else 401
        self.requires_token = False  # every request must carry a token issued here, else 401
        # The token endpoint: the one client it knows, how long a token lives (None: no
        # expires_in in the answer), what it issued and what each token request carried.
        self.client_id = "client-id"
        self.client_secret = "client-secret"
        self.token_lifetime: float | None = 3600
        self.token_type = "Bearer"
        self.token_prefix = "token-"  # issued tokens are this and a number
        self.issued: list[str] = []
        self.valid_tokens: set[str] = set()
        self.token_forms: list[dict[str, str]] = []
        self.token_authorizations: list[str | None] = []
        self._token_queued: deque[Reply] = deque()
        self.arrival_times: list[float] = []  # the event loop's clock, one per request
        self.peers: set[object] = set()  # one per TCP connection the client opened
        self._keyed: dict[str, tuple[int, bytes]] = {}  # each key's first answer
        self._next_id = 1
        self._queued: deque[Reply] = deque()
        self._released = asyncio.Event()
        self.arrived = asyncio.Event()  # set once any request has come in
        self.app = web.Application()
        self.app.router.add_route("*", "/items", self._handle)
        self.app.router.add_route("*", "/items/{item_id}", self._handle)
        self.app.router.add_post("/oauth/token", self._token)

    def add(self, *items: Item) -> None:
        """Store ``items`` as they are (each with its ``id``)."""
        for item in items:
            self.items[str(item["id"])] = item

    def queue(self, *replies: Reply) -> None:
        """Answer the next requests with ``replies``, in order."""
        self._queued.extend(replies)

    def queue_token(self, *replies: Reply) -> None:
        """Answer the next token requests with ``replies``, in order."""
        self._token_queued.extend(replies)

    def revoke(self) -> None:
        """Refuse every token issued so far, as an upstream does with expired ones."""
        self.valid_tokens.clear()

    def release(self) -> None:
        """Let hanging requests finish, so the server can shut down at once."""
        self._released.set()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self._record(request, body)
        if self.latency:
            await asyncio.sleep(self.latency)
        if not self._authorized(request):
            return web.json_response({"error": "unauthorized"}, status=401)
        reply = self._script(request)
        if reply is not None:
            return await self._scripted(request, reply)
        key = request.headers.get("Idempotency-Key")
        if key is not None and self.honours_keys and key in self._keyed:
            status, stored = self._keyed[key]  # the first answer again, nothing written
            return web.Response(status=status, body=stored, content_type="application/json")
        response = self._api(request, body)
        if key is not None and self.honours_keys and request.method in {"POST", "PATCH"}:
            assert isinstance(response.body, bytes)
            self._keyed[key] = (response.status, response.body)
        return response

    def _authorized(self, request: web.Request) -> bool:
        """Whether the request carries the credentials this API wants (none: any request)."""
        headers = request.headers
        if any(headers.get(name) != value for name, value in self.credentials.items()):
            return False
        if self.requires_token:
            scheme, _, token = headers.get("Authorization", "").partition(" ")
            return scheme == "Bearer" and token in self.valid_tokens
        return True

    async def _token(self, request: web.Request) -> web.StreamResponse:
        """The token endpoint: an access token for the one client it knows."""
        form = {name: str(value) for name, value in (await request.post()).items()}
        self.token_forms.append(form)
        self.token_authorizations.append(request.headers.get("Authorization"))
        if self._token_queued:
            return await self._scripted(request, self._token_queued.popleft())
        if form.get("grant_type") != "client_credentials":
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        if _client(request.headers.get("Authorization"), form) != (
            self.client_id,
            self.client_secret,
        ):
            return web.json_response({"error": "invalid_client"}, status=401)
        token = f"{self.token_prefix}{len(self.issued) + 1}"
        self.issued.append(token)
        self.valid_tokens.add(token)
        answer: dict[str, object] = {"access_token": token, "token_type": self.token_type}
        if self.token_lifetime is not None:
            answer["expires_in"] = self.token_lifetime
        return web.json_response(answer, headers={"Cache-Control": "no-store"})

    def _script(self, request: web.Request) -> Reply | None:
        """The scripted answer to this request, if any: the next queued one, else ``default``."""
        return self._queued.popleft() if self._queued else self.default

    def _record(self, request: web.Request, body: bytes) -> None:
        """Keep what the request carried, for the tests to count."""
        self.methods.append(request.method)
        self.requests.append(request.match_info.get("item_id", ""))
        self.queries.append(request.raw_path.partition("?")[2])
        self.bodies.append(body)
        self.idempotency_keys.append(request.headers.get("Idempotency-Key"))
        self.arrival_times.append(asyncio.get_running_loop().time())
        self.request_ids.append(request.headers.get("X-Request-ID"))
        self.traceparents.append(request.headers.get("traceparent"))
        self.cookies.append(request.headers.get("Cookie"))
        self.accepts.append(request.headers.get("Accept"))
        self.authorizations.append(request.headers.get("Authorization"))
        self.peers.add(request.transport.get_extra_info("peername") if request.transport else None)
        self.arrived.set()

    def _api(self, request: web.Request, body: bytes) -> web.Response:
        item_id = request.match_info.get("item_id")
        if item_id is None:
            if request.method == "GET":
                return self._list(request)
            if request.method == "POST":
                return self._create(body)
            raise web.HTTPMethodNotAllowed(request.method, ["GET", "POST"])
        if item_id not in self.items:
            return web.json_response({}, status=404)
        if request.method == "GET":
            return web.json_response(self.items[item_id])
        if request.method in {"PUT", "PATCH"}:
            fields = _object(body)
            base = self.items[item_id] if request.method == "PATCH" else {}
            self.items[item_id] = {**base, **fields, "id": self.items[item_id]["id"]}
            return web.json_response(self.items[item_id])
        if request.method == "DELETE":
            del self.items[item_id]
            return web.json_response({})
        raise web.HTTPMethodNotAllowed(request.method, ["GET", "PUT", "PATCH", "DELETE"])

    def _list(self, request: web.Request) -> web.Response:
        query = request.query
        found = [
            item
            for item in self.items.values()
            if all(str(item.get(name)) == value for name, value in query.items() if name[0] != "_")
        ]
        if "_page" not in query:
            return web.json_response(found)
        page, limit = int(query["_page"]), int(query.get("_limit", "10"))
        last = max(1, -(-len(found) // limit))
        headers = {"X-Total-Count": str(len(found))}
        links = {"first": 1, "prev": page - 1, "next": page + 1, "last": last}
        # Built from the Host header the client sent, as json-server does.
        url = URL(f"{request.scheme}://{request.host}{request.path_qs}")
        headers["Link"] = ", ".join(
            f'<{url.update_query(_page=number)}>; rel="{rel}"'
            for rel, number in links.items()
            if 1 <= number <= last and (rel != "next" or page < last)
        )
        return web.json_response(found[(page - 1) * limit : page * limit], headers=headers)

    def _create(self, body: bytes) -> web.Response:
        fields = _object(body)
        while str(self._next_id) in self.items:
            self._next_id += 1
        item = {**fields, "id": fields.get("id", self._next_id)}
        self.items[str(item["id"])] = item
        return web.json_response(item, status=201)

    async def _scripted(self, request: web.Request, reply: Reply) -> web.StreamResponse:
        if reply.delay:
            await asyncio.sleep(reply.delay)
        if reply.hang:
            await self._released.wait()
        if reply.reset:
            assert request.transport is not None
            request.transport.abort()
            return web.Response()
        if reply.chunked:
            return await self._stream(request, reply)
        if reply.body is not None:
            return web.Response(
                status=reply.status,
                body=reply.body,
                content_type=reply.content_type,
                headers=reply.headers,
            )
        return web.json_response(reply.json, status=reply.status, headers=reply.headers)

    async def _stream(self, request: web.Request, reply: Reply) -> web.StreamResponse:
        response = web.StreamResponse(status=reply.status, headers=reply.headers)
        response.content_type = reply.content_type
        response.enable_chunked_encoding()
        await response.prepare(request)
        body = reply.body or b""
        for start in range(0, len(body), 1024):
            await response.write(body[start : start + 1024])
        await response.write_eof()
        return response


def _client(authorization: str | None, form: dict[str, str]) -> tuple[str, str] | None:
    """The client id and secret a token request carried: in HTTP Basic, each part
    form-urlencoded (RFC 6749 section 2.3.1), or in the form."""
    if authorization is None:
        if "client_id" in form and "client_secret" in form:
            return form["client_id"], form["client_secret"]
        return None
    scheme, _, encoded = authorization.partition(" ")
    try:
        pair = base64.b64decode(encoded, validate=True).decode()
    except ValueError:  # binascii.Error or UnicodeDecodeError
        return None
    client_id, colon, secret = pair.partition(":")
    if scheme != "Basic" or not colon:
        return None
    return unquote_plus(client_id), unquote_plus(secret)


def _object(body: bytes) -> Item:
    """A JSON object body, else a 400 like json-server's."""
    try:
        value = json.loads(body or b"{}")
    except ValueError:
        raise web.HTTPBadRequest(text="invalid JSON") from None
    if not isinstance(value, dict):
        raise web.HTTPBadRequest(text="expected an object")
    return value
