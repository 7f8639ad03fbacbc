"""Updates arrive by themselves: the scheduled update jobs, run as written, and copier's updates.

Like test_cruft_updates.py: real cruft and copier, real git, a local clone of the template that
moves on with new commits (and tags, which copier follows). The CI jobs run through ci_tools'
run_job, standing in for the platform: the project is the job's origin (the branch lands
there), a fake ``gh`` on the PATH records what it is asked, and a local HTTP server stands in
for GitLab's merge-request API.
"""

from __future__ import annotations

import http.server
import os
import subprocess
import tomllib
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from ci_tools import CiJob, github_jobs, gitlab_job_names, gitlab_jobs, run_job, tool
from conftest import COPIER, commit_all, copier_copy, git, run, with_uv
from support.serving import served
from test_cruft_updates import (
    CRUFT_ENV,
    PACKAGE_DIR,
    TEMPLATE_DIR,
    add_a_dependency,
    append,
    create,
)

BRANCH = "template-update"
TEMPLATE_CHANGE = "# the template moved on"
USER_EDIT = "# the user's own line"
SCHEDULE = {"CI_PIPELINE_SOURCE": "schedule", "TEMPLATE_UPDATE": "true"}
# Every job runs offline, from the machine's uv cache (filled by ./dev and the bakes): setup-uv's
# cache stands in for GitHub's, and job_cache makes it GitLab's job cache too.
TOKEN = "glpat-test"
OWNED = "CONFIGURATION.md"
PROJECT_PATH = "team/my-async-service.git"


def release(template: Path, tag: str) -> None:
    """Tag the template's HEAD as a release (copier updates to the newest PEP 440 tag)."""
    git(template, "tag", tag)


def only_test_tags(template: Path) -> None:
    """The clone has the repository's own release tags: copier must see the tests' alone."""
    for tag in git(template, "tag", "--list").split():
        git(template, "tag", "--delete", tag)


def copier_project(template: Path, output: Path, **answers: Any) -> Path:
    """A project made with ``copier copy`` (at the template's newest tag) and committed."""
    output.mkdir(parents=True, exist_ok=True)
    project = output / "my-async-service"
    copier_copy(answers, project, source=template, env=CRUFT_ENV, vcs_ref=None)
    run(["git", "init", "-q", "-b", "main"], project)
    commit_all(project, "Generated")
    return project


def linked_project(tool: str, template: Path, output: Path, **answers: Any) -> Path:
    if tool == "cruft":
        project = create(template, output, **answers)
        git(project, "branch", "-M", "main")
        return project
    return copier_project(template, output, **answers)


def released_project(template: Path, tmp_path: Path, tool: str, provider: str) -> Path:
    """A project linked with ``tool`` to the template's release v1.0.0, CI by ``provider``."""
    only_test_tags(template)
    release(template, "v1.0.0")
    return linked_project(tool, template, tmp_path / "out", ci_provider=provider)


def move_template_on(template: Path) -> None:
    append(template / PACKAGE_DIR / "web" / "responses.py", TEMPLATE_CHANGE)
    append(template / TEMPLATE_DIR / OWNED, TEMPLATE_CHANGE)
    commit_all(template, "Template: touch responses and the configuration table")
    release(template, "v1.1.0")


def own(project: Path, path: str) -> None:
    """List ``path`` as the user's own: updates leave it alone (cruft and copier alike)."""
    pyproject = project / "pyproject.toml"
    text = pyproject.read_text(encoding="utf-8")
    owned = text.replace('"uv.lock"]', f'"uv.lock", "{path}"]')
    assert owned != text
    pyproject.write_text(owned, encoding="utf-8")
    commit_all(project, f"Own {path}")


def conflicting_edit(project: Path) -> Path:
    """Rewrite the line after which the template appends: the same lines, two versions."""
    responses = project / "src" / "my_async_service" / "web" / "responses.py"
    lines = responses.read_text(encoding="utf-8").splitlines()
    lines[-1] = USER_EDIT
    responses.write_text("\n".join(lines) + "\n", encoding="utf-8")
    commit_all(project, "User edit")
    return responses


# --- copier update --------------------------------------------------------------------------


def test_copier_update_across_tags_keeps_edits_and_brings_the_change(
    template: Path, tmp_path: Path
) -> None:
    only_test_tags(template)
    release(template, "v1.0.0")
    project = copier_project(template, tmp_path / "out")
    answers_file = project / ".copier-answers.yml"
    assert yaml.safe_load(answers_file.read_text(encoding="utf-8"))["_commit"] == "v1.0.0"
    package = project / "src" / "my_async_service"
    append(package / "web" / "handlers.py", USER_EDIT)
    (package / "extra.py").write_text('"""A module of the user\'s own."""\n', encoding="utf-8")
    commit_all(project, "User edits")
    move_template_on(template)

    newer = run([COPIER, "check-update", "--quiet"], project, check=False)
    assert newer.returncode == 2, newer.stdout + newer.stderr
    run([COPIER, "update", "--defaults", "--trust", "--quiet"], project, env=CRUFT_ENV)

    assert TEMPLATE_CHANGE in (package / "web" / "responses.py").read_text(encoding="utf-8")
    assert USER_EDIT in (package / "web" / "handlers.py").read_text(encoding="utf-8")
    assert (package / "extra.py").is_file()
    assert yaml.safe_load(answers_file.read_text(encoding="utf-8"))["_commit"] == "v1.1.0"
    status = run(["git", "status", "--porcelain", "--untracked-files=all"], project).stdout
    status = status.splitlines()
    assert sorted(line[3:] for line in status) == [
        ".copier-answers.yml",
        OWNED,
        "src/my_async_service/web/responses.py",
    ]


# --- The scheduled update jobs --------------------------------------------------------------


class FakeGitLab(http.server.ThreadingHTTPServer):
    """GitLab's merge-request API, as far as the job uses it: lists none open, records posts."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), FakeGitLabHandler)
        self.requests: list[tuple[str, str, dict[str, list[str]]]] = []


class FakeGitLabHandler(http.server.BaseHTTPRequestHandler):
    server: FakeGitLab

    def do_GET(self) -> None:
        self.server.requests.append(("GET", self.path, {}))
        self.answer(200, b"[]")

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
        self.server.requests.append(("POST", self.path, urllib.parse.parse_qs(body)))
        self.answer(201, b'{"iid": 1}')

    def answer(self, status: int, body: bytes) -> None:
        assert self.headers["PRIVATE-TOKEN"] == TOKEN
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def fake_gitlab() -> Iterator[FakeGitLab]:
    with served(FakeGitLab()) as server:
        yield server


def fake_gh(folder: Path) -> Path:
    """A ``gh`` that records its arguments, one call a line, and lists no open pull request."""
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "gh"
    script.write_text(
        '#!/bin/sh\nprintf "%s\\n" "$*" >> "$GH_CALLS"\n',
        encoding="utf-8",
    )
    script.chmod(0o755)
    return folder


class ScheduledRun:
    """One scheduled run of ``project``'s update jobs, in the platform's order: the update job,
    then, when it found changes, the job that hands them over, once per token given (an empty
    one: the secret is missing). ``handovers``: that job's output, each time."""

    def __init__(self, project: Path, workdir: Path, cache: Path, tokens: list[str]) -> None:
        self.project, self.workdir, self.cache, self.tokens = project, workdir, cache, tokens
        self.gh_calls = workdir / "gh-calls"
        self.handovers: list[str] = []

    def github(self) -> tuple[bool, str]:
        """(changed, the update job's output)."""
        runner_temp = self.workdir / "runner-temp"
        runner_temp.mkdir(parents=True)
        outputs_file = self.workdir / "github-output"
        platform = {"RUNNER_TEMP": str(runner_temp), "GITHUB_OUTPUT": str(outputs_file)}
        expressions = {
            "secrets.TEMPLATE_UPDATE_TOKEN": "",
            "github.event.repository.default_branch": "main",
        }
        update_job, pull_request = github_jobs(self.project, "template-update.yml", expressions)
        assert (update_job.name, pull_request.name) == ("update", "pull-request")
        assert pull_request.needs == ["update"]
        assert pull_request.condition == "needs.update.outputs.changed == 'true'"
        update = self.run(update_job, "update", platform)
        if update.returncode != 0:
            return False, update.stdout + update.stderr
        outputs = dict(line.split("=", 1) for line in outputs_file.read_text().splitlines())
        if outputs["changed"] != "true":
            return False, update.stdout + update.stderr
        for index, token in enumerate(self.tokens):
            expressions["secrets.TEMPLATE_UPDATE_TOKEN"] = token
            (_, job) = github_jobs(self.project, "template-update.yml", expressions)
            env = {**platform, "GH_CALLS": str(self.gh_calls)}
            gh = fake_gh(self.workdir / "gh-bin")
            self.run(job, f"pull-request-{index}", env, extra_path=[gh])
        return True, update.stdout + update.stderr

    def gitlab(self, api: FakeGitLab) -> tuple[bool, str]:
        """(changed, the update job's output)."""
        jobs = {job.name: job for job in gitlab_jobs(self.project, SCHEDULE)}
        update = self.run(jobs["template-update"], "update", SCHEDULE)
        patch = self.workdir / "update" / "checkout" / "template-update.patch"
        if update.returncode != 0:
            return False, update.stdout + update.stderr
        platform = {
            **SCHEDULE,
            "CI_SERVER_PROTOCOL": "http",
            "CI_SERVER_HOST": "gitlab.invalid",
            "CI_SERVER_PORT": "443",
            "CI_PROJECT_PATH": "team/my-async-service",
            "CI_PROJECT_ID": "7",
            "CI_DEFAULT_BRANCH": "main",
            "CI_API_V4_URL": f"http://127.0.0.1:{api.server_address[1]}/api/v4",
            # The push URL the job builds reaches the project (git's own url rewriting).
            "GIT_CONFIG_COUNT": "1",
            "GIT_CONFIG_KEY_0": f"url.{self.project}.insteadOf",
        }
        job = jobs["template-update-merge-request"]
        artifacts = {"template-update.patch": patch}
        for index, token in enumerate(self.tokens):
            given = {
                "GIT_CONFIG_VALUE_0": f"http://oauth2:{token}@gitlab.invalid:443/{PROJECT_PATH}",
                **({"TEMPLATE_UPDATE_TOKEN": token} if token else {}),
            }
            self.run(job, f"merge-request-{index}", platform | given, artifacts=artifacts)
        return patch.stat().st_size > 0, update.stdout + update.stderr

    def run(
        self,
        job: CiJob,
        name: str,
        env: dict[str, str],
        *,
        extra_path: list[Path] | None = None,
        artifacts: dict[str, Path] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``job``; a job that hands over must pass (only the update job may stop)."""
        assert not job.after_scripts, "job_cache is the machine's: no `uv cache prune` in it"
        result = run_job(
            job,
            self.project,
            self.workdir / name,
            self.cache,
            extra_env={**with_uv(), "UV_OFFLINE": "1", **env},
            extra_path=extra_path,
            artifacts=artifacts,
        )
        if name != "update":
            assert result.returncode == 0, result.stdout + result.stderr
            self.handovers.append(result.stdout + result.stderr)
        return result


def branch_file(project: Path, path: str) -> str:
    return git(project, "show", f"{BRANCH}:{path}")


@pytest.mark.parametrize(
    ("provider", "tool"),
    [("github", "cruft"), ("github", "copier"), ("gitlab", "cruft"), ("gitlab", "copier")],
)
def test_a_scheduled_update_opens_a_branch_with_the_templates_change(
    template: Path,
    tmp_path: Path,
    job_cache: Path,
    fake_gitlab: FakeGitLab,
    provider: str,
    tool: str,
) -> None:
    project = released_project(template, tmp_path, tool, provider)
    own(project, OWNED)
    move_template_on(template)
    # First without the token (the secret or variable missing), then with it.
    scheduled = ScheduledRun(project, tmp_path / "run", job_cache, ["", TOKEN])

    changed, output = scheduled.github() if provider == "github" else scheduled.gitlab(fake_gitlab)

    assert changed, output
    without_token, with_token = scheduled.handovers
    assert "TEMPLATE_UPDATE_TOKEN" in without_token and "is missing" in without_token
    assert "is missing" not in with_token
    responses = "src/my_async_service/web/responses.py"
    assert TEMPLATE_CHANGE in branch_file(project, responses), output
    assert git(project, "rev-parse", "--abbrev-ref", "HEAD") == "main"  # only the branch moved
    assert TEMPLATE_CHANGE not in git(project, "show", f"main:{responses}")
    assert TEMPLATE_CHANGE not in branch_file(project, OWNED)  # listed in [tool.cruft] skip
    if provider == "github":
        calls = scheduled.gh_calls.read_text(encoding="utf-8").splitlines()
        assert calls[0] == "auth setup-git"  # the first call: nothing ran without the token
        assert calls[-1].startswith(f"pr create --base main --head {BRANCH} "), calls
    else:
        posts = [fields for method, _, fields in fake_gitlab.requests if method == "POST"]
        assert posts == [
            {
                "source_branch": [BRANCH],
                "target_branch": ["main"],
                "title": ["Update from the project template"],
                "remove_source_branch": ["true"],
            }
        ]


@pytest.mark.parametrize(("provider", "tool"), [("github", "cruft"), ("gitlab", "copier")])
def test_a_conflicting_edit_stops_the_update_before_any_push_naming_the_file(
    template: Path,
    tmp_path: Path,
    job_cache: Path,
    fake_gitlab: FakeGitLab,
    provider: str,
    tool: str,
) -> None:
    project = released_project(template, tmp_path, tool, provider)
    conflicting_edit(project)
    move_template_on(template)
    scheduled = ScheduledRun(project, tmp_path / "run", job_cache, [TOKEN])

    changed, output = scheduled.github() if provider == "github" else scheduled.gitlab(fake_gitlab)

    assert not changed
    assert "conflicts with your edits" in output
    assert "src/my_async_service/web/responses.py" in output
    assert scheduled.handovers == []
    assert BRANCH not in git(project, "branch", "--list")
    assert not scheduled.gh_calls.exists()
    assert fake_gitlab.requests == []


@pytest.mark.parametrize("provider", ["github", "gitlab"])
def test_without_an_answers_file_the_update_says_so_and_succeeds(
    tmp_path: Path, job_cache: Path, fake_gitlab: FakeGitLab, bake: Any, provider: str
) -> None:
    project = bake(ci_provider=provider)
    run(["git", "init", "-q", "-b", "main"], project)
    commit_all(project, "Generated, not linked")
    scheduled = ScheduledRun(project, tmp_path / "run", job_cache, [TOKEN])

    changed, output = scheduled.github() if provider == "github" else scheduled.gitlab(fake_gitlab)

    assert not changed
    assert "not linked to its template" in output
    assert BRANCH not in git(project, "branch", "--list")
    assert fake_gitlab.requests == []


def test_gitlab_creates_the_update_jobs_only_in_a_template_update_pipeline(
    template: Path, tmp_path: Path
) -> None:
    project = linked_project("cruft", template, tmp_path / "out", ci_provider="gitlab")
    pushed = gitlab_job_names(project)
    scheduled = gitlab_job_names(project, SCHEDULE)
    other_schedule = gitlab_job_names(project, {"CI_PIPELINE_SOURCE": "schedule"})
    updates = {"template-update", "template-update-merge-request"}
    assert updates <= scheduled
    assert not updates & (pushed | other_schedule)


@pytest.mark.parametrize("provider", ["github", "gitlab"])
def test_the_drift_job_reports_a_moved_copier_template_without_failing_the_pipeline(
    template: Path, tmp_path: Path, job_cache: Path, provider: str
) -> None:
    only_test_tags(template)
    release(template, "v1.0.0")
    project = copier_project(template, tmp_path / "out", ci_provider=provider)
    jobs = github_jobs(project) if provider == "github" else gitlab_jobs(project)
    (drift,) = [job for job in jobs if job.name == "template-drift"]
    env = {**with_uv(), "UV_OFFLINE": "1"}
    current = run_job(drift, project, tmp_path / "current", job_cache, extra_env=env)
    assert current.returncode == 0, current.stdout + current.stderr
    move_template_on(template)

    moved = run_job(drift, project, tmp_path / "moved", job_cache, extra_env=env)

    if provider == "github":
        assert moved.returncode == 0, moved.stdout + moved.stderr
        assert "::warning" in moved.stdout
    else:
        assert moved.returncode != 0
        assert drift.allow_failure


def test_the_update_script_passes_shellcheck(bake: Any) -> None:
    project = bake()
    script = project / "scripts" / "update-from-template"
    assert os.access(script, os.X_OK)
    run([tool("shellcheck"), script], project)


def test_a_scheduled_update_that_changes_dependencies_refreshes_the_lock(
    template: Path, tmp_path: Path, job_cache: Path, fake_gitlab: FakeGitLab
) -> None:
    project = released_project(template, tmp_path, "cruft", "github")
    assert (project / "uv.lock").is_file()
    add_a_dependency(template)
    scheduled = ScheduledRun(project, tmp_path / "run", job_cache, [TOKEN])

    changed, output = scheduled.github()

    assert changed, output
    assert "refreshing uv.lock" in output
    lock = tomllib.loads(branch_file(project, "uv.lock"))
    (own,) = [package for package in lock["package"] if package["name"] == project.name]
    assert "idna" in {dependency["name"] for dependency in own["dependencies"]}
    before = tomllib.loads(git(project, "show", "main:uv.lock"))
    (was,) = [package for package in before["package"] if package["name"] == project.name]
    assert "idna" not in {dependency["name"] for dependency in was["dependencies"]}
