"""The one stand-in for the upstream API, run as its own process on 127.0.0.1 by the template
tests, the benchmark and ``./dev demo``.

    python tests/support/fake_upstream.py [LATENCY_MS]

prints its port once it listens. Items answer after LATENCY_MS (default 0); the item id picks
any misbehaviour, so callers need no control channel:

    ok-*, others  200 {"id", "name"}    missing     404
    boom        503 every time              flaky-*     503 once per id, then 200
    limited-*   429 Retry-After: 1 once     slow-*      200 after 0.3 s
    hang        never answers (until the process stops)
    badjson     200 with an invalid body    html        200 text/html
    huge        200 with a 4 MiB body       reset       connection closed mid-response
    nostore-*   200 Cache-Control: no-store maxage1-*   200 Cache-Control: max-age=1

``GET /items`` lists items 1, 2 and 3 with json-server's filters and paging.
``GET /__stats`` returns the TCP connections accepted, the requests served, the requests in
flight now and at most, and the latest paths and X-Request-ID headers received;
``POST /__reset`` zeroes the request counters.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections import Counter, deque

from aiohttp import web

RECENT = 100_000  # paths and request ids kept for /__stats (bounded: the benchmark sends many)


class Upstream:
    def __init__(self, latency: float) -> None:
        self.latency = latency
        self.connections = 0
        self.requests = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.paths: deque[str] = deque(maxlen=RECENT)
        self.request_ids: deque[str] = deque(maxlen=RECENT)
        self.traceparents: deque[str] = deque(maxlen=RECENT)
        self.arrivals: deque[float] = deque(maxlen=RECENT)  # time.time() of each request
        self.seen: Counter[str] = Counter()

    def connection_made(self) -> None:
        self.connections += 1

    async def stats(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "connections": self.connections,
                "requests": self.requests,
                "in_flight": self.in_flight,
                "max_in_flight": self.max_in_flight,
                "paths": list(self.paths),
                "request_ids": list(self.request_ids),
                "traceparents": list(self.traceparents),
                "arrivals": list(self.arrivals),
            }
        )

    async def reset(self, request: web.Request) -> web.Response:
        self.requests = self.max_in_flight = 0
        return web.json_response({})

    async def catch_all(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        self.paths.append(request.raw_path)
        self.request_ids.append(request.headers.get("X-Request-ID", ""))
        self.traceparents.append(request.headers.get("traceparent", ""))
        self.arrivals.append(time.time())
        prefix = "/items/"
        if request.path == "/items" and request.method == "GET":
            return listing(request)
        if not request.raw_path.startswith(prefix):
            return web.json_response({"error": "not an item"}, status=400)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.latency:
                await asyncio.sleep(self.latency)
            return await self.item(request, request.raw_path[len(prefix) :])
        finally:
            self.in_flight -= 1

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
        if item_id.startswith("nostore-"):
            return web.json_response(item(item_id), headers={"Cache-Control": "no-store"})
        if item_id.startswith("maxage1-"):
            return web.json_response(item(item_id), headers={"Cache-Control": "max-age=1"})
        return web.json_response(item(item_id))


LISTED = ("1", "2", "3")


def listing(request: web.Request) -> web.Response:
    """``GET /items`` as json-server 0.17 answers it: exact-match filters on any field, and
    with ``_page`` a page of ``_limit`` items and a ``Link`` to the next one while there is more."""
    query = request.query
    found = [
        entry
        for entry in map(item, LISTED)
        if all(entry.get(name) == value for name, value in query.items() if name[0] != "_")
    ]
    if "_page" not in query:
        return web.json_response(found)
    page, limit = int(query["_page"]), int(query.get("_limit", "10"))
    headers = {}
    if page * limit < len(found):
        headers["Link"] = f'<{request.url.update_query(_page=page + 1)}>; rel="next"'
    return web.json_response(found[(page - 1) * limit : page * limit], headers=headers)


def item(item_id: str) -> dict[str, str]:
    """An item of the Example API's shape."""
    return {"id": item_id, "name": f"item {item_id}"}


async def main(latency_ms: float) -> None:
    upstream = Upstream(latency_ms / 1000)
    app = web.Application()
    app.router.add_get("/__stats", upstream.stats)
    app.router.add_post("/__reset", upstream.reset)
    app.router.add_route("*", "/{tail:.*}", upstream.catch_all)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    server = runner.server
    assert server is not None

    def counting_factory() -> asyncio.BaseProtocol:
        upstream.connection_made()
        return server()

    # Listen with a protocol factory that counts each accepted connection.
    listener = await asyncio.get_running_loop().create_server(
        counting_factory, "127.0.0.1", 0, backlog=1024
    )
    print(listener.sockets[0].getsockname()[1], flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    try:
        asyncio.run(main(float(sys.argv[1]) if len(sys.argv) > 1 else 0.0))
    except KeyboardInterrupt:
        sys.exit(0)
