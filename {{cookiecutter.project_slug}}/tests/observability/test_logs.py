"""Log records carry the request id; the JSON format is one parseable object per line."""

from __future__ import annotations

import json
import logging
import queue
import threading
import time

import pytest
from aiohttp.http_exceptions import LineTooLong

from {{ cookiecutter.package_name }}.common import request_ids
from {{ cookiecutter.package_name }}.observability.logs import (
    DroppingQueueHandler,
    JsonFormatter,
    LogWriter,
    MalformedRequestFilter,
    RequestIdFilter,
    configure_logging,
)


def make_record(message: str) -> logging.LogRecord:
    return logging.LogRecord("svc", logging.WARNING, __file__, 1, message, None, None)


def filter_during_request(record: logging.LogRecord, current_id: str) -> None:
    """Run the filter as it runs while the request ``current_id`` is being handled."""
    token = request_ids.current.set(current_id)
    try:
        RequestIdFilter().filter(record)
    finally:
        request_ids.current.reset(token)


def test_records_are_stamped_with_the_current_request_id() -> None:
    record = make_record("hello")

    filter_during_request(record, "abc-1")

    assert getattr(record, "request_id", None) == "abc-1"


def test_outside_a_request_the_id_is_a_dash() -> None:
    record = make_record("hello")

    RequestIdFilter().filter(record)

    assert getattr(record, "request_id", None) == "-"


def test_a_record_that_names_its_request_keeps_that_id() -> None:
    record = make_record("access line")
    record.request_id = "from-the-response"

    filter_during_request(record, "other")

    assert getattr(record, "request_id", None) == "from-the-response"


def test_json_lines_carry_the_access_logs_http_fields() -> None:
    record = make_record("access line")
    record.http = {"method": "GET", "path": "/health", "status": 200}

    entry = json.loads(JsonFormatter().format(record))

    assert entry["http"] == {"method": "GET", "path": "/health", "status": 200}


def test_json_lines_hold_level_message_and_request_id() -> None:
    record = make_record('quote " and \\ newline \n end')
    record.request_id = "abc-1"

    line = JsonFormatter().format(record)

    assert "\n" not in line
    entry = json.loads(line)
    assert entry["level"] == "WARNING"
    assert entry["message"] == 'quote " and \\ newline \n end'
    assert entry["request_id"] == "abc-1"


@pytest.mark.usefixtures("restore_logging")
def test_json_format_writes_one_object_per_line_to_stderr(
    capsys: pytest.CaptureFixture[str],
) -> None:
    writer = configure_logging("INFO", "json")

    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("svc").exception("failed")
    writer.stop()  # the writer thread has written every queued line

    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    entry = json.loads(lines[0])
    assert entry["message"] == "failed"
    assert "ValueError: boom" in entry["exception"]


@pytest.mark.usefixtures("restore_logging")
def test_text_format_is_readable_and_respects_the_level(
    capsys: pytest.CaptureFixture[str],
) -> None:
    writer = configure_logging("WARNING", "text")

    logging.getLogger("svc").info("hidden")
    logging.getLogger("svc").warning("shown")
    writer.stop()

    err = capsys.readouterr().err
    assert "hidden" not in err
    assert "WARNING svc [-] shown" in err


def aiohttp_error_record(error: Exception, level: int = logging.ERROR) -> logging.LogRecord:
    """The record aiohttp's server logs for a request it could not handle."""
    return logging.LogRecord(
        "aiohttp.server",
        level,
        __file__,
        1,
        "Error handling request from %s",
        ("203.0.113.9",),
        (type(error), error, None),
    )


def test_a_refused_malformed_request_is_one_warning_without_traceback() -> None:
    record = aiohttp_error_record(LineTooLong(b"header line", "8190", "20000"))

    assert MalformedRequestFilter().filter(record)

    assert record.levelno == logging.WARNING
    assert record.exc_info is None
    assert record.getMessage().startswith("refused malformed HTTP from 203.0.113.9: ")


def test_a_real_application_error_stays_an_error_with_its_traceback() -> None:
    record = aiohttp_error_record(RuntimeError("bug"))

    assert MalformedRequestFilter().filter(record)

    assert record.levelno == logging.ERROR
    assert record.exc_info is not None


def test_a_full_queue_drops_and_counts_records_without_raising() -> None:
    lines: queue.Queue[logging.LogRecord] = queue.Queue(maxsize=1)
    handler = DroppingQueueHandler(lines)

    for message in ("kept", "dropped", "dropped too"):
        handler.handle(make_record(message))

    assert handler.dropped == 2
    assert lines.get_nowait().getMessage().endswith("kept")


class StuckStream(logging.Handler):
    """A stderr nobody reads: writing blocks until released."""

    def __init__(self) -> None:
        super().__init__()
        self.released = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.released.wait()


def test_stopping_the_writer_is_bounded_when_stderr_is_stuck() -> None:
    handler, stuck = DroppingQueueHandler(queue.Queue(maxsize=10)), StuckStream()
    writer = LogWriter(handler, stuck)
    writer.start()
    handler.handle(make_record("never written"))

    started = time.perf_counter()
    writer.stop(timeout=0.1)
    waited = time.perf_counter() - started

    stuck.released.set()  # let the thread end
    assert 0.1 <= waited < 1.0
