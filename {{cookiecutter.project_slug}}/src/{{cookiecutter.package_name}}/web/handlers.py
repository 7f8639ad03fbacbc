"""Request handlers: parse and validate, call the upstream client, shape the JSON answer."""

from __future__ import annotations

from contextlib import aclosing

from aiohttp import web
from pydantic import TypeAdapter

from ..clients import {{ cookiecutter.__upstream_module }}
from ..common.errors import InvalidRequestError
from ..common.jsonlib import loads
from . import validation
from .batch import fetch_all
from .bodies import json_body, model_body
from .keys import LIFECYCLE, OPENAPI, SETTINGS, UPSTREAM
from .responses import json_response, model_response

IDEMPOTENCY_KEY = "Idempotency-Key"
# The upstream is asked for pages of this many items, whatever the caller's limit.
LIST_PAGE_SIZE = 100
Item = {{ cookiecutter.__upstream_module }}.Item
ITEM_FILTERS = {{ cookiecutter.__upstream_module }}.ITEM_FILTERS
NEW_ITEM = TypeAdapter({{ cookiecutter.__upstream_module }}.NewItem)
ITEM_CHANGES = TypeAdapter({{ cookiecutter.__upstream_module }}.ItemChanges)

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


async def list_items(request: web.Request) -> web.Response:
    """Items matching the filters, in upstream order: pages are fetched until ``limit`` items
    are in hand or the upstream has no more."""
    filters, limit = validation.listing(request.query, ITEM_FILTERS)
    max_pages = -(-limit // LIST_PAGE_SIZE) + 1  # one more, for an upstream that caps pages
    upstream = request.app[UPSTREAM]
    pages = upstream.list_items(filters, page_size=LIST_PAGE_SIZE, max_pages=max_pages)
    items: list[Item] = []
    async with aclosing(pages):
        async for page in pages:
            items.extend(page[: limit - len(items)])
            if len(items) == limit:
                break
    return model_response({"items": items})


async def create_item(request: web.Request) -> web.Response:
    """Create an item upstream: 201 with it. The caller's Idempotency-Key (else a new one) goes
    with every attempt, so a retry never creates it twice."""
    key = validation.idempotency_key(request.headers.get(IDEMPOTENCY_KEY))
    new_item = await model_body(request, NEW_ITEM)
    item = await request.app[UPSTREAM].create_item(new_item, idempotency_key=key)
    return model_response(item, status=201)


async def update_item(request: web.Request) -> web.Response:
    """Change some fields of an item: 200 with the whole updated item."""
    item_id = validation.item_id(request.match_info["item_id"])
    key = validation.idempotency_key(request.headers.get(IDEMPOTENCY_KEY))
    changes = await model_body(request, ITEM_CHANGES)
    item = await request.app[UPSTREAM].update_item(item_id, changes, idempotency_key=key)
    return model_response(item)


async def delete_item(request: web.Request) -> web.Response:
    """Delete an item upstream: 204."""
    item_id = validation.item_id(request.match_info["item_id"])
    await request.app[UPSTREAM].delete_item(item_id)
    return web.Response(status=204)


async def get_items_batch(request: web.Request) -> web.Response:
    """Many items at once, in input order, with per-item errors inline."""
    raw = await json_body(request)
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
    app.router.add_get("/api/items", list_items, allow_head=False)
    app.router.add_post("/api/items", create_item)
    app.router.add_post("/api/items/batch", get_items_batch)
    # Not "batch": that path is the batch route's (GET on it is 405, as the document says).
    item = app.router.add_resource("/api/items/{item_id:(?!batch$)[^/]+}")
    item.add_route("GET", get_item)
    item.add_route("PATCH", update_item)
    item.add_route("DELETE", delete_item)
