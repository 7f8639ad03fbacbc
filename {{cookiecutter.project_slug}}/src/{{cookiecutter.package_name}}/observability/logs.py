"""Logging set-up: readable lines in a terminal, one JSON object per line otherwise.

Every record carries the id of the request it belongs to. Nothing here logs bodies or
headers, so secrets and upstream payloads stay out of the logs.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime

from aiohttp.http_exceptions import HttpProcessingError

from ..common import request_ids
from ..common.jsonlib import dumps
{%- if cookiecutter.use_tracing %}
from .tracing import TraceContextFilter
{%- endif %}

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"


class RequestIdFilter(logging.Filter):
    """Stamp each record with the current request id ("-" outside a request).

    A record that already names its request (the access log's does) keeps that id.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            record.request_id = request_ids.current.get()
        return True


class JsonFormatter(logging.Formatter):
    """One compact JSON object per record, for log shippers."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
        }
        for extra in ("trace_id", "span_id", "http"):  # set by filters or the access log
            value = getattr(record, extra, None)
            if value is not None:
                entry[extra] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return dumps(entry).decode()


class MalformedRequestFilter(logging.Filter):
    """Turn aiohttp's ERROR-with-traceback for a request its HTTP parser refused (an oversized
    header, a NUL byte, a too-long URL) into one WARNING line with the peer and the reason:
    scanners send such bytes all day, and they are no error of the service's."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if record.levelno >= logging.ERROR and isinstance(error, HttpProcessingError):
            peer = record.args[0] if isinstance(record.args, tuple) else "-"
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.msg, record.args = "refused malformed HTTP from %s: %s", (peer, error.message)
            record.exc_info, record.exc_text = None, None
        return True


def quiet_malformed_requests() -> None:
    """Install the filter on the loggers aiohttp's server logs through (gunicorn's under it)."""
    for name in ("aiohttp.server", "gunicorn.error"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, MalformedRequestFilter) for f in logger.filters):
            logger.addFilter(MalformedRequestFilter())


def configure_logging(level: str, log_format: str) -> None:
    """Send logs to stderr; ``log_format`` is "text", "json" or "auto" (text on a terminal)."""
    use_json = log_format == "json" or (log_format == "auto" and not sys.stderr.isatty())
    handler = logging.StreamHandler()
    handler.addFilter(RequestIdFilter())
{%- if cookiecutter.use_tracing %}
    handler.addFilter(TraceContextFilter())
{%- endif %}
    handler.setFormatter(JsonFormatter() if use_json else logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    quiet_malformed_requests()
