"""The upstream API for the benchmark: a fixed latency, and counters the driver reads.

Run: ``python fake_upstream.py LATENCY_MS``; prints its port once it listens on 127.0.0.1.
``GET /__stats`` gives the TCP connections accepted, the requests served and the most
requests in flight at once; ``POST /__reset`` zeroes the request counters.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys

from aiohttp import web


class Upstream:
    def __init__(self, latency: float) -> None:
        self.latency = latency
        self.connections = 0
        self.requests = 0
        self.in_flight = 0
        self.max_in_flight = 0

    async def item(self, request: web.Request) -> web.Response:
        self.requests += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.latency:
                await asyncio.sleep(self.latency)
            return web.json_response(
                {"id": request.match_info["item_id"], "name": "benchmark item"}
            )
        finally:
            self.in_flight -= 1

    async def stats(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "connections": self.connections,
                "requests": self.requests,
                "max_in_flight": self.max_in_flight,
                "in_flight": self.in_flight,
            }
        )

    async def reset(self, request: web.Request) -> web.Response:
        self.requests = self.max_in_flight = 0
        return web.json_response({})


async def serve(latency_ms: float) -> None:
    upstream = Upstream(latency_ms / 1000)
    app = web.Application()
    app.router.add_get("/items/{item_id}", upstream.item)
    app.router.add_get("/__stats", upstream.stats)
    app.router.add_post("/__reset", upstream.reset)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    handler = runner.server
    assert handler is not None

    def counting_protocol() -> asyncio.BaseProtocol:
        upstream.connections += 1
        return handler()

    loop = asyncio.get_running_loop()
    listener = await loop.create_server(counting_protocol, "127.0.0.1", 0, backlog=1024)
    print(listener.sockets[0].getsockname()[1], flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(float(sys.argv[1]) if len(sys.argv) > 1 else 0.0))
