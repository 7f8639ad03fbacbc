"""The service's one middleware: request ids, errors as JSON, load shedding{% if cookiecutter.use_metrics %} and request metrics{% endif %}.

One middleware rather than one per concern because each is one more coroutine that every
request passes through, and aiohttp adds one of its own as soon as there is any: merging this
service's middlewares into one took 2 % off a ``/health`` request's instructions (counted under
callgrind). The concerns keep their own modules (``common.request_ids``, ``common.errors``,
``shedding``{% if cookiecutter.use_metrics %}, ``observability.metrics``{% endif %}); this one only calls them in order.
"""

from __future__ import annotations

import logging

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler, Middleware

from ..common import request_ids
from ..common.errors import ServiceError, UpstreamError
{%- if cookiecutter.use_metrics %}
from ..observability.metrics import Metrics
from ..observability.request_labels import route_template
{%- endif %}
from .responses import error_response
from .shedding import InFlightLimit

logger = logging.getLogger(__name__)


# Every response names the service, never the framework or versions (aiohttp would add its
# own "Python/3.x aiohttp/3.x" where no Server header is set).
SERVER = "{{ cookiecutter.project_slug }}"


def request_middleware(limit: InFlightLimit | None{% if cookiecutter.use_metrics %}, metrics: Metrics{% endif %}) -> Middleware:
    """The middleware around every request; ``limit`` is the load shedder, if any."""

    @web.middleware
    async def around_request(request: web.Request, handler: Handler) -> web.StreamResponse:
        """Give the request an id (the caller's, if valid) that its log lines carry and its
        response echoes; refuse it with 503 when the service is past its in-flight limit; turn
        HTTP errors, the service's own errors and bugs into ``{"error": ...}``{% if cookiecutter.use_metrics %}; time what
        the client gets{% endif %}."""
        rid = request_ids.accept_or_generate(request.headers.get(request_ids.HEADER_NAME))
        token = request_ids.current.set(rid)
{%- if cookiecutter.use_metrics %}
        route = route_template(request)
        started = metrics.request_started(route)  # None: not counted (a probe)
{%- endif %}
        try:
            if limit is None or not limit.applies_to(request):
                response = await handler(request)
            elif limit.try_enter():
                try:
                    response = await handler(request)
                finally:
                    limit.leave()
            else:
                response = limit.refusal()
        except web.HTTPException as exc:
            if exc.status < 400:  # a redirect: aiohttp sends it
{%- if cookiecutter.use_metrics %}
                if started is not None:
                    metrics.request_finished(request.method, route, exc.status, started)
{%- endif %}
                raise
            headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
            response = error_response(exc.status, exc.reason, headers=headers)
        except ServiceError as exc:
            if exc.log_as is not None:
                _log_service_error(request, exc)
            response = error_response(exc.status, str(exc))
        except Exception:
            logger.exception("unhandled error: %s %r", request.method, request.path)
            response = error_response(500, "internal server error")
{%- if cookiecutter.use_metrics %}
        except BaseException:  # cancelled: no answer was given, so none is counted
            if started is not None:
                metrics.request_abandoned()
            raise
{%- endif %}
        finally:
            request_ids.current.reset(token)
        response.headers[request_ids.HEADER_NAME] = rid
        response.headers[hdrs.SERVER] = SERVER
{%- if cookiecutter.use_metrics %}
        if started is not None:
            metrics.request_finished(request.method, route, response.status, started)
{%- endif %}
        return response

    return around_request


def _log_service_error(request: web.Request, error: ServiceError) -> None:
    """One line per failed request: what failed, the route's path (never its query, which may
    carry personal data) and, for an upstream failure, the upstream's own request id."""
    message, args = "%s: %s %r -> %s", [error.log_as, request.method, request.path, error]
    if isinstance(error, UpstreamError) and error.upstream_request_id is not None:
        message += " (upstream request id %s)"
        args.append(error.upstream_request_id)
    logger.log(error.log_level, message, *args)
