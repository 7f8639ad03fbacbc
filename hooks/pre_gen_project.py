"""Refuse bad answers before cookiecutter writes a file.

The rules live in template_extensions.py, where copier's validators run them too: one set of
rules and messages for both tools. Its ``answer_problems`` filter runs them while cookiecutter
renders this hook; the result arrives as JSON inside a raw string (``tojson`` escapes quotes,
so no answer can break out of the literal). Each problem is one line on stderr and the hook
exits 1, so cookiecutter removes the project folder. Quiet and without side effects (cruft runs
it twice).
"""

import json
import sys

PROBLEMS: list[str] = json.loads(r'{{ cookiecutter | answer_problems | tojson }}')


def main() -> int:
    for problem in PROBLEMS:
        print(f"ERROR: {problem}", file=sys.stderr)
    return 1 if PROBLEMS else 0


if __name__ == "__main__":
    sys.exit(main())
