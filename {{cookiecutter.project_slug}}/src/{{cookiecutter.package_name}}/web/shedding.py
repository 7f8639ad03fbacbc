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

from .responses import error_response

LIMITED_PREFIX = "/api/"
RETRY_AFTER_SECONDS = 1
_RETRY_AFTER = {"Retry-After": str(RETRY_AFTER_SECONDS)}


class InFlightLimit:
    """Counts the API requests being answered and refuses those past ``limit``.

    ``middlewares`` applies it: ``applies_to``, then ``try_enter``, and ``leave`` once
    answered, or ``refusal`` when full.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_flight = 0

    @staticmethod
    def applies_to(request: web.Request) -> bool:
        """Whether the request counts against the limit: API routes only."""
        return request.path.startswith(LIMITED_PREFIX)

    def try_enter(self) -> bool:
        """Count one more request in flight, unless that would pass the limit."""
        if self.in_flight >= self.limit:
            return False
        self.in_flight += 1
        return True

    def leave(self) -> None:
        """One request admitted by ``try_enter`` has been answered (or abandoned)."""
        self.in_flight -= 1

    @staticmethod
    def refusal() -> web.Response:
        """The answer to a request past the limit: 503 with ``Retry-After``."""
        return error_response(
            503, "the service is overloaded: try again shortly", headers=_RETRY_AFTER
        )
