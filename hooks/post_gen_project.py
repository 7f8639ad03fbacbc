"""Remove what the answers did not choose and any folder this left empty; then lock.

Pruning is one table: (variable, value) -> paths relative to the generated project
(``{package}`` stands for the package's folder name).
Answers arrive as JSON inside a raw string (see pre_gen_project.py). Removing a path that
is already gone is fine, so running the hook again changes nothing.

Locking runs the ``uv`` on the PATH, with the user's own uv configuration (index, cache,
offline mode); no answer reaches its command line. Without uv, or when locking fails, the
project is still complete: one line on stderr says what to run. ``cruft update`` renders the
template twice in temporary folders, so it locks there too: harmless, because ``uv.lock`` is in
``[tool.cruft] skip`` and cruft drops skipped files from both renders before it compares them.
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

ANSWERS = json.loads(r'{{ cookiecutter | tojson }}')

PRUNE: dict[tuple[str, object], tuple[str, ...]] = {
    ("ci_provider", "github"): (".gitlab-ci.yml",),
    ("ci_provider", "gitlab"): (".github",),
    ("ci_provider", "none"): (".github", ".gitlab-ci.yml"),
    ("use_docker", False): ("Dockerfile", ".dockerignore"),
    ("use_pre_commit", False): (".pre-commit-config.yaml",),
    ("license", "Proprietary"): ("LICENSE",),
    ("use_metrics", False): (
        "src/{package}/observability/metrics.py",
        "src/{package}/observability/local_metrics.py",
        "tests/observability/test_metrics.py",
        "tests/observability/test_local_metrics.py",
    ),
    ("use_tracing", False): (
        "src/{package}/observability/tracing.py",
        "tests/observability/test_tracing.py",
    ),
    ("cache", "none"): (
        "src/{package}/clients/caching.py",
        "tests/clients/test_caching.py",
        "tests/clients/test_redis_cache.py",
    ),
    ("cache", "memory"): ("tests/clients/test_redis_cache.py",),
    ("deployment", "none"): ("deploy",),
    ("upstream_auth", "none"): (
        "src/{package}/clients/auth.py",
        "tests/clients/test_auth.py",
    ),
}


def remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def remove_empty_folders(root: Path) -> None:
    for folder in sorted((p for p in root.rglob("*") if p.is_dir()), reverse=True):
        if not any(folder.iterdir()):
            folder.rmdir()


# Long enough for a cold cache on a slow index; uv retries failed requests itself.
LOCK_TIMEOUT_SECONDS = 300


def first_error_line(output: str) -> str:
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error")]
    return (errors or lines or ["no output"])[0]


def lock(project: Path) -> None:
    """Write ``uv.lock``; on failure say, in one line, what to run (the project is complete)."""
    todo = f"then run `uv lock` in {project.name} and commit uv.lock"
    uv = shutil.which("uv")
    if uv is None:
        print(
            f"post-generation: uv is not on the PATH, so there is no uv.lock: install uv, {todo}.",
            file=sys.stderr,
        )
        return
    try:
        result = subprocess.run(
            [uv, "lock", "--quiet"],
            cwd=project,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=LOCK_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        reason = str(error)
    else:
        if result.returncode == 0:
            return
        reason = first_error_line(result.stderr + result.stdout)
    print(
        f"post-generation: `uv lock` failed ({reason}), so there is no uv.lock: fix that, {todo}.",
        file=sys.stderr,
    )


def main() -> None:
    project = Path.cwd()
    for (variable, value), paths in PRUNE.items():
        if ANSWERS.get(variable) == value:
            for relative in paths:
                remove(project / relative.format(package=ANSWERS["package_name"]))
    remove_empty_folders(project)
    lock(project)


if __name__ == "__main__":
    main()
