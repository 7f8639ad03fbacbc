"""The generated README's recipes work as written: applied to a baked project, it still passes
ruff, mypy --strict and its tests, and each recipe costs what the README promises."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import Bake, Install, run
from matrix import DEFAULT_PYTHON

RECIPES = ("Add a read endpoint", "Add a write endpoint", "Add a second upstream")
STEP = re.compile(
    r"(?P<verb>Append to|New file|In)\s+`(?P<path>[^`]+)`"
    r"(?:,\s+(?P<where>above|below)\s+`(?P<anchor>[^`]+)`|,\s+(?P<table>at the end of the "
    r"configuration table))?[^:\n]*:\n\n```\w*\n(?P<code>.*?)```",
    re.DOTALL,
)
TABLE_ROW = re.compile(r"^\| `[A-Z0-9_]+` \|")
# What the README promises a recipe costs, in non-blank lines of code and test.
MOST_LINES = {"Add a read endpoint": 40, "Add a write endpoint": 50, "Add a second upstream": 45}
NOT_COUNTED = ("settings.py", "CONFIGURATION.md")  # "plus settings"


@dataclass(frozen=True)
class Step:
    verb: str
    path: str
    where: str | None
    anchor: str | None
    table: bool
    code: str


def recipe_steps(readme: str, title: str) -> list[Step]:
    """The steps of one recipe section, in order; every code block must be a step."""
    section = re.search(rf"### {re.escape(title)}\n(.*?)(?=\n## |\n### |\Z)", readme, re.DOTALL)
    assert section, f"the generated README has no '{title}' recipe"
    steps = [
        Step(m["verb"], m["path"], m["where"], m["anchor"], bool(m["table"]), m["code"])
        for m in STEP.finditer(section[1])
    ]
    assert len(steps) == section[1].count("```") // 2, f"'{title}' has a block that is no step"
    return steps


def apply(step: Step, project: Path) -> None:
    target = project / step.path
    if step.verb == "New file":
        assert not target.exists()
        target.write_text(step.code, encoding="utf-8")
        return
    lines = target.read_text(encoding="utf-8").splitlines(keepends=True)
    if step.verb == "Append to":
        at = len(lines)
    elif step.table:
        at = max(i for i, line in enumerate(lines) if TABLE_ROW.match(line)) + 1
    else:
        assert step.anchor is not None
        (found,) = [i for i, line in enumerate(lines) if line.startswith(step.anchor)]
        at = found if step.where == "above" else found + 1
    target.write_text("".join([*lines[:at], step.code, *lines[at:]]), encoding="utf-8")


def cost(steps: list[Step]) -> int:
    return sum(
        len([line for line in step.code.splitlines() if line.strip()])
        for step in steps
        if not step.path.endswith(NOT_COUNTED)
    )


@pytest.fixture(scope="module")
def readme(bake: Bake) -> str:
    return (bake() / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("title", RECIPES)
def test_recipe_costs_what_the_readme_says(readme: str, title: str) -> None:
    assert cost(recipe_steps(readme, title)) <= MOST_LINES[title]


@pytest.mark.slow
def test_every_recipe_applied_as_written_passes_every_check(
    bake: Bake, install: Install, readme: str, mypy_cache: Path
) -> None:
    project = bake()
    for title in RECIPES:
        for step in recipe_steps(readme, title):
            apply(step, project)
    python = install(project, DEFAULT_PYTHON)
    for fix in (["check", "--fix", "--no-cache", "."], ["format", "--no-cache", "."]):
        run([python, "-m", "ruff", *fix], project)
    run([python, "-m", "ruff", "check", "--no-cache", "."], project)
    run([python, "-m", "mypy", "--cache-dir", mypy_cache], project)
    result = run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider"], project)
    new_tests = (
        "test_item_reviews_come_from_the_upstream",
        "test_an_order_is_placed_with_the_callers_key",
        "test_get_invoice_returns",
    )
    for new_test in new_tests:
        collected = run([python, "-m", "pytest", "-q", "--co", "-k", new_test], project)
        assert re.search(rf"^\S+::{new_test}\w*$", collected.stdout, re.M), collected.stdout
    assert " passed" in result.stdout
