"""Multi-core: the generated app runs on several gunicorn aiohttp workers through the project's
gunicorn.conf.py (the service's own settings, WEB_CONCURRENCY workers), answers, drains on
SIGTERM and stops."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from conftest import Bake, Install, run
from matrix import DEFAULT_PYTHON
from support.processes import free_port, stop, wait_until_healthy

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


def test_two_workers_serve_and_stop_cleanly_on_sigterm(
    bake: Bake, install: Install, upstream: str, tmp_path: Path
) -> None:
    project = bake()
    python = install(project, DEFAULT_PYTHON)
    uv_pip = [sys.executable, "-m", "uv", "pip", "install", "-q", "--python", python]
    run([*uv_pip, "-e", ".[gunicorn]"], project)
    port = free_port()
    log = tmp_path / "gunicorn.log"
    with log.open("wb") as log_file:
        # As the generated README runs it: the project's gunicorn.conf.py, the service's settings.
        master = subprocess.Popen(
            [python.parent / "gunicorn", "-c", "gunicorn.conf.py"],
            cwd=project,
            env={
                **os.environ,
                "UPSTREAM_BASE_URL": upstream,
                "LOG_FORMAT": "json",
                "HOST": "127.0.0.1",
                "PORT": str(port),
                "ACCESS_LOG": "true",
                "WEB_CONCURRENCY": "2",
                "SHUTDOWN_TIMEOUT": "10",
                "SHUTDOWN_DRAIN_SECONDS": str(DRAIN),
            },
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        wait_until_healthy(master, f"http://127.0.0.1:{port}", explain=log.read_text)
        health = get(f"http://127.0.0.1:{port}/health")
        deadline = time.monotonic() + 20
        while len(workers := worker_pids(master.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)  # the first worker may answer before the second has booted

        assert health == (200, {"status": "ok"})
        assert get(f"http://127.0.0.1:{port}/api/items/ok-3?token=t0p") == (200, {"id": "ok-3"})
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
        assert get(f"http://127.0.0.1:{port}/api/items/ok-4") == (200, {"id": "ok-4"})
        assert time.monotonic() - signalled < DRAIN
        assert master.wait(timeout=30) == 0
        assert time.monotonic() - signalled >= DRAIN
        output = log.read_text()
        assert "Traceback" not in output
        # The app's access logger also serves gunicorn's access log, query string left out.
        assert '"GET /api/items/ok-3" 200' in output
        assert "t0p" not in output
        assert "refused malformed HTTP from 127.0.0.1" in output
    finally:
        stop(master)
