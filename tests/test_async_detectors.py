"""The generated suite catches async bugs that pass silently elsewhere: each is planted in a
baked project and must fail its suite with a message that names it (and the bake without it
passes: every matrix row runs its own suite).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import Bake, Install, run
from matrix import DEFAULT_PYTHON

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("async-detectors")]

HANGING_TEST = """
import asyncio


async def test_planted_hang() -> None:
    await asyncio.Event().wait()  # nobody ever sets it
"""


@pytest.fixture(scope="module")
def project(bake: Bake) -> Path:
    return bake()


@pytest.fixture(scope="module")
def python(project: Path, install: Install) -> Path:
    return install(project, DEFAULT_PYTHON)


def test_a_hanging_test_fails_by_name_after_the_configured_timeout(
    project: Path, python: Path, tmp_path: Path
) -> None:
    assert "\ntimeout = 30\n" in (project / "pytest.ini").read_text(encoding="utf-8")
    planted = project / "tests" / "test_planted_hang.py"
    planted.write_text(HANGING_TEST, encoding="utf-8")
    try:
        # The project's own configuration, with a shorter timeout so this test is quick.
        command = [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "timeout=2"]
        result = run([*command, "tests/test_planted_hang.py"], project, check=False, timeout=60)
    finally:
        planted.unlink()

    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "FAILED tests/test_planted_hang.py::test_planted_hang" in output, output
    assert "Timeout (>2.0s) from pytest-timeout" in output, output
