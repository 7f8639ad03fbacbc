"""The benchmark harness works end to end (it says nothing about speed: see benchmarks/)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import TEMPLATE_ROOT, run

SCENARIOS = 6
OVERLOAD_LIMITS = 3  # MAX_IN_FLIGHT values the overload section compares


def smoke_run(tmp_path: Path, *options: str) -> tuple[dict[str, Any], Path]:
    """``run.py --smoke`` with ``options``: every run as JSON, and the report's path."""
    results = tmp_path / "runs.json"
    report = tmp_path / "report.md"
    # A quarter second a measurement: enough requests to check every number the report needs.
    command = [
        sys.executable,
        TEMPLATE_ROOT / "benchmarks" / "run.py",
        "--smoke",
        "--duration",
        "0.25",
        *options,
    ]
    run([*command, "--json", results, "--output", report], TEMPLATE_ROOT, timeout=300)
    measured: dict[str, Any] = json.loads(results.read_text())
    return measured, report


@pytest.mark.slow
@pytest.mark.parametrize("loadgen", ["python"])
def test_smoke_run_measures_every_scenario_for_every_variant(tmp_path: Path, loadgen: str) -> None:
    measured, report = smoke_run(tmp_path, "--loadgen", loadgen)

    runs = measured["runs"]
    variants = {entry["variant"] for entry in runs}
    assert len(variants) == 3 and any(name.startswith("reference") for name in variants)
    assert len(runs) == SCENARIOS * len(variants)
    for entry in runs:
        assert entry["requests"] > 0, entry
        assert entry["errors"] == 0, entry
        assert entry["cpu_us_per_request"] > 0, entry
        assert 0 < entry["startup_ms"] < 10_000, entry
        assert entry["peak_rss_mb"] > 0, entry
    batches = [entry for entry in runs if entry["scenario"].startswith("POST batch")]
    assert all(0 < entry["upstream_max_in_flight"] <= 50 for entry in batches)
    assert all(entry["p50_ms"] >= 50 for entry in batches)  # it did wait for the upstream
    assert report.read_text().count("| reference") == SCENARIOS
    overloads = measured["overload"]
    assert len(overloads) == OVERLOAD_LIMITS
    for entry in overloads:
        assert entry["offered"] > 0, entry
        assert entry["accepted"] + entry["refused"] == entry["offered"], entry  # no errors
        assert entry["cpu_us_per_request"] > 0, entry
    assert "## Overload" in report.read_text()


@pytest.mark.slow
def test_together_runs_every_variant_at_once_and_measures_each(tmp_path: Path) -> None:
    scenarios = "GET /health,upstream 0 ms"
    measured, report = smoke_run(
        tmp_path, "--together", "--only", scenarios, "--repeats", "2", "--loadgen", "python"
    )

    runs = measured["runs"]
    assert len(runs) == 2 * 2 * 3  # scenarios, repeats, variants
    for entry in runs:
        assert entry["requests"] > 0, entry
        assert entry["errors"] == 0, entry
        assert entry["cpu_us_per_request"] > 0, entry
    assert "--together" in report.read_text()
    assert report.read_text().count("| reference") == 2


@pytest.mark.slow
def test_an_ablated_variant_is_measured_beside_the_default(tmp_path: Path) -> None:
    """One is enough for the harness: ``test_ablations.py`` starts each of them."""
    measured, report = smoke_run(
        tmp_path,
        "--variants",
        "ablated: no middleware",
        "--only",
        "GET /health",
        "--loadgen",
        "python",
    )

    runs = measured["runs"]
    variants = [entry["variant"] for entry in runs]
    assert variants.count("generated, default install, ablated: no middleware") == 1
    assert len(variants) == 3
    for entry in runs:
        assert entry["requests"] > 0, entry
        assert entry["errors"] == 0, entry
    assert report.read_text().count("| generated, default install, ablated: no middleware |") == 1

    # The same report appended as a section of another: how the ablations join RESULTS-cpu.md.
    earlier = report.read_text()
    smoke_run(tmp_path, "--only", "GET /health", "--loadgen", "python", "--section", "Ablations")
    text = report.read_text()
    assert text.startswith(earlier.rstrip("\n") + "\n\n## Ablations\n")
    assert text.count("# Benchmark results") == 1
    assert text.count("\n### GET /health\n") == 1
    assert text.count("- Template commit: ") == 2
