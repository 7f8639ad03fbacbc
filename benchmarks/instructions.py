"""Instructions (and estimated cycles) per request under callgrind: the CPU targets in figures
noise cannot move.

    .venv/bin/python benchmarks/instructions.py                  # writes RESULTS-instructions.md
    .venv/bin/python benchmarks/instructions.py --baseline REF   # also the template at REF

CPU time per request (``run.py``) is what the targets are stated in, but on a shared machine it
moved by up to 30 % between repeats of the same server, so a 5 % difference needs many
repeats. Here every variant serves the same fixed sequence of requests inside valgrind's
callgrind, which counts the machine instructions the server executes (its threads included)
while the requests are answered, start-up and warm-up excluded: repeat runs agree within
about 1.5 %. Instructions are not time (a cache miss or a slow system call costs more than its
count, and C code does more per instruction than the interpreter), so read these beside
``run.py``'s CPU figures, not instead of them. callgrind also simulates the caches and branch
predictor, and the report gives a cycle estimate from them (instructions + 10 per first-level
cache miss + 100 per last-level miss + 10 per mispredicted branch, the low end of the costs the
Cachegrind manual gives for a modern machine): the same instruction count costs more time in
code that misses more, and the estimate shows it. It is a model of a machine, not this one.
Needs valgrind (``apt-get install valgrind``).

The variants and the fake upstream are ``run.py``'s; everything listens on 127.0.0.1 and every
process is stopped by pid.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import run  # benchmarks/run.py: the variants, the scenarios and the fake upstream
from support import processes
from support.otlp_receiver import otlp_receiver

# The two scenarios the CPU targets are stated for, measured for every variant.
TARGETED = ("GET /health", "GET /api/items/{n}, a new id each, upstream 0 ms")
SCENARIOS = [scenario for scenario in run.SCENARIOS if scenario.name in TARGETED]
# The list and write paths, reported beside them for the reference and the default service.
REPORTED = [
    run.Scenario("GET /api/items (one page of 3), upstream 0 ms", "GET", "/api/items", 0, 8),
    run.Scenario("POST /api/items, upstream 0 ms", "POST", "/api/items", 0, 8,
                 body='{"name": "lamp", "color": "red"}'),
]  # fmt: skip
VARIANTS = (
    run.DEFAULT_VARIANT,
    *(f"generated, upstream_auth={method}" for method in run.AUTH_SETTINGS),
    "generated, use_metrics=no",
    "generated, use_tracing=yes, 100 % sampled",
    "generated, use_tracing=yes, 10 % sampled",
)
JSON_BODY = {"Content-Type": "application/json"}
WARM_UP = 300  # requests before counting: imports, the connection pool, first-call caches
CONNECTIONS = 8
STARTUP_SECONDS = 180  # importing under valgrind is some 50 times slower
SIMULATION = ["--cache-sim=yes", "--branch-sim=yes"]
# Cycles per event of the simulation (see the module docstring).
CYCLE_WEIGHTS = {
    "Ir": 1,  # instructions
    "I1mr": 10, "D1mr": 10, "D1mw": 10,  # first-level cache misses
    "ILmr": 100, "DLmr": 100, "DLmw": 100,  # last-level cache misses
    "Bcm": 10, "Bim": 10,  # mispredicted conditional and indirect branches
}  # fmt: skip


@dataclass(frozen=True)
class Cost:
    """What one request cost, on average."""

    instructions: float
    cycles: float  # estimated, see the module docstring


def cost_per_request(callgrind_out: str, requests: int) -> Cost:
    """Per-request instructions and estimated cycles from a callgrind output file's totals.

    They are read from the ``totals:`` line, or from the ``summary:`` line when there is no
    ``totals:``; never from both added up, which would count them twice.
    """
    events: list[str] = []
    stated: dict[str, list[str]] = {}
    for line in callgrind_out.splitlines():
        if line.startswith("events:"):
            events = line.split()[1:]
        elif line.startswith(("summary:", "totals:")):
            kind, *figures = line.split()
            stated[kind] = figures
    values = stated.get("totals:", stated.get("summary:", []))
    counted = dict(zip(events, map(int, values), strict=False))
    totals = {name: counted.get(name, 0) for name in CYCLE_WEIGHTS}
    if not totals["Ir"]:
        raise RuntimeError("callgrind counted nothing")
    cycles = sum(CYCLE_WEIGHTS[name] * value for name, value in totals.items())
    return Cost(totals["Ir"] / requests, cycles / requests)


def counted_load(url: str, scenario: run.Scenario, requests: int, first: int) -> None:
    """Exactly ``requests`` requests (ids from ``first``), ``CONNECTIONS`` at a time, with the
    scenario's body if it has one; each must answer 200 or 201."""

    async def generate() -> None:
        numbers = iter(range(first, first + requests))
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:

            async def worker() -> None:
                for number in numbers:
                    path = scenario.path_of(number)
                    sent = session.request(
                        scenario.method, url + path, data=scenario.body, headers=JSON_BODY
                    )
                    async with sent as response:
                        await response.read()
                        if response.status not in {200, 201}:
                            raise RuntimeError(f"{path} answered {response.status}")

            await asyncio.gather(*(worker() for _ in range(CONNECTIONS)))

    asyncio.run(generate())


def measure(
    variant: run.Variant, scenario: run.Scenario, upstream: str, requests: int, workdir: Path
) -> Cost:
    port = processes.free_port()
    out = workdir / f"callgrind-{port}.out"
    # valgrind and callgrind_control name their pipe after HOST (set here) and USER.
    env = run.server_environment(variant, upstream, port, scenario.env)
    env |= {"USER": os.environ.get("USER", str(os.getuid())), "PYTHONHASHSEED": "0"}
    command = ["valgrind", "--tool=callgrind", "--instr-atstart=no", *SIMULATION]
    command.append(f"--callgrind-out-file={out}")
    process = subprocess.Popen(
        [*command, *variant.command],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        processes.wait_until_healthy(process, url, timeout=STARTUP_SECONDS)
        counted_load(url, scenario, WARM_UP, first=10**9)
        collect(process.pid, "on", env)
        counted_load(url, scenario, requests, first=0)
        collect(process.pid, "off", env)
    finally:
        processes.stop(process)
    try:
        return cost_per_request(out.read_text(), requests)
    except RuntimeError as error:
        raise RuntimeError(f"{variant.name}: {error}") from None


def collect(pid: int, state: str, env: dict[str, str]) -> None:
    subprocess.run(
        ["callgrind_control", "--instr", state, str(pid)],
        env=env,
        check=True,
        capture_output=True,
        timeout=60,
    )


def report(counts: dict[str, dict[str, Cost]], command: str, requests: int) -> str:
    lines = [
        "# Instructions and estimated cycles per request (callgrind)",
        "",
        f"- Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; command: `{command}`",
        f"- Template commit: {run.measured_commit()}",
        f"- Python {platform.python_version()}, {platform.machine()}; valgrind callgrind",
        f"- Each variant served {WARM_UP} requests uncounted, then {requests} counted, "
        f"{CONNECTIONS} at a time (a new id each for `/api/items`); every thread of the server "
        "process is counted.",
        "- Estimated cycles, from callgrind's cache and branch simulation: instructions + 10 per"
        " first-level cache miss + 100 per last-level miss + 10 per mispredicted branch (a model"
        " machine's, not this one's).",
    ]
    for scenario, by_variant in counts.items():
        reference = by_variant[run.REFERENCE_VARIANT]
        default = by_variant[run.DEFAULT_VARIANT]
        lines += ["", f"## {scenario}", ""]
        lines.append(
            "| variant | instructions/request | vs reference | vs default"
            " | estimated cycles/request | vs reference | vs default |"
        )
        lines.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        for name, cost in by_variant.items():
            instructions = cost.instructions, reference.instructions, default.instructions
            cycles = cost.cycles, reference.cycles, default.cycles
            lines.append(f"| {name} | {_ratios(*instructions)} | {_ratios(*cycles)} |")
    return "\n".join(lines) + "\n"


def _ratios(value: float, reference: float, default: float) -> str:
    return f"{value:,.0f} | {value / reference:.3f} | {value / default:.3f}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default=None, help="also measure the template at this ref")
    parser.add_argument("--requests", type=int, default=1000, help="counted requests per run")
    parser.add_argument("--output", type=Path, default=run.HERE / "RESULTS-instructions.md")
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        print("valgrind is not installed (apt-get install valgrind)", file=sys.stderr)
        return 2
    wanted = {run.REFERENCE_VARIANT, *VARIANTS}
    if args.baseline:
        wanted.add(f"generated at {args.baseline}, default install")
    counts: dict[str, dict[str, Cost]] = {}
    with otlp_receiver() as receiver, tempfile.TemporaryDirectory() as workdir:
        variants, plain = run.prepare(Path(workdir), False, args.baseline, receiver.endpoint)
        chosen = [variant for variant in variants if variant.name in wanted]
        for scenario in [*SCENARIOS, *REPORTED]:
            measured = (
                chosen
                if scenario in SCENARIOS
                else [
                    variant
                    for variant in chosen
                    if variant.name in {run.REFERENCE_VARIANT, run.DEFAULT_VARIANT}
                ]
            )
            with run.fake_upstream(plain, scenario.latency_ms) as upstream:
                for variant in measured:
                    cost = measure(variant, scenario, upstream, args.requests, Path(workdir))
                    counts.setdefault(scenario.name, {})[variant.name] = cost
                    print(
                        f"{scenario.name:50} {variant.name:60}"
                        f" {cost.instructions:12,.0f} {cost.cycles:12,.0f}",
                        flush=True,
                    )
    command = "python benchmarks/instructions.py" + (
        f" --baseline {args.baseline}" if args.baseline else ""
    )
    args.output.write_text(report(counts, command, args.requests), encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
