"""benchmarks/instructions.py, as far as it can be checked without valgrind (not installed by
``./dev``: the count itself is run by hand, see README "Performance")."""

from __future__ import annotations

import json
import sys
import urllib.request

import pytest
from conftest import TEMPLATE_ROOT

sys.path.insert(0, str(TEMPLATE_ROOT / "benchmarks"))
import instructions
import run
from support import processes


def test_it_counts_the_two_scenarios_the_cpu_targets_are_stated_for() -> None:
    assert [scenario.name for scenario in instructions.SCENARIOS] == list(instructions.TARGETED)


def test_the_counted_load_sends_exactly_the_requests_it_divides_by() -> None:
    items = run.Scenario("items", "GET", "/items/{n}", 0, 1, ids=run.EVERY_ID_NEW)

    with processes.fake_upstream() as upstream:
        instructions.counted_load(upstream, items, 57, first=1000)
        with urllib.request.urlopen(upstream + "/__stats", timeout=10) as answer:
            stats = json.loads(answer.read())

    assert stats["requests"] == 57
    assert sorted(stats["paths"]) == sorted(f"/items/{n}" for n in range(1000, 1057))


def test_the_cycle_estimate_adds_the_weighted_misses_and_mispredictions() -> None:
    out = "\n".join(
        [
            "events: Ir Dr Dw I1mr D1mr D1mw ILmr DLmr DLmw Bc Bcm Bi Bim",
            "summary: 0",
            "fn=(1) main",
            "16 999",
            "totals: 1000 5 5 2 3 4 1 0 0 50 6 7 8",
        ]
    )

    cost = instructions.cost_per_request(out, requests=10)

    # 1,000 instructions + 10 x 9 first-level misses + 100 x 1 last-level + 10 x 14 mispredicted
    assert (cost.instructions, cost.cycles) == (100.0, 133.0)


def test_a_file_that_counted_nothing_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="counted nothing"):
        instructions.cost_per_request("events: Ir\nsummary: 0\ntotals: 0\n", requests=10)
