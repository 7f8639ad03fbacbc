"""Multi-core: the generated app runs on several gunicorn aiohttp workers through the project's
gunicorn.conf.py (the service's own settings, WEB_CONCURRENCY workers), answers, drains on
SIGTERM and stops."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import Bake, Install
from matrix import DEFAULT_PYTHON
from support.fake_upstream import item
from support.processes import free_port, stop, wait_until_healthy
from support.prometheus import scrape, value

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("gunicorn")]
DRAIN = 2.0


def get(url: str) -> tuple[int, object]:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return answer.status, json.loads(answer.read())


def get_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return error.code


def worker_pids(master_pid: int) -> list[str]:
    return subprocess.run(
        ["pgrep", "-P", str(master_pid)], capture_output=True, text=True, check=False
    ).stdout.split()


@pytest.fixture(scope="module")
def gunicorn_bin(bake: Bake, install: Install) -> tuple[Path, Path]:
    """The default project, installed with its gunicorn extra: (project, gunicorn)."""
    project = bake()
    python = install(project, DEFAULT_PYTHON, extras=("speedups", "gunicorn"))
    return project, python.parent / "gunicorn"


def start_gunicorn(
    gunicorn_bin: tuple[Path, Path], log: Path, port: int, **env: str
) -> subprocess.Popen[bytes]:
    """As the generated README runs it: the project's gunicorn.conf.py, the service's settings;
    returns once two workers are up and the service answers."""
    project, gunicorn = gunicorn_bin
    with log.open("wb") as log_file:
        master = subprocess.Popen(
            [gunicorn, "-c", "gunicorn.conf.py"],
            cwd=project,
            env={
                **os.environ,
                "LOG_FORMAT": "json",
                "HOST": "127.0.0.1",
                "PORT": str(port),
                "WEB_CONCURRENCY": "2",
                **env,
            },
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        wait_until_healthy(master, f"http://127.0.0.1:{port}", explain=log.read_text)
        deadline = time.monotonic() + 20
        while len(worker_pids(master.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)  # the first worker may answer before the second has booted
    except BaseException:
        stop(master)
        raise
    return master


def test_two_workers_serve_and_stop_cleanly_on_sigterm(
    gunicorn_bin: tuple[Path, Path], upstream: str, tmp_path: Path
) -> None:
    port = free_port()
    log = tmp_path / "gunicorn.log"
    master = start_gunicorn(
        gunicorn_bin,
        log,
        port,
        UPSTREAM_BASE_URL=upstream,
        ACCESS_LOG="true",
        SHUTDOWN_TIMEOUT="10",
        SHUTDOWN_DRAIN_SECONDS=str(DRAIN),
    )
    try:
        health = get(f"http://127.0.0.1:{port}/health")
        workers = worker_pids(master.pid)

        assert health == (200, {"status": "ok"})
        assert get(f"http://127.0.0.1:{port}/api/items/ok-3?token=t0p") == (200, item("ok-3"))
        assert len(workers) == 2
        # Refused by the parser: one warning line under gunicorn too, no traceback.
        with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
            connection.sendall(b"GET /health HTTP/1.1\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n")
            assert connection.recv(4096).split(b" ")[1] == b"400"
        master.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        # The workers drain: readiness fails while everything else is still served.
        while (ready := get_status(f"http://127.0.0.1:{port}/health/ready")) == 200:
            assert time.monotonic() - signalled < DRAIN / 2, "readiness still 200 while draining"
            time.sleep(0.02)
        assert ready == 503
        assert get(f"http://127.0.0.1:{port}/api/items/ok-4") == (200, item("ok-4"))
        assert time.monotonic() - signalled < DRAIN
        assert master.wait(timeout=30) == 0
        assert time.monotonic() - signalled >= DRAIN
        output = log.read_text()
        assert "Traceback" not in output
        # In each worker, gunicorn's logs go through the app's writer thread and formatter
        # (LOG_FORMAT=json here); the app's access logger serves gunicorn's access log, query
        # string left out.
        lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
        messages = [line["message"] for line in lines]
        assert any('"GET /api/items/ok-3" 200' in message for message in messages)
        assert "t0p" not in output
        assert any("refused malformed HTTP from 127.0.0.1" in message for message in messages)
    finally:
        stop(master)


def test_every_scrape_of_any_worker_reports_the_totals_of_all_workers(
    gunicorn_bin: tuple[Path, Path], upstream: str, tmp_path: Path
) -> None:
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    # Left by an earlier run: the master must empty the directory, or its counts would add.
    stale = metrics_dir / "histogram_1.db"
    stale.write_bytes(b"\0" * 64)
    port = free_port()
    master = start_gunicorn(
        gunicorn_bin,
        tmp_path / "gunicorn.log",
        port,
        UPSTREAM_BASE_URL=upstream,
        PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
    )
    try:
        workers = worker_pids(master.pid)
        requests, served_by = 0, set()
        # Batches of concurrent requests on new connections, until both workers have answered
        # some (the kernel decides which worker accepts; bounded).
        with ThreadPoolExecutor(max_workers=8) as pool:
            while (len(served_by) < 2 or requests < 60) and requests < 3000:
                urls = [f"http://127.0.0.1:{port}/api/items/ok-{requests + n}" for n in range(20)]
                assert {status for status, _ in pool.map(get, urls)} == {200}
                requests += len(urls)
                served_by = {p.stem.rsplit("_", 1)[1] for p in metrics_dir.glob("histogram_*.db")}
        scrapes = [scrape(f"http://127.0.0.1:{port}") for _ in range(12)]
        # A worker exits (and is replaced): what it counted still counts, it is no longer live.
        os.kill(int(workers[0]), signal.SIGTERM)
        deadline = time.monotonic() + 20
        while workers[0] in worker_pids(master.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)
        after_exit = scrape(f"http://127.0.0.1:{port}")
    finally:
        assert stop(master) == 0

    assert not stale.exists()
    assert len(workers) == 2
    assert served_by == set(workers)  # both workers answered counted requests
    route = {"method": "GET", "route": "/api/items/{item_id}", "status": "200"}
    counted = "http_server_request_duration_seconds_count"
    assert [value(sample, counted, **route) for sample in scrapes] == [requests] * len(scrapes)
    assert value(after_exit, counted, **route) == requests
    attempts = "upstream_request_duration_seconds_count"
    assert value(after_exit, attempts, upstream="example_api", outcome="ok") == requests
    assert value(after_exit, "http_server_requests_in_flight") == 0
    assert not list(metrics_dir.glob(f"gauge_livesum_{workers[0]}.db"))


def test_a_stderr_nobody_reads_never_stalls_a_worker(
    gunicorn_bin: tuple[Path, Path], upstream: str
) -> None:
    # As under `python -m` (test_runtime_contract.py): every worker writes its log lines, and
    # gunicorn's own (its error and access logs), from a thread of its own, started after the
    # fork; with the lines written from the event loop, a pipe nobody read stalled the workers.
    project, gunicorn = gunicorn_bin
    port = free_port()
    env = {**os.environ, "HOST": "127.0.0.1", "PORT": str(port), "WEB_CONCURRENCY": "2"}
    env |= {"UPSTREAM_BASE_URL": upstream, "ACCESS_LOG": "true", "LOG_LEVEL": "INFO"}
    master = subprocess.Popen(
        [gunicorn, "-c", "gunicorn.conf.py"],
        cwd=project,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,  # never read, like stderr
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"

    def get(number: int) -> int:
        try:
            with urllib.request.urlopen(f"{url}/api/items/ok-{number}", timeout=2) as answer:
                return int(answer.status)
        except (OSError, urllib.error.HTTPError):
            return 0

    try:
        wait_until_healthy(master, url)
        with ThreadPoolExecutor(max_workers=20) as pool:
            statuses = list(pool.map(get, range(2000)))
    finally:
        stop(master)
        for pipe in (master.stdout, master.stderr):
            if pipe is not None:
                pipe.close()

    assert statuses.count(200) == 2000, f"{statuses.count(0)} of 2,000 requests unanswered"
