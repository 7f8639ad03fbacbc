"""The reference: the smallest aiohttp app with the generated service's routes.

One shared ClientSession, no middleware, no logging, no validation beyond what the routes
need, and the stdlib json. It runs on the event loop the generated service runs on (uvloop when
installed, as the service's ``speedups`` extra does), so a comparison prices the service's own
code, not the loop. The benchmark holds the generated service to this app's cost per request.

Environment: PORT, UPSTREAM_BASE_URL, UPSTREAM_CONCURRENCY (batch bound, default 50).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

SESSION = web.AppKey("session", aiohttp.ClientSession)
BASE_URL = os.environ["UPSTREAM_BASE_URL"]
CONCURRENCY = int(os.environ.get("UPSTREAM_CONCURRENCY", "50"))


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def fetch(session: aiohttp.ClientSession, item_id: str) -> object:
    async with session.get(f"{BASE_URL}/items/{item_id}") as response:
        return await response.json()


async def item(request: web.Request) -> web.Response:
    return web.json_response(await fetch(request.app[SESSION], request.match_info["item_id"]))


async def listing(request: web.Request) -> web.Response:
    """One page of the upstream's listing, the caller's filters passed on as they came."""
    query = {**request.query, "_page": "1", "_limit": "100"}
    async with request.app[SESSION].get(f"{BASE_URL}/items", params=query) as response:
        return web.json_response({"items": await response.json()})


async def create(request: web.Request) -> web.Response:
    """The body passed upstream as it came; the upstream's answer passed back."""
    body = await request.read()
    headers = {"Content-Type": "application/json"}
    post = request.app[SESSION].post(f"{BASE_URL}/items", data=body, headers=headers)
    async with post as response:
        return web.json_response(await response.json(), status=response.status)


async def batch(request: web.Request) -> web.Response:
    ids = (await request.json())["ids"]
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(item_id: str) -> object:
        async with gate:
            return {"id": item_id, "item": await fetch(request.app[SESSION], item_id)}

    return web.json_response({"results": await asyncio.gather(*(one(str(i)) for i in ids))})


async def session_ctx(app: web.Application) -> AsyncIterator[None]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        app[SESSION] = session
        yield


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop when installed, else asyncio's: the choice the generated ``__main__`` makes."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


def main() -> None:
    app = web.Application()
    app.cleanup_ctx.append(session_ctx)
    app.router.add_get("/health", health)
    app.router.add_get("/api/items", listing)
    app.router.add_post("/api/items", create)
    app.router.add_post("/api/items/batch", batch)
    app.router.add_get("/api/items/{item_id}", item)
    web.run_app(
        app,
        host="127.0.0.1",
        port=int(os.environ["PORT"]),
        print=None,
        access_log=None,
        loop=new_event_loop(),
    )


if __name__ == "__main__":
    main()
