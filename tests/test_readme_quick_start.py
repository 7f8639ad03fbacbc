"""The generated README's quick start works as written, with the pip a plain venv brings."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest
from conftest import Bake, run


def quick_start_commands(readme: str, package: str) -> list[str]:
    """The first bash block under "Quick start", minus the command that serves forever."""
    section = readme.split("## Quick start", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.DOTALL)
    assert block, "the README's quick start has no bash block"
    lines = [line.split("#", 1)[0].strip() for line in block.group(1).splitlines()]
    return [line for line in lines if line and line != f"python -m {package}"]


@pytest.mark.slow
def test_readme_quick_start_installs_and_tests_with_plain_pip(bake: Bake) -> None:
    project = bake()
    readme = (project / "README.md").read_text(encoding="utf-8")
    commands = quick_start_commands(readme, "my_async_service")
    assert any("pip install" in command for command in commands)
    # `python` is this interpreter, as on a machine where only it is installed.
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    script = "set -euo pipefail\n" + "\n".join(commands) + "\n"
    run(["bash", "-c", script], project, env={"PATH": path, "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
