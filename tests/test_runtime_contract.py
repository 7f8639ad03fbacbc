"""End to end: the baked default project, installed and started with ``python -m``, keeps its
runtime contract against a real misbehaving upstream (tests/support/fake_upstream.py).

Everything listens on 127.0.0.1, every wait is bounded, and every process is stopped by pid.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from conftest import Bake, Install, run
from matrix import DEFAULT_PYTHON
from support.fake_upstream import item
from support.processes import free_port, stop, wait_until_healthy
from support.prometheus import scrape, value

PACKAGE = "my_async_service"
SERVICE_ENV = {
    "HOST": "127.0.0.1",
    "UPSTREAM_TIMEOUT": "1.5",
    "UPSTREAM_RETRIES": "2",
    "UPSTREAM_RETRY_BACKOFF": "0.01",
    "UPSTREAM_POOL_SIZE": "20",
    "LOG_FORMAT": "json",
    "SHUTDOWN_TIMEOUT": "5",
}

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("runtime-contract")]


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: Any


@dataclass
class Service:
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        request = urllib.request.Request(
            self.url + path, data=body, method=method, headers=headers or {}
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                status, raw, answer_headers = answer.status, answer.read(), answer.headers
        except urllib.error.HTTPError as error:
            status, raw, answer_headers = error.code, error.read(), error.headers
        assert answer_headers.get_content_type() == "application/json", raw[:200]
        return Response(status, dict(answer_headers), json.loads(raw))

    def get(self, path: str, **headers: str) -> Response:
        return self.request("GET", path, headers=headers)

    def post_json(self, path: str, payload: bytes) -> Response:
        return self.request("POST", path, payload, {"Content-Type": "application/json"})


@pytest.fixture(scope="module")
def service_python(bake: Bake, install: Install) -> Path:
    return install(bake(), DEFAULT_PYTHON)


def upstream_stats(upstream_url: str) -> dict[str, Any]:
    with urllib.request.urlopen(upstream_url + "/__stats", timeout=5) as answer:
        stats: dict[str, Any] = json.loads(answer.read())
        return stats


@contextmanager
def running_service(
    python: Path, tmp_path: Path, upstream_url: str, **env: str
) -> Iterator[Service]:
    port = free_port()
    log = tmp_path / f"service-{port}.log"
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            [python, "-m", PACKAGE],
            env={
                **os.environ,
                **SERVICE_ENV,
                "PORT": str(port),
                "UPSTREAM_BASE_URL": upstream_url,
                **env,
            },
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    service = Service(process, f"http://127.0.0.1:{port}", log)
    try:
        wait_until_healthy(process, service.url, explain=log.read_text)
        yield service
    finally:
        stop(process)


@pytest.fixture
def service(service_python: Path, tmp_path: Path, upstream: str) -> Iterator[Service]:
    with running_service(service_python, tmp_path, upstream) as running:
        yield running


# --- the HTTP contract ---------------------------------------------------------------------


def test_health_answers_without_calling_the_upstream(service: Service, upstream: str) -> None:
    response = service.get("/health")

    assert (response.status, response.body) == (200, {"status": "ok"})
    assert upstream_stats(upstream)["paths"] == []


def test_item_is_passed_through_from_the_upstream(service: Service) -> None:
    response = service.get("/api/items/ok-7")

    assert (response.status, response.body) == (200, item("ok-7"))


@pytest.mark.parametrize(
    ("item_id", "status"),
    [
        ("missing", 404),
        ("boom", 502),
        ("badjson", 502),
        ("html", 502),
        ("huge", 502),
        ("reset", 502),
        ("hang", 504),
    ],
)
def test_upstream_failures_map_to_json_errors_and_the_service_stays_up(
    service: Service, item_id: str, status: int
) -> None:
    response = service.get(f"/api/items/{item_id}")

    assert response.status == status
    assert set(response.body) == {"error"}
    assert service.get("/api/items/ok-1").status == 200
    assert "oops" not in service.log.read_text()  # upstream bodies never reach the logs


def test_server_errors_are_retried_up_to_the_cap(service: Service, upstream: str) -> None:
    assert service.get("/api/items/boom").status == 502

    assert upstream_stats(upstream)["paths"].count("/items/boom") == 3


@pytest.mark.parametrize("item_id", ["flaky-1", "slow-1"])
def test_transient_trouble_still_ends_in_200(service: Service, item_id: str) -> None:
    response = service.get(f"/api/items/{item_id}")

    assert (response.status, response.body) == (200, item(item_id))


def test_retry_after_is_waited_out_before_the_retry(service: Service, upstream: str) -> None:
    started = time.monotonic()
    response = service.get("/api/items/limited-1")
    elapsed = time.monotonic() - started

    assert (response.status, response.body) == (200, item("limited-1"))
    assert upstream_stats(upstream)["paths"].count("/items/limited-1") == 2
    # The upstream said "Retry-After: 1"; the service's own backoff would be about 10 ms.
    assert elapsed >= 0.95


def test_connection_refused_is_502(service_python: Path, tmp_path: Path) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    with running_service(service_python, tmp_path, nowhere) as service:
        response = service.get("/api/items/1")

    assert response.status == 502
    assert "error" in response.body


def test_hang_is_504_within_the_budget_while_health_stays_fast(service: Service) -> None:
    async def scenario() -> tuple[int, float, list[float]]:
        async with aiohttp.ClientSession(service.url) as session:
            started = time.monotonic()
            hanging = asyncio.create_task(session.get("/api/items/hang"))
            health_times = []
            for _ in range(5):
                await asyncio.sleep(0.1)
                before = time.monotonic()
                async with session.get("/health") as health:
                    assert health.status == 200
                health_times.append(time.monotonic() - before)
            async with await hanging as response:
                return response.status, time.monotonic() - started, health_times

    status, elapsed, health_times = asyncio.run(scenario())

    assert status == 504
    assert elapsed < 1.5 + 1.0  # UPSTREAM_TIMEOUT plus slack for a busy machine
    assert max(health_times) < 0.5


def test_batch_keeps_order_and_reports_failures_inline(service: Service) -> None:
    response = service.post_json("/api/items/batch", b'{"ids": ["ok-1", "missing", 3, "boom"]}')

    assert response.status == 200
    assert [entry["id"] for entry in response.body["results"]] == ["ok-1", "missing", 3, "boom"]
    assert [entry.get("status", 200) for entry in response.body["results"]] == [200, 404, 200, 502]


@pytest.mark.parametrize(
    "payload",
    [
        b"{not json",
        b'{"ids": []}',
        b'{"ids": "ok-1"}',
        b'{"ids": [null]}',
        b'{"ids": [' + b",".join(b'"%d"' % i for i in range(101)) + b"]}",
        b"[" * 30_000 + b"]" * 30_000,
    ],
    ids=["malformed", "empty", "not-a-list", "null-id", "too-many", "deeply-nested"],
)
def test_bad_batch_bodies_are_400(service: Service, payload: bytes) -> None:
    response = service.post_json("/api/items/batch", payload)

    assert response.status == 400
    assert "error" in response.body


def test_oversized_body_is_413(service: Service) -> None:
    response = service.post_json("/api/items/batch", b" " * (1024 * 1024))

    assert response.status == 413
    assert "error" in response.body


def test_body_without_json_content_type_is_415(service: Service) -> None:
    response = service.request(
        "POST", "/api/items/batch", b'{"ids": ["1"]}', {"Content-Type": "text/plain"}
    )

    assert response.status == 415


@pytest.mark.parametrize(
    "path",
    [
        "/api/items/..",
        "/api/items/%2e%2e",
        "/api/items/..%2F..%2Fadmin",
        "/api/items/a%2Fb",
        "/api/items/x%3Fdebug=1",
        "/api/items/x%23frag",
        "/api/items/%00",
    ],
)
def test_path_tricks_in_item_id_are_4xx_and_never_reach_the_upstream(
    service: Service, upstream: str, path: str
) -> None:
    response = service.get(path)

    assert 400 <= response.status < 500
    assert "error" in response.body
    assert upstream_stats(upstream)["paths"] == []


def test_unknown_route_and_wrong_method_are_json(service: Service) -> None:
    unknown = service.get("/nope")
    wrong = service.request("PUT", "/api/items/1")
    patch = service.request("PATCH", "/health")

    assert (unknown.status, unknown.body) == (404, {"error": "Not Found"})
    assert (wrong.status, wrong.body) == (405, {"error": "Method Not Allowed"})
    assert (patch.status, patch.body) == (405, {"error": "Method Not Allowed"})


@pytest.mark.parametrize(
    "raw_request",
    [
        b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n",
        b"BREW /health HTTP/1.1\r\nHost: x\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n",
    ],
    ids=["huge-header", "unknown-method", "not-http"],
)
def test_malformed_http_is_400_and_the_service_stays_up(
    service: Service, raw_request: bytes
) -> None:
    # aiohttp's parser refuses these before any middleware runs: a plain-text 400.
    host, port = service.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as connection:
        connection.sendall(raw_request)
        status_line = connection.recv(4096).split(b"\r\n", 1)[0]

    assert status_line.split(b" ")[1] == b"400"
    assert service.get("/health").status == 200


def test_request_id_is_echoed_sent_upstream_and_in_every_log_line_of_the_request(
    service_python: Path, tmp_path: Path, upstream: str
) -> None:
    with running_service(service_python, tmp_path, upstream, ACCESS_LOG="true") as service:
        response = service.get("/api/items/boom", **{"X-Request-ID": "e2e-trace-1"})
        service.get("/api/items/ok-2")  # another request, whose lines must not carry the id
    # Read once the service has stopped: the access line is written just after the response.
    log_text = service.log.read_text()

    assert response.headers["X-Request-ID"] == "e2e-trace-1"
    # Each of the three attempts (UPSTREAM_RETRIES=2) passed the id on.
    assert upstream_stats(upstream)["request_ids"][:3] == ["e2e-trace-1"] * 3
    lines = [json.loads(line) for line in log_text.splitlines() if line.startswith("{")]
    of_the_request = [line for line in lines if "/api/items/boom" in line["message"]]
    # The upstream-failure warning and the access line, both stamped with the caller's id.
    assert {line["logger"] for line in of_the_request} >= {"aiohttp.access"}
    assert len(of_the_request) >= 2
    assert all(line["request_id"] == "e2e-trace-1" for line in of_the_request)
    other_ids = {line["request_id"] for line in lines if "/api/items/ok-2" in line["message"]}
    assert len(other_ids) == 1
    assert other_ids.isdisjoint({"e2e-trace-1", "-"})  # a generated id of its own


def test_a_stderr_nobody_reads_never_stalls_requests(service_python: Path, upstream: str) -> None:
    # Before log lines went through a writer thread, a pipe nobody read filled after about
    # 64 KiB of lines, and the event loop blocked writing to it: of 2,000 requests with the
    # access log on, 1,873 never got an answer. blockbuster does not look at stderr writes.
    port = free_port()
    env = {**os.environ, **SERVICE_ENV, "PORT": str(port), "UPSTREAM_BASE_URL": upstream}
    env |= {"ACCESS_LOG": "true", "LOG_LEVEL": "INFO"}
    process = subprocess.Popen(
        [service_python, "-m", PACKAGE],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,  # never read
    )
    url = f"http://127.0.0.1:{port}"

    async def load(requests: int, connections: int) -> list[int]:
        timeout = aiohttp.ClientTimeout(total=2)
        numbers = iter(range(requests))
        statuses: list[int] = []
        async with aiohttp.ClientSession(timeout=timeout) as session:

            async def worker() -> None:
                for number in numbers:
                    try:
                        async with session.get(f"{url}/api/items/ok-{number}") as response:
                            statuses.append(response.status)
                    except (aiohttp.ClientError, TimeoutError):
                        statuses.append(0)

            await asyncio.gather(*(worker() for _ in range(connections)))
        return statuses

    try:
        wait_until_healthy(process, url)
        statuses = asyncio.run(load(2000, 20))
    finally:
        stop(process)
        assert process.stderr is not None
        process.stderr.close()

    assert statuses.count(200) == 2000, f"{statuses.count(0)} of 2,000 requests unanswered"


def test_circuit_breaker_fails_fast_once_open(
    service_python: Path, tmp_path: Path, upstream: str
) -> None:
    with running_service(
        service_python, tmp_path, upstream, CIRCUIT_BREAKER_THRESHOLD="2", UPSTREAM_RETRIES="0"
    ) as service:
        statuses = [service.get("/api/items/boom").status for _ in range(4)]

    assert statuses == [502, 502, 503, 503]
    assert upstream_stats(upstream)["paths"].count("/items/boom") == 2


def test_a_missing_item_logs_info_a_failure_warns_and_the_start_is_one_line(
    service: Service,
) -> None:
    assert service.get("/api/items/missing").status == 404
    assert service.get("/api/items/boom").status == 502
    stop(service.process)  # every line written
    lines = [json.loads(line) for line in service.log.read_text().splitlines()]

    levels = {
        path: [line["level"] for line in lines if path in line["message"]]
        for path in ("/api/items/missing", "/api/items/boom")
    }
    assert levels == {"/api/items/missing": ["INFO"], "/api/items/boom": ["WARNING"]}
    started = [line["message"] for line in lines if "Running on" in line["message"]]
    assert started == [service.url.replace("http://", "Running on http://")]
    assert not any("CTRL+C" in line["message"] for line in lines)


# --- process lifecycle ---------------------------------------------------------------------


def test_bad_setting_exits_2_with_one_line_naming_it(service_python: Path) -> None:
    result = subprocess.run(
        [service_python, "-m", PACKAGE],
        env={**os.environ, "PORT": "abc"},
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
        check=False,
    )

    assert result.returncode == 2
    assert result.stderr.startswith("error: PORT='abc' is invalid")
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr + result.stdout


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_lets_in_flight_requests_finish_then_exits_0(
    service: Service, upstream: str, sig: signal.Signals
) -> None:
    async def scenario() -> tuple[int, Any]:
        async with aiohttp.ClientSession(service.url) as session:
            in_flight = asyncio.create_task(session.get("/api/items/slow-1"))
            while not upstream_stats(upstream)["paths"]:
                await asyncio.sleep(0.02)
            service.process.send_signal(sig)
            async with await in_flight as response:
                return response.status, await response.json()

    status, body = asyncio.run(scenario())

    assert (status, body) == (200, item("slow-1"))
    assert service.process.wait(timeout=15) == 0
    assert "Traceback" not in service.log.read_text()


# --- load ----------------------------------------------------------------------------------

LOAD_REQUESTS = 2_000
LOAD_CONCURRENCY = 100
LOAD_MIX = [("ok-{n}", 200), ("missing", 404), ("ok-{n}", 200), ("boom", 502)]


@dataclass(frozen=True)
class FdCensus:
    """A process's open file descriptors, with its sockets to the upstream counted apart."""

    upstream_sockets: int
    other: int


def fd_census(pid: int, upstream_url: str) -> FdCensus:
    """Read /proc: which of ``pid``'s descriptors are TCP sockets connected to the upstream."""
    upstream_port = int(upstream_url.rsplit(":", 1)[1])
    to_upstream: set[str] = set()
    for table in ("tcp", "tcp6"):
        with contextlib.suppress(FileNotFoundError):
            for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
                fields = line.split()
                if int(fields[2].rsplit(":", 1)[1], 16) == upstream_port:
                    to_upstream.add(f"socket:[{fields[9]}]")
    targets = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(FileNotFoundError):  # closed while we looked
            targets.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
    upstream_sockets = sum(target in to_upstream for target in targets)
    return FdCensus(upstream_sockets, len(targets) - upstream_sockets)


def test_slow_body_and_idle_clients_are_cut_and_normal_traffic_is_unaffected(
    service_python: Path, tmp_path: Path, upstream: str
) -> None:
    body_timeout, keepalive, lingering = 1.0, 2.0, 2.0  # lingering: the app's LINGERING_SECONDS
    settings = {"REQUEST_BODY_TIMEOUT": str(body_timeout), "KEEPALIVE_TIMEOUT": str(keepalive)}
    with running_service(service_python, tmp_path, upstream, **settings) as service:
        pid, port = service.process.pid, int(service.url.rsplit(":", 1)[1])
        assert service.get("/api/items/ok-warmup").status == 200
        baseline = fd_census(pid, upstream).other

        async def clients() -> tuple[list[int], list[tuple[bytes, float]], list[float]]:
            loop = asyncio.get_running_loop()
            request = (  # declares 1,000 bytes, sends one, then says nothing more
                b"POST /api/items/batch HTTP/1.1\r\nHost: t\r\n"
                b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"
            )

            async def connection(first_bytes: bytes) -> tuple[bytes, float]:
                """Connect, send ``first_bytes``; what the service sends until it closes, and
                how long after starting to connect it closed (taken before the connection is
                open, which the service's clock can only start later: with 200 connections
                opening at once, a time taken after it lagged by 0.2 s)."""
                opened = loop.time()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(first_bytes)
                answer = await reader.read()
                writer.close()
                return answer, loop.time() - opened

            slow = asyncio.gather(*(connection(request) for _ in range(100)))
            idle = asyncio.gather(*(connection(b"") for _ in range(100)))
            async with aiohttp.ClientSession(service.url) as session:
                statuses = []
                for n in range(50):  # normal traffic beside them, one request at a time
                    async with session.get(f"/api/items/ok-{n}") as response:
                        statuses.append(response.status)
            slow_answers, idle_answers = await slow, await idle
            return statuses, slow_answers, [seconds for _, seconds in idle_answers]

        statuses, slow_answers, idle_seconds = asyncio.run(asyncio.wait_for(clients(), timeout=30))
        deadline = time.monotonic() + 5
        while (after := fd_census(pid, upstream).other) != baseline:
            if time.monotonic() > deadline:
                break
            time.sleep(0.1)

    assert statuses == [200] * 50
    assert all(answer.startswith(b"HTTP/1.1 408 ") for answer, _ in slow_answers)
    slow_seconds = [seconds for _, seconds in slow_answers]
    assert body_timeout - 0.2 < min(slow_seconds)
    assert max(slow_seconds) < body_timeout + lingering + 1.5
    assert keepalive - 0.2 < min(idle_seconds)
    assert max(idle_seconds) < keepalive + 1.5
    assert after == baseline  # every descriptor of theirs released


def test_burst_of_mixed_requests_gets_expected_statuses_and_leaks_nothing(
    service: Service, upstream: str
) -> None:
    pid = service.process.pid
    assert service.get("/api/items/ok-warmup").status == 200
    fds_before = fd_census(pid, upstream)
    connections_before = upstream_stats(upstream)["connections"]

    async def burst() -> tuple[dict[tuple[int, int], int], int]:
        outcomes: dict[tuple[int, int], int] = {}
        failures = 0
        gate = asyncio.Semaphore(LOAD_CONCURRENCY)
        connector = aiohttp.TCPConnector(limit=LOAD_CONCURRENCY)
        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(
            service.url, connector=connector, timeout=timeout
        ) as session:

            async def one(n: int) -> None:
                nonlocal failures
                template, expected = LOAD_MIX[n % len(LOAD_MIX)]
                async with gate:
                    try:
                        async with session.get("/api/items/" + template.format(n=n)) as response:
                            await response.read()
                            key = (expected, response.status)
                            outcomes[key] = outcomes.get(key, 0) + 1
                    except aiohttp.ClientError:
                        failures += 1

            await asyncio.wait_for(asyncio.gather(*(one(n) for n in range(LOAD_REQUESTS))), 120)
        return outcomes, failures

    outcomes, dropped = asyncio.run(burst())

    assert dropped == 0
    assert all(expected == got for expected, got in outcomes), outcomes
    assert sum(outcomes.values()) == LOAD_REQUESTS
    # Upstream connections come from the bounded pool (UPSTREAM_POOL_SIZE=20) and are reused.
    assert upstream_stats(upstream)["connections"] - connections_before <= 20
    # Every descriptor but the idle keep-alive pool to the upstream is back to its baseline
    # once the load's inbound connections have closed; the pool stays within its bound.
    deadline = time.monotonic() + 5
    while fd_census(pid, upstream).other != fds_before.other and time.monotonic() < deadline:
        time.sleep(0.1)
    fds_after = fd_census(pid, upstream)
    assert fds_after.other == fds_before.other, (fds_before, fds_after)
    assert fds_before.upstream_sockets >= 1  # the census does see the warm-up's connection
    assert fds_after.upstream_sockets <= 20
    assert service.get("/health").status == 200


def test_shutdown_drain_is_bounded_by_shutdown_timeout(
    service_python: Path, tmp_path: Path, upstream: str
) -> None:
    with running_service(
        service_python, tmp_path, upstream, UPSTREAM_TIMEOUT="60", SHUTDOWN_TIMEOUT="1"
    ) as service:

        async def scenario() -> float:
            async with aiohttp.ClientSession(service.url) as session:
                stuck = asyncio.create_task(session.get("/api/items/hang"))
                while not upstream_stats(upstream)["paths"]:
                    await asyncio.sleep(0.02)
                started = time.monotonic()
                service.process.send_signal(signal.SIGTERM)
                await asyncio.to_thread(service.process.wait, 30)
                stuck.cancel()
                with contextlib.suppress(asyncio.CancelledError, aiohttp.ClientError):
                    await stuck
                return time.monotonic() - started

        drain_seconds = asyncio.run(scenario())

    assert service.process.returncode == 0
    assert drain_seconds < 1 + 3  # SHUTDOWN_TIMEOUT plus slack, far below the 60 s hang


# --- the API description ---------------------------------------------------------------------


def test_the_started_service_keeps_to_its_openapi_document(
    service: Service, service_python: Path
) -> None:
    # The generated project's own schemathesis.toml (both modes, deterministic, bounded) and
    # schemathesis' command line, as the generated README shows it.
    project = service_python.parent.parent.parent
    document = service.get("/openapi.json")
    assert document.status == 200 and document.body["openapi"].startswith("3.1")
    result = run(
        [service_python.parent / "schemathesis", "run", service.url + "/openapi.json"],
        project,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "No issues found" in result.stdout or " passed" in result.stdout, result.stdout


# --- protecting the upstream ------------------------------------------------------------


def test_concurrent_requests_for_one_item_cost_the_upstream_one_call(
    service: Service, upstream: str
) -> None:
    async def fifty() -> list[tuple[int, object]]:
        async with aiohttp.ClientSession(service.url) as session:

            async def one() -> tuple[int, object]:
                async with session.get("/api/items/slow-7") as response:  # upstream takes 0.3 s
                    return response.status, await response.json()

            return await asyncio.gather(*(one() for _ in range(50)))

    answers = asyncio.run(asyncio.wait_for(fifty(), timeout=30))

    assert answers == [(200, item("slow-7"))] * 50
    assert upstream_stats(upstream)["paths"].count("/items/slow-7") == 1


def test_the_upstream_never_sees_more_than_the_rate_limit_plus_its_burst(
    service_python: Path, tmp_path: Path, upstream: str
) -> None:
    limit, requests = 20, 120
    settings = {"UPSTREAM_RATE_LIMIT": str(limit), "UPSTREAM_TIMEOUT": "10"}
    with running_service(service_python, tmp_path, upstream, **settings) as service:

        async def load() -> list[int]:
            async with aiohttp.ClientSession(service.url) as session:

                async def one(n: int) -> int:
                    async with session.get(f"/api/items/ok-limited-{n}") as response:
                        return response.status

                return await asyncio.gather(*(one(n) for n in range(requests)))

        statuses = asyncio.run(asyncio.wait_for(load(), timeout=30))
        stats = upstream_stats(upstream)
        arrivals = sorted(
            at
            for at, path in zip(stats["arrivals"], stats["paths"], strict=True)
            if "ok-limited-" in path
        )

    assert statuses == [200] * requests
    assert len(arrivals) == requests
    busiest_second = max(sum(start <= at < start + 1.0 for at in arrivals) for start in arrivals)
    assert busiest_second <= 2 * limit  # the limit, plus a burst of as many
    assert arrivals[-1] - arrivals[0] >= (requests - limit) / limit - 0.5  # it did wait


def test_overload_is_refused_at_once_while_accepted_requests_keep_their_pace(
    service_python: Path, tmp_path: Path, upstream: str
) -> None:
    limit, clients, seconds = 10, 60, 3.0  # six times the limit, each upstream call 0.3 s
    with running_service(service_python, tmp_path, upstream, MAX_IN_FLIGHT=str(limit)) as service:

        async def overload() -> list[tuple[int, float, str | None]]:
            answers: list[tuple[int, float, str | None]] = []
            ids = itertools.count()
            connector = aiohttp.TCPConnector(limit=clients)
            async with aiohttp.ClientSession(service.url, connector=connector) as session:
                end = time.monotonic() + seconds

                async def client() -> None:
                    while time.monotonic() < end:
                        sent = time.monotonic()
                        async with session.get(f"/api/items/slow-{next(ids)}") as response:
                            await response.read()
                            retry_after = response.headers.get("Retry-After")
                            answers.append((response.status, time.monotonic() - sent, retry_after))
                        if response.status == 503:
                            await asyncio.sleep(0.05)  # a client that backs off, a little

                await asyncio.gather(*(client() for _ in range(clients)))
            return answers

        answers = asyncio.run(asyncio.wait_for(overload(), timeout=seconds + 30))
        in_flight_after = value(scrape(service.url), "http_server_requests_in_flight")
        stats = upstream_stats(upstream)

    accepted = sorted(elapsed for status, elapsed, _ in answers if status == 200)
    refused = sorted(elapsed for status, elapsed, _ in answers if status == 503)
    assert {status for status, _, _ in answers} == {200, 503}
    assert {retry_after for status, _, retry_after in answers if status == 503} == {"1"}
    # The upstream takes 0.3 s: refusals come back well before, and the accepted requests are
    # not queued behind the refused ones (generous bounds: the machine is shared).
    assert refused[len(refused) // 2] < 0.1
    assert refused[int(len(refused) * 0.95)] < 0.25
    assert accepted[len(accepted) // 2] < 0.6
    # Each accepted request was one upstream call: the upstream never had more than the limit.
    assert stats["max_in_flight"] <= limit
    assert len(accepted) == sum("/items/slow-" in path for path in stats["paths"])
    assert in_flight_after == 0


# --- metrics -------------------------------------------------------------------------------


def test_metrics_count_each_request_and_upstream_attempt_exactly(
    service: Service, upstream: str
) -> None:
    paths = ["/api/items/ok-1"] * 5 + ["/api/items/missing"] * 2 + ["/api/items/flaky-7"]
    statuses = [service.get(path).status for path in [*paths, "/nowhere", "/health"]]
    statuses.append(service.request("PROPFIND", "/api/items/ok-1").status)  # WebDAV, not HTTP
    samples = scrape(service.url)

    assert statuses == [200] * 5 + [404, 404, 200, 404, 200, 405]
    counted = "http_server_request_duration_seconds_count"
    item = {"method": "GET", "route": "/api/items/{item_id}"}
    assert value(samples, counted, **item, status="200") == 6
    assert value(samples, counted, **item, status="404") == 2
    assert value(samples, counted, method="GET", route="unmatched", status="404") == 1
    assert value(samples, counted, method="GET", route="/health", status="200") == 0
    assert value(samples, counted, method="_OTHER", route="unmatched", status="405") == 1
    # One observation per attempt the upstream received; the flaky one was retried once.
    attempts = "upstream_request_duration_seconds_count"
    by_outcome = {
        outcome: value(samples, attempts, upstream="example_api", outcome=outcome)
        for outcome in ("ok", "not_found", "error", "timeout")
    }
    assert by_outcome == {"ok": 6, "not_found": 2, "error": 1, "timeout": 0}
    assert sum(by_outcome.values()) == len(upstream_stats(upstream)["paths"])
    assert value(samples, "upstream_retries_total", upstream="example_api") == 1
    assert value(samples, "http_server_requests_in_flight") == 0


# --- probes, drain, quiet logs -------------------------------------------------------------


def test_probes_answer_and_no_response_names_the_framework(service: Service) -> None:
    live, ready = service.get("/health/live"), service.get("/health/ready")

    assert (live.status, live.body) == (200, {"status": "ok"})
    assert (ready.status, ready.body) == (200, {"status": "ready"})
    for response in (live, ready, service.get("/nowhere"), service.get("/api/items/missing")):
        server = response.headers.get("Server", "").lower()
        assert server
        assert "aiohttp" not in server
        assert "python" not in server


def test_sigterm_drains_readiness_fails_while_everything_else_serves_then_exits_0(
    service_python: Path, tmp_path: Path, upstream: str
) -> None:
    drain = 2.0
    with running_service(
        service_python, tmp_path, upstream, SHUTDOWN_DRAIN_SECONDS=str(drain)
    ) as service:
        service.process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        deadline = signalled + drain / 2
        while (ready := service.get("/health/ready")).status == 200:
            assert time.monotonic() < deadline, "readiness still 200 during the drain"
            time.sleep(0.02)
        # Still serving, on new connections (urllib opens one per request).
        live, item = service.get("/health/live"), service.get("/api/items/ok-9")
        assert time.monotonic() - signalled < drain
        exit_code = service.process.wait(timeout=drain + 15)

    assert (ready.status, ready.body) == (503, {"status": "draining"})
    assert (live.status, item.status) == (200, 200)
    assert exit_code == 0
    assert time.monotonic() - signalled >= drain
    assert "Traceback" not in service.log.read_text()


def test_sigint_skips_the_drain(service_python: Path, tmp_path: Path, upstream: str) -> None:
    with running_service(service_python, tmp_path, upstream, SHUTDOWN_DRAIN_SECONDS="30") as s:
        s.process.send_signal(signal.SIGINT)
        assert s.process.wait(timeout=10) == 0


ROLLING_DELAY = 1.0  # how long after SIGTERM the "balancer" still sends to the old instance


@pytest.mark.parametrize(("drain", "expect_failures"), [(2.0, False), (0.0, True)])
def test_rolling_update_loses_nothing_with_a_drain(
    service_python: Path, tmp_path: Path, upstream: str, drain: float, expect_failures: bool
) -> None:
    # Two instances behind a client that, like a Kubernetes Service, stops sending to one only
    # ROLLING_DELAY after it got SIGTERM (endpoint removal reaches the proxies late).
    env = {"SHUTDOWN_DRAIN_SECONDS": str(drain)}
    with (
        running_service(service_python, tmp_path, upstream, **env) as old,
        running_service(service_python, tmp_path, upstream, **env) as new,
    ):

        async def load() -> tuple[int, int]:
            outcomes = {"ok": 0, "failed": 0}
            connector = aiohttp.TCPConnector(force_close=True)
            async with aiohttp.ClientSession(connector=connector) as session:
                terminated_at = time.monotonic()
                old.process.send_signal(signal.SIGTERM)
                ends = terminated_at + ROLLING_DELAY + 0.5
                turn = 0
                old_refused = False
                while time.monotonic() < ends:
                    turn += 1
                    removed = time.monotonic() - terminated_at >= ROLLING_DELAY
                    target = new if removed or turn % 2 else old
                    if target is old and old_refused:
                        # Nothing listens there any more, and the freed port may already be
                        # another test's server: count the refusal without sending to it.
                        outcomes["failed"] += 1
                        continue
                    try:
                        async with session.get(f"{target.url}/api/items/ok-{turn}") as answer:
                            outcomes["ok" if answer.status == 200 else "failed"] += 1
                    except aiohttp.ClientConnectorError:
                        outcomes["failed"] += 1
                        old_refused = old_refused or target is old
                    except aiohttp.ClientError:
                        outcomes["failed"] += 1
            return outcomes["ok"], outcomes["failed"]

        ok, failed = asyncio.run(load())
        assert old.process.wait(timeout=drain + 15) == 0

    assert ok > 50
    assert (failed > 0) is expect_failures, f"{failed} failed of {ok + failed}"


MALFORMED = [
    b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n",
    b"GET /" + b"u" * 10_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /health HTTP/1.1\r\nHost: x\r\nX-Nul: a\x00b\r\n\r\n",
]


def test_malformed_requests_are_one_warning_each_without_traceback(
    service_python: Path, tmp_path: Path, upstream: str
) -> None:
    with running_service(service_python, tmp_path, upstream, LOG_FORMAT="json") as service:
        host, port = service.url.removeprefix("http://").split(":")
        for raw in MALFORMED * 10:
            with socket.create_connection((host, int(port)), timeout=5) as connection:
                connection.sendall(raw)
                connection.recv(4096)
        assert service.get("/health").status == 200
    lines = [json.loads(line) for line in service.log.read_text().splitlines() if line[:1] == "{"]

    refused = [line for line in lines if "refused malformed HTTP" in line["message"]]
    assert len(refused) == len(MALFORMED) * 10
    assert all(line["level"] == "WARNING" and "127.0.0.1" in line["message"] for line in refused)
    assert not [line for line in lines if line["level"] in {"ERROR", "CRITICAL"}]
    assert "Traceback" not in service.log.read_text()
