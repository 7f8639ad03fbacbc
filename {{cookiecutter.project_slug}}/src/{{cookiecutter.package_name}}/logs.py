"""Logging set-up: readable lines in a terminal, one JSON object per line otherwise.

Every record carries the id of the request it belongs to. Nothing here logs bodies or
headers, so secrets and upstream payloads stay out of the logs.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime

from . import request_ids
from .jsonlib import dumps

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
        http = getattr(record, "http", None)
        if http is not None:
            entry["http"] = http
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return dumps(entry).decode()


def configure_logging(level: str, log_format: str) -> None:
    """Send logs to stderr; ``log_format`` is "text", "json" or "auto" (text on a terminal)."""
    use_json = log_format == "json" or (log_format == "auto" and not sys.stderr.isatty())
    handler = logging.StreamHandler()
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter() if use_json else logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=level, handlers=[handler], force=True)
