"""Jinja filters for this template, loaded by cookiecutter through ``_extensions``.

Answers are untrusted text. ``quoted`` turns one into a double-quoted string literal
that is valid, and means the same, in TOML, YAML and Python. The pre_gen hook has
already rejected non-printable characters, so escaping backslash and quote suffices.
"""

from cookiecutter.utils import simple_filter


@simple_filter
def quoted(value: object) -> str:
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'
