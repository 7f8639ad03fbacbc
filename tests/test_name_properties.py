"""Property: any project_name / project_slug / package_name either gives a working project or
is refused by pre_gen with a clear message, leaving nothing behind.

Hypothesis draws names from a mix of strategies (free text, near-valid slugs and identifiers,
known-bad names). An accepted project must compile, pass ruff and its own test suite (all of
it but the tests marked slow, which fuzz the running app and the batch: names change neither).
Its tests run in one shared environment (the dependencies are the same for every name) with
the baked ``src`` first on the path, so each example costs a few seconds rather than an
install; mypy is covered by the option-matrix tests and is left out here for time.
"""

from __future__ import annotations

import keyword
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import Bake, Install, run
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from matrix import DEFAULT_PYTHON

Cli = Callable[..., Any]

# cookiecutter creates the project folder, named by the slug, before any hook runs: a slug
# with a path separator would leave its parent folders behind, and one that resolves to the
# output folder itself (empty, ".") makes cookiecutter stop at once. Those are cookiecutter's
# to handle; the property covers every other text.
FOLDER_SYNTAX = ("/", "\\", "\x00")

names = st.one_of(
    st.text(min_size=0, max_size=24),
    st.from_regex(r"[a-z][a-z0-9]{0,10}(-[a-z0-9]{1,6}){0,3}", fullmatch=True),
    st.from_regex(r"[A-Za-z_ \-0-9]{1,40}", fullmatch=True),
    st.sampled_from([*keyword.kwlist, "json", "asyncio", "aiohttp", "test", "-x", "x--y", "Ä"]),
)


@pytest.fixture(scope="module")
def shared_python(bake: Bake, install: Install) -> Path:
    """One environment with every dependency a generated project has, whatever its name."""
    return install(bake(), DEFAULT_PYTHON)


@pytest.mark.slow
@settings(
    # 20 draws (about 10 accepted names, each baked, linted and its suite run: a few seconds each)
    # keep the template suite inside its 10 minutes; CI draws the same ones every run.
    max_examples=20,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    project_name=names,
    project_slug=st.one_of(st.none(), names),
    package_name=st.one_of(st.none(), names),
)
def test_any_name_bakes_a_working_project_or_is_refused_cleanly(
    cookiecutter_cli: Cli,
    shared_python: Path,
    tmp_path_factory: pytest.TempPathFactory,
    project_name: str,
    project_slug: str | None,
    package_name: str | None,
) -> None:
    answers = {"project_name": project_name}
    if project_slug is not None:
        assume(not any(char in project_slug for char in FOLDER_SYNTAX))
        assume(project_slug.strip() not in {"", ".", ".."})
        answers["project_slug"] = project_slug
    if package_name is not None:
        answers["package_name"] = package_name
    # Answers go on cookiecutter's command line, and no argument can carry a NUL byte.
    assume(not any("\x00" in answer for answer in answers.values()))
    output = tmp_path_factory.mktemp("named")

    result = cookiecutter_cli(
        output, "--no-input", *(f"{key}={value}" for key, value in answers.items())
    )

    if result.returncode != 0:
        assert result.stderr.startswith("ERROR: "), result.stderr
        assert " is invalid: expected " in result.stderr.splitlines()[0]
        assert list(output.iterdir()) == []
        return
    (project,) = output.iterdir()
    check_working_project(project, shared_python)


def check_working_project(project: Path, python: Path) -> None:
    pyproject = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    (package,) = (project / "src").iterdir()
    assert pyproject["project"]["name"] == project.name
    for source in project.rglob("*.py"):
        compile(source.read_text(encoding="utf-8"), str(source), "exec")
    run([python, "-m", "ruff", "check", "--no-cache", "--quiet", "."], project)
    run([python, "-m", "ruff", "format", "--no-cache", "--check", "--quiet", "."], project)
    env = {"PYTHONPATH": str(project / "src")}
    # All but the tests slow from computation (the `slow` marker): the schemathesis fuzzing of
    # the running app and the batch's Hypothesis property, 3 s of each run; they drive the API
    # and the fan-out, which no name changes (the document that holds the names is still
    # validated by a test that runs).
    tests = run(
        [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not slow"], project, env=env
    )
    assert " passed" in tests.stdout
    assert package.name.isidentifier()
