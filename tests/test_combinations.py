"""Every combination in matrix.py bakes a project that is complete, clean and passes its own checks.

One bake and one install per combination serve all of its tests (module-scoped fixtures);
the xdist_group mark keeps a combination's tests on one worker under ``--dist loadgroup``.
"""

from __future__ import annotations

import itertools
import json
import re
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uv
import yaml
from ci_tools import (
    ACTION_RELEASES,
    action_pins,
    actionlint,
    github_parser,
    gitlab_ci_local,
    hadolint,
    invalid_kubernetes_objects,
    kustomize,
    stale_pins,
    zizmor,
)
from conftest import (
    TEMPLATE_ROOT,
    Bake,
    CopierApi,
    Install,
    commit_all,
    python_at_least,
    run,
    uv_environment,
    with_uv,
)
from matrix import (
    CODE_OPTIONS,
    COMBINATIONS,
    DEFAULT_ROW,
    OPTIONS,
    PYTHON_VERSIONS,
    QUESTIONS,
    REFUSED,
    RENAMES,
    SUITE_ROWS,
    combination_id,
)
from slugify import slugify

# `${{ … }}` is a GitHub Actions expression, meant to be in the output.
LEFTOVER_TEMPLATE_SYNTAX = re.compile(r"(?<!\$)\{\{|\{%|\{#|cookiecutter", re.IGNORECASE)
LICENSE_MARKERS = {
    "MIT": "Permission is hereby granted, free of charge",
    "Apache-2.0": "Apache License",
    "BSD-3-Clause": "Redistribution and use in source and binary forms",
}


@dataclass(frozen=True)
class Baked:
    answers: dict[str, Any]
    path: Path
    files: frozenset[str]  # relative paths right after baking, before any tool ran

    @property
    def package(self) -> str:
        return self.path.name.replace("-", "_")

    @property
    def upstream_module(self) -> str:
        return slugify(self.answers.get("upstream_name", "Example API"), separator="_")

    @property
    def newer_pythons(self) -> list[str]:
        return PYTHON_VERSIONS[PYTHON_VERSIONS.index(self.answers["python_version"]) :]


ROWS = {combination_id(answers): answers for answers in COMBINATIONS}


def row_params(indices: list[int]) -> list[Any]:
    """The rows at ``indices`` as params of ``baked``: by id (hashable, so pytest shares one bake
    between every test of a row, whichever list they come from), on the row's xdist group."""
    return [
        pytest.param(
            combination_id(COMBINATIONS[index]),
            id=combination_id(COMBINATIONS[index]),
            marks=[
                pytest.mark.xdist_group(combination_id(COMBINATIONS[index])),
                *([pytest.mark.quick] if index == DEFAULT_ROW else []),
            ],
        )
        for index in indices
    ]


@pytest.fixture(scope="module", params=row_params(list(range(len(COMBINATIONS)))))
def baked(request: pytest.FixtureRequest, bake: Bake) -> Baked:
    answers: dict[str, Any] = ROWS[request.param]
    path = bake(lock=True, **answers)  # as for a user with uv: the hook writes uv.lock
    files = frozenset(
        str(file.relative_to(path)) for file in path.rglob("*") if file.is_file() or file.is_dir()
    )
    return Baked(answers, path, files)


def file_tree(root: Path, names: frozenset[str] | None = None) -> dict[str, tuple[int, bytes]]:
    """Each file and folder under ``root`` (or just ``names``): its permission bits and bytes."""
    paths = (root / name for name in names) if names is not None else root.rglob("*")
    return {
        str(path.relative_to(root)): (
            path.lstat().st_mode & 0o7777,
            path.read_bytes() if path.is_file() else b"",
        )
        for path in paths
    }


@pytest.fixture(scope="module")
def venv_python(baked: Baked, install: Install) -> Path:
    return install(baked.path, baked.answers["python_version"])


def generated_files(baked: Baked) -> list[Path]:
    return sorted(baked.path / name for name in baked.files if (baked.path / name).is_file())


def test_every_value_of_every_option_is_baked() -> None:
    for name, values in OPTIONS.items():
        assert {answers[name] for answers in COMBINATIONS} == set(values), name


def test_the_quick_runs_row_bakes_every_default_answer() -> None:
    defaults = {
        name: value if isinstance(value, bool) else value[0]
        for name, value in QUESTIONS.items()
        if name in OPTIONS
    }
    row = COMBINATIONS[DEFAULT_ROW]
    assert row == defaults, "the quick run's row must be the default project, names included"


def test_matrix_is_pairwise_except_refused_answers() -> None:
    for first, second in itertools.combinations(OPTIONS, 2):
        seen = {(answers[first], answers[second]) for answers in COMBINATIONS}
        wanted = set(itertools.product(OPTIONS[first], OPTIONS[second])) - {
            (refused[first], refused[second])
            for refused in REFUSED
            if refused.keys() == {first, second}
        }
        assert seen == wanted, f"pairs of {first} x {second}: {seen ^ wanted}"
    for answers in COMBINATIONS:
        assert not any(answers.items() >= refused.items() for refused in REFUSED)


def test_the_suites_run_every_pair_of_code_options_and_every_renamed_row() -> None:
    # The default row's suite is the GitHub CI's test job (test_ci_commands.py), which runs it.
    suites = [*SUITE_ROWS, DEFAULT_ROW]
    for first, second in itertools.combinations(CODE_OPTIONS, 2):
        run = {(COMBINATIONS[i][first], COMBINATIONS[i][second]) for i in suites}
        assert run == set(itertools.product(OPTIONS[first], OPTIONS[second])), (first, second)
    assert set(RENAMES) <= set(SUITE_ROWS)
    assert DEFAULT_ROW not in SUITE_ROWS
    assert len(SUITE_ROWS) < len(COMBINATIONS)


def test_code_options_are_the_options_the_suite_reads() -> None:
    """An option used in the package, its tests or pytest.ini changes what the own suite runs:
    it must be in matrix.CODE_OPTIONS, or rows would be left out that run code no other runs."""
    project = TEMPLATE_ROOT / "{{cookiecutter.project_slug}}"
    read = [project / "pytest.ini", *project.glob("src/**/*.py"), *project.glob("tests/**/*.py")]
    used = {
        name
        for file in read
        for name in re.findall(r"cookiecutter\.(\w+)", file.read_text(encoding="utf-8"))
    }
    assert used & set(OPTIONS) == set(CODE_OPTIONS)


def test_chosen_files_present_and_unchosen_absent(baked: Baked) -> None:
    answers = baked.answers
    package = f"src/{baked.package}"
    always = {
        ".gitignore",
        "README.md",
        "CONFIGURATION.md",
        "pyproject.toml",
        "pytest.ini",
        f"{package}/__init__.py",
        f"{package}/__main__.py",
        f"{package}/app.py",
        f"{package}/settings.py",
        f"{package}/upstreams.py",
        f"{package}/web/handlers.py",
        f"{package}/web/middlewares.py",
        f"{package}/common/errors.py",
        f"{package}/web/openapi.py",
        "schemathesis.toml",
        "gunicorn.conf.py",
        f"{package}/clients/{baked.upstream_module}.py",
        "tests/conftest.py",
    }
    optional = {
        "LICENSE": answers["license"] != "Proprietary",
        "Dockerfile": answers["use_docker"],
        ".dockerignore": answers["use_docker"],
        ".pre-commit-config.yaml": answers["use_pre_commit"],
        f"{package}/observability/metrics.py": answers["use_metrics"],
        f"{package}/observability/local_metrics.py": answers["use_metrics"],
        "tests/observability/test_metrics.py": answers["use_metrics"],
        "tests/observability/test_local_metrics.py": answers["use_metrics"],
        f"{package}/observability/tracing.py": answers["use_tracing"],
        "tests/observability/test_tracing.py": answers["use_tracing"],
        f"{package}/clients/caching.py": answers["cache"] != "none",
        "tests/clients/test_caching.py": answers["cache"] != "none",
        "tests/clients/test_redis_cache.py": answers["cache"] == "redis",
        "deploy/kubernetes/kustomization.yaml": answers["deployment"] == "kubernetes",
        "deploy/kubernetes/settings.env": answers["deployment"] == "kubernetes",
        "deploy": answers["deployment"] == "kubernetes",
        ".github": answers["ci_provider"] == "github",
        ".github/workflows/ci.yml": answers["ci_provider"] == "github",
        ".github/dependabot.yml": answers["ci_provider"] == "github",
        ".gitlab-ci.yml": answers["ci_provider"] == "gitlab",
        f"{package}/clients/auth.py": answers["upstream_auth"] != "none",
        "tests/clients/test_auth.py": answers["upstream_auth"] != "none",
        # uv locks only with a Python the project supports (no 3.14 here, and no download).
        "uv.lock": python_at_least(answers["python_version"]) is not None,
    }
    assert always <= baked.files, f"missing: {sorted(always - baked.files)}"
    present = {name: name in baked.files for name in optional}
    assert present == optional


# What differs between cookiecutter's project and copier's (README: "copier or cruft").
COPIER_ONLY = {".copier-answers.yml"}
OWN_LOCKS = {"uv.lock"}


def test_copier_copy_gives_the_same_project(
    baked: Baked, tmp_path: Path, copier_api: CopierApi
) -> None:
    """copier, from the same template folder and copier.yml, for the same answers (with uv, as
    cookiecutter's bake): the same files, bytes and permissions, but for the answers file and the
    lock, which is checked against pyproject.toml instead. Nothing unrendered either way."""
    minimum = baked.answers["python_version"]
    copied = tmp_path / baked.path.name
    env = {**with_uv(minimum), "UV_OFFLINE": "1"}
    assert copier_api(baked.answers, copied, env) == ""
    ours = file_tree(copied)
    theirs = file_tree(baked.path, baked.files)
    differing = {name for name in ours.keys() | theirs.keys() if ours.get(name) != theirs.get(name)}
    # Each tool locks on its own (the same bytes from the same cache, but not promised).
    assert differing - OWN_LOCKS == COPIER_ONLY
    assert OWN_LOCKS & ours.keys() == OWN_LOCKS & theirs.keys()
    recorded = yaml.safe_load((copied / ".copier-answers.yml").read_text(encoding="utf-8"))
    assert {name: recorded[name] for name in baked.answers} == baked.answers
    if "uv.lock" in baked.files:
        env = uv_environment(minimum)
        run([uv.find_uv_bin(), "lock", "--check", "--offline"], copied, env=env)
    else:
        assert not (copied / "uv.lock").exists()


# The rows uv can lock here: their minimum Python is on this machine.
LOCKED_ROWS = [
    index
    for index, answers in enumerate(COMBINATIONS)
    if python_at_least(answers["python_version"]) is not None
]


@pytest.mark.parametrize("baked", row_params(LOCKED_ROWS), indirect=True)
def test_the_lock_matches_pyproject(baked: Baked) -> None:
    env = uv_environment(version := baked.answers["python_version"])
    run([uv.find_uv_bin(), "lock", "--check", "--offline"], baked.path, env=env)
    lock = tomllib.loads((baked.path / "uv.lock").read_text(encoding="utf-8"))
    assert lock["requires-python"] == f">={version}"
    (project,) = [package for package in lock["package"] if package["name"] == baked.path.name]
    assert {"speedups", "gunicorn"} <= set(project.get("optional-dependencies", {}))
    assert "dev" in project.get("dev-dependencies", {})


def test_uv_is_pinned_to_one_version_wherever_it_runs(baked: Baked) -> None:
    """setup-uv's version, the GitLab image's UV_VERSION, the Dockerfile's uv stage and the
    pre-commit hook's rev are one uv release, which pyproject's required-version accepts, and
    it is the uv these tests run (so what they prove is what those builds run)."""
    pyproject = tomllib.loads((baked.path / "pyproject.toml").read_text(encoding="utf-8"))
    required = pyproject["tool"]["uv"]["required-version"]
    ours = run([uv.find_uv_bin(), "--version"], baked.path).stdout.split()[1]
    pins: dict[str, str] = {}
    files = {name: baked.path / name for name in baked.files}
    if ".github/workflows/ci.yml" in files:
        workflow = yaml.safe_load(files[".github/workflows/ci.yml"].read_text(encoding="utf-8"))
        for name, job in workflow["jobs"].items():
            for step in job["steps"]:
                if step.get("uses", "").startswith("astral-sh/setup-uv@"):
                    pins[f"setup-uv in {name}"] = step["with"]["version"]
    if ".gitlab-ci.yml" in files:
        pipeline = yaml.safe_load(files[".gitlab-ci.yml"].read_text(encoding="utf-8"))
        pins["GitLab UV_VERSION"] = pipeline["variables"]["UV_VERSION"]
        images = [pipeline["default"]["image"], pipeline[".tests"]["image"]]
        assert all(image.startswith("ghcr.io/astral-sh/uv:$UV_VERSION-") for image in images)
    if "Dockerfile" in files:
        found = re.search(
            r"^FROM ghcr\.io/astral-sh/uv:(\S+) AS uv$",
            files["Dockerfile"].read_text(encoding="utf-8"),
            re.MULTILINE,
        )
        assert found, "the Dockerfile has no pinned uv stage"
        pins["Dockerfile"] = found[1]
    if ".pre-commit-config.yaml" in files:
        config = yaml.safe_load(files[".pre-commit-config.yaml"].read_text(encoding="utf-8"))
        (rev,) = [
            repo["rev"] for repo in config["repos"] if repo["repo"].endswith("/uv-pre-commit")
        ]
        pins["pre-commit"] = rev
    assert set(pins.values()) <= {ours}, pins
    bounds = re.fullmatch(r">=(\S+),<(\S+)", required)
    assert bounds, f"required-version {required!r} is not a >=,< range"
    lowest, highest = bounds.groups()
    version = tuple(map(int, ours.split(".")))
    assert tuple(map(int, lowest.split("."))) <= version < tuple(map(int, highest.split(".")))


def test_no_empty_folders(baked: Baked) -> None:
    empty = [
        name
        for name in baked.files
        if (baked.path / name).is_dir() and not any((baked.path / name).iterdir())
    ]
    assert empty == []


def test_no_template_syntax_left(baked: Baked) -> None:
    leftovers = []
    for file in generated_files(baked):
        for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), start=1):
            if LEFTOVER_TEMPLATE_SYNTAX.search(line):
                leftovers.append(f"{file.relative_to(baked.path)}:{number}: {line.strip()}")
    assert leftovers == []


def test_every_toml_and_yaml_file_parses(baked: Baked) -> None:
    parsed = 0
    for file in generated_files(baked):
        if file.suffix == ".toml":
            tomllib.loads(file.read_text(encoding="utf-8"))
            parsed += 1
        elif file.suffix in {".yml", ".yaml"}:
            list(yaml.safe_load_all(file.read_text(encoding="utf-8")))
            parsed += 1
    assert parsed >= 1


def test_ci_config_matches_its_schema(baked: Baked) -> None:
    provider = baked.answers["ci_provider"]
    if provider == "none":
        assert not (baked.path / ".github").exists()
        assert not (baked.path / ".gitlab-ci.yml").exists()
        return
    checks = {
        "github": [
            ("vendor.github-workflows", ".github/workflows/ci.yml"),
            ("vendor.github-workflows", ".github/workflows/template-update.yml"),
            ("vendor.dependabot", ".github/dependabot.yml"),
        ],
        "gitlab": [("vendor.gitlab-ci", ".gitlab-ci.yml")],
    }[provider]
    for schema, file in checks:
        command = [sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema, file]
        run(command, baked.path)


def test_github_workflows_pass_actionlint_with_shellcheck(baked: Baked) -> None:
    if baked.answers["ci_provider"] != "github":
        return
    workflows = sorted((baked.path / ".github" / "workflows").glob("*.yml"))
    assert workflows
    result = actionlint(baked.path, workflows)
    assert result.returncode == 0, result.stdout + result.stderr


def test_github_workflows_pass_githubs_own_parser(baked: Baked) -> None:
    if baked.answers["ci_provider"] != "github":
        return
    workflows = sorted((baked.path / ".github" / "workflows").glob("*.yml"))
    result = github_parser(baked.path, workflows)
    assert result.returncode == 0, result.stdout + result.stderr


def test_github_config_has_no_zizmor_findings(baked: Baked) -> None:
    if baked.answers["ci_provider"] != "github":
        return
    result = zizmor(baked.path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No findings" in result.stdout + result.stderr


def test_github_actions_are_pinned_to_their_newest_release_commits(baked: Baked) -> None:
    if baked.answers["ci_provider"] != "github":
        return
    workflows = sorted((baked.path / ".github" / "workflows").glob("*.yml"))
    used = {action for workflow in workflows for action, _, _ in action_pins(workflow)}
    assert used == set(ACTION_RELEASES)
    assert [problem for workflow in workflows for problem in stale_pins(workflow)] == []


def test_gitlab_pipeline_parses_and_creates_the_expected_jobs(baked: Baked, tmp_path: Path) -> None:
    if baked.answers["ci_provider"] != "gitlab":
        return
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / ".gitlab-ci.yml").write_bytes((baked.path / ".gitlab-ci.yml").read_bytes())
    commit_all(repo, "CI")
    jobs = json.loads(gitlab_ci_local(repo, "--list-json").stdout)
    created = {job["name"] for job in jobs if job["when"] != "never"}
    matrix = {f"test: [{version}]" for version in baked.newer_pythons}
    assert created == {"lint", "conflict-markers", *matrix, "test-debug"}


def test_kubernetes_manifests_render_and_are_valid(baked: Baked) -> None:
    if baked.answers["deployment"] != "kubernetes":
        return
    objects = kustomize(baked.path)
    assert invalid_kubernetes_objects(objects) == []
    assert len(objects) == 5


def test_dockerfile_passes_hadolint(baked: Baked) -> None:
    if not baked.answers["use_docker"]:
        return
    result = hadolint(baked.path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_runs_as_a_numeric_non_root_user_it_creates(baked: Baked) -> None:
    if not baked.answers["use_docker"]:
        return
    dockerfile = (baked.path / "Dockerfile").read_text(encoding="utf-8")
    (user,) = re.findall(r"^USER (.+)$", dockerfile, re.MULTILINE)
    numeric = re.fullmatch(r"(\d+):(\d+)", user)
    assert numeric, f"USER {user} is not a numeric uid:gid (runAsNonRoot cannot verify it)"
    uid, gid = numeric.groups()
    assert int(uid) != 0 and int(gid) != 0
    assert f"--uid {uid}" in dockerfile and f"--gid {gid}" in dockerfile


def test_ci_tests_the_minimum_python_and_every_newer_one(baked: Baked) -> None:
    provider = baked.answers["ci_provider"]
    if provider == "github":
        workflow = yaml.safe_load(
            (baked.path / ".github/workflows/ci.yml").read_text(encoding="utf-8")
        )
        versions = workflow["jobs"]["test"]["strategy"]["matrix"]["python-version"]
    elif provider == "gitlab":
        config = yaml.safe_load((baked.path / ".gitlab-ci.yml").read_text(encoding="utf-8"))
        versions = config["test"]["parallel"]["matrix"][0]["PYTHON_VERSION"]
    else:
        assert not (baked.path / ".github").exists()
        assert not (baked.path / ".gitlab-ci.yml").exists()
        return
    assert versions == baked.newer_pythons


def test_readme_mentions_only_the_optional_files_that_exist(baked: Baked) -> None:
    readme = (baked.path / "README.md").read_text(encoding="utf-8")
    mentions = {
        ".github/workflows/ci.yml": "`.github/workflows/ci.yml`",
        ".gitlab-ci.yml": "`.gitlab-ci.yml`",
        ".pre-commit-config.yaml": "pre-commit",
        "Dockerfile": "docker build",
    }
    assert {name: mention in readme for name, mention in mentions.items()} == {
        name: (baked.path / name).exists() for name in mentions
    }


def test_pyproject_follows_the_python_and_license_answers(baked: Baked) -> None:
    pyproject = tomllib.loads((baked.path / "pyproject.toml").read_text(encoding="utf-8"))
    python_version = baked.answers["python_version"]
    license_answer = baked.answers["license"]
    assert pyproject["project"]["requires-python"] == f">={python_version}"
    assert pyproject["tool"]["ruff"]["target-version"] == "py" + python_version.replace(".", "")
    assert pyproject["tool"]["mypy"]["python_version"] == python_version
    expected_license = (
        "LicenseRef-Proprietary" if license_answer == "Proprietary" else license_answer
    )
    assert pyproject["project"]["license"] == expected_license


def test_license_file_has_the_chosen_text(baked: Baked) -> None:
    license_answer = baked.answers["license"]
    if license_answer == "Proprietary":
        assert not (baked.path / "LICENSE").exists()
        pyproject = tomllib.loads((baked.path / "pyproject.toml").read_text(encoding="utf-8"))
        assert "Private :: Do Not Upload" in pyproject["project"]["classifiers"]
        return
    text = (baked.path / "LICENSE").read_text(encoding="utf-8")
    assert LICENSE_MARKERS[license_answer] in text
    assert all(
        marker not in text for other, marker in LICENSE_MARKERS.items() if other != license_answer
    )


def test_dockerfile_uses_the_minimum_python(baked: Baked) -> None:
    if not baked.answers["use_docker"]:
        return
    dockerfile = (baked.path / "Dockerfile").read_text(encoding="utf-8")
    assert f"PYTHON_VERSION={baked.answers['python_version']}" in dockerfile
    assert "HEALTHCHECK" in dockerfile and "/health" in dockerfile
    assert f'CMD ["python", "-m", "{baked.package}"]' in dockerfile


@pytest.mark.slow
def test_ruff_check_passes(baked: Baked, venv_python: Path) -> None:
    run([venv_python, "-m", "ruff", "check", "--no-cache", "."], baked.path)


@pytest.mark.slow
def test_ruff_format_check_passes(baked: Baked, venv_python: Path) -> None:
    run([venv_python, "-m", "ruff", "format", "--no-cache", "--check", "."], baked.path)


@pytest.mark.slow
def test_mypy_strict_passes(baked: Baked, venv_python: Path, mypy_cache: Path) -> None:
    run([venv_python, "-m", "mypy", "--cache-dir", mypy_cache], baked.path)


@pytest.mark.slow
def test_imports_keep_to_the_declared_layers(baked: Baked, venv_python: Path) -> None:
    result = run([venv_python.parent / "lint-imports"], baked.path)
    assert "0 broken" in result.stdout, result.stdout


@pytest.mark.slow
@pytest.mark.parametrize("baked", row_params(SUITE_ROWS), indirect=True)
def test_own_test_suite_passes_with_the_ci_coverage_gate(
    baked: Baked, venv_python: Path, request: pytest.FixtureRequest
) -> None:
    # Exactly the generated CI's test steps; `coverage report` enforces fail_under. As in the
    # generated CI, a Redis is there for the Redis cache's integration test: nothing skips.
    env = {"CI": "true"}
    if baked.answers["cache"] == "redis":
        env["REDIS_URL"] = request.getfixturevalue("redis_url")
    result = run(
        [venv_python, "-m", "coverage", "run", "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        baked.path,
        env=env,
    )
    assert "skipped" not in result.stdout.splitlines()[-1], result.stdout
    run([venv_python, "-m", "coverage", "report"], baked.path)
