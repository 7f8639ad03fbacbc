"""Load shedding: past ``MAX_IN_FLIGHT`` API requests at once, the next ones get 503 at once.

A process that accepts everything when it is past its capacity makes every request slow
together, and the clients' timeouts then turn all of them into failures. Refusing the excess
in microseconds, with ``Retry-After``, keeps the accepted requests as fast as before and tells
clients (or a load balancer) to try again or elsewhere.

Only ``/api/`` is limited: the probes and ``/metrics`` must answer under overload, or the
orchestrator would restart a pod that is only busy. A batch is one request.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from .responses import error_response

LIMITED_PREFIX = "/api/"
RETRY_AFTER_SECONDS = 1
_RETRY_AFTER = {"Retry-After": str(RETRY_AFTER_SECONDS)}


class InFlightLimit:
    """Counts the API requests being answered and refuses those past ``limit``."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_flight = 0

    def middleware(self) -> Middleware:
        """The middleware that applies the limit; place it last, inside ``request_context``."""

        @web.middleware
        async def shed_load(request: web.Request, handler: Handler) -> web.StreamResponse:
            if not request.path.startswith(LIMITED_PREFIX):
                return await handler(request)
            if self.in_flight >= self.limit:
                return error_response(
                    503, "the service is overloaded: try again shortly", headers=_RETRY_AFTER
                )
            self.in_flight += 1
            try:
                return await handler(request)
            finally:
                self.in_flight -= 1

        return shed_load
