"""The template repository's own Python (hooks, tests, benchmarks) is linted and formatted."""

from __future__ import annotations

import sys

from conftest import TEMPLATE_ROOT, run

OWN_PYTHON = ["hooks", "tests", "benchmarks", "local_extensions.py"]


def test_own_code_passes_ruff_check() -> None:
    run([sys.executable, "-m", "ruff", "check", "--no-cache", *OWN_PYTHON], TEMPLATE_ROOT)


def test_own_code_is_ruff_formatted() -> None:
    run(
        [sys.executable, "-m", "ruff", "format", "--no-cache", "--check", *OWN_PYTHON],
        TEMPLATE_ROOT,
    )
