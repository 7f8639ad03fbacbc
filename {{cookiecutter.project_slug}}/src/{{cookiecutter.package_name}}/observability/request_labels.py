"""How metrics and traces name a request: by its route template, never by its raw path, so
the number of series and span names stays bounded whatever clients send."""

from __future__ import annotations

from aiohttp import web

UNMATCHED = "unmatched"  # requests no route answers (404, 405)
# Not measured or traced: orchestrators poll these every few seconds, and /metrics is the
# scrape itself; they would drown the service's real traffic.
PROBES = frozenset({"/health", "/health/live", "/health/ready", "/metrics"})
# The methods HTTP defines; anything else is "_OTHER", as OpenTelemetry names it.
HTTP_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}
)
OTHER_METHOD = "_OTHER"


def route_template(request: web.Request) -> str:
    """``/api/items/{item_id}`` for ``/api/items/7``; ``unmatched`` when no route answers."""
    resource = request.match_info.route.resource
    return UNMATCHED if resource is None else resource.canonical


def method_label(method: str) -> str:
    return method if method in HTTP_METHODS else OTHER_METHOD
