"""Tracing on a started service (``use_tracing=yes``), exported to a real OTLP/HTTP receiver:
spans continue the caller's trace, cross into the upstream, reach the receiver on SIGTERM,
and log lines of a request carry its ids."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from conftest import Bake, Install
from matrix import DEFAULT_PYTHON
from support.otlp_receiver import otlp_receiver
from support.processes import start_service, stop

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("tracing")]


@pytest.fixture(scope="module")
def traced_python(bake: Bake, install: Install) -> Path:
    return install(bake(use_tracing=True), DEFAULT_PYTHON)


def get(url: str, **headers: str) -> int:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return error.code


def start(python: Path, log: Path, **env: str) -> tuple[subprocess.Popen[bytes], str]:
    """The service with ``env``, without this environment's OTEL_ variables; process and URL."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    defaults = {"LOG_FORMAT": "json", "UPSTREAM_RETRY_BACKOFF": "0"}
    return start_service(python, log, inherited | defaults | env)


def test_spans_reach_a_real_receiver_on_sigterm_and_cross_into_the_upstream(
    traced_python: Path, upstream: str, tmp_path: Path
) -> None:
    traces = {f"{n:032x}": f"00-{n:032x}-{n:016x}-01" for n in range(1, 6)}
    log = tmp_path / "service.log"
    with otlp_receiver() as receiver:
        process, base = start(
            traced_python,
            log,
            UPSTREAM_BASE_URL=upstream,
            OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
            # Held back until shutdown: whatever the receiver gets came from the final flush.
            OTEL_BSP_SCHEDULE_DELAY="600000",
        )
        try:
            statuses = [
                get(f"{base}/api/items/{'boom' if n == 5 else f'ok-{n}'}", traceparent=header)
                for n, header in enumerate(traces.values(), start=1)
            ]
            assert get(f"{base}/health") == 200
            before_sigterm = receiver.posts
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=30) == 0
        finally:
            stop(process)
        spans = receiver.spans

    assert statuses == [200, 200, 200, 200, 502]
    assert before_sigterm == 0
    servers = [span for span in spans if span.kind == "SERVER"]
    clients = [span for span in spans if span.kind == "CLIENT"]
    assert sorted(span.trace_id for span in servers) == sorted(traces)
    assert {span.name for span in servers} == {"GET /api/items/{item_id}"}  # not /health
    assert {span.service_name for span in spans} == {"my-async-service"}
    for server in servers:
        n = int(server.trace_id, 16)
        assert server.parent_span_id == f"{n:016x}"  # the caller's span
        assert server.error == (n == 5)
    # Every attempt is a client span under its request's server span (boom: 3 attempts).
    server_of = {server.span_id: server for server in servers}
    assert all(client.parent_span_id in server_of for client in clients)
    assert len(clients) == 4 + 3
    # The upstream got each attempt's context in traceparent.
    with urllib.request.urlopen(upstream + "/__stats", timeout=5) as answer:
        sent = {header.rsplit("-", 1)[0] for header in json.loads(answer.read())["traceparents"]}
    assert {f"00-{client.trace_id}-{client.span_id}" for client in clients} <= sent
    # The request's warning log line carries its trace and span ids.
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    warnings = [line for line in lines if line["level"] == "WARNING"]
    (failure,) = [line for line in warnings if "boom" in line["message"]]
    boom = next(span for span in servers if span.error)
    assert (failure["trace_id"], failure["span_id"]) == (boom.trace_id, boom.span_id)


def test_with_nothing_configured_no_span_is_sent_and_no_error_is_logged(
    traced_python: Path, upstream: str, tmp_path: Path
) -> None:
    log = tmp_path / "service.log"
    process, base = start(traced_python, log, UPSTREAM_BASE_URL=upstream)
    try:
        for n in range(20):
            assert get(f"{base}/api/items/ok-{n}") == 200
    finally:
        assert stop(process) == 0
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]

    assert [line["level"] for line in lines if line["level"] != "INFO"] == []
    assert any("tracing off" in line["message"] for line in lines)


def test_an_exporter_not_shipped_stops_start_with_one_line(
    traced_python: Path, tmp_path: Path
) -> None:
    result = subprocess.run(
        [traced_python, "-m", "my_async_service"],
        env={**os.environ, "OTEL_TRACES_EXPORTER": "zipkin"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )

    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: OTEL_TRACES_EXPORTER=zipkin is invalid: expected otlp or none"
    ]
