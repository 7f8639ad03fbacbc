"""Cross-cutting request handling: every error leaves as JSON, none as HTML or a traceback."""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.typedefs import Handler

from . import request_ids
from .errors import ServiceError
from .responses import error_response

logger = logging.getLogger(__name__)


# Every response names the service, never the framework or versions (aiohttp would add its
# own "Python/3.x aiohttp/3.x" where no Server header is set).
SERVER = "{{ cookiecutter.project_slug }}"


@web.middleware
async def request_context(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Give the request an id (the caller's, if valid) that its log lines carry and its response
    echoes, and turn HTTP errors, the service's own errors and bugs into ``{"error": ...}``.

    One middleware for both, and the ``Server`` header, because each middleware is one more
    coroutine every request passes through. It is the innermost one but the load shedder, so
    metrics and tracing see the answer the client gets.
    """
    rid = request_ids.accept_or_generate(request.headers.get(request_ids.HEADER))
    token = request_ids.current.set(rid)
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        response = error_response(exc.status, exc.reason, headers=headers)
    except ServiceError as exc:
        if exc.log_as is not None:
            logger.warning("%s: %s %r -> %s", exc.log_as, request.method, request.path, exc)
        response = error_response(exc.status, str(exc))
    except Exception:
        logger.exception("unhandled error: %s %r", request.method, request.path)
        response = error_response(500, "internal server error")
    finally:
        request_ids.current.reset(token)
    response.headers[request_ids.HEADER] = rid
    response.headers["Server"] = SERVER
    return response
