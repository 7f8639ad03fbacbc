"""Write copier.yml from cookiecutter.json: the questions are asked once, there.

    .venv/bin/python tools/copier_yml.py          # rewrite copier.yml
    .venv/bin/python tools/copier_yml.py --check  # exit 1 if copier.yml is stale

Each question keeps its name, order, prompt, choices and default (``cookiecutter.x`` in a
default becomes ``x``: copier's answers are top-level variables). Its validator runs the rules
of cookiecutter's pre_gen hook (template_extensions.answer_problem). A hidden computed variable,
``cookiecutter``, gives the template's files the same context as under cookiecutter, so one
template folder serves both tools. The files an answer leaves out are excluded
(template_extensions.UNCHOSEN), the files ``[tool.cruft] skip`` lists are kept on update, and
copier runs the same lock script as cookiecutter's post_gen hook, on copy only.
"""

from __future__ import annotations

import json
import re
import sys
import tomllib
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
COOKIECUTTER_JSON = ROOT / "cookiecutter.json"
COPIER_YML = ROOT / "copier.yml"
TEMPLATE_FOLDER = "{{cookiecutter.project_slug}}"
EXTENSIONS = "template_extensions.py"
# copier-template-extensions loads the template's own extension file by its path.
EXTENSION_LOADER = "copier_template_extensions.TemplateExtensionLoader"
MIN_COPIER_VERSION = "9.19.1"
REGENERATE = ".venv/bin/python tools/copier_yml.py"

HEADER = """\
# Generated from cookiecutter.json by tools/copier_yml.py: edit that file (or the script) and
# run `.venv/bin/python tools/copier_yml.py`; a test fails when this file is stale.
# Use: uvx --with copier-template-extensions --with python-slugify copier copy --trust SRC DEST
"""


def copier_default(value: Any) -> Any:
    if isinstance(value, str):
        return re.sub(r"\bcookiecutter\.", "", value)
    return value


def question(name: str, value: Any, prompt: Any) -> dict[str, Any]:
    labels = prompt if isinstance(prompt, dict) else {"__prompt__": prompt}
    entry: dict[str, Any] = {"help": labels.get("__prompt__", name)}
    if isinstance(value, bool):
        entry |= {"type": "bool", "default": value}
    elif isinstance(value, list):
        entry |= {
            "type": "str",
            "choices": {str(labels.get(choice, choice)): choice for choice in value},
            "default": value[0],
        }
    else:
        entry |= {"type": "str", "default": copier_default(value)}
    entry["validator"] = f"{{{{ answer_problem({json.dumps(name)}) }}}}"
    return entry


def cruft_skip() -> list[str]:
    """``[tool.cruft] skip`` of the template's pyproject.toml (a literal list there)."""
    text = (ROOT / TEMPLATE_FOLDER / "pyproject.toml").read_text(encoding="utf-8")
    section = re.search(r"^\[tool\.cruft\]\n(?:#.*\n)*skip = (\[.*\])$", text, re.MULTILINE)
    if section is None:
        raise SystemExit("pyproject.toml: no literal `skip = [...]` under [tool.cruft]")
    skip: list[str] = tomllib.loads(f"skip = {section.group(1)}")["skip"]
    return skip


def copier_config() -> dict[str, Any]:
    questions: dict[str, Any] = json.loads(COOKIECUTTER_JSON.read_text(encoding="utf-8"))
    prompts = questions.get("__prompts__", {})
    config: dict[str, Any] = {
        "_min_copier_version": MIN_COPIER_VERSION,
        "_subdirectory": "{% raw %}" + TEMPLATE_FOLDER + "{% endraw %}",
        # Every file is a template, as under cookiecutter.
        "_templates_suffix": "",
        "_answers_file": ".copier-answers.yml",
        "_jinja_extensions": [
            EXTENSION_LOADER,
            f"{EXTENSIONS}:TemplateFilters",
            f"{EXTENSIONS}:CookiecutterCompat",
        ],
        # One pattern a line, anchored at the project's root.
        "_exclude": ["{% for path in cookiecutter | unchosen_paths %}/{{ path }}\n{% endfor %}"],
        "_skip_if_exists": cruft_skip(),
        "_tasks": [
            {
                "command": [
                    "{{ _copier_python }}",
                    "{{ _copier_conf.src_path }}/hooks/lock_project.py",
                ],
                "when": "{{ _copier_operation == 'copy' }}",
            }
        ],
    }
    for name, value in questions.items():
        if not name.startswith("_"):
            config[name] = question(name, value, prompts.get(name, name))
    config["cookiecutter"] = {
        "type": "json",
        "when": False,
        "default": "{{ cookiecutter_context() | tojson }}",
    }
    return config


def render() -> str:
    body = yaml.safe_dump(copier_config(), sort_keys=False, allow_unicode=True, width=100)
    return HEADER + body


def main(argv: list[str]) -> int:
    text = render()
    if argv[1:] == ["--check"]:
        current = COPIER_YML.read_text(encoding="utf-8") if COPIER_YML.exists() else ""
        if current != text:
            print(f"copier.yml is stale: run `{REGENERATE}`", file=sys.stderr)
            return 1
        return 0
    COPIER_YML.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
