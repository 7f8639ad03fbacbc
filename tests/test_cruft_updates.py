"""Generated projects stay up to date with cruft: real cruft, real git, no mocks.

Each test clones the template's committed state into a tmp dir (cruft only ever sees commits),
makes template changes there as new commits, and drives cruft as a user would.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import uv
from ci_tools import ci_jobs, kustomize, run_job
from conftest import Install, commit_all, git, run, with_uv
from cookiecutter.main import cookiecutter
from matrix import DEFAULT_PYTHON

CRUFT = Path(sys.executable).parent / "cruft"
TEMPLATE_DIR = "{{cookiecutter.project_slug}}"
PACKAGE_DIR = f"{TEMPLATE_DIR}/src/{{{{cookiecutter.package_name}}}}"

pytestmark = pytest.mark.xdist_group("cruft")


# cruft as a user with uv runs it: the post-generation hook locks (offline, from uv's cache,
# which uv_cache_has_the_default_dependencies filled: 0.2 s a lock instead of 1.3 s).
CRUFT_ENV = {**with_uv(), "UV_OFFLINE": "1"}


def cruft(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run([CRUFT, *args], cwd, check=check, env=CRUFT_ENV)


def uv_lock_check(project: Path) -> None:
    """``uv lock --check``: the lock matches the project's pyproject.toml."""
    run([uv.find_uv_bin(), "lock", "--check", "--offline"], project, env=CRUFT_ENV)


def create(template: Path, output: Path, **answers: str) -> Path:
    output.mkdir(parents=True, exist_ok=True)
    args = ["create", str(template), "--no-input", "--output-dir", str(output)]
    if answers:
        args += ["--extra-context", json.dumps(answers)]
    cruft(output, *args)
    (project,) = output.iterdir()
    commit_all(project, "Generated")
    return project


def append(path: Path, line: str) -> None:
    """Add a line at the end of a file: an edit that needs no knowledge of the file's wording."""
    with path.open("a", encoding="utf-8") as file:
        file.write(line + "\n")


def tree(root: Path, ignore: Callable[[Path], bool] = lambda _: False) -> dict[str, bytes]:
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and ".git" not in path.relative_to(root).parts and not ignore(path)
    }


def is_lock(path: Path) -> bool:
    return path.name == "uv.lock"


def conflict_marker_check(project: Path) -> str:
    """The generated CI's command that looks for conflict markers, as CI would run it."""
    (command,) = [
        script for job in ci_jobs(project) for script in job.scripts if "git grep" in script
    ]
    return command


def test_create_records_the_template_commit_and_answers(template: Path, tmp_path: Path) -> None:
    project = create(template, tmp_path / "out", project_name="Cruft Made", license="BSD-3-Clause")

    state = json.loads((project / ".cruft.json").read_text(encoding="utf-8"))
    assert state["commit"] == git(template, "rev-parse", "HEAD")
    assert state["template"] == str(template)
    answers: dict[str, Any] = state["context"]["cookiecutter"]
    assert answers["project_name"] == "Cruft Made"
    assert answers["license"] == "BSD-3-Clause"
    assert answers["package_name"] == "cruft_made"
    assert re.fullmatch(r"\d{4}", answers["copyright_year"])
    assert cruft(project, "check").returncode == 0


def test_same_answers_at_the_same_commit_give_identical_trees(
    template: Path, tmp_path: Path
) -> None:
    first = create(template, tmp_path / "first", project_name="Twin")
    second = create(template, tmp_path / "second", project_name="Twin")

    # Two resolutions minutes apart may differ: the locks are checked, not compared.
    assert tree(first, ignore=is_lock) == tree(second, ignore=is_lock)
    uv_lock_check(first)
    uv_lock_check(second)


def test_regenerating_from_cruft_json_reproduces_the_tree(template: Path, tmp_path: Path) -> None:
    project = create(template, tmp_path / "out", project_name="Regen", ci_provider="gitlab")
    state = json.loads((project / ".cruft.json").read_text(encoding="utf-8"))
    answers = {k: v for k, v in state["context"]["cookiecutter"].items() if not k.startswith("_")}
    config = tmp_path / "cookiecutter.yaml"
    config.write_text(f"cookiecutters_dir: {tmp_path / 'cc'}\nreplay_dir: {tmp_path / 'replay'}\n")

    again = cookiecutter(
        str(template),
        checkout=state["commit"],
        no_input=True,
        extra_context=answers,
        output_dir=str(tmp_path / "again"),
        config_file=str(config),
    )

    assert tree(Path(again), ignore=is_lock) == tree(
        project, ignore=lambda path: path.name == ".cruft.json" or is_lock(path)
    )
    uv_lock_check(project)


def test_an_update_renders_with_the_new_commits_jinja_extensions(
    template: Path, tmp_path: Path
) -> None:
    """cruft renders the old and the new commit in one process: the new commit's filters must be
    the new commit's own, not a module cached from the old render."""
    project = create(template, tmp_path / "out")
    extensions = template / "template_extensions.py"
    text = extensions.read_text(encoding="utf-8")
    changed = text.replace(
        "            quoted=quoted,\n",
        "            quoted=quoted,\n            shouted=str.upper,\n",
    )
    assert changed != text
    extensions.write_text(changed, encoding="utf-8")
    append(template / TEMPLATE_DIR / "CONFIGURATION.md", "{{ 'a new filter' | shouted }}")
    commit_all(template, "Template: a new filter, used")

    cruft(project, "update", "-y")

    assert "A NEW FILTER" in (project / "CONFIGURATION.md").read_text(encoding="utf-8")


@pytest.mark.slow
def test_update_brings_template_changes_and_keeps_user_edits(
    template: Path, tmp_path: Path, install: Install
) -> None:
    project = create(template, tmp_path / "out")
    package = project / "src" / "my_async_service"
    append(package / "web" / "handlers.py", "# mine")
    (package / "extra.py").write_text('"""A module of the user\'s own."""\n', encoding="utf-8")
    commit_all(project, "User edits")
    append(template / PACKAGE_DIR / "web" / "responses.py", "# template v2")
    new_commit = commit_all(template, "Template: touch responses")

    assert cruft(project, "check", check=False).returncode == 1
    cruft(project, "update", "-y")

    assert "# template v2" in (package / "web" / "responses.py").read_text(encoding="utf-8")
    assert "# mine" in (package / "web" / "handlers.py").read_text(encoding="utf-8")
    assert (package / "extra.py").is_file()
    assert json.loads((project / ".cruft.json").read_text())["commit"] == new_commit
    commit_all(project, "Update from template")
    assert cruft(project, "check").returncode == 0
    python = install(project, DEFAULT_PYTHON)
    run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider"], project)


@pytest.mark.slow
def test_an_edit_in_a_moved_module_moves_with_it_when_the_package_is_regrouped(
    template: Path, tmp_path: Path, install: Install
) -> None:
    # The last template commit with every module beside app.py, before web/, clients/,
    # observability/ and common/ (CHANGELOG: "Grouped by concern").
    regrouping = git(
        template, "log", "-1", "--format=%H", "--diff-filter=D", "--", f"{PACKAGE_DIR}/handlers.py"
    )
    flat = git(template, "rev-parse", f"{regrouping}^")
    output = tmp_path / "out"
    output.mkdir()
    cruft(output, "create", str(template), "--no-input", "--checkout", flat)
    (project,) = output.iterdir()
    commit_all(project, "Generated")
    package = project / "src" / "my_async_service"
    append(package / "handlers.py", "# mine")
    commit_all(project, "User edit")

    # To the regrouping itself: later commits rewrote handlers.py past what git's rename
    # detection pairs up (CHANGELOG: update in two steps across both).
    result = cruft(project, "update", "-y", "--checkout", regrouping)

    # A clean update: git follows the renames, and the user's line moves with the module.
    assert "Good work!" in result.stdout
    assert not (package / "handlers.py").exists()
    assert (package / "web" / "handlers.py").read_text(encoding="utf-8").endswith("# mine\n")
    run(["bash", "-c", conflict_marker_check(project)], project)  # the CI's check: no markers
    assert list(project.rglob("*.rej")) == []
    # A project of that time: its dev tools were an extra, and it had no lock.
    python = install(project, DEFAULT_PYTHON, extras=("speedups", "dev"))
    run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider"], project)
    run([python.parent / "lint-imports"], project)


def test_skipped_files_are_left_alone_by_update(template: Path, tmp_path: Path) -> None:
    project = create(template, tmp_path / "out")
    readme_before = (project / "README.md").read_bytes()
    append(template / TEMPLATE_DIR / "README.md", "Updated by the template.")
    append(template / TEMPLATE_DIR / "pytest.ini", "# updated by the template")
    commit_all(template, "Template: README and pytest.ini")

    cruft(project, "update", "-y")

    assert (project / "README.md").read_bytes() == readme_before
    assert "# updated by the template" in (project / "pytest.ini").read_text(encoding="utf-8")


def test_conflicting_edit_leaves_markers_that_the_generated_ci_catches(
    template: Path, tmp_path: Path
) -> None:
    project = create(template, tmp_path / "out")
    target = "src/my_async_service/web/handlers.py"
    append(project / target, "# the user's last line")
    commit_all(project, "User: a last line")
    append(template / PACKAGE_DIR / "web" / "handlers.py", "# the template's last line")
    commit_all(template, "Template: another last line")
    check = conflict_marker_check(project)
    assert run(["bash", "-c", check], project, check=False).returncode == 0  # clean before

    result = cruft(project, "update", "-y")

    assert result.returncode == 0  # cruft reports success even so
    assert "<<<<<<<" in (project / target).read_text(encoding="utf-8")
    git(project, "add", "-A")  # as a user might, committing without looking
    assert run(["bash", "-c", check], project, check=False).returncode != 0


@pytest.mark.slow
def test_a_used_dev_checkout_stays_clean_and_updatable(
    template: Path, tmp_path: Path, install: Install
) -> None:
    project = create(template, tmp_path / "out")
    python = install(project, DEFAULT_PYTHON)
    env = {"PYTHONDONTWRITEBYTECODE": ""}  # write bytecode, as a normal checkout does
    # Every tool's leftovers, not every test: two test files (one with hypothesis, whose database
    # is a folder too) make the same caches and reports as the whole suite.
    tests = ["tests/test_settings.py", "tests/web/test_batch.py"]
    for command in (
        ["-m", "coverage", "run", "-m", "pytest", "-q", *tests],
        ["-m", "coverage", "html", "--fail-under=0"],
        ["-m", "coverage", "xml", "--fail-under=0"],
        ["-m", "ruff", "check", "."],
        ["-m", "mypy"],
    ):
        run([python, *command], project, env=env)
    run([python.parent / "lint-imports"], project, env=env)
    run([sys.executable, "-m", "uv", "build", "--quiet", "--out-dir", "dist", "."], project)
    assert list((project / "dist").glob("*.whl"))

    assert git(project, "status", "--porcelain", "--untracked-files=all") == ""
    append(template / PACKAGE_DIR / "web" / "batch.py", "# touched by the template")
    commit_all(template, "Template: touch")
    assert cruft(project, "update", "-y").returncode == 0


@pytest.mark.parametrize("provider", ["github", "gitlab"])
def test_the_drift_job_reports_a_moved_template_without_failing_the_pipeline(
    template: Path, tmp_path: Path, job_cache: Path, provider: str
) -> None:
    project = create(template, tmp_path / "out", ci_provider=provider)
    (drift,) = [job for job in ci_jobs(project) if job.name == "template-drift"]
    assert not drift.after_scripts
    current = run_job(drift, project, tmp_path / "current", job_cache, extra_env=CRUFT_ENV)
    assert current.returncode == 0, current.stdout + current.stderr
    append(template / TEMPLATE_DIR / "pytest.ini", "# the template moved on")
    commit_all(template, "Template: moved on")

    moved = run_job(drift, project, tmp_path / "moved", job_cache, extra_env=CRUFT_ENV)

    if provider == "github":  # a warning annotation; the job passes
        assert moved.returncode == 0, moved.stdout + moved.stderr
        assert "::warning" in moved.stdout
    else:  # the job fails, and GitLab shows it as a warning: it may fail
        assert moved.returncode != 0
        assert drift.allow_failure


@pytest.mark.slow
def test_an_update_that_adds_a_setting_keeps_the_projects_suite_green(
    template: Path, tmp_path: Path, install: Install
) -> None:
    # README.md is the user's (skipped by updates); the settings table lives in
    # CONFIGURATION.md, the template's, so the new setting's row arrives with the setting.
    project = create(template, tmp_path / "out")
    settings = template / PACKAGE_DIR / "settings.py"
    text = settings.read_text(encoding="utf-8")
    anchor = "    @classmethod\n"
    assert text.count(anchor) == 1
    new_field = '    feature_flag: bool = setting(False, _boolean, "A setting added later")\n\n'
    settings.write_text(text.replace(anchor, new_field + anchor), encoding="utf-8")
    append(
        template / TEMPLATE_DIR / "CONFIGURATION.md", "| `FEATURE_FLAG` | `false` | Added later |"
    )
    commit_all(template, "Template: a new setting")

    cruft(project, "update", "-y")

    assert "feature_flag" in (project / "src" / "my_async_service" / "settings.py").read_text()
    assert "FEATURE_FLAG" in (project / "CONFIGURATION.md").read_text(encoding="utf-8")
    python = install(project, DEFAULT_PYTHON)
    run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_settings.py"], project)


def add_a_dependency(template: Path) -> None:
    """A template commit that adds ``idna`` (in uv's cache: aiohttp depends on it)."""
    pyproject = template / TEMPLATE_DIR / "pyproject.toml"
    text = pyproject.read_text(encoding="utf-8")
    anchor = '    "aiolimiter>=1.2,<2",\n'
    assert text.count(anchor) == 1
    pyproject.write_text(text.replace(anchor, anchor + '    "idna>=3.10,<4",\n'), encoding="utf-8")
    commit_all(template, "Template: a new dependency")


@pytest.mark.slow
def test_an_update_that_changes_dependencies_leaves_the_lock_to_uv_lock(
    template: Path, tmp_path: Path, install: Install
) -> None:
    project = create(template, tmp_path / "out")
    assert (project / "uv.lock").is_file()  # committed with the project
    lock_before = (project / "uv.lock").read_bytes()
    add_a_dependency(template)

    cruft(project, "update", "-y")

    # The new dependency arrived; the lock did not change (it is in [tool.cruft] skip) ...
    assert '"idna>=3.10,<4"' in (project / "pyproject.toml").read_text(encoding="utf-8")
    assert (project / "uv.lock").read_bytes() == lock_before
    # ... so installing from it fails with uv's own message, as the README's update steps say,
    sync = [uv.find_uv_bin(), "sync", "--locked", "--offline", "--extra", "speedups"]
    refused = run(sync, project, check=False, env=CRUFT_ENV)
    assert refused.returncode != 0
    assert "needs to be updated, but `--locked` was provided" in " ".join(refused.stderr.split())
    readme = (project / "README.md").read_text(encoding="utf-8")
    update_steps = readme.split("## Keeping up to date with the template", 1)[1]
    assert "uv lock" in update_steps
    # ... until `uv lock` brings it in step.
    run([uv.find_uv_bin(), "lock", "--offline"], project, env=CRUFT_ENV)
    uv_lock_check(project)
    lock = tomllib.loads((project / "uv.lock").read_text(encoding="utf-8"))
    (own,) = [package for package in lock["package"] if package["name"] == project.name]
    assert "idna" in {dependency["name"] for dependency in own["dependencies"]}
    python = install(project, DEFAULT_PYTHON)
    run([python, "-c", "import idna"], project)


def test_update_reaches_the_kubernetes_manifests_and_keeps_user_settings(
    template: Path, tmp_path: Path
) -> None:
    project = create(template, tmp_path / "out", deployment="kubernetes")
    plain = create(template, tmp_path / "plain")
    manifests = project / "deploy" / "kubernetes"
    append(manifests / "settings.env", "LOG_LEVEL=DEBUG")
    commit_all(project, "User edits")
    append(template / TEMPLATE_DIR / "deploy" / "kubernetes" / "service.yaml", "# template v2")
    commit_all(template, "Template: touch the Service")

    cruft(project, "update", "-y")
    cruft(plain, "update", "-y")

    assert (manifests / "service.yaml").read_text(encoding="utf-8").endswith("# template v2\n")
    assert "LOG_LEVEL=DEBUG" in (manifests / "settings.env").read_text(encoding="utf-8")
    (config_map,) = [item for item in kustomize(project) if item["kind"] == "ConfigMap"]
    assert config_map["data"]["LOG_LEVEL"] == "DEBUG"
    assert not (plain / "deploy").exists()  # deployment=none: the update adds no manifests
