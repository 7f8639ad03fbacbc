"""Jinja filters for this template, loaded by cookiecutter through ``_extensions``.

Answers are untrusted text. ``quoted`` turns one into a double-quoted string literal
that is valid, and means the same, in TOML, YAML and Python. The pre_gen hook has
already rejected non-printable characters, so escaping backslash and quote suffices.

``pythons_from`` and ``template_options`` read ``cookiecutter.json`` itself, so the
supported Pythons and every option's values are listed once, there. They read it on each
call from the template being rendered (never cached in this module: cruft renders an old
and a new template commit in one process, and this module is imported only once).
"""

import json
from pathlib import Path

from cookiecutter.utils import simple_filter


@simple_filter
def quoted(value: object) -> str:
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def _template_questions() -> dict[str, object]:
    # cookiecutter (and cruft, which calls it) renders hooks from the template's root and
    # the project's files from inside its project folder, one level down.
    for candidate in (Path("cookiecutter.json"), Path("..", "cookiecutter.json")):
        if candidate.is_file():
            questions: dict[str, object] = json.loads(candidate.read_text(encoding="utf-8"))
            return questions
    raise FileNotFoundError(f"cookiecutter.json not found from {Path.cwd()}")


@simple_filter
def pythons_from(minimum: str) -> list[str]:
    """The supported Pythons from ``minimum`` on: the generated CI tests each of them."""
    versions = _template_questions()["python_version"]
    assert isinstance(versions, list)
    return versions[versions.index(minimum) :]


@simple_filter
def template_options(_: object) -> dict[str, list[object] | None]:
    """Every question's allowed values: its choices, yes/no for a boolean, None for free text."""
    return {
        name: [True, False]
        if isinstance(value, bool)
        else value
        if isinstance(value, list)
        else None
        for name, value in _template_questions().items()
        if not name.startswith("_")
    }
