"""Start and stop the processes that the template tests, the benchmark and ``./dev demo`` run:
the fake upstream, and a service until it answers ``/health``. Everything listens on
127.0.0.1; every process is stopped by pid, with a bound on every wait."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

FAKE_UPSTREAM = Path(__file__).resolve().parent / "fake_upstream.py"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def stop(process: subprocess.Popen[bytes], sig: signal.Signals = signal.SIGTERM) -> int:
    """Signal a process we started, by pid; wait (bounded); kill it if it will not stop."""
    if process.poll() is None:
        process.send_signal(sig)
        try:
            return process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
    return process.returncode


def wait_until_healthy(
    process: subprocess.Popen[bytes],
    url: str,
    timeout: float = 20,
    explain: Callable[[], str] = lambda: "",
) -> float:
    """Poll ``url/health`` until it answers 200; the seconds that took. Raises RuntimeError
    (with ``explain()``, e.g. the log) if the process exits or the time runs out."""
    started = time.perf_counter()
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"exited with {process.returncode} before answering\n{explain()}")
        try:
            with urllib.request.urlopen(url + "/health", timeout=1) as answer:
                if answer.status == 200:
                    return time.perf_counter() - started
        except OSError:
            pass
        if time.perf_counter() - started > timeout:
            raise RuntimeError(f"no answer from {url}/health in {timeout:g} s\n{explain()}")
        time.sleep(0.005)


def start_service(
    python: str | Path,
    log: Path,
    env: Mapping[str, str],
    package: str = "my_async_service",
    **popen: Any,
) -> tuple[subprocess.Popen[bytes], str]:
    """``python -m <package>`` with ``env`` (the whole environment; a bare ``python`` is looked
    up on its PATH) on a free loopback port, its output in ``log``, ``popen`` passed on (e.g.
    ``user``); returns once it answers ``/health``: its process and URL. Stop it with ``stop``."""
    port = free_port()
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            [str(python), "-m", package],
            env={**env, "HOST": "127.0.0.1", "PORT": str(port)},
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            **popen,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(process, url, explain=lambda: log.read_text(errors="replace"))
    except BaseException:
        stop(process)
        raise
    return process, url


@contextmanager
def fake_upstream(
    python: str | Path = sys.executable,
    latency_ms: float = 0,
    started: Callable[[int], None] = lambda pid: None,
    auth: Mapping[str, object] | None = None,
) -> Iterator[str]:
    """The fake upstream in its own process; yields its base URL. ``started`` gets its pid
    (the benchmark pins it to a core); ``auth`` sets the credentials it wants (see
    support/fake_upstream.py)."""
    env = None if auth is None else {**os.environ, "FAKE_UPSTREAM_AUTH": json.dumps(auth)}
    process = subprocess.Popen(
        [str(python), str(FAKE_UPSTREAM), str(latency_ms)],
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        env=env,
    )
    try:
        assert process.stdout is not None
        started(process.pid)
        yield f"http://127.0.0.1:{int(process.stdout.readline())}"
    finally:
        stop(process)
        if process.stdout is not None:
            process.stdout.close()


@contextmanager
def redis_server() -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """A throwaway ``redis-server`` on a free loopback port, nothing saved to disk; yields the
    process and its URL. A missing ``redis-server`` fails (``.ci/run`` installs it)."""
    port = free_port()
    command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1"]
    command += ["--save", "", "--appendonly", "no", "--loglevel", "warning"]
    try:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    except FileNotFoundError:
        missing = "redis-server is not installed (apt-get install redis-server)"
        raise AssertionError(missing) from None
    try:
        deadline = time.monotonic() + 10
        while not _answers_ping(port):
            assert process.poll() is None, f"redis-server exited with {process.returncode}"
            assert time.monotonic() < deadline, "redis-server did not answer PING in 10 s"
            time.sleep(0.01)
        yield process, f"redis://127.0.0.1:{port}/0"
    finally:
        stop(process)


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as connection:
            connection.sendall(b"PING\r\n")
            return connection.recv(16).startswith(b"+PONG")
    except OSError:
        return False
