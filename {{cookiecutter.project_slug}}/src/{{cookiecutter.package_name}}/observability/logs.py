"""Logging set-up: readable lines in a terminal, one JSON object per line otherwise.

Every record carries the id of the request it belongs to. Nothing here logs bodies or
headers, so secrets and upstream payloads stay out of the logs.

Lines are written by a thread of their own: a record is formatted where it is logged (the
request id is read there), then queued. A stderr that is slow or that nobody reads (a full
pipe) stalls that thread, never the event loop; past ``QUEUE_SIZE`` waiting lines, new ones
are dropped and counted rather than waited for.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import queue
import sys
from datetime import UTC, datetime
from logging.handlers import QueueHandler, QueueListener

from aiohttp.http_exceptions import HttpProcessingError

from ..common import request_ids
from ..common.jsonlib import dumps
{%- if cookiecutter.use_tracing %}
from .tracing import TraceContextFilter
{%- endif %}

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"
QUEUE_SIZE = 10_000  # lines waiting for the writer thread, at most
STOP_TIMEOUT = 1.0  # seconds the writer gets at exit to write what is queued


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


class DroppingQueueHandler(QueueHandler):
    """Formats each record where it is logged and queues the line for the writer thread. A
    full queue drops the record and counts it: the stock handler would raise ``queue.Full``
    and print a traceback to the very stderr that is stuck."""

    def __init__(self, lines: queue.Queue[logging.LogRecord]) -> None:
        super().__init__(lines)
        self.dropped = 0

    def enqueue(self, record: logging.LogRecord) -> None:
        try:
            self.queue.put_nowait(record)
        except queue.Full:
            self.dropped += 1


class LogWriter(QueueListener):
    """The thread that writes queued lines to stderr."""

    def __init__(self, handler: DroppingQueueHandler, stream: logging.Handler) -> None:
        super().__init__(handler.queue, stream)
        self._handler = handler

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Write what is queued, waiting ``timeout`` seconds at most (the stock ``stop()``
        waits forever for a stderr that may never drain); the thread is a daemon, so a stuck
        one ends with the process."""
        thread = self._thread
        if thread is None:
            return
        if self._handler.dropped:
            note = f"{self._handler.dropped} log lines were dropped: stderr was not read in time"
            fields = {"name": __name__, "msg": note, "levelno": logging.WARNING}
            self._handler.handle(logging.makeLogRecord(fields | {"levelname": "WARNING"}))
        with contextlib.suppress(queue.Full):
            self.enqueue_sentinel()
        thread.join(timeout)
        self._thread = None


def configure_logging(level: str, log_format: str) -> LogWriter:
    """Send logs to stderr through the writer thread; ``log_format`` is "text", "json" or
    "auto" (text on a terminal). The writer is stopped at exit; tests stop it themselves."""
    use_json = log_format == "json" or (log_format == "auto" and not sys.stderr.isatty())
    handler = DroppingQueueHandler(queue.Queue(QUEUE_SIZE))
    handler.addFilter(RequestIdFilter())
{%- if cookiecutter.use_tracing %}
    handler.addFilter(TraceContextFilter())
{%- endif %}
    handler.setFormatter(JsonFormatter() if use_json else logging.Formatter(TEXT_FORMAT))
    stream = logging.StreamHandler()
    stream.setFormatter(logging.Formatter("%(message)s"))  # the line comes formatted
    writer = LogWriter(handler, stream)
    writer.start()
    atexit.register(writer.stop)
    logging.basicConfig(level=level, handlers=[handler], force=True)
    quiet_malformed_requests()
    return writer
