"""The Dockerfile's install, run as written without a container engine (there is none here).

The build stage's instructions are executed in a scratch folder standing in for the image's
root: every absolute path of the Dockerfile (``/venv``, ``/build``, the image's Python, uv's
cache mount) is that folder plus the same path, the ``uv`` of the pinned uv stage is the uv
of these tests (the same version: checked), ``--mount=type=bind`` files are there for their
RUN only, and the base image's Python is a Python of this machine that any user may run. Then,
as the final stage does, only ``/venv`` is kept, and the service starts from it with the
stage's ``ENV``, ``USER`` and ``CMD``; its ``HEALTHCHECK`` runs as written.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import stat
import subprocess
import tempfile
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import uv
from conftest import Bake, run, uv_on_path
from support.processes import start_service, stop

UNPRIVILEGED = 10001  # the Dockerfile's USER, checked below


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)


def stages(dockerfile: str) -> list[Stage]:
    """The Dockerfile's stages: each FROM and its instructions (continuations joined)."""
    text = re.sub(r"\\\n", " ", dockerfile)
    found: list[Stage] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        if keyword.upper() == "FROM":
            image, _, name = rest.partition(" AS ")
            found.append(Stage(image.strip(), name.strip() or None))
        elif found:
            found[-1].instructions.append((keyword.upper(), rest.strip()))
    return found


def stage_named(all_stages: list[Stage], name: str | None) -> Stage:
    (stage,) = [stage for stage in all_stages if stage.name == name]
    return stage


def world_runnable(path: str) -> bool:
    """Whether any user may run ``path`` (every folder on its way searchable by others)."""
    real = Path(os.path.realpath(path))
    folders = real.parents
    return bool(real.stat().st_mode & stat.S_IXOTH) and all(
        folder.stat().st_mode & stat.S_IXOTH for folder in folders
    )


def image_python(minor: str) -> str:
    """A Python ``minor`` of this machine that the unprivileged user may run."""
    candidates = [
        shutil.which(f"python{minor}"),
        f"/usr/bin/python{minor}",
        f"/usr/local/bin/python{minor}",
    ]
    usable = [path for path in candidates if path and Path(path).is_file() and world_runnable(path)]
    assert usable, f"no Python {minor} here that an unprivileged user may run (e.g. /usr/bin)"
    return usable[0]


class Emulation:
    """A build stage's filesystem under ``root``, and the RUNs executed in it."""

    def __init__(self, root: Path, context: Path, env: dict[str, str]) -> None:
        self.root, self.context, self.env = root, context, env
        self.workdir = root

    def path(self, absolute: str) -> Path:
        return self.root / absolute.lstrip("/")

    def mapped(self, value: str) -> str:
        """A value with its absolute paths moved under the root (``$PATH`` left as it is)."""
        return ":".join(
            str(self.path(part)) if part.startswith("/") else part for part in value.split(":")
        )

    def set_env(self, rest: str) -> None:
        for assignment in shlex.split(rest):
            name, _, value = assignment.partition("=")
            value = value.replace("$PATH", self.env.get("PATH", ""))
            self.env[name] = self.mapped(value)

    def copy(self, rest: str, sources: dict[str, Path]) -> None:
        words = shlex.split(rest)
        origin = self.context
        if words[0].startswith("--from="):
            origin = sources[words.pop(0).removeprefix("--from=")]
        *items, target = words
        destination = self.path(target) if target.startswith("/") else self.workdir / target
        for item in items:
            source = origin / item.lstrip("/")
            if len(items) > 1 or target.endswith("/"):
                destination.mkdir(parents=True, exist_ok=True)
                into = destination / Path(item).name
            else:
                destination.parent.mkdir(parents=True, exist_ok=True)
                into = destination
            if source.is_dir():
                shutil.copytree(source, into, symlinks=True, dirs_exist_ok=True)
            else:
                shutil.copy2(source, into)

    def run(self, rest: str, uv_cache: Path) -> None:
        mounts = re.findall(r"--mount=(\S+)", rest)
        command = re.sub(r"--mount=\S+\s*", "", rest)
        env = dict(self.env)
        bound: list[Path] = []
        for mount in mounts:
            options = dict(option.split("=", 1) for option in mount.split(","))
            if options["type"] == "cache":
                assert options["target"] == "/root/.cache/uv", options  # uv's, for root
                env["UV_CACHE_DIR"] = str(uv_cache)
            else:
                assert options["type"] == "bind", options
                target = self.workdir / options["target"]
                shutil.copy2(self.context / options["source"], target)
                bound.append(target)
        try:
            run(["sh", "-c", command], self.workdir, env=env, timeout=600)
        finally:
            for path in bound:  # a bind mount leaves nothing behind
                path.unlink()


@pytest.fixture(scope="module")
def project(bake: Bake) -> Path:
    return bake(lock=True)


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    """A root folder outside pytest's private tmp tree, so that the unprivileged user can
    read what is installed there; removed afterwards."""
    # Not tempfile's default: the tests point TMPDIR into pytest's tree (conftest.py).
    root = Path(tempfile.mkdtemp(prefix="image-root-", dir="/tmp"))
    root.chmod(0o755)
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def built(project: Path, scratch: Path) -> tuple[Path, list[Stage], dict[str, str]]:
    """The build stage run into ``scratch``, then the final stage's files: (root, stages,
    the final stage's environment)."""
    dockerfile = (project / "Dockerfile").read_text(encoding="utf-8")
    all_stages = stages(dockerfile)
    uv_stage = stage_named(all_stages, "uv")
    pinned = uv_stage.base.rsplit(":", 1)[1]
    ours = run([uv.find_uv_bin(), "--version"], project).stdout.split()[1]
    assert pinned == ours, f"the Dockerfile pins uv {pinned}; these tests have uv {ours}"

    minor = re.search(r"ARG PYTHON_VERSION=(\S+)", dockerfile)
    assert minor
    base_python = image_python(minor[1])
    build = stage_named(all_stages, "build")
    machine_path = os.environ.get("PATH", "")
    emulation = Emulation(scratch, project, {"PATH": machine_path, "HOME": str(scratch / "root")})
    emulation.path("/usr/local/bin").mkdir(parents=True)
    emulation.path("/usr/local/bin/python").symlink_to(base_python)  # the image's Python
    emulation.env["PATH"] = f"{emulation.path('/usr/local/bin')}:{machine_path}"
    uv_cache = Path(os.environ["UV_CACHE_DIR"])
    runs = 0
    for keyword, rest in build.instructions:
        if keyword == "ENV":
            emulation.set_env(rest)
        elif keyword == "WORKDIR":
            emulation.workdir = emulation.path(rest)
            emulation.workdir.mkdir(parents=True, exist_ok=True)
        elif keyword == "COPY":
            emulation.copy(rest, {"uv": uv_on_path()})  # the uv stage: its /uv
        elif keyword == "RUN":
            emulation.run(rest, uv_cache)
            runs += 1
            if runs == 1:  # the dependencies' layer: everything but the project
                site = next(emulation.path("/venv").glob("lib/python*/site-packages"))
                assert (site / "aiohttp").is_dir()
                assert not list(site.glob("my_async_service*")), "the project is in layer 1"
        else:
            raise AssertionError(f"the build stage's {keyword} is not emulated: teach this test")
    assert runs == 2, build.instructions

    # The final stage: a fresh image with /venv copied in, nothing else of the build stage.
    for child in scratch.iterdir():
        if child.name not in {"venv", "usr"}:
            shutil.rmtree(child)
    (emulation.path("/usr/local/bin/uv")).unlink()
    final = stage_named(all_stages, None)
    env = {"PATH": machine_path}
    final_emulation = Emulation(scratch, project, env)
    for keyword, rest in final.instructions:
        if keyword == "ENV":
            final_emulation.set_env(rest)
    return scratch, all_stages, final_emulation.env


def test_the_final_stage_has_no_uv_no_build_tools_and_no_dev_tools(
    built: tuple[Path, list[Stage], dict[str, str]],
) -> None:
    root, all_stages, _ = built
    final = stage_named(all_stages, None)
    copies = [rest for keyword, rest in final.instructions if keyword == "COPY"]
    assert copies == ["--from=build /venv /venv"]
    assert not any("uv" in rest.split() for keyword, rest in final.instructions if keyword == "RUN")
    site = next((root / "venv").glob("lib/python*/site-packages"))
    installed = {path.name.split("-")[0].lower() for path in site.glob("*.dist-info")}
    assert {"aiohttp", "orjson", "uvloop", "my_async_service"} <= installed
    assert not installed & {"pytest", "mypy", "ruff", "coverage", "hypothesis", "uv"}
    assert not (root / "venv" / "bin" / "uv").exists()
    # Not editable: nothing in /venv points back into /build.
    assert not list(site.glob("*.pth")) or all(
        "/build" not in pth.read_text() for pth in site.glob("*.pth")
    )


def test_the_service_starts_from_the_result_as_the_unprivileged_user(
    built: tuple[Path, list[Stage], dict[str, str]], tmp_path: Path
) -> None:
    root, all_stages, env = built
    final = stage_named(all_stages, None)
    instructions = dict(final.instructions)
    assert instructions["USER"] == f"{UNPRIVILEGED}:{UNPRIVILEGED}"
    python, flag, package = json.loads(instructions["CMD"])
    assert flag == "-m", instructions["CMD"]
    healthcheck = json.loads(instructions["HEALTHCHECK"].split(" CMD ", 1)[1])
    as_user = {"user": UNPRIVILEGED, "group": UNPRIVILEGED, "extra_groups": []}
    if os.geteuid() != 0:  # already unprivileged: run as this user
        as_user = {}
    # Loopback only (the image's HOST=0.0.0.0 is for a container's own network namespace:
    # start_service sets HOST and PORT).
    service_env = {**env, "HOME": "/"}
    assert service_env["PATH"].startswith(f"{root / 'venv' / 'bin'}:")
    process, url = start_service(
        python, tmp_path / "service.log", service_env, package, cwd="/", **as_user
    )
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=5) as answer:
            assert answer.status == 200
        probe = subprocess.run(
            healthcheck,
            env={**service_env, "PORT": url.rsplit(":", 1)[1]},
            capture_output=True,
            timeout=10,
            check=False,
            **as_user,  # type: ignore[arg-type]
        )
        assert probe.returncode == 0, probe.stderr
        if as_user:
            status = Path(f"/proc/{process.pid}/status").read_text()
            assert re.search(rf"^Uid:\s+{UNPRIVILEGED}\s", status, re.MULTILINE), status
    finally:
        assert stop(process) == 0, (tmp_path / "service.log").read_text(errors="replace")
