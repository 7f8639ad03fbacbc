"""Request handlers: parse and validate, call the upstream client, shape the JSON answer."""

from __future__ import annotations

import asyncio

from aiohttp import web

from ..common.errors import InvalidRequestError, RequestTimeoutError, UnsupportedMediaTypeError
from ..common.jsonlib import loads
from . import validation
from .batch import fetch_all
from .keys import LIFECYCLE, OPENAPI, SETTINGS, UPSTREAM
from .responses import json_response, model_response

_HEALTHY = {"status": "ok"}
_READY = {"status": "ready"}
_DRAINING = {"status": "draining"}


async def health(request: web.Request) -> web.Response:
    """Liveness: answers without touching the upstream."""
    return json_response(_HEALTHY)


async def ready(request: web.Request) -> web.Response:
    """Readiness: 503 while draining. It never calls the upstream: an upstream outage must not
    take every replica out of the load balancer at once."""
    if request.app[LIFECYCLE].draining:
        return json_response(_DRAINING, status=503)
    return json_response(_READY)


async def openapi_json(request: web.Request) -> web.Response:
    """The OpenAPI document: what every route accepts and answers."""
    return web.Response(body=request.app[OPENAPI], content_type="application/json")


async def get_item(request: web.Request) -> web.Response:
    """One item from the upstream; upstream errors are mapped by the error middleware."""
    item_id = validation.item_id(request.match_info["item_id"])
    item = await request.app[UPSTREAM].get_item(item_id)
    return model_response(item)


async def get_items_batch(request: web.Request) -> web.Response:
    """Many items at once, in input order, with per-item errors inline."""
    if request.content_type != "application/json":
        raise UnsupportedMediaTypeError("expected Content-Type: application/json")
    body_timeout = request.app[SETTINGS].request_body_timeout
    try:
        async with asyncio.timeout(body_timeout):
            raw = await request.read()
    except TimeoutError:
        raise RequestTimeoutError(f"request body not received within {body_timeout:g}s") from None
    try:
        body = loads(raw)
    except ValueError:
        raise InvalidRequestError("request body is not valid JSON") from None
    item_ids = validation.batch_ids(body)
    results = await fetch_all(
        request.app[UPSTREAM].get_item, item_ids, request.app[SETTINGS].upstream_concurrency
    )
    return model_response({"results": results})


def add_routes(app: web.Application) -> None:
    """Every route of the service, in one place."""
    app.router.add_get("/health", health, allow_head=True)
    app.router.add_get("/health/live", health, allow_head=True)
    app.router.add_get("/health/ready", ready, allow_head=True)
    app.router.add_get("/openapi.json", openapi_json)
    app.router.add_post("/api/items/batch", get_items_batch)
    # Not "batch": that path is the batch route's (GET on it is 405, as the document says).
    app.router.add_get("/api/items/{item_id:(?!batch$)[^/]+}", get_item, allow_head=False)
