"""The one stand-in for the upstream API, run as its own process on 127.0.0.1 by the template
tests, the benchmark and ``./dev demo``: the generated project's own fake Example API
(``{{cookiecutter.project_slug}}/tests/fake_upstream.py``, the file every baked project's tests
use), with a fault script on top.

    python tests/support/fake_upstream.py [LATENCY_MS]

prints its port once it listens. Every request waits LATENCY_MS (default 0). ``GET /items``,
``POST /items`` and the other writes are the Example API's (json-server 0.17's conventions;
items 1, 2 and 3 to start with). ``GET /items/{id}`` answers any id; the id picks any
misbehaviour, so callers need no control channel:

    ok-*, others  200 {"id", "name"}    missing     404
    boom        503 every time              flaky-*     503 once per id, then 200
    limited-*   429 Retry-After: 1 once     slow-*      200 after 0.3 s
    hang        never answers (until the process stops)
    badjson     200 with an invalid body    html        200 text/html
    huge        200 with a 4 MiB body       reset       connection closed mid-response
    nostore-*   200 Cache-Control: no-store maxage1-*   200 Cache-Control: max-age=1

``GET /__stats`` returns the TCP connections accepted, the requests served, the requests in
flight now and at most, the latest paths and X-Request-ID headers received, and the token
requests; ``POST /__reset`` zeroes the request counters.

Credentials (the Example API's own, off by default): ``FAKE_UPSTREAM_AUTH`` holds a JSON object
of the ``FakeUpstream`` attributes to set: ``credentials`` (headers every request must carry),
``requires_token`` (an access token from ``POST /oauth/token``), ``client_id``,
``client_secret``, ``token_lifetime``. ``POST /__token_replies`` queues scripted answers of the
token endpoint (a JSON list of ``Reply`` fields); ``POST /__revoke`` refuses every token issued.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import types
from collections import Counter, deque
from pathlib import Path

from aiohttp import web

# The generated fake has no template syntax, so the template's copy runs as it is. Compiled
# from its text, not imported: an import would leave bytecode in the template's folder, which
# every baked project would then get.
EXAMPLE_API = Path(__file__).resolve().parents[2] / "{{cookiecutter.project_slug}}" / "tests"
example_api = types.ModuleType("example_api_fake")
sys.modules[example_api.__name__] = example_api  # dataclasses look their module up there
_source = EXAMPLE_API / "fake_upstream.py"
exec(compile(_source.read_text(encoding="utf-8"), _source, "exec"), example_api.__dict__)
Reply = example_api.Reply

RECENT = 100_000  # paths and request ids kept for /__stats (bounded: the benchmark sends many)
HUGE = {"blob": "x" * (4 * 1024 * 1024)}


def item(item_id: str) -> dict[str, str]:
    """An item of the Example API's shape."""
    return {"id": item_id, "name": f"item {item_id}"}


class Upstream(example_api.FakeUpstream):  # type: ignore[misc,name-defined]
    """The Example API, counting what it serves in bounded records, with the id-driven faults."""

    def __init__(self, latency: float) -> None:
        super().__init__()
        self.latency = latency
        self.add(*(item(str(n)) for n in (1, 2, 3)))
        self.connections = 0
        self.served = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.paths: deque[str] = deque(maxlen=RECENT)
        self.recent_request_ids: deque[str] = deque(maxlen=RECENT)
        self.recent_traceparents: deque[str] = deque(maxlen=RECENT)
        self.arrivals: deque[float] = deque(maxlen=RECENT)  # time.time() of each request
        self.seen: Counter[str] = Counter()
        for name, value in json.loads(os.environ.get("FAKE_UPSTREAM_AUTH", "{}")).items():
            assert hasattr(self, name), name
            setattr(self, name, value)

    def _record(self, request: web.Request, body: bytes) -> None:
        self.served += 1
        self.paths.append(request.raw_path)
        self.recent_request_ids.append(request.headers.get("X-Request-ID", ""))
        self.recent_traceparents.append(request.headers.get("traceparent", ""))
        self.arrivals.append(time.time())

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            response: web.StreamResponse = await super()._handle(request)
            return response
        finally:
            self.in_flight -= 1

    def _script(self, request: web.Request) -> object:
        item_id = request.match_info.get("item_id")
        if item_id is None or request.method != "GET":
            return None  # the Example API answers
        self.seen[item_id] += 1
        first_time = self.seen[item_id] == 1
        if item_id == "missing":
            return Reply(status=404, json={})
        if item_id == "boom" or (item_id.startswith("flaky-") and first_time):
            return Reply(status=503, json={"detail": "unavailable"})
        if item_id.startswith("limited-") and first_time:
            return Reply(status=429, json={}, headers={"Retry-After": "1"})
        if item_id == "hang":
            return Reply(hang=True)
        if item_id == "badjson":
            return Reply(body=b'{"id": ')
        if item_id == "html":
            return Reply(body=b"<html>oops</html>", content_type="text/html")
        if item_id == "huge":
            return Reply(json=HUGE)
        if item_id == "reset":
            return Reply(reset=True)
        if item_id.startswith("nostore-"):
            return Reply(json=item(item_id), headers={"Cache-Control": "no-store"})
        if item_id.startswith("maxage1-"):
            return Reply(json=item(item_id), headers={"Cache-Control": "max-age=1"})
        return Reply(json=item(item_id), delay=0.3 if item_id.startswith("slow-") else 0.0)

    async def stats(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "connections": self.connections,
                "requests": self.served,
                "in_flight": self.in_flight,
                "max_in_flight": self.max_in_flight,
                "paths": list(self.paths),
                "request_ids": list(self.recent_request_ids),
                "traceparents": list(self.recent_traceparents),
                "arrivals": list(self.arrivals),
                "token_requests": len(self.token_forms),
                "issued": self.issued,
            }
        )

    async def token_replies(self, request: web.Request) -> web.Response:
        self.queue_token(*(Reply(**fields) for fields in await request.json()))
        return web.json_response({})

    async def revoke_tokens(self, request: web.Request) -> web.Response:
        self.revoke()
        return web.json_response({})

    async def reset(self, request: web.Request) -> web.Response:
        self.served = self.max_in_flight = 0
        return web.json_response({})


async def main(latency_ms: float) -> None:
    upstream = Upstream(latency_ms / 1000)
    app = upstream.app
    app.router.add_get("/__stats", upstream.stats)
    app.router.add_post("/__reset", upstream.reset)
    app.router.add_post("/__token_replies", upstream.token_replies)
    app.router.add_post("/__revoke", upstream.revoke_tokens)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    server = runner.server
    assert server is not None

    def counting_factory() -> asyncio.BaseProtocol:
        upstream.connections += 1
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
