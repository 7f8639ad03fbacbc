"""Fixtures for baking the template, installing a baked project and running its tools.

Every bake goes to a pytest tmp dir with its own cookiecutter config (no replay files in
the home folder). A bake locks (the post-generation hook's ``uv lock``) when asked to, as on a
machine with uv on the PATH; otherwise ``install`` locks first, as the hook's message says.
Installs are ``uv sync --locked`` with uv's default, shared cache: after the first project the
dependencies come from the cache, so one install costs about a second.
"""

from __future__ import annotations

import functools
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import uv
import yaml
from cookiecutter.main import cookiecutter
from hypothesis import settings as hypothesis_settings
from matrix import DEFAULT_PYTHON
from support.processes import fake_upstream, redis_server

TEMPLATE_ROOT = Path(__file__).resolve().parent.parent

# On CI the property tests draw the same examples every run, so a landing never depends on luck;
# locally they explore new examples each time.
hypothesis_settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")
# The extras the generated README's quick start installs (with the dev group, uv's default).
QUICK_START_EXTRAS = ("speedups",)


# One uv cache for every install and lock of the run, wherever it starts: tests that give
# cruft a HOME of its own would otherwise start from an empty cache (and a download each).
os.environ.setdefault(
    "UV_CACHE_DIR",
    subprocess.run(
        [uv.find_uv_bin(), "cache", "dir"], capture_output=True, text=True, check=True
    ).stdout.strip(),
)


# A fresh CI machine has no git identity: every commit a test makes uses this one.
GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "Template Tests",
    "GIT_AUTHOR_EMAIL": "tests@example.com",
    "GIT_COMMITTER_NAME": "Template Tests",
    "GIT_COMMITTER_EMAIL": "tests@example.com",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the slow tests that belong to no group first.

    Under ``--dist loadgroup`` each of them is a work unit of its own, and xdist's default
    order (largest group first) ran them last: the longest (the name property test, about
    100 s) then ran alone while the other worker sat idle. Measured durations replayed through
    xdist's scheduling: 776 s with the old order, 708 s with this one (700 s is a perfect split);
    pytest.ini keeps xdist from reordering (``--no-loadscope-reorder``).
    """

    def rank(item: pytest.Item) -> int:
        alone = item.get_closest_marker("xdist_group") is None
        return 0 if alone and item.get_closest_marker("slow") is not None else 1

    items.sort(key=rank)


# Not passed on to children: what would leak our pytest run or venv into theirs, and a machine's
# PYTHONDONTWRITEBYTECODE. Without bytecode every child Python compiles each module it imports
# from source again (aiohttp, hypothesis, schemathesis...): 3 of a baked suite's 12 s, and about
# a second per started service. Children write bytecode only into tmp venvs and baked projects.
WITHHELD_VARIABLES = {"VIRTUAL_ENV", "PYTHONPATH", "PYTHONDONTWRITEBYTECODE"}


# Baked suites shuffle their tests (pytest-randomly) with a new seed each run; here they run in
# file order, so a template run never depends on luck. tests/test_async_detectors.py runs one
# under three fixed seeds instead.
CHILD_PYTEST_OPTIONS = "-p no:randomly"


def clean_environment() -> dict[str, str]:
    """This environment minus ``WITHHELD_VARIABLES`` and pytest's own variables, with
    ``CHILD_PYTEST_OPTIONS`` for any pytest it runs."""
    kept = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("PYTEST_") and key not in WITHHELD_VARIABLES
    }
    return kept | {"PYTEST_ADDOPTS": CHILD_PYTEST_OPTIONS}


def run(
    args: Sequence[str | os.PathLike[str]],
    cwd: Path,
    *,
    timeout: float = 300,
    check: bool = True,
    env: Mapping[str, str] | None = None,
    stdin: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command; with ``check``, a non-zero exit fails the test showing all output."""
    result = subprocess.run(
        [os.fspath(arg) for arg in args],
        cwd=cwd,
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**clean_environment(), **(env or {})},
        check=False,
    )
    if check:
        assert result.returncode == 0, (
            f"`{' '.join(map(str, args))}` in {cwd} exited {result.returncode}\n"
            f"--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}"
        )
    return result


def git(cwd: Path, *args: str) -> str:
    return run(["git", *args], cwd).stdout.strip()


def commit_all(repo: Path, message: str) -> str:
    """Stage everything in ``repo`` and commit it (the repository is made if missing); the sha."""
    if not (repo / ".git").exists():
        run(["git", "init", "-q", "-b", "main"], repo)
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-q", "--no-verify", "-m", message], repo, env=GIT_IDENTITY)
    return run(["git", "rev-parse", "HEAD"], repo).stdout.strip()


@functools.cache
def interpreter_version(executable: str) -> tuple[int, int] | None:
    """(major, minor) of a Python executable, or None when it does not run (e.g. a pyenv shim)."""
    try:
        result = subprocess.run(
            [executable, "-c", "import sys; print(*sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except OSError:
        return None
    if result.returncode != 0:
        return None
    major, minor = result.stdout.split()
    return int(major), int(minor)


def python_at_least(minimum: str) -> str | None:
    """This interpreter if it is new enough, else the oldest one on this machine that is."""
    wanted = tuple(int(part) for part in minimum.split("."))
    pyenv_root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    candidates = [
        sys.executable,
        *filter(None, (shutil.which(f"python3.{minor}") for minor in range(11, 20))),
        *sorted(glob.glob(os.path.join(pyenv_root, "versions", "3.*", "bin", "python3"))),
    ]
    versions = {path: interpreter_version(path) for path in candidates}
    new_enough = [path for path in candidates if (versions[path] or (0, 0)) >= wanted]
    if sys.executable in new_enough:
        return sys.executable
    return min(new_enough, key=lambda path: versions[path] or (0, 0), default=None)


@pytest.fixture(scope="session", autouse=True)
def contained_temp_files(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """cookiecutter 2.7 leaves each rendered hook script in the temp dir: keep them in
    pytest's own (pruned) tmp tree, for this process and the tools it starts."""
    contained = str(tmp_path_factory.mktemp("tmp"))
    previous_env, previous_dir = os.environ.get("TMPDIR"), tempfile.tempdir
    os.environ["TMPDIR"], tempfile.tempdir = contained, contained
    yield
    tempfile.tempdir = previous_dir
    if previous_env is None:
        del os.environ["TMPDIR"]
    else:
        os.environ["TMPDIR"] = previous_env


@pytest.fixture(scope="session")
def cookiecutter_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cookiecutter config that keeps replay files and clones inside the tmp dir."""
    home = tmp_path_factory.mktemp("cookiecutter-home")
    config = home / "config.yaml"
    config.write_text(
        f"cookiecutters_dir: {home / 'cookiecutters'}\nreplay_dir: {home / 'replay'}\n",
        encoding="utf-8",
    )
    return config


Bake = Callable[..., Path]


@functools.cache
def uv_on_path() -> Path:
    """A folder holding only ``uv`` and ``uvx`` (this environment's pinned ones), to put on a
    PATH, as setup-uv and uv's images do."""
    folder = Path(tempfile.mkdtemp(prefix="uv-bin-"))
    uv_bin = Path(uv.find_uv_bin())
    (folder / "uv").symlink_to(uv_bin)
    (folder / "uvx").symlink_to(uv_bin.with_name("uvx"))
    return folder


def path_without_uv() -> str:
    """PATH less every folder that has a ``uv``: a machine without uv."""
    folders = os.environ.get("PATH", "").split(os.pathsep)
    return os.pathsep.join(f for f in folders if not (Path(f) / "uv").exists())


def uv_environment(minimum_python: str) -> dict[str, str]:
    """What makes uv find a Python here for a project that needs ``minimum_python``: the
    interpreter (pyenv's are not on the PATH), and never a download (no network for it)."""
    interpreter = python_at_least(minimum_python)
    return {"UV_PYTHON_DOWNLOADS": "never", **({"UV_PYTHON": interpreter} if interpreter else {})}


def with_uv(minimum_python: str = DEFAULT_PYTHON) -> dict[str, str]:
    """The environment of a machine with uv (the tests' own, alone in its folder, first on the
    PATH) that can find a Python for ``minimum_python`` (see uv_environment)."""
    path = f"{uv_on_path()}{os.pathsep}{path_without_uv()}"
    return {"PATH": path, **uv_environment(minimum_python)}


@pytest.fixture(scope="session")
def bake(tmp_path_factory: pytest.TempPathFactory, cookiecutter_config: Path) -> Bake:
    """bake(lock=False, **answers) -> the generated project's folder, in a fresh tmp dir.

    With ``lock``, uv is on the PATH and the post-generation hook writes ``uv.lock``, as for a
    user with uv; without, uv is off the PATH (fast: most bakes are never installed).
    """

    def render(answers: dict[str, Any], changes: dict[str, str]) -> Path:
        output_dir = tmp_path_factory.mktemp("baked")
        # The hooks cookiecutter runs inherit os.environ.
        with pytest.MonkeyPatch.context() as environment:
            for name, value in changes.items():
                environment.setenv(name, value)
            project = cookiecutter(
                str(TEMPLATE_ROOT),
                no_input=True,
                extra_context=answers,
                output_dir=str(output_dir),
                config_file=str(cookiecutter_config),
            )
        return Path(project)

    def bake(*, lock: bool = False, **answers: Any) -> Path:
        if not lock:
            return render(answers, {"PATH": path_without_uv()})
        minimum = answers.get("python_version", DEFAULT_PYTHON)
        changes = with_uv(minimum)
        # uv's cache alone first (0.3 s instead of 1.3 s a lock); with the index when that
        # fails (a cold cache), as a user's online uv would. A Python uv cannot find fails both.
        project = render(answers, {**changes, "UV_OFFLINE": "1"})
        if (project / "uv.lock").exists() or python_at_least(minimum) is None:
            return project
        return render(answers, changes)

    return bake


Install = Callable[..., Path]


def newest_python() -> str:
    """The newest Python on this machine (the running one if nothing newer is found)."""
    best = python_at_least("3.11") or sys.executable
    for minor in range(20, 11, -1):
        candidate = python_at_least(f"3.{minor}")
        if candidate is not None:
            return candidate
    return best


def uv_offline_first(
    args: Sequence[str | os.PathLike[str]], project: Path, env: Mapping[str, str]
) -> None:
    """A uv command from uv's cache alone (fast, works offline), else with the package index."""
    if run([*args, "--offline"], project, check=False, env=env).returncode != 0:
        run(args, project, env=env)


@pytest.fixture(scope="session")
def install() -> Install:
    """install(project, minimum_python, extras=QUICK_START_EXTRAS) -> the python of the
    project's new ``.venv``: ``uv sync --locked`` (locking first when the bake did not).

    Uses the oldest Python here that the project supports. When none is new enough (no 3.14
    on this machine: uv can neither lock nor sync for it), it installs the dependencies with
    ``uv pip`` into a venv of the newest Python here (see install_for_a_missing_python): static
    checks still target the chosen version, and the tests run on the newest Python here.
    """

    def install(
        project: Path, minimum_python: str, extras: Sequence[str] = QUICK_START_EXTRAS
    ) -> Path:
        uv_bin = uv.find_uv_bin()
        chosen = [arg for extra in extras for arg in ("--extra", extra)]
        python = project / ".venv" / "bin" / "python"
        if python_at_least(minimum_python) is None:
            return install_for_a_missing_python(project, chosen)
        env = uv_environment(minimum_python)
        if not (project / "uv.lock").exists():
            uv_offline_first([uv_bin, "lock", "--quiet"], project, env)
        uv_offline_first([uv_bin, "sync", "--quiet", "--locked", *chosen], project, env)
        return python

    return install


def install_for_a_missing_python(project: Path, chosen: Sequence[str]) -> Path:
    """The fallback of ``install`` for a project whose minimum Python is not on this machine:
    its dependencies, the ``chosen`` extras' flags and the dev group on the newest Python here,
    and a ``.pth`` for ``src``."""
    uv_bin, base = uv.find_uv_bin(), newest_python()
    run([uv_bin, "venv", "--quiet", "--python", base, ".venv"], project)
    python = project / ".venv" / "bin" / "python"
    command = [uv_bin, "pip", "install", "--quiet", "--python", python, "-r", "pyproject.toml"]
    uv_offline_first([*command, *chosen, "--group", "dev"], project, {})
    site = run([python, "-c", "import site; print(site.getsitepackages()[0])"], project)
    Path(site.stdout.strip(), "_project_src.pth").write_text(f"{project / 'src'}\n")
    return python


@pytest.fixture(scope="module")
def default_project(bake: Bake) -> Path:
    """The default project, baked once for the test module that asks for it."""
    return bake()


@pytest.fixture(scope="module")
def default_python(default_project: Path, install: Install) -> Path:
    """The python of the default project's own ``.venv``, installed once per module."""
    return install(default_project, DEFAULT_PYTHON)


@pytest.fixture(scope="session")
def mypy_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One mypy cache for every project this worker checks.

    mypy validates each cached module by its source's hash, so a project checked after another
    reuses what did not change (the dependencies' stubs and sources, in any venv) and checks
    the rest: 0.5 s instead of 7 s for a bake after the first. One per worker: mypy does not
    share a cache folder between processes safely.
    """
    return tmp_path_factory.mktemp("mypy-cache")


@pytest.fixture(scope="session")
def cookiecutter_cli(cookiecutter_config: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """cookiecutter_cli(output_dir, *args, stdin=None, env=None): run ``python -m cookiecutter``
    (without uv on the PATH unless ``env`` puts it there)."""

    def cookiecutter_cli(
        output_dir: Path,
        *args: str,
        stdin: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        return run(
            [
                sys.executable,
                "-m",
                "cookiecutter",
                TEMPLATE_ROOT,
                "--output-dir",
                output_dir,
                "--config-file",
                cookiecutter_config,
                *args,
            ],
            output_dir,
            check=False,
            stdin=stdin,
            timeout=120,
            env={"PATH": path_without_uv(), **(env or {})},
        )

    return cookiecutter_cli


COPIER = Path(sys.executable).parent / "copier"


def copier_copy(
    answers: Mapping[str, Any],
    destination: Path,
    *,
    source: Path = TEMPLATE_ROOT,
    env: Mapping[str, str] | None = None,
    args: Sequence[str] = (),
    check: bool = True,
    vcs_ref: str | None = "HEAD",
) -> subprocess.CompletedProcess[str]:
    """``copier copy --trust --defaults`` of ``source`` into ``destination``, with ``answers``
    in a data file (typed, as YAML): the command a copier user runs, without prompts. uv is off
    the PATH unless ``env`` puts it there. ``vcs_ref``: the template's HEAD (with uncommitted
    changes) by default; None for copier's own choice, the newest release tag."""
    data_file = destination.parent / f"{destination.name}.copier-data.yml"
    data_file.write_text(yaml.safe_dump(dict(answers)), encoding="utf-8")
    if vcs_ref is not None:
        args = ["--vcs-ref", vcs_ref, *args]
    return run(
        [
            COPIER,
            "copy",
            "--trust",
            "--defaults",
            "--quiet",
            "--data-file",
            data_file,
            *args,
            source,
            destination,
        ],
        destination.parent,
        env={"PATH": path_without_uv(), **(env or {})},
        check=check,
        timeout=120,
    )


@pytest.fixture
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A HOME of its own, so cruft and cookiecutter write no replay files or config elsewhere."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for name, value in GIT_IDENTITY.items():
        monkeypatch.setenv(name, value)
    return home


@pytest.fixture(scope="session")
def uv_cache_has_the_default_dependencies(bake: Bake) -> None:
    """One online lock of the default project, so that cruft's renders can lock offline."""
    assert (bake(lock=True) / "uv.lock").is_file()


@pytest.fixture
def template(
    tmp_path: Path, isolated_home: Path, uv_cache_has_the_default_dependencies: None
) -> Path:
    """A git clone of the template's committed state, ready to receive new commits."""
    clone = tmp_path / "template"
    run(["git", "clone", "-q", TEMPLATE_ROOT, clone], tmp_path)
    return clone


@pytest.fixture(scope="session")
def job_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A GitLab job cache, restored as a runner would, whose uv cache is the machine's: for jobs
    with no ``after_script`` (lint and test prune theirs with ``uv cache prune --ci``)."""
    cache = tmp_path_factory.mktemp("job-cache")
    (cache / ".cache").mkdir()
    (cache / ".cache" / "uv").symlink_to(os.environ["UV_CACHE_DIR"], target_is_directory=True)
    return cache


# copier's own API in one long-lived process per worker: each copy then costs its render (about
# 0.6 s here) instead of starting copier's command line (1.6 s). Requests and replies are JSON
# lines; the process's stdout is its stderr, so the tasks' output cannot mix into the replies.
COPIER_SERVER = """
import json, os, sys
from copier import run_copy
from copier.errors import UserMessageError
from plumbum import local  # copier runs its tasks with plumbum's copy of the environment
replies = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)
for line in sys.stdin:
    request = json.loads(line)
    os.environ.clear()
    os.environ.update(request["env"])
    try:
        with local.env(**request["env"]):
            run_copy(
                request["source"], request["destination"], data=request["data"], defaults=True,
                unsafe=True, quiet=True, vcs_ref=request["vcs_ref"],
            )
        reply = ""
    except (ValueError, UserMessageError) as error:  # copier's own word on the answers
        reply = str(error)
    except Exception as error:
        reply = f"{type(error).__name__}: {error}"
    replies.write(json.dumps(reply) + "\\n")
    replies.flush()
"""

CopierApi = Callable[..., str]


@pytest.fixture(scope="session")
def copier_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CopierApi]:
    """copier_api(answers, destination, env=None, source=TEMPLATE_ROOT) -> copier's error, or
    "" when it copied: ``copier copy --trust --defaults`` of the template, as its API runs it
    (``--vcs-ref HEAD`` of this repository; a plain folder ``source`` as its files are)."""
    log = (tmp_path_factory.mktemp("copier-api") / "stderr").open("w")
    server = subprocess.Popen(
        [sys.executable, "-c", COPIER_SERVER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        env=clean_environment(),
    )
    assert server.stdin is not None and server.stdout is not None
    requests, replies = server.stdin, server.stdout

    def copier_api(
        answers: Mapping[str, Any],
        destination: Path,
        env: Mapping[str, str] | None = None,
        source: Path = TEMPLATE_ROOT,
    ) -> str:
        environment = {**clean_environment(), "PATH": path_without_uv(), **(env or {})}
        request = {
            "source": str(source),
            "vcs_ref": "HEAD" if source == TEMPLATE_ROOT else None,
            "destination": str(destination),
            "data": dict(answers),
            "env": environment,
        }
        requests.write(json.dumps(request) + "\n")
        requests.flush()
        reply: str = json.loads(replies.readline())
        return reply

    try:
        yield copier_api
    finally:
        requests.close()
        server.wait(timeout=30)
        replies.close()
        log.close()


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A real Redis for this test worker (``redis-server`` on a free loopback port)."""
    with redis_server() as (_, url):
        yield url


@pytest.fixture
def upstream() -> Iterator[str]:
    """A misbehaving upstream API in its own process (see support/fake_upstream.py)."""
    with fake_upstream() as url:
        yield url
