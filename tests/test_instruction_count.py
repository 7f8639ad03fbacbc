"""benchmarks/instructions.py, as far as it can be checked without valgrind (not installed by
``./dev``: the count itself is run by hand, see README "Performance")."""

from __future__ import annotations

import json
import sys
import urllib.request

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
