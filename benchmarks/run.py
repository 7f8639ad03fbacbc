"""Benchmark: the generated service against the smallest equivalent aiohttp app.

    .venv/bin/python benchmarks/run.py            # every scenario: benchmarks/results/RESULTS.md
    .venv/bin/python benchmarks/run.py --smoke    # seconds; checks the harness, not speed

The kept reports (RESULTS-cpu.md, RESULTS-protect.md) come from the commands in README.md.

It bakes the default project, installs it in several variants (with and without the
``speedups`` extra, and with each speedup alone), bakes it again without metrics and with
tracing (exporting to a real OTLP receiver in this process, at 100 % and 10 % sampling),
then for every scenario runs the variants
and the reference app side by side, interleaved, ``--repeats`` times, each against the same
local fake upstream. Each run starts a fresh server process (pinned to core 0 when there are
two), measures its start-up, warms it, then loads it with wrk (if installed) or a bounded
Python load generator (pinned to core 1) for ``--duration`` seconds. CPU time per request is
the server process's user+sys time over the requests it answered: the figure that holds up
on a noisy machine. Everything listens on 127.0.0.1 and every process is stopped by pid.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import platform
import random
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import aiohttp

HERE = Path(__file__).resolve().parent
TEMPLATE_ROOT = HERE.parent
sys.path.insert(0, str(TEMPLATE_ROOT / "tests"))
from ablations import ABLATIONS  # noqa: E402 - beside this file
from support import processes  # noqa: E402 - the fake upstream and process helpers, shared
from support.otlp_receiver import otlp_receiver  # noqa: E402

PACKAGE = "my_async_service"
REFERENCE_VARIANT = "reference (uvloop, json)"  # the service's loop: see reference_app.py
DEFAULT_VARIANT = "generated, default install (uvloop + orjson, metrics on)"
ABLATED = "generated, default install, ablated:"
TICKS = os.sysconf("SC_CLK_TCK")
BATCH_BODY = json.dumps({"ids": [str(n) for n in range(50)]})
BATCH_BOUND = 50  # the generated service's default UPSTREAM_CONCURRENCY (the reference's too)


@dataclass(frozen=True)
class Scenario:
    name: str
    method: str
    path: str  # "{n}" in it: the request's number modulo ``ids``
    latency_ms: float
    connections: int
    body: str | None = None
    ids: int = 1
    env: dict[str, str] = field(default_factory=dict)  # settings for every variant's server

    def path_of(self, number: int) -> str:
        return self.path.replace("{n}", str(number % self.ids))


EVERY_ID_NEW = 10**12  # as many ids as requests: nothing is shared between requests
SCENARIOS = [
    Scenario("GET /health", "GET", "/health", 0, 32),
    Scenario(
        "GET /api/items/{n}, a new id each, upstream 0 ms",
        "GET",
        "/api/items/{n}",
        0,
        32,
        ids=EVERY_ID_NEW,
    ),
    Scenario(
        "GET /api/items/{n}, a new id each, upstream 5 ms",
        "GET",
        "/api/items/{n}",
        5,
        32,
        ids=EVERY_ID_NEW,
    ),
    # Hot keys: many concurrent requests for a few items (what coalescing is for).
    Scenario(
        "GET /api/items/{n} over 10 ids, 1,000 connections, upstream 50 ms",
        "GET",
        "/api/items/{n}",
        50,
        1000,
        ids=10,
        # 1,000 requests at once is past the default MAX_IN_FLIGHT (200), which would refuse
        # most of them; this row measures what coalescing saves, so shedding is off.
        env={"MAX_IN_FLIGHT": "0"},
    ),
    Scenario("POST batch of 50, upstream 50 ms", "POST", "/api/items/batch", 50, 1, BATCH_BODY),
    # Repeats of 100 ids: what a cache is for (the cache=memory variant answers from it).
    Scenario(
        "GET /api/items/{n} over 100 ids, upstream 5 ms (cache hits)",
        "GET",
        "/api/items/{n}",
        5,
        32,
        ids=100,
    ),
]
# Overload: requests arrive at a fixed rate (open loop, as real clients do) well past what the
# service can carry: a 300 ms upstream through a pool of 100 connections is about 333 req/s.
OVERLOAD_LATENCY_MS = 300
OVERLOAD_RATE = 600  # requests per second offered
OVERLOAD_LIMITS = ("200", "100", "0")  # MAX_IN_FLIGHT: the default, the pool size, off


@dataclass(frozen=True)
class Variant:
    name: str
    command: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)  # "{upstream}" is the upstream's URL


# The upstream credentials of each upstream_auth variant. The fake upstream checks none (it
# answers every request as the Example API) but is a token endpoint, so OAuth2's token is
# fetched once, then each request carries it: what is measured is the valid-token path.
AUTH_SETTINGS = {
    "api_key": {"UPSTREAM_API_KEY": "benchmark-key"},
    "bearer": {"UPSTREAM_BEARER_TOKEN": "benchmark-token"},
    "oauth2_client_credentials": {
        "UPSTREAM_TOKEN_URL": "{upstream}/oauth/token",
        "UPSTREAM_CLIENT_ID": "client-id",
        "UPSTREAM_CLIENT_SECRET": "client-secret",
    },
}


@dataclass
class Load:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int


@dataclass
class Overload:
    variant: str
    repeat: int
    offered: int
    accepted: int
    refused: int
    errors: int  # anything but 200 and 503, or no answer
    seconds: float
    accepted_p50_ms: float
    accepted_p99_ms: float
    refused_p50_ms: float
    refused_p99_ms: float
    cpu_us_per_request: float


@dataclass
class Run:
    variant: str
    scenario: str
    repeat: int
    requests: int
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int
    cpu_us_per_request: float
    upstream_connections_per_1000: float
    upstream_calls_per_1000: float
    upstream_max_in_flight: int
    peak_rss_mb: float
    startup_ms: float


# --- processes -------------------------------------------------------------------------------


CORES = sorted(os.sched_getaffinity(0))  # read once, before this process pins itself


def two_cores() -> bool:
    return len(CORES) >= 2


def pin(pid: int, core: int) -> None:
    if two_cores():
        os.sched_setaffinity(pid, {CORES[core]})


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def get_json(url: str, method: str = "GET") -> dict[str, int]:
    request = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    with urllib.request.urlopen(request, timeout=10) as answer:
        result: dict[str, int] = json.loads(answer.read())
        return result


def settle(upstream: str) -> None:
    """Wait (bounded) until no request is in flight upstream, e.g. one the load generator
    abandoned when its time was up but the server still completes."""
    deadline = time.monotonic() + 10
    while get_json(upstream + "/__stats")["in_flight"] and time.monotonic() < deadline:
        time.sleep(0.01)


@contextmanager
def fake_upstream(python: str, latency_ms: float) -> Iterator[str]:
    with processes.fake_upstream(python, latency_ms, started=lambda pid: pin(pid, 1)) as url:
        yield url


def server_environment(
    variant: Variant, upstream: str, port: int, env: dict[str, str] | None = None
) -> dict[str, str]:
    """What every measured server runs with: this environment, its address and upstream, quiet
    logs, then the variant's and the scenario's settings."""
    return {
        **os.environ,
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "UPSTREAM_BASE_URL": upstream,
        "LOG_LEVEL": "WARNING",
        **{name: value.format(upstream=upstream) for name, value in variant.env.items()},
        **(env or {}),
    }


@contextmanager
def server(
    variant: Variant, upstream: str, env: dict[str, str] | None = None
) -> Iterator[tuple[subprocess.Popen[bytes], str, float]]:
    port = processes.free_port()
    env = server_environment(variant, upstream, port, env)
    started = time.perf_counter()
    process = subprocess.Popen(
        variant.command, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL
    )
    try:
        pin(process.pid, 0)
        url = f"http://127.0.0.1:{port}"
        try:
            processes.wait_until_healthy(process, url)
        except RuntimeError as error:
            raise RuntimeError(f"{variant.name}: {error}") from None
        yield process, url, (time.perf_counter() - started) * 1000
    finally:
        processes.stop(process)


# --- load generators -------------------------------------------------------------------------


def wrk_load(url: str, scenario: Scenario, seconds: float) -> Load:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        if "{n}" in scenario.path:
            before, _, after = scenario.path.partition("{n}")
            script.write(
                # Each run starts its ids afresh, so a warm-up leaves no answer in a cache.
                f"counter = {random.randrange(10**9)}\n"
                "request = function()\n"
                "  counter = counter + 1\n"
                f"  local n = string.format('%d', counter % {scenario.ids})\n"
                f"  return wrk.format(nil, {json.dumps(before)} .. n .. {json.dumps(after)})\n"
                "end\n"
            )
        if scenario.body is not None:
            script.write(
                f'wrk.method = "{scenario.method}"\n'
                f"wrk.body = {json.dumps(scenario.body)}\n"
                'wrk.headers["Content-Type"] = "application/json"\n'
            )
    try:
        command = ["wrk", "-t1", f"-c{scenario.connections}", f"-d{max(1, round(seconds))}s"]
        command += ["--latency", "--timeout", "10s", "-s", script.name, url + scenario.path_of(0)]
        if two_cores():
            command = ["taskset", "-c", str(CORES[1]), *command]
        output = subprocess.run(
            command, capture_output=True, text=True, timeout=seconds + 60, check=True
        ).stdout
    finally:
        os.unlink(script.name)
    done = re.search(r"(\d+) requests in ([\d.]+)(m?s)", output)
    assert done, output
    elapsed = float(done[2]) / (1000 if done[3] == "ms" else 1)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket_errors = re.search(r"connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    return Load(
        requests=int(done[1]),
        seconds=elapsed,
        p50_ms=_wrk_ms(output, "50%"),
        p99_ms=_wrk_ms(output, "99%"),
        errors=(int(errors[1]) if errors else 0)
        + (sum(map(int, socket_errors.groups())) if socket_errors else 0),
    )


def _wrk_ms(output: str, percentile: str) -> float:
    found = re.search(rf"{re.escape(percentile)}\s+([\d.]+)(us|ms|s)\b", output)
    assert found, output
    return float(found[1]) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[found[2]]


def python_load(url: str, scenario: Scenario, seconds: float) -> Load:
    """A bounded closed-loop generator: ``connections`` workers until ``seconds`` pass."""

    async def generate() -> Load:
        latencies: list[float] = []
        errors = 0
        connector = aiohttp.TCPConnector(limit=scenario.connections)
        timeout = aiohttp.ClientTimeout(total=10)
        headers = {"Content-Type": "application/json"} if scenario.body else {}
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            end = time.perf_counter() + seconds
            numbers = itertools.count(random.randrange(10**9))  # fresh ids, as for wrk

            async def worker() -> None:
                nonlocal errors
                while time.perf_counter() < end:
                    sent = time.perf_counter()
                    try:
                        async with session.request(
                            scenario.method,
                            url + scenario.path_of(next(numbers)),
                            data=scenario.body,
                            headers=headers,
                        ) as response:
                            await response.read()
                            errors += response.status >= 300
                    except (aiohttp.ClientError, TimeoutError):
                        errors += 1
                    latencies.append((time.perf_counter() - sent) * 1000)

            started = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(scenario.connections)))
            elapsed = time.perf_counter() - started
        return Load(len(latencies), elapsed, *p50_p99(latencies), errors)

    return asyncio.run(generate())


def open_loop(url: str, rate: float, seconds: float) -> list[tuple[int, float]]:
    """``GET url/api/items/<new id>`` at ``rate`` per second for ``seconds``, whatever the
    answers take (no connection limit): each request's status (0: no answer) and milliseconds."""

    async def generate() -> list[tuple[int, float]]:
        answers: list[tuple[int, float]] = []
        connector = aiohttp.TCPConnector(limit=0)
        timeout = aiohttp.ClientTimeout(total=20)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

            async def one(number: int) -> None:
                sent = time.perf_counter()
                try:
                    async with session.get(f"{url}/api/items/overload-{number}") as response:
                        await response.read()
                        status = response.status
                except (aiohttp.ClientError, TimeoutError):
                    status = 0
                answers.append((status, (time.perf_counter() - sent) * 1000))

            started, sent = time.perf_counter(), []
            for number in range(int(rate * seconds)):
                wait = started + number / rate - time.perf_counter()
                if wait > 0:
                    await asyncio.sleep(wait)
                sent.append(asyncio.create_task(one(number)))
            await asyncio.gather(*sent)
        return answers

    return asyncio.run(generate())


def p50_p99(values: list[float]) -> tuple[float, float]:
    """The median and the 99th percentile of ``values`` (nan for none)."""
    if len(values) < 2:
        return (values[0], values[0]) if values else (float("nan"), float("nan"))
    quantiles = statistics.quantiles(values, n=100)
    return quantiles[49], quantiles[98]


def overload(variant: Variant, seconds: float, rate: float, repeat: int) -> Overload:
    with (
        fake_upstream(sys.executable, OVERLOAD_LATENCY_MS) as upstream,
        server(variant, upstream) as (process, url, _),
    ):
        cpu_before = cpu_seconds(process.pid)
        started = time.perf_counter()
        answers = open_loop(url, rate, seconds)
        elapsed = time.perf_counter() - started
        cpu = cpu_seconds(process.pid) - cpu_before
    accepted = [ms for status, ms in answers if status == 200]
    refused = [ms for status, ms in answers if status == 503]
    accepted_p50, accepted_p99 = p50_p99(accepted)
    refused_p50, refused_p99 = p50_p99(refused)
    return Overload(
        variant=variant.name,
        repeat=repeat,
        offered=len(answers),
        accepted=len(accepted),
        refused=len(refused),
        errors=len(answers) - len(accepted) - len(refused),
        seconds=elapsed,
        accepted_p50_ms=accepted_p50,
        accepted_p99_ms=accepted_p99,
        refused_p50_ms=refused_p50,
        refused_p99_ms=refused_p99,
        cpu_us_per_request=cpu / max(len(answers), 1) * 1e6,
    )


def overload_variants(default: Variant) -> list[Variant]:
    return [
        Variant(f"MAX_IN_FLIGHT={limit}", default.command, {"MAX_IN_FLIGHT": limit})
        for limit in OVERLOAD_LIMITS
    ]


# --- the benchmark ---------------------------------------------------------------------------


def bake(template: Path, output: Path, **answers: object) -> Path:
    """The project of ``template`` (default answers unless given), baked into ``output``."""
    from cookiecutter.main import cookiecutter

    output.mkdir(parents=True)
    config = output / "cookiecutter.yaml"
    config.write_text(f"cookiecutters_dir: {output / 'cc'}\nreplay_dir: {output / 'replay'}\n")
    return Path(
        cookiecutter(
            str(template),
            no_input=True,
            extra_context=answers,
            output_dir=str(output),
            config_file=str(config),
        )
    )


def install(project: Path, venv: Path, requirements: list[str]) -> str:
    """A new venv with ``requirements`` installed from ``project``; its python."""
    uv = [sys.executable, "-m", "uv"]
    subprocess.run([*uv, "venv", "-q", "--python", sys.executable, venv], check=True)
    python = str(venv / "bin" / "python")
    command = [*uv, "pip", "install", "-q", "--python", python, *requirements]
    if subprocess.run([*command, "--offline"], cwd=project, check=False).returncode:
        subprocess.run(command, cwd=project, check=True)
    return python


def prepare(
    workdir: Path, smoke: bool, baseline: str | None, otlp_endpoint: str, ablated: bool = False
) -> tuple[list[Variant], str]:
    """Bake the default project and install the variants; returns them and a plain python.

    With ``baseline`` (a git ref of this repository), the default project of the template at
    that ref is measured too, in the same run: before and after a change, side by side. With
    ``ablated``, the default project with one piece taken out, for each piece ``ablations.py``
    names.
    """
    project = bake(TEMPLATE_ROOT, workdir / "current")
    installs = {"fast": [".[speedups]"], "plain": ["."]}
    if not smoke:
        installs |= {"orjson": [".", "orjson>=3.10,<4"], "uvloop": [".", "uvloop>=0.21,<1"]}
    pythons = {
        name: install(project, workdir / f"venv-{name}", requirements)
        for name, requirements in installs.items()
    }
    service = ("-m", PACKAGE)
    variants = [
        # On the default's interpreter, so on its loop (uvloop, from the speedups extra).
        Variant(REFERENCE_VARIANT, (pythons["fast"], str(HERE / "reference_app.py"))),
        Variant(DEFAULT_VARIANT, (pythons["fast"], *service)),
        Variant("generated, no speedups", (pythons["plain"], *service)),
    ]
    if not smoke:
        variants += [
            Variant("generated, orjson only", (pythons["orjson"], *service)),
            Variant("generated, uvloop only", (pythons["uvloop"], *service)),
        ]
        bare = bake(TEMPLATE_ROOT, workdir / "no-metrics", use_metrics=False)
        traced = bake(TEMPLATE_ROOT, workdir / "tracing", use_tracing=True)
        cached = bake(TEMPLATE_ROOT, workdir / "cache", cache="memory")
        cached_python = install(cached, workdir / "venv-cache", [".[speedups]"])
        bare_python = install(bare, workdir / "venv-no-metrics", [".[speedups]"])
        traced_python = install(traced, workdir / "venv-tracing", [".[speedups]"])
        exporting = {"OTEL_EXPORTER_OTLP_ENDPOINT": otlp_endpoint}
        for method, settings in AUTH_SETTINGS.items():
            authed = bake(TEMPLATE_ROOT, workdir / f"auth-{method}", upstream_auth=method)
            authed_python = install(authed, workdir / f"venv-{method}", [".[speedups]"])
            variants.append(
                Variant(f"generated, upstream_auth={method}", (authed_python, *service), settings)
            )
        variants += [
            Variant("generated, use_metrics=no", (bare_python, *service)),
            Variant("generated, cache=memory", (cached_python, *service)),
            Variant(
                "generated, use_tracing=yes, 100 % sampled",
                (traced_python, *service),
                {**exporting, "OTEL_TRACES_SAMPLER": "always_on"},
            ),
            Variant(
                "generated, use_tracing=yes, 10 % sampled",
                (traced_python, *service),
                {
                    **exporting,
                    "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
                    "OTEL_TRACES_SAMPLER_ARG": "0.1",
                },
            ),
        ]
    if ablated:
        variants += ablated_variants(pythons["fast"])
    if baseline is not None:
        clone = workdir / "baseline-template"
        subprocess.run(["git", "clone", "-q", str(TEMPLATE_ROOT), str(clone)], check=True)
        subprocess.run(["git", "-C", str(clone), "checkout", "-q", baseline], check=True)
        old = bake(clone, workdir / "baseline")
        python = install(old, workdir / "venv-baseline", [".[speedups]"])
        variants.append(Variant(f"generated at {baseline}, default install", (python, *service)))
    return variants, pythons["plain"]


def ablated_variants(python: str) -> list[Variant]:
    """The default project (installed for ``python``) with one piece taken out, one variant for
    each piece ``ablations.py`` names."""
    return [
        Variant(f"{ABLATED} {name}", (python, str(HERE / "ablations.py"), PACKAGE, name))
        for name in ABLATIONS
    ]


def measure(
    variant: Variant, scenario: Scenario, upstream: str, seconds: float, repeat: int, use_wrk: bool
) -> Run:
    load = wrk_load if use_wrk else python_load
    with server(variant, upstream, scenario.env) as (process, url, startup_ms):
        load(url, scenario, min(1.0, seconds))  # warm-up: imports, connection pool, caches
        settle(upstream)
        get_json(upstream + "/__reset", "POST")
        before, cpu_before = get_json(upstream + "/__stats"), cpu_seconds(process.pid)
        result = load(url, scenario, seconds)
        cpu = cpu_seconds(process.pid) - cpu_before
        after = get_json(upstream + "/__stats")
        rss = peak_rss_mb(process.pid)
    requests = max(result.requests, 1)
    return _run(
        variant,
        scenario,
        repeat,
        result,
        cpu,
        rss,
        startup_ms,
        # Minus one: the /__stats request that read `after` came on a connection of its own.
        upstream_connections_per_1000=(after["connections"] - before["connections"] - 1)
        / requests
        * 1000,
        upstream_calls_per_1000=after["requests"] / requests * 1000,
        upstream_max_in_flight=after["max_in_flight"],
    )


def _run(
    variant: Variant,
    scenario: Scenario,
    repeat: int,
    result: Load,
    cpu: float,
    rss: float,
    startup_ms: float,
    upstream_connections_per_1000: float = float("nan"),
    upstream_calls_per_1000: float = float("nan"),
    upstream_max_in_flight: int = -1,
) -> Run:
    """One run's figures; the upstream's are unknown (nan, -1) unless given."""
    return Run(
        variant=variant.name,
        scenario=scenario.name,
        repeat=repeat,
        requests=result.requests,
        requests_per_second=result.requests / result.seconds,
        p50_ms=result.p50_ms,
        p99_ms=result.p99_ms,
        errors=result.errors,
        cpu_us_per_request=cpu / max(result.requests, 1) * 1e6,
        upstream_connections_per_1000=upstream_connections_per_1000,
        upstream_calls_per_1000=upstream_calls_per_1000,
        upstream_max_in_flight=upstream_max_in_flight,
        peak_rss_mb=rss,
        startup_ms=startup_ms,
    )


def measure_together(
    variants: Sequence[Variant],
    scenario: Scenario,
    upstream: str,
    seconds: float,
    repeat: int,
    use_wrk: bool,
) -> list[Run]:
    """Every variant at once: their servers share core 0, each loaded by its own generator on
    core 1 over the same seconds, so noise that comes and goes hits them all alike. They also
    share the core's caches, which the process with more code and data pays for more. The
    upstream's counts are shared, so they are not reported (nan) here."""
    load = wrk_load if use_wrk else python_load
    with ExitStack() as stack:
        servers = [stack.enter_context(server(v, upstream, scenario.env)) for v in variants]
        for _, url, _ in servers:
            load(url, scenario, min(1.0, seconds))  # warm-up
        settle(upstream)
        pids = [process.pid for process, _, _ in servers]
        before = [cpu_seconds(pid) for pid in pids]
        with ThreadPoolExecutor(len(servers)) as pool:
            loads = list(pool.map(lambda served: load(served[1], scenario, seconds), servers))
        cpu = [cpu_seconds(pid) - used for pid, used in zip(pids, before, strict=True)]
        rss = [peak_rss_mb(pid) for pid in pids]
    return [
        _run(variant, scenario, repeat, result, cpu_used, peak, startup_ms)
        for variant, (_, _, startup_ms), result, cpu_used, peak in zip(
            variants, servers, loads, cpu, rss, strict=True
        )
    ]


def benchmark(
    variants: Sequence[Variant],
    plain_python: str,
    repeats: int,
    seconds: float,
    use_wrk: bool,
    scenarios: Sequence[Scenario],
    together: bool = False,
) -> list[Run]:
    runs = []
    for scenario in scenarios:
        with fake_upstream(plain_python, scenario.latency_ms) as upstream:
            for repeat in range(repeats):
                # Interleave, and rotate the order so no variant always runs first.
                order = [*variants[repeat % len(variants) :], *variants[: repeat % len(variants)]]
                if together:
                    measured = measure_together(order, scenario, upstream, seconds, repeat, use_wrk)
                else:
                    measured = [
                        measure(variant, scenario, upstream, seconds, repeat, use_wrk)
                        for variant in order
                    ]
                for run in measured:
                    runs.append(run)
                    print(
                        f"{scenario.name:36} {run.variant:48} {run.requests_per_second:8.0f} req/s"
                        f" {run.cpu_us_per_request:7.1f} us/req  errors {run.errors}",
                        flush=True,
                    )
    return runs


# --- the report ------------------------------------------------------------------------------


def report(
    runs: list[Run],
    variants: Sequence[Variant],
    scenarios: Sequence[Scenario],
    args: argparse.Namespace,
    tool: str,
) -> str:
    reference = variants[0].name
    lines = [
        "# Benchmark results",
        "",
        f"- Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; command: `python benchmarks/run.py"
        + (" --smoke" if args.smoke else "")
        + (f" --baseline {args.baseline}" if args.baseline else "")
        + (f" --only '{args.only}'" if args.only else "")
        + (f" --variants '{args.variants}'" if args.variants else "")
        + (" --together" if args.together else "")
        + (f" --section '{args.section}'" if args.section else "")
        + f" --repeats {args.repeats} --duration {args.duration:g}`",
        f"- Template commit: {measured_commit()}",
        f"- Machine: {platform.machine()}, {os.cpu_count()} cores ({_cpu_model()}), "
        f"Python {platform.python_version()}, aiohttp {aiohttp.__version__}",
        f"- Load generator: {tool}; server pinned to core 0, load generator and upstream to core 1"
        if two_cores()
        else f"- Load generator: {tool}; one core, nothing pinned",
        *(
            [
                "- `--together`: in each repeat every variant's server ran at the same time (all on"
                " core 0), each under its own load generator; upstream counts are shared, so none"
                " are given (nan)."
            ]
            if args.together
            else []
        ),
        "- Figures are medians over the repeats; each CPU ratio is per repeat (the variant ÷ the"
        " reference app, or ÷ the generated default, in the same repeat), given as median"
        " [min–max].",
        "",
    ]
    for scenario in scenarios:
        lines += [f"## {scenario.name}", ""]
        if scenario.env:
            settings = ", ".join(f"`{name}={value}`" for name, value in scenario.env.items())
            lines += [f"Every generated variant runs with {settings} here.", ""]
        lines += [
            "| variant | req/s | p50 ms | p99 ms | CPU µs/req | CPU vs reference | CPU vs default"
            " | upstream calls /1000 req | upstream conns /1000 req | max in flight upstream"
            " | peak RSS MB | start → /health ms | errors |",
            "| --- | ---: | ---: | ---: | ---: | --- | --- |" + " ---: |" * 6,
        ]
        for variant in variants:
            mine = [r for r in runs if r.scenario == scenario.name and r.variant == variant.name]
            lines.append(
                f"| {variant.name} | {_median(mine, 'requests_per_second'):.0f}"
                f" | {_median(mine, 'p50_ms'):.2f} | {_median(mine, 'p99_ms'):.2f}"
                f" | {_median(mine, 'cpu_us_per_request'):.0f}"
                f" | {_cpu_ratio(runs, scenario, variant.name, reference)}"
                f" | {_cpu_ratio(runs, scenario, variant.name, DEFAULT_VARIANT)}"
                f" | {_median(mine, 'upstream_calls_per_1000'):.0f}"
                f" | {_median(mine, 'upstream_connections_per_1000'):.1f}"
                f" | {max(r.upstream_max_in_flight for r in mine)}"
                f" | {max(r.peak_rss_mb for r in mine):.1f}"
                f" | {_median(mine, 'startup_ms'):.0f} | {sum(r.errors for r in mine)} |"
            )
        lines.append("")
    return "\n".join(lines)


def overload_report(results: list[Overload], seconds: float, rate: float) -> str:
    lines = [
        f"## Overload: a new id each, offered {rate:g} req/s for {seconds:g} s (open loop),"
        f" upstream {OVERLOAD_LATENCY_MS} ms",
        "",
        "The generated default (`speedups`, metrics on) with `MAX_IN_FLIGHT` at its default, at"
        " the upstream pool's size and off. Through a pool of 100 connections a 300 ms upstream"
        " carries about 333 req/s: the rest must be refused or queue.",
        "",
        "| MAX_IN_FLIGHT | answered 200 /s | 200 p50 ms | 200 p99 ms | refused (503) | 503 p50 ms"
        " | 503 p99 ms | other or none | CPU µs/req |",
        "| --- |" + " ---: |" * 8,
    ]
    for name in dict.fromkeys(result.variant for result in results):
        mine = [result for result in results if result.variant == name]

        def median(field: str, rows: list[Overload] = mine) -> float:
            return statistics.median(getattr(row, field) for row in rows)

        lines.append(
            f"| {name.removeprefix('MAX_IN_FLIGHT=')}"
            f" | {statistics.median(r.accepted / r.seconds for r in mine):.0f}"
            f" | {median('accepted_p50_ms'):.0f} | {median('accepted_p99_ms'):.0f}"
            f" | {statistics.median(r.refused / r.offered for r in mine):.0%}"
            f" | {median('refused_p50_ms'):.1f} | {median('refused_p99_ms'):.1f}"
            f" | {sum(r.errors for r in mine)} | {median('cpu_us_per_request'):.0f} |"
        )
    return "\n".join([*lines, ""])


def _cpu_ratio(runs: list[Run], scenario: Scenario, variant: str, against: str) -> str:
    """CPU per request of ``variant`` over ``against``'s, per repeat: median [min-max]."""
    if variant == against:
        return "1 (itself)"
    theirs = {
        run.repeat: run.cpu_us_per_request
        for run in runs
        if run.scenario == scenario.name and run.variant == against
    }
    ratios = [
        run.cpu_us_per_request / theirs[run.repeat]
        for run in runs
        if run.scenario == scenario.name and run.variant == variant and theirs.get(run.repeat)
    ]
    if not ratios:
        return "–"
    return f"{statistics.median(ratios):.2f} [{min(ratios):.2f}–{max(ratios):.2f}]"


def _median(runs: list[Run], name: str) -> float:
    return statistics.median(getattr(run, name) for run in runs)


def measured_commit() -> str:
    """The template commit being measured, and whether the tree differed from it."""
    git = ["git", "-C", str(TEMPLATE_ROOT)]
    commit = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    if commit.returncode != 0:
        return "unknown (not a git checkout)"
    # The reports themselves do not count: one run often follows another's writing.
    reports = ":(exclude)benchmarks/RESULTS*.md"
    changed = subprocess.run(
        [*git, "status", "--porcelain", "--", ".", reports], capture_output=True, text=True
    )
    return commit.stdout.strip() + (" with uncommitted changes" if changed.stdout.strip() else "")


def as_section(text: str, title: str) -> str:
    """A report turned into one section of another file: its headings one level down."""
    lines = text.splitlines()
    assert lines[0].startswith("# ")
    demoted = [f"#{line}" if line.startswith("#") else line for line in lines[1:]]
    return "\n".join([f"## {title}", *demoted])


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny run: checks the harness only")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--duration", type=float, default=None, help="seconds of load per run")
    parser.add_argument("--output", type=Path, default=None, help="markdown report path")
    parser.add_argument(
        "--section",
        default="",
        help="append the report to --output as a section with this title instead of replacing it",
    )
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated parts of scenario names to run ('overload': that section)",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write every run as JSON")
    parser.add_argument(
        "--baseline", default=None, help="also measure the template at this git ref (before/after)"
    )
    parser.add_argument(
        "--variants",
        default="",
        help="comma-separated parts of variant names to run (the reference and default always"
        " run); 'ablated' adds the default with one piece taken out, for each of ablations.py",
    )
    parser.add_argument(
        "--together",
        action="store_true",
        help="run each repeat's variants at once on one core instead of one after another",
    )
    parser.add_argument(
        "--loadgen",
        choices=["auto", "wrk", "python"],
        default="auto",
        help="auto: wrk if installed",
    )
    args = parser.parse_args(argv)
    args.repeats = args.repeats or (1 if args.smoke else 3)
    args.duration = args.duration or (0.5 if args.smoke else 3.0)
    # A run without --output is a scratch run: benchmarks/results/ is not tracked.
    output = args.output or (None if args.smoke or args.only else HERE / "results" / "RESULTS.md")
    if two_cores():
        pin(os.getpid(), 1)
    # Overload keeps many connections open at once (here and, inherited, in the server).
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    use_wrk = args.loadgen == "wrk" or (args.loadgen == "auto" and shutil.which("wrk") is not None)
    tool = "wrk" if use_wrk else "a bounded Python aiohttp client"
    with tempfile.TemporaryDirectory(prefix="bench-") as workdir, otlp_receiver() as receiver:
        variants, plain_python = prepare(
            Path(workdir), args.smoke, args.baseline, receiver.endpoint, "ablated" in args.variants
        )
        wanted = [part for part in args.variants.split(",") if part]
        if wanted:
            variants = variants[:2] + [
                v for v in variants[2:] if any(part in v.name for part in wanted)
            ]
        parts = [part for part in args.only.split(",") if part] or [""]
        scenarios = [s for s in SCENARIOS if any(part in s.name for part in parts)]
        runs = benchmark(
            variants, plain_python, args.repeats, args.duration, use_wrk, scenarios, args.together
        )
        spans = len(receiver.spans)
        overloads = []
        rate = 100 if args.smoke else OVERLOAD_RATE
        if any(part in "overload" for part in parts):
            for repeat in range(args.repeats):
                for variant in overload_variants(variants[1]):
                    result = overload(variant, args.duration + 1, rate, repeat)
                    overloads.append(result)
                    print(f"overload {variant.name:20} {result}", flush=True)
    text = report(runs, variants, scenarios, args, tool)
    if overloads:
        text += "\n" + overload_report(overloads, args.duration + 1, rate)
    if any("use_tracing" in variant.name for variant in variants):
        text += f"\nThe OTLP receiver got {spans} spans from the tracing variants.\n"
    print("\n" + text)
    if output is not None and args.section:
        before = output.read_text(encoding="utf-8").rstrip("\n")
        output.write_text(f"{before}\n\n{as_section(text, args.section)}\n", encoding="utf-8")
    elif output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text + "\n", encoding="utf-8")
    if args.json is not None:
        results = {"runs": [asdict(run) for run in runs]}
        results["overload"] = [asdict(result) for result in overloads]
        args.json.write_text(json.dumps(results, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
