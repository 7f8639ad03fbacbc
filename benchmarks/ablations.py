"""The generated service with one piece taken out, to measure what that piece costs.

    python benchmarks/ablations.py PACKAGE NAME   # run.py starts these: --variants ablated

Each ablation replaces one piece of the baked default project in this process, then runs the
service as ``python -m PACKAGE`` would, so the variant differs from the default by that piece
alone. They are measuring instruments, not options: an ablated service lacks behaviour that
the template promises (``tests/test_ablations.py`` checks that each one takes out what it
says, and only that).
"""

from __future__ import annotations

import importlib
import runpy
import sys
from collections.abc import Callable
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

PADDING_BYTES = 60
PADDING = " " + "x" * (PADDING_BYTES - 1)  # appended to the Server header
FIXED_REQUEST_ID = "0" * 32  # as long as a generated one


def replace(owner: Any, name: str, value: object) -> None:
    """Set ``owner.name``, which must exist: a renamed piece fails the start instead of leaving
    a variant that silently measures the default."""
    if not hasattr(owner, name):
        raise SystemExit(f"ablation: {owner!r} has no {name!r} any more")
    setattr(owner, name, value)


def no_middleware(package: str) -> None:
    """The app gets no middleware at all: neither the service's nor aiohttp's own."""
    init = web.Application.__init__

    def without_middlewares(self: web.Application, *args: object, **kwargs: object) -> None:
        kwargs.pop("middlewares", None)
        init(self, *args, **kwargs)  # type: ignore[arg-type]

    replace(web.Application, "__init__", without_middlewares)


def noop_middleware(package: str) -> None:
    """The service's middleware does nothing: what remains is aiohttp's cost of having one."""

    @web.middleware
    async def noop(request: web.Request, handler: Handler) -> web.StreamResponse:
        return await handler(request)

    app = importlib.import_module(f"{package}.app")
    replace(app, "request_middleware", lambda limit, metrics: noop)


def bare_client(package: str) -> None:
    """Upstream reads are a bare ``session.get`` and the model's validation: no coalescing,
    retries, observer, request-id header, status and content checks or size cap."""
    core = importlib.import_module(f"{package}.clients.core")
    decoding = importlib.import_module(f"{package}.clients.decoding")

    async def get(self: object, model: type, *segments: str, **_: object) -> object:
        url = self._base_url.joinpath(*segments)  # type: ignore[attr-defined]
        async with self._session.get(url) as response:  # type: ignore[attr-defined]
            return decoding.decoder_for(model).decode(await response.read())

    replace(core.UpstreamClient, "get", get)


def fixed_request_id(package: str) -> None:
    """Every request gets the same id, as long as a generated one: the cost of making ids."""
    request_ids = importlib.import_module(f"{package}.common.request_ids")
    replace(request_ids, "accept_or_generate", lambda candidate: FIXED_REQUEST_ID)


def longer_response(package: str) -> None:
    """Every response is ``PADDING_BYTES`` longer (in its ``Server`` header), with no more work
    for the service: what bytes on the wire cost the server, as the request id's header does."""
    middlewares = importlib.import_module(f"{package}.web.middlewares")
    replace(middlewares, "SERVER", middlewares.SERVER + PADDING)


def default_gc(package: str) -> None:
    """The garbage collector keeps Python's defaults: what the service's tuning saves."""
    app = importlib.import_module(f"{package}.app")
    replace(app, "tune_for_serving", lambda app: None)


ABLATIONS: dict[str, Callable[[str], None]] = {
    "no middleware": no_middleware,
    "no-op middleware": noop_middleware,
    "bare client": bare_client,
    "fixed request id": fixed_request_id,
    f"{PADDING_BYTES} more response bytes": longer_response,
    "default GC": default_gc,
}


def main(argv: list[str]) -> None:
    package, name = argv
    ABLATIONS[name](package)
    runpy.run_module(package, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
