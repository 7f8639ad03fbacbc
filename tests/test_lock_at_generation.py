"""The post-generation hook locks with the user's uv; without uv, or when locking fails, the
project is still complete and one line says what to run."""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import uv
from conftest import run, with_uv

Cli = Callable[..., Any]

WITH_UV = with_uv()


def folder(path: Path) -> Path:
    path.mkdir(parents=True)
    return path


def files(project: Path) -> set[str]:
    return {str(path.relative_to(project)) for path in project.rglob("*")}


def hook_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("post-generation:")]


@pytest.mark.quick
def test_with_uv_the_project_is_locked_quietly(cookiecutter_cli: Cli, tmp_path: Path) -> None:
    result = cookiecutter_cli(tmp_path, "--no-input", env=WITH_UV)
    assert result.returncode == 0, result.stderr
    project = tmp_path / "my-async-service"
    assert hook_lines(result.stderr) == []
    run([uv.find_uv_bin(), "lock", "--check", "--offline"], project, env=WITH_UV)
    lock = tomllib.loads((project / "uv.lock").read_text(encoding="utf-8"))
    assert {package["name"] for package in lock["package"]} >= {"aiohttp", "my-async-service"}


@pytest.mark.quick
def test_without_uv_generation_completes_and_one_line_says_what_to_run(
    cookiecutter_cli: Cli, tmp_path: Path
) -> None:
    locked = cookiecutter_cli(folder(tmp_path / "locked"), "--no-input", env=WITH_UV)
    assert locked.returncode == 0, locked.stderr
    result = cookiecutter_cli(folder(tmp_path / "plain"), "--no-input")  # no uv on the PATH
    assert result.returncode == 0, result.stderr
    (line,) = hook_lines(result.stderr)
    assert "uv is not on the PATH" in line
    assert "run `uv lock` in my-async-service" in line
    plain = files(tmp_path / "plain" / "my-async-service")
    assert plain == files(tmp_path / "locked" / "my-async-service") - {"uv.lock"}


@pytest.mark.quick
def test_a_failing_lock_completes_and_one_line_says_why_and_what_to_run(
    cookiecutter_cli: Cli, tmp_path: Path
) -> None:
    # Offline with an empty cache: uv cannot resolve anything.
    offline = {**WITH_UV, "UV_OFFLINE": "1", "UV_CACHE_DIR": str(tmp_path / "empty-cache")}
    result = cookiecutter_cli(folder(tmp_path / "out"), "--no-input", env=offline)
    assert result.returncode == 0, result.stderr
    (line,) = hook_lines(result.stderr)
    assert "`uv lock` failed (error:" in line
    assert "run `uv lock` in my-async-service" in line
    project = tmp_path / "out" / "my-async-service"
    assert not (project / "uv.lock").exists()
    assert {"pyproject.toml", "README.md", "src/my_async_service/app.py"} <= files(project)


def test_answers_never_reach_the_lock_command(cookiecutter_cli: Cli, tmp_path: Path) -> None:
    # An answer that a shell would run, in the folder name uv runs in and in the lock's name.
    name = "Quote ' and $(touch pwned)"
    result = cookiecutter_cli(tmp_path, "--no-input", f"project_name={name}", env=WITH_UV)
    assert result.returncode == 0, result.stderr
    (project,) = [path for path in tmp_path.iterdir() if (path / "pyproject.toml").is_file()]
    assert hook_lines(result.stderr) == []
    assert (project / "uv.lock").is_file()
    assert not list(tmp_path.rglob("pwned"))
