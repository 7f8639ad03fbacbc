"""The checkers each CI platform applies, and a runner for CI jobs as their files write them.

The checkers are installed by ``./dev`` (tests/requirements.txt, tests/node/): a missing one
fails the test that needs it, with the reason; it is never a skip.

``ci_jobs`` reads a generated CI file the way its platform does (GitLab's through
gitlab-ci-local, which applies ``rules:`` and ``default:``), and ``run_job`` executes a job's
commands as written, in order, in a fresh clone of the project with a fresh Python environment
on the PATH (standing in for ``actions/setup-python`` or the ``python`` image).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kubernetes_validate
import uv
import yaml
from conftest import clean_environment, path_without_uv, run, uv_on_path

TOOLS_BIN = Path(sys.executable).parent
NODE_TOOLS = TOOLS_BIN.parent / "node"
NODE_TOOLS_BIN = NODE_TOOLS / "node_modules" / ".bin"

# Commit SHAs of action releases, read from each action's own repository (release tag -> commit),
# as listed in the template's toolchain notes. Workflows may use only these, by full SHA, with
# the version in a trailing comment; the newest major of each is what new projects get.
ACTION_RELEASES: dict[str, dict[str, str]] = {
    "actions/checkout": {
        "v7.0.1": "3d3c42e5aac5ba805825da76410c181273ba90b1",
        "v6.1.0": "d23441a48e516b6c34aea4fa41551a30e30af803",
    },
    "actions/setup-python": {
        "v7.0.0": "5fda3b95a4ea91299a34e894583c3862153e4b97",
        "v6.3.0": "ece7cb06caefa5fff74198d8649806c4678c61a1",
    },
    "astral-sh/setup-uv": {
        "v10.3.0": "1c37ad07a6a961277cf70c0d37d6f313000f5884",
    },
    # Read from public workflows pinning them (two unrelated ones agree on each).
    "actions/upload-artifact": {
        "v7.0.2": "cf430e030ddbb5b0abf93d22962f4752f3646cd9",
    },
    "actions/download-artifact": {
        "v8.0.2": "9000827ccba6bdab643e8b6fd33ac0654aef8333",
    },
}
USES_LINE = re.compile(r"^\s*(?:-\s+)?uses:\s*(?P<ref>\S+)(?P<comment>.*)$")
PINNED = re.compile(r"(?P<action>[\w.-]+/[\w.-]+)@(?P<sha>[0-9a-f]{40})")
VERSION_COMMENT = re.compile(r"^\s+#\s+(?P<version>v\d+\.\d+\.\d+)\s*$")
# Actions a job may use before its commands; run_job stands in for them.
STAND_INS = {
    "actions/checkout",
    "actions/setup-python",
    "astral-sh/setup-uv",
    # A folder shared by a test between the jobs of one run, as RUNNER_TEMP, stands in for
    # uploading an artifact there and downloading it back.
    "actions/upload-artifact",
    "actions/download-artifact",
}


def tool(name: str, where: Path = TOOLS_BIN) -> Path:
    """The path of an installed checker; fails (never skips) when it is missing."""
    path = where / name
    assert path.is_file(), f"{name} is not installed in {where}: run ./dev to install the tools"
    return path


def tools_env() -> dict[str, str]:
    """PATH with the tools first, so a checker finds its helpers (actionlint -> shellcheck)."""
    return {"PATH": os.pathsep.join([str(TOOLS_BIN), os.environ.get("PATH", "")])}


def actionlint(project: Path, workflows: list[Path]) -> subprocess.CompletedProcess[str]:
    shellcheck = tool("shellcheck")
    command = [tool("actionlint"), "-shellcheck", shellcheck, "-no-color", *workflows]
    return run(command, project, check=False, env=tools_env())


def zizmor(project: Path, folder: str = ".github") -> subprocess.CompletedProcess[str]:
    command = [tool("zizmor"), "--offline", "--persona", "regular", "--format", "plain", folder]
    return run(command, project, check=False, env=tools_env())


def hadolint(project: Path) -> subprocess.CompletedProcess[str]:
    command = [tool("hadolint"), "--no-color", "--failure-threshold", "warning", "Dockerfile"]
    return run(command, project, check=False, env=tools_env())


def kustomize(project: Path) -> list[dict[str, Any]]:
    """``kubectl kustomize deploy/kubernetes``: the objects ``kubectl apply -k`` would send."""
    output = run([tool("kubectl"), "kustomize", "deploy/kubernetes"], project).stdout
    return [item for item in yaml.safe_load_all(output) if item]


def invalid_kubernetes_objects(objects: list[dict[str, Any]]) -> list[str]:
    """Each object checked strictly against the newest Kubernetes that kubernetes-validate
    knows: unknown fields fail, and an unknown kind or apiVersion fails instead of warning."""
    version = kubernetes_validate.latest_version()
    problems = []
    for item in objects:
        try:
            kubernetes_validate.validate(item, version, strict=True)
        except (kubernetes_validate.ValidationError, kubernetes_validate.SchemaNotFoundError) as e:
            problems.append(f"{item.get('kind')} {item.get('metadata', {}).get('name')}: {e}")
    return problems


def github_parser(project: Path, workflows: list[Path]) -> subprocess.CompletedProcess[str]:
    """GitHub's own workflow parser (@actions/workflow-parser), the one that accepts or refuses
    a workflow file on github.com, on the Node of ./dev."""
    script = NODE_TOOLS / "check-github-workflows.mjs"
    assert script.is_file(), f"{script} is missing: run ./dev to install the tools"
    command = [tool("node"), "--import", NODE_TOOLS / "json-modules.mjs", script, *workflows]
    return run(command, project, check=False, env=tools_env())


def gitlab_ci_local(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """gitlab-ci-local in a git repo (it reads the repo, as GitLab does), on the Node of ./dev."""
    command = [tool("gitlab-ci-local", NODE_TOOLS_BIN), "--no-color", *args]
    # A schedule's test sets a predefined variable on purpose: no warning (it goes to stdout).
    env = {**tools_env(), "GCL_IGNORE_PREDEFINED_VARS": "CI_PIPELINE_SOURCE"}
    return run(command, repo, env=env)


def action_pins(workflow: Path) -> list[tuple[str, str, str]]:
    """Every ``uses:`` of a workflow as (action, sha, version); fails on any other form."""
    pins = []
    for number, line in enumerate(workflow.read_text(encoding="utf-8").splitlines(), start=1):
        found = USES_LINE.match(line)
        if not found:
            continue
        ref, comment = PINNED.fullmatch(found["ref"]), VERSION_COMMENT.match(found["comment"])
        assert ref and comment, f"{workflow.name}:{number}: not pinned as sha # vX.Y.Z: {line}"
        pins.append((ref["action"], ref["sha"], comment["version"]))
    return pins


def _newest_release(action: str) -> str:
    def key(version: str) -> tuple[int, ...]:
        return tuple(int(part) for part in version[1:].split("."))

    return max(ACTION_RELEASES[action], key=key)


def stale_pins(workflow: Path) -> list[str]:
    """The ``uses:`` of a workflow that are not its action's newest release, by that commit."""
    problems = []
    for action, sha, version in action_pins(workflow):
        if version != _newest_release(action):
            problems.append(f"{action} {version} is not its newest release")
        elif ACTION_RELEASES[action][version] != sha:
            problems.append(f"{action} {version} is not {sha}")
    return problems


@dataclass(frozen=True)
class CiJob:
    """One CI job as its platform would run it: shell scripts, in order."""

    name: str
    scripts: list[str]
    shell: list[str]
    variables: dict[str, str] = field(default_factory=dict)
    cache_paths: list[str] = field(default_factory=list)
    allow_failure: bool = False
    # GitLab's after_script: a shell of its own, run even when the scripts failed.
    after_scripts: list[str] = field(default_factory=list)
    # GitHub's step-level `env:`, one mapping per script (none: the job's variables alone).
    step_variables: list[dict[str, str]] = field(default_factory=list)
    # GitHub: the job's `if:` and `needs:`, for tests that chain jobs as the platform would.
    condition: str = ""
    needs: list[str] = field(default_factory=list)


GITHUB_EXPRESSION = re.compile(r"\$\{\{\s*(?P<name>[\w.-]+)\s*\}\}")


def github_jobs(
    project: Path, workflow: str = "ci.yml", expressions: dict[str, str] | None = None
) -> list[CiJob]:
    """The jobs of a workflow. A ``${{ name }}`` in an ``env:`` value becomes
    ``expressions[name]`` (the run's secrets and context, as GitHub would fill them in)."""
    path = project / ".github" / "workflows" / workflow
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    given = expressions or {}

    def fill(value: object) -> str:
        return GITHUB_EXPRESSION.sub(lambda found: given[found["name"]], str(value))

    jobs = []
    for name, job in document["jobs"].items():
        used = {step["uses"].split("@")[0] for step in job["steps"] if "uses" in step}
        assert used <= STAND_INS, f"job {name} uses {used - STAND_INS}: teach run_job about it"
        steps = [step for step in job["steps"] if "run" in step]
        # GitHub's default shell for `run:` on Linux.
        shell = ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c"]
        variables = {
            key: fill(value)
            for key, value in {**document.get("env", {}), **job.get("env", {})}.items()
        }
        jobs.append(
            CiJob(
                name,
                [step["run"] for step in steps],
                shell,
                variables,
                allow_failure=job.get("continue-on-error", False),
                step_variables=[
                    {key: fill(value) for key, value in step.get("env", {}).items()}
                    for step in steps
                ],
                condition=str(job.get("if", "")),
                needs=[job["needs"]] if isinstance(job.get("needs"), str) else job.get("needs", []),
            )
        )
    return jobs


def pipeline_variables(variables: dict[str, str] | None) -> list[str]:
    return [
        arg for key, value in (variables or {}).items() for arg in ("--variable", f"{key}={value}")
    ]


def gitlab_job_names(repo: Path, variables: dict[str, str] | None = None) -> set[str]:
    """The jobs GitLab would create for this commit (``rules:`` applied), a matrix's once;
    ``variables``: the pipeline's own (a schedule's, say)."""
    listed = json.loads(gitlab_ci_local(repo, "--list-json", *pipeline_variables(variables)).stdout)
    return {job["name"].split(":")[0] for job in listed if job["when"] != "never"}


def gitlab_jobs(repo: Path, variables: dict[str, str] | None = None) -> list[CiJob]:
    """The jobs of gitlab_job_names, as CiJobs."""
    given = pipeline_variables(variables)
    created = gitlab_job_names(repo, variables)
    preview = yaml.safe_load(gitlab_ci_local(repo, "--preview", *given).stdout)
    variables = {key: str(value) for key, value in (preview.get("variables") or {}).items()}
    jobs = []
    for name in sorted(created):
        job = preview[name]
        scripts = ["\n".join([*job.get("before_script", []), *job["script"]])]
        cache_paths = [path for cache in job.get("cache", []) for path in cache["paths"]]
        jobs.append(
            CiJob(
                name,
                scripts,
                ["sh", "-e", "-c"],  # a script line that fails stops the job
                {**variables, **{k: str(v) for k, v in (job.get("variables") or {}).items()}},
                cache_paths,
                allow_failure=bool(job.get("allow_failure", False)),
                after_scripts=["\n".join(job["after_script"])] if "after_script" in job else [],
            )
        )
    return jobs


def expand(value: str, env: dict[str, str]) -> str:
    """A CI variable's value with ``$NAME`` / ``${NAME}`` replaced, as GitLab expands them."""
    return re.sub(r"\$\{?(\w+)\}?", lambda found: env.get(found[1], ""), value)


def ci_jobs(project: Path) -> list[CiJob]:
    if (project / ".github/workflows/ci.yml").is_file():
        return github_jobs(project)
    return gitlab_jobs(project)


def run_job(
    job: CiJob,
    project: Path,
    workdir: Path,
    shared_cache: Path,
    *,
    extra_env: dict[str, str] | None = None,
    extra_path: list[Path] | None = None,
    artifacts: dict[str, Path] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a job as written in a fresh clone of ``project`` (a git repo); stop at the first
    failing script, then run the after-scripts (whose failure fails it here too). GitLab
    ``cache:`` paths are restored from ``shared_cache``, as a runner would between jobs;
    setup-uv's cache is the machine's own uv cache. The PATH has a fresh Python (standing in
    for setup-python or the image's) and the uv of these tests (setup-uv's or the image's).
    ``artifacts`` (path in the checkout -> file) are restored as GitLab restores an earlier
    job's; ``extra_env`` is what the platform sets (``GITHUB_OUTPUT``, ``CI_API_V4_URL``...);
    ``extra_path``: folders of the runner's own tools (``gh``), first on the PATH."""
    checkout, python = workdir / "checkout", workdir / "python"
    workdir.mkdir(parents=True, exist_ok=True)
    run(["git", "clone", "-q", project, checkout], workdir)
    run(
        [uv.find_uv_bin(), "venv", "--quiet", "--seed", "--python", sys.executable, python], workdir
    )
    for path in job.cache_paths:
        (shared_cache / path).mkdir(parents=True, exist_ok=True)
        (checkout / path).parent.mkdir(parents=True, exist_ok=True)
        (checkout / path).symlink_to(shared_cache / path, target_is_directory=True)
    for path, source in (artifacts or {}).items():
        shutil.copyfile(source, checkout / path)
    env = {
        **clean_environment(),
        "CI": "true",
        "CI_PROJECT_DIR": str(checkout),
        **(extra_env or {}),
        "PATH": os.pathsep.join(
            [*map(str, extra_path or []), str(python / "bin"), str(uv_on_path()), path_without_uv()]
        ),
    }
    env |= {key: expand(value, env) for key, value in job.variables.items()}

    def shell(script: str, variables: dict[str, str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*job.shell, script],
            cwd=checkout,
            env=env | variables,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )

    result = subprocess.CompletedProcess[str]([], 0, "", "")
    for index, script in enumerate(job.scripts):
        variables = job.step_variables[index] if job.step_variables else {}
        step = shell(script, variables)
        # The job's whole output so far, and its last step's exit code.
        result = subprocess.CompletedProcess(
            step.args, step.returncode, result.stdout + step.stdout, result.stderr + step.stderr
        )
        if result.returncode != 0:
            break
    for script in job.after_scripts:
        after = shell(script, {})
        if result.returncode == 0 and after.returncode != 0:
            return after
    return result
