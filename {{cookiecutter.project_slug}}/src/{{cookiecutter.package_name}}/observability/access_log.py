"""The access log: one line per request, carrying its request id like every other log line.

aiohttp writes the access line after the request's handlers and middlewares have returned, when
the request id's context has already ended, so the id is read back from the response header.
"""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from ..common import request_ids


class AccessLogger(AbstractAccessLogger):
    """``remote "METHOD /path" status bytes seconds``, and the same values as an ``http`` field.

    ``bytes`` counts the whole response, headers included, as aiohttp's own ``%b`` does.

    The query string is left out: it is where callers put tokens, and logs must not hold them.
    """

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        http = {
            "method": request.method,
            "path": request.rel_url.raw_path,  # percent-encoded: a crafted path cannot forge a line
            "status": response.status,
            "bytes": response.body_length,
            "seconds": round(time, 6),
        }
        self.logger.info(
            '%s "%s %s" %d %d %.3fs',
            request.remote or "-",
            http["method"],
            http["path"],
            http["status"],
            http["bytes"],
            time,
            extra={"request_id": response.headers.get(request_ids.HEADER_NAME, "-"), "http": http},
        )

    @property
    def enabled(self) -> bool:
        """Skip the work entirely when INFO is not logged."""
        return self.logger.isEnabledFor(logging.INFO)
