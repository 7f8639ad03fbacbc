"""Remove what the answers did not choose, then any folder that this left empty.

Pruning is one table: (variable, value) -> paths relative to the generated project
(``{package}`` stands for the package's folder name).
Answers arrive as JSON inside a raw string (see pre_gen_project.py). Removing a path that
is already gone is fine, so running the hook again changes nothing.
"""

import json
import shutil
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


def main() -> None:
    project = Path.cwd()
    for (variable, value), paths in PRUNE.items():
        if ANSWERS.get(variable) == value:
            for relative in paths:
                remove(project / relative.format(package=ANSWERS["package_name"]))
    remove_empty_folders(project)


if __name__ == "__main__":
    main()
