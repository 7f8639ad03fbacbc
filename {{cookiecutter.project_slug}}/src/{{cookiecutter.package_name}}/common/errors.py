"""Every error the service answers with: each knows its HTTP status, its message and whether
it is worth a log line. The error middleware needs nothing else to answer for any of them.

Handlers and the upstream client raise these; aiohttp's client exceptions never leave the
client core.
"""

from __future__ import annotations

import logging
from typing import ClassVar


class ServiceError(Exception):
    """An error with an HTTP answer: ``status`` and ``{"error": str(error)}``."""

    status: ClassVar[int] = 500
    # Logged with this prefix at ``log_level``; None: the caller's mistake, not worth a log line.
    log_as: ClassVar[str | None] = None
    log_level: ClassVar[int] = logging.WARNING


class InvalidRequestError(ServiceError):
    """A request the service understood but will not serve as sent."""

    status = 400


class RequestTimeoutError(InvalidRequestError):
    """The client did not send the whole body in time (``REQUEST_BODY_TIMEOUT``)."""

    status = 408


class UnsupportedMediaTypeError(InvalidRequestError):
    """The body is not in a format this route accepts."""

    status = 415


class UpstreamError(ServiceError):
    """The upstream API did not give a usable answer."""

    status = 502
    log_as = "upstream call failed"
    # The upstream's own X-Request-ID for the failed call, when it sent a safe one: logged, so
    # its operators can find the call in their logs.
    upstream_request_id: str | None = None


class UpstreamNotFoundError(UpstreamError):
    """The upstream API says the requested resource does not exist: a normal answer, not trouble."""

    status = 404
    log_as = "upstream answered 404"
    log_level = logging.INFO


class UpstreamUnavailableError(UpstreamError):
    """Server errors after retries, a failed connection or an unusable response."""

    status = 502


class UpstreamSchemaError(UpstreamError):
    """The upstream answered, but not in the shape its model declares: never retried. The
    message names where (field locations), never what the answer held."""

    status = 502


class UpstreamAuthError(UpstreamError):
    """The upstream (or its token endpoint) refused the service's credentials: a configuration
    problem no retry fixes, so it is logged as an ERROR. The message never holds a credential."""

    status = 502
    log_as = "upstream refused the service's credentials"
    log_level = logging.ERROR

    def __init__(self, message: str, upstream_status: int | None = None) -> None:
        super().__init__(message)
        self.upstream_status = upstream_status  # 401 or 403 from the upstream itself


class UpstreamTimeoutError(UpstreamError):
    """The upstream API did not answer within the time budget."""

    status = 504


class UpstreamCircuitOpenError(UpstreamError):
    """Recent calls failed, so this one was not even tried (see circuit_breaker.py)."""

    status = 503
