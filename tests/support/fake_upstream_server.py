"""A misbehaving upstream API for end-to-end tests, run as its own process on 127.0.0.1.

The item id picks the behaviour, so tests need no control channel:

    ok-*        200 {"id": ...}             missing     404
    boom        503 every time              flaky-*     503 once per id, then 200
    limited-*   429 Retry-After: 1 once     slow-*      200 after 0.3 s
    hang        never answers (until the process stops)
    badjson     200 with an invalid body    html        200 text/html
    huge        200 with a 4 MiB body       reset       connection closed mid-response

``GET /__stats`` returns the TCP connections accepted, every path requested and the
X-Request-ID headers received. Prints its port on stdout once it listens.
"""

from __future__ import annotations

import asyncio
import sys
from collections import Counter

from aiohttp import web


class Upstream:
    def __init__(self) -> None:
        self.connections = 0
        self.paths: list[str] = []
        self.request_ids: list[str] = []
        self.seen: Counter[str] = Counter()

    def connection_made(self) -> None:
        self.connections += 1

    async def stats(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"connections": self.connections, "paths": self.paths, "request_ids": self.request_ids}
        )

    async def catch_all(self, request: web.Request) -> web.StreamResponse:
        self.paths.append(request.raw_path)
        self.request_ids.append(request.headers.get("X-Request-ID", ""))
        prefix = "/items/"
        if not request.raw_path.startswith(prefix):
            return web.json_response({"error": "not an item"}, status=400)
        return await self.item(request, request.raw_path[len(prefix) :])

    async def item(self, request: web.Request, item_id: str) -> web.StreamResponse:
        self.seen[item_id] += 1
        first_time = self.seen[item_id] == 1
        if item_id == "missing":
            return web.json_response({"detail": "no such item"}, status=404)
        if item_id == "boom" or (item_id.startswith("flaky-") and first_time):
            return web.json_response({"detail": "unavailable"}, status=503)
        if item_id.startswith("limited-") and first_time:
            return web.json_response({}, status=429, headers={"Retry-After": "1"})
        if item_id.startswith("slow-"):
            await asyncio.sleep(0.3)
        if item_id == "hang":
            await asyncio.sleep(3600)
        if item_id == "badjson":
            return web.Response(body=b'{"id": ', content_type="application/json")
        if item_id == "html":
            return web.Response(text="<html>oops</html>", content_type="text/html")
        if item_id == "huge":
            return web.json_response({"blob": "x" * (4 * 1024 * 1024)})
        if item_id == "reset":
            assert request.transport is not None
            request.transport.abort()
            return web.Response()
        return web.json_response({"id": item_id})


async def main() -> None:
    upstream = Upstream()
    app = web.Application()
    app.router.add_get("/__stats", upstream.stats)
    app.router.add_route("*", "/{tail:.*}", upstream.catch_all)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    server = runner.server
    assert server is not None
    original_factory = server.__call__

    def counting_factory() -> asyncio.BaseProtocol:
        upstream.connection_made()
        return original_factory()

    # Listen with a protocol factory that counts each accepted connection.
    listener = await asyncio.get_running_loop().create_server(counting_factory, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    print(port, flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
