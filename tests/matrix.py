"""The option combinations the template tests bake: derived from cookiecutter.json, one table.

Every question of ``cookiecutter.json`` with a list of choices or a yes/no default is an
option; its values come from there, so a new option or value is baked without editing this
file. The rows are a pairwise (2-way) covering set built greedily and deterministically:
every value of every option appears, and so does every pair of values of any two options
(``test_matrix_is_pairwise`` checks it). Some rows also rename the project and the upstream,
so names derived from answers are exercised too.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

QUESTIONS: dict[str, Any] = json.loads(
    (Path(__file__).resolve().parent.parent / "cookiecutter.json").read_text(encoding="utf-8")
)
OPTIONS: dict[str, list[Any]] = {
    # A yes/no option's default first, like a list's: the first row then bakes every default.
    name: [default, not default] if isinstance(default, bool) else list(default)
    for name, default in QUESTIONS.items()
    if not name.startswith("_") and isinstance(default, bool | list)
}
# Answers pre_gen_project.py refuses together: no row bakes them and the pairwise cover leaves
# their pairs out (test_answers.py proves the hook refuses each).
REFUSED: list[dict[str, Any]] = [{"deployment": "kubernetes", "use_docker": False}]
PYTHON_VERSIONS: list[str] = OPTIONS["python_version"]
DEFAULT_PYTHON = PYTHON_VERSIONS[0]

Pair = tuple[tuple[str, Any], tuple[str, Any]]


def pairwise(
    options: dict[str, list[Any]], refused: list[dict[str, Any]] = REFUSED
) -> list[dict[str, Any]]:
    """Rows covering every pair of values of any two options (greedy, deterministic), except
    the ``refused`` pairs, which no row contains.

    Each row starts from the first pair not yet covered; every other option takes the value
    that covers the most new pairs with the values already in the row (ties: the earlier value).
    """
    names = list(options)

    def pair(x: tuple[str, Any], y: tuple[str, Any]) -> Pair:
        return (x, y) if names.index(x[0]) < names.index(y[0]) else (y, x)

    def position(p: Pair) -> tuple[int, int, int, int]:
        (first, a), (second, b) = p
        return (
            names.index(first),
            options[first].index(a),
            names.index(second),
            options[second].index(b),
        )

    def new_pairs(row: dict[str, Any], uncovered: set[Pair], name: str, value: Any) -> int:
        return sum(pair((other, row[other]), (name, value)) in uncovered for other in row)

    def allowed(row: dict[str, Any], name: str, value: Any) -> bool:
        candidate = {**row, name: value}
        return not any(candidate.items() >= answers.items() for answers in refused)

    uncovered = {
        pair((first, a), (second, b))
        for first, second in itertools.combinations(names, 2)
        for a in options[first]
        for b in options[second]
        if allowed({first: a}, second, b)
    }
    rows = []
    while uncovered:
        row = dict(min(uncovered, key=position))
        for name in names:
            if name not in row:
                row[name] = max(
                    [value for value in options[name] if allowed(row, name, value)],
                    key=lambda v, n=name, r=row, u=uncovered: (
                        new_pairs(r, u, n, v),
                        -options[n].index(v),
                    ),
                )
        row = {name: row[name] for name in names}
        uncovered -= {pair((x, row[x]), (y, row[y])) for x, y in itertools.combinations(names, 2)}
        rows.append(row)
    return rows


# Extra answers for some rows: other project names and upstreams give other module names.
RENAMES: dict[int, dict[str, str]] = {
    # Row 0 keeps every default answer: it is the quick run's bake (see DEFAULT_ROW).
    # The longest names pre_gen accepts (32-character package, 40-character client class):
    # generated code must still pass ruff's 100-column checks (row 2 has the most code:
    # metrics, tracing, the Redis cache and Kubernetes).
    2: {
        "project_name": "Abcdefghij Klmnopqrst Uvwxyzabcd",
        "upstream_name": "Abcdefghij Klmnopqrst Uvwxyzabcd Abcd",
    },
    7: {"project_name": "Billing Gateway", "upstream_name": "Stripe v2"},
    5: {"project_name": "weather2 relay", "upstream_name": "Open-Meteo"},
    10: {"project_name": "Inventory", "upstream_name": "Acme Warehouse API"},
    13: {"project_name": "Geo Lookup Service", "upstream_name": "Nominatim"},
}

COMBINATIONS: list[dict[str, Any]] = [
    {**row, **RENAMES.get(index, {})} for index, row in enumerate(pairwise(OPTIONS))
]


# The row that bakes exactly the defaults: what a new user gets, checked by `./dev test -m quick`.
DEFAULT_ROW = 0

# The options that change what a baked project's own test suite runs: its Python code, its tests
# and pytest.ini (test_combinations.py checks this list against the template's files). The
# others change only files that suite never reads: CI, Docker, pre-commit, the license, the
# manifests, and the target Python (which ruff and mypy check on every row; the suite runs on
# this machine's Python whatever the target).
CODE_OPTIONS = ("upstream_auth", "use_metrics", "use_tracing", "cache")


def code_pairs(row: dict[str, Any]) -> set[tuple[tuple[str, Any], tuple[str, Any]]]:
    """Every pair of the row's values of two code options."""
    return {
        ((first, row[first]), (second, row[second]))
        for first, second in itertools.combinations(CODE_OPTIONS, 2)
    }


def suite_rows(rows: list[dict[str, Any]]) -> list[int]:
    """The rows whose own test suite test_combinations.py runs: in order, each row that brings a
    pair of values of two code options not run yet, or renames something. The default row's
    suite runs elsewhere, exactly as its CI runs it: its answers are those of the GitHub project
    whose CI jobs test_ci_commands.py runs as written (the test job: the suite under the
    coverage gate), so its pairs count as run. Every pair of code options' values is then run
    (the pairwise promise, for the suites); a row left out differs from those run only in what
    its suite does not read, or in a combination of three or more code options' values."""
    run = code_pairs(rows[DEFAULT_ROW])
    chosen = []
    for index, row in enumerate(rows):
        if index != DEFAULT_ROW and (code_pairs(row) - run or index in RENAMES):
            chosen.append(index)
            run |= code_pairs(row)
    return chosen


SUITE_ROWS = suite_rows(COMBINATIONS)


def combination_id(answers: dict[str, Any]) -> str:
    """A short readable id: each choice's value, each yes/no option's name or ``no<name>``."""
    parts = []
    for name in OPTIONS:
        value = answers[name]
        if isinstance(value, bool):
            short = name.removeprefix("use_").replace("_", "")
            parts.append(short if value else f"no{short}")
        else:
            parts.append(str(value).lower().replace(".", ""))
    return "-".join(parts)
