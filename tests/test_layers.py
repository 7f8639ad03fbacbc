"""The generated package's layering is a contract that fails: import-linter (`lint-imports`,
declared in the generated pyproject.toml) passes on a bake and breaks on a planted import.

Every matrix row runs `lint-imports` too (test_combinations.py); here one bake shows that each
contract catches what it is there for.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import run

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("layers")]

PACKAGE = Path("src/my_async_service")
LAYERS = "Each part imports only from the parts below it"
CLIENTS_ALONE = "The clients stand alone: no settings, HTTP side, observability or app"


def lint_imports(python: Path, project: Path) -> str:
    result = run([python.parent / "lint-imports", "--no-cache", "--no-logo"], project, check=False)
    return f"exit {result.returncode}\n{result.stdout}{result.stderr}"


def plant(project: Path, module: str, line: str) -> str:
    """Append an import to one module; returns the module's text as it was."""
    path = project / PACKAGE / module
    before = path.read_text(encoding="utf-8")
    path.write_text(f"{before}{line}\n", encoding="utf-8")
    return before


@pytest.mark.parametrize(
    ("module", "planted", "broken"),
    [
        # The client core reading settings: what upstreams.py is for. Settings sit above the
        # clients, so the layers break too.
        (
            "clients/core.py",
            "from ..settings import Settings  # noqa: E402",
            {LAYERS, CLIENTS_ALONE},
        ),
        # The bottom layer reaching up to the HTTP side: the clients, which use it, now reach
        # the HTTP side too (import-linter follows indirect imports).
        (
            "common/errors.py",
            "from ..web import responses  # noqa: E402",
            {LAYERS, CLIENTS_ALONE},
        ),
        # A handler importing the application factory: an arrow back up.
        ("web/handlers.py", "from .. import app  # noqa: E402", {LAYERS}),
    ],
)
def test_an_import_against_the_layering_breaks_its_contract(
    default_project: Path, default_python: Path, module: str, planted: str, broken: set[str]
) -> None:
    assert "Contracts: 2 kept, 0 broken." in lint_imports(default_python, default_project)
    before = plant(default_project, module, planted)
    try:
        output = lint_imports(default_python, default_project)
    finally:
        (default_project / PACKAGE / module).write_text(before, encoding="utf-8")

    assert output.startswith("exit 1"), output
    reported = {name for name in (LAYERS, CLIENTS_ALONE) if f"{name} BROKEN" in output}
    assert reported == broken, output
    imported = planted.split()[1].lstrip(".") or "app"
    assert f"my_async_service.{module[:-3].replace('/', '.')} -> " in output, output
    assert f"my_async_service.{imported}" in output, output
