"""The generated CI's commands work as written: each job runs, in order, in a fresh environment.

One default project per CI provider, each job run once (the Python matrix is one job run on
this machine's Python). The GitHub one is the default project itself, so its test job is where
the template's tests run the default project's own suite under the coverage gate
(test_combinations.py runs the other rows'). This is what keeps the README, pre-commit and the
CI files honest: the per-combination tests run the same tools, and this module proves the CI
files call them right.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml
from ci_tools import CiJob, ci_jobs, run_job
from conftest import Bake, commit_all, run
from matrix import COMBINATIONS, DEFAULT_ROW

PROVIDERS = ["github", "gitlab"]
EXPECTED_JOBS = {
    "github": {"lint", "test", "debug", "template-drift"},
    # GitLab's drift job exists only where .cruft.json does (its `rules:`).
    "gitlab": {"lint", "conflict-markers", "test", "test-debug"},
}
CONFLICT = "<<<<<<< ours\nmine\n=======\ntheirs\n>>>>>>> theirs\n"


def provider_param(provider: str) -> Any:
    # The GitHub project is the default project (matrix.DEFAULT_ROW): its CI's test job is where
    # the template's tests run the default project's own suite, so the quick run has it.
    quick = [pytest.mark.quick] if COMBINATIONS[DEFAULT_ROW]["ci_provider"] == provider else []
    return pytest.param(
        provider, id=provider, marks=[pytest.mark.xdist_group(f"ci-{provider}"), *quick]
    )


@pytest.fixture(scope="module", params=[provider_param(p) for p in PROVIDERS])
def ci_project(request: pytest.FixtureRequest, bake: Bake) -> Path:
    """The default project with this CI provider and its uv.lock, committed in a git repo."""
    project = bake(ci_provider=request.param, lock=True)
    commit_all(project, "Generated")
    return project


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ci-cache")


@pytest.fixture(scope="module")
def jobs(ci_project: Path) -> list[CiJob]:
    """The project's CI jobs as its platform reads them (for GitLab, gitlab-ci-local: read once)."""
    return ci_jobs(ci_project)


def job_named(jobs: list[CiJob], name: str) -> CiJob:
    (job,) = [job for job in jobs if job.name == name]
    return job


def test_the_platform_creates_the_expected_jobs(ci_project: Path, jobs: list[CiJob]) -> None:
    provider = "github" if (ci_project / ".github").is_dir() else "gitlab"
    assert {job.name for job in jobs} == EXPECTED_JOBS[provider]


def test_no_command_relies_on_a_negation_that_set_e_ignores(
    ci_project: Path, jobs: list[CiJob]
) -> None:
    # `! cmd` never stops a `set -e` script (POSIX), so a check written that way cannot fail a
    # job unless it happens to be the script's last line.
    negated = [
        f"{job.name}: {line.strip()}"
        for job in jobs
        for script in job.scripts
        for line in script.splitlines()
        if line.lstrip().startswith("! ")
    ]
    assert negated == []


@pytest.mark.slow
def test_every_job_passes_when_run_as_written(
    ci_project: Path, shared_cache: Path, tmp_path: Path, jobs: list[CiJob]
) -> None:
    failures = []
    for job in jobs:
        result = run_job(job, ci_project, tmp_path / job.name, shared_cache)
        if result.returncode != 0:
            failures.append(
                f"job {job.name} exited {result.returncode}\n"
                f"--- stdout ---\n{result.stdout[-4000:]}\n--- stderr ---\n{result.stderr[-4000:]}"
            )
        elif "pytest" in " ".join(job.scripts):  # the suite ran, whole: nothing skipped
            summaries = [line for line in result.stdout.splitlines() if " passed" in line]
            assert summaries, f"{job.name}: no test summary\n{result.stdout[-4000:]}"
            assert not any("skipped" in line for line in summaries), summaries
    assert failures == [], "\n\n".join(failures)


def test_the_drift_job_passes_without_cruft_json(
    ci_project: Path, shared_cache: Path, tmp_path: Path, jobs: list[CiJob]
) -> None:
    if (ci_project / ".gitlab-ci.yml").is_file():
        # GitLab does not create the job at all (checked above); with .cruft.json it does:
        # see test_cruft_updates.py.
        assert "template-drift" not in {job.name for job in jobs}
        return
    job = job_named(jobs, "template-drift")
    result = run_job(job, ci_project, tmp_path, shared_cache)
    assert result.returncode == 0, result.stderr
    assert "::notice" in result.stdout
    installed = run([tmp_path / "python" / "bin" / "python", "-m", "pip", "list"], tmp_path)
    assert "cruft" not in installed.stdout.lower()  # it stopped before installing anything


def test_a_committed_conflict_marker_fails_the_pipeline(
    ci_project: Path, shared_cache: Path, tmp_path: Path, jobs: list[CiJob]
) -> None:
    project = tmp_path / "project"
    run(["git", "clone", "-q", ci_project, project], tmp_path)
    (project / "notes.txt").write_text(CONFLICT, encoding="utf-8")
    commit_all(project, "A conflict committed by mistake")
    # The scripts that look for markers (only those: the lint steps would pass on a .txt file).
    marker_checks = [
        CiJob(job.name, [script], job.shell, job.variables, job.cache_paths, job.allow_failure)
        for job in jobs  # the commit under test changes no CI file
        for script in job.scripts
        if "git grep" in script
    ]
    assert marker_checks, "no CI job looks for conflict markers"
    for check in marker_checks:
        assert not check.allow_failure, f"{check.name} may fail without failing the pipeline"
        result = run_job(check, project, tmp_path / check.name, shared_cache)
        assert result.returncode != 0, f"{check.name} passed with a committed conflict"
        assert "notes.txt" in result.stdout


def install_steps(jobs: list[CiJob]) -> list[CiJob]:
    """Each job that installs the project, cut to its scripts up to the install."""
    steps = []
    for job in jobs:
        scripts = [script for script in job.scripts if "uv sync" in script]
        if scripts:
            steps.append(CiJob(job.name, scripts[:1], job.shell, job.variables, job.cache_paths))
    return steps


LOCK_PROBLEMS = {
    "missing": "Unable to find lockfile at `uv.lock`, but `--locked` was provided",
    "stale": "needs to be updated, but `--locked` was provided",
}


@pytest.mark.parametrize("problem", LOCK_PROBLEMS)
def test_a_missing_or_stale_lock_fails_every_install_with_uvs_message(
    ci_project: Path, shared_cache: Path, tmp_path: Path, jobs: list[CiJob], problem: str
) -> None:
    project = tmp_path / "project"
    run(["git", "clone", "-q", ci_project, project], tmp_path)
    if problem == "missing":
        (project / "uv.lock").unlink()
    else:  # a dependency added without locking again
        pyproject = project / "pyproject.toml"
        text = pyproject.read_text(encoding="utf-8")
        pyproject.write_text(
            text.replace("dependencies = [\n", 'dependencies = [\n    "idna>=3",\n')
        )
    commit_all(project, f"A {problem} lock")
    installs = install_steps(jobs)
    assert {job.name for job in installs} >= {"lint", "test"} | {"debug", "test-debug"} & {
        job.name for job in jobs
    }
    for job in installs:
        result = run_job(job, project, tmp_path / job.name, shared_cache)
        assert result.returncode != 0, f"{job.name} installed with a {problem} lock"
        assert LOCK_PROBLEMS[problem] in " ".join(result.stderr.split()), result.stderr
        assert "Traceback" not in result.stdout + result.stderr


def readme_checks(project: Path) -> list[list[str]]:
    """The commands of the generated README's "Checks" block, each as its words."""
    readme = (project / "README.md").read_text(encoding="utf-8")
    block = re.search(r"## Checks\n+```bash\n(.*?)```", readme, re.DOTALL)
    assert block, "the generated README has no Checks block"
    return [shlex.split(command) for command in block[1].replace("\n", " ").split("&&")]


def is_subsequence(words: list[str], command: list[str]) -> bool:
    remaining = iter(command)
    return all(word in remaining for word in words)


def test_the_ci_runs_every_check_the_readme_lists(ci_project: Path, jobs: list[CiJob]) -> None:
    ci_commands = [
        shlex.split(line)
        for job in jobs
        for script in job.scripts
        for line in script.splitlines()
        if line.strip() and not line.lstrip().startswith(("if ", "fi", "echo", "exit"))
    ]
    missing = [
        " ".join(check)
        for check in readme_checks(ci_project)
        if not any(is_subsequence(check, command) for command in ci_commands)
    ]
    assert missing == []


def test_pre_commit_runs_the_readme_linters(ci_project: Path) -> None:
    config = yaml.safe_load((ci_project / ".pre-commit-config.yaml").read_text(encoding="utf-8"))
    hooks = {hook["id"] for repo in config["repos"] for hook in repo["hooks"]}
    tools = {
        check[0] + ("-" + check[1] if check[0] == "ruff" else "")
        for check in readme_checks(ci_project)
    }
    # The test suite is CI's job, not a commit hook's.
    assert tools - {"pytest"} <= hooks
