"""Write the new project's ``uv.lock``: run by cookiecutter's post_gen hook and by copier's task.

It runs the ``uv`` on the PATH in the working directory (the new project), with the user's own
uv configuration (index, cache, offline mode); no answer reaches its command line. Without uv,
or when locking fails, the project is still complete: one line on stderr says what to run, and
the exit status is 0. Plain Python (no template syntax), so both tools run this very file.
"""

import shutil
import subprocess
import sys
from pathlib import Path

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


if __name__ == "__main__":
    lock(Path.cwd())
