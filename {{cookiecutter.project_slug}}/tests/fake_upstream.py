"""A real HTTP server standing in for the upstream API, scripted per test.

Faking the boundary with a server (not by mocking aiohttp) tests the client exactly as it
runs in production: real sockets, real timeouts, real parsing.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field

from aiohttp import web


@dataclass(frozen=True)
class Reply:
    """One scripted answer. ``hang`` never answers until the server shuts down."""

    status: int = 200
    json: object = None
    body: bytes | None = None
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False
    chunked: bool = False  # stream the body without a Content-Length


class FakeUpstream:
    """Serves ``GET /items/{item_id}``; queued replies first, then ``default``."""

    def __init__(self) -> None:
        self.base_url = ""  # set once the server listens
        self.default = Reply(json={"id": "default"})
        self.requests: list[str] = []
        self.queries: list[str] = []  # each request's query string, as sent on the wire
        self.request_ids: list[str | None] = []
        self.traceparents: list[str | None] = []  # W3C trace context, when tracing sends one
        self.cookies: list[str | None] = []  # the Cookie header of each request
        self.accepts: list[str | None] = []  # the Accept header of each request
        self.arrival_times: list[float] = []  # the event loop's clock, one per request
        self.peers: set[object] = set()  # one per TCP connection the client opened
        self._queued: deque[Reply] = deque()
        self._released = asyncio.Event()
        self.arrived = asyncio.Event()  # set once any request has come in
        self.app = web.Application()
        self.app.router.add_get("/items/{item_id}", self._handle)

    def queue(self, *replies: Reply) -> None:
        """Answer the next requests with ``replies``, in order."""
        self._queued.extend(replies)

    def release(self) -> None:
        """Let hanging requests finish, so the server can shut down at once."""
        self._released.set()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(request.match_info["item_id"])
        self.queries.append(request.raw_path.partition("?")[2])
        self.arrival_times.append(asyncio.get_running_loop().time())
        self.request_ids.append(request.headers.get("X-Request-ID"))
        self.traceparents.append(request.headers.get("traceparent"))
        self.cookies.append(request.headers.get("Cookie"))
        self.accepts.append(request.headers.get("Accept"))
        self.peers.add(request.transport.get_extra_info("peername") if request.transport else None)
        self.arrived.set()
        reply = self._queued.popleft() if self._queued else self.default
        if reply.hang:
            await self._released.wait()
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
