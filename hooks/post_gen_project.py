"""Remove what the answers did not choose and any folder this left empty; then lock.

The paths come from template_extensions.py's ``unchosen_paths`` (copier.yml excludes the same
ones), rendered into this hook as JSON inside a raw string (see pre_gen_project.py). Removing a
path that is already gone is fine, so running the hook again changes nothing.

Locking is hooks/lock_project.py, which copier runs as a task too: it never fails generation.
``cruft update`` renders the template twice in temporary folders, so it locks there too:
harmless, because ``uv.lock`` is in ``[tool.cruft] skip`` and cruft drops skipped files from
both renders before it compares them.
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

UNCHOSEN: list[str] = json.loads(r'{{ cookiecutter | unchosen_paths | tojson }}')
LOCK_SCRIPT: str = json.loads(r'{{ "hooks/lock_project.py" | template_path | tojson }}')


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
    for relative in UNCHOSEN:
        remove(project / relative)
    remove_empty_folders(project)
    lock = [sys.executable, LOCK_SCRIPT]
    subprocess.run(lock, cwd=project, stdin=subprocess.DEVNULL, check=False)


if __name__ == "__main__":
    main()
