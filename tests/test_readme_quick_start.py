"""The generated README's quick start works as written: with uv, and with the pip a plain venv
brings (upgraded as the README says)."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest
from conftest import Bake, path_without_uv, run, with_uv


def quick_start_blocks(readme: str) -> list[list[str]]:
    """The bash blocks under "Quick start" before the next section, as command lines."""
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, re.DOTALL)
    commands = [
        [line.split("  #", 1)[0].strip() for line in block.splitlines()] for block in blocks
    ]
    return [[line for line in block if line and not line.startswith("#")] for block in commands]


def without_serving(commands: list[str], package: str) -> list[str]:
    """The commands less the one that serves until stopped (it must be there, last)."""
    assert commands[-1].endswith(f"python -m {package}"), commands
    return commands[:-1]


def run_script(commands: list[str], project: Path, env: dict[str, str]) -> None:
    run(["bash", "-c", "set -euo pipefail\n" + "\n".join(commands) + "\n"], project, env=env)


@pytest.fixture(scope="module")
def blocks(bake: Bake) -> tuple[Path, list[list[str]]]:
    project = bake(lock=True)
    readme = (project / "README.md").read_text(encoding="utf-8")
    found = quick_start_blocks(readme)
    assert len(found) >= 3, found  # uv, pip, then the curl examples
    return project, found


@pytest.mark.slow
def test_readme_quick_start_with_uv_installs_the_lock_and_tests(
    blocks: tuple[Path, list[list[str]]],
) -> None:
    project, found = blocks
    commands = without_serving(found[0], "my_async_service")
    assert commands[0].startswith("uv sync")
    lock_before = (project / "uv.lock").read_bytes()
    env = with_uv()
    run_script(commands, project, env)
    assert (project / "uv.lock").read_bytes() == lock_before  # installed from it, not relocked


@pytest.mark.slow
def test_readme_quick_start_with_plain_pip_installs_and_tests(
    blocks: tuple[Path, list[list[str]]], tmp_path: Path
) -> None:
    project, found = blocks
    commands = without_serving(found[1], "my_async_service")
    assert commands[:2] == ["python -m venv .venv", ". .venv/bin/activate"]
    # A copy without uv.lock or the uv run's .venv; `python` is this interpreter, as on a
    # machine where only it is installed.
    copy = tmp_path / project.name
    run(["cp", "-r", project, copy], tmp_path)
    run(["rm", "-rf", copy / ".venv", copy / "uv.lock"], tmp_path)
    path = f"{Path(sys.executable).parent}{os.pathsep}{path_without_uv()}"
    run_script(commands, copy, {"PATH": path, "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
