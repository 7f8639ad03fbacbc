"""The template repository itself: its Python is linted, its CI passes the platform's checkers
and runs exactly the test command the README gives."""

from __future__ import annotations

import re
import sys

import yaml
from ci_tools import (
    action_pins,
    actionlint,
    github_parser,
    stale_pins,
    zizmor,
)
from conftest import TEMPLATE_ROOT, run
from matrix import PYTHON_VERSIONS

OWN_PYTHON = ["hooks", "tests", "benchmarks", "tools", "template_extensions.py"]
OWN_WORKFLOWS = sorted((TEMPLATE_ROOT / ".github" / "workflows").glob("*.yml"))


def readme_commands() -> list[str]:
    """The commands of the README's "Two commands" block, comments dropped."""
    readme = (TEMPLATE_ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"## Two commands\n.*?```bash\n(.*?)```", readme, re.DOTALL)
    assert block, "README has no 'Two commands' block"
    return [line.split("#")[0].strip() for line in block[1].splitlines() if line.strip()]


def test_readme_gives_two_commands_demo_then_test() -> None:
    commands = readme_commands()
    assert len(commands) == 2
    assert commands[1].split()[:2] == ["./dev", "test"]


def test_ci_entry_point_runs_the_readme_test_command() -> None:
    script = (TEMPLATE_ROOT / ".ci" / "run").read_text(encoding="utf-8")
    last = [line for line in script.splitlines() if line and not line.startswith("#")][-1]
    assert last == f"exec {readme_commands()[1]}"


def test_own_workflow_runs_the_readme_test_command() -> None:
    commands = []
    for workflow in OWN_WORKFLOWS:
        for job in yaml.safe_load(workflow.read_text(encoding="utf-8"))["jobs"].values():
            commands += [step["run"].strip() for step in job["steps"] if "run" in step]
    assert commands == [readme_commands()[1]]


def test_own_workflow_tests_every_supported_python() -> None:
    (workflow,) = OWN_WORKFLOWS
    (job,) = yaml.safe_load(workflow.read_text(encoding="utf-8"))["jobs"].values()
    assert job["strategy"]["matrix"]["python-version"] == PYTHON_VERSIONS


def test_own_workflows_pass_actionlint_with_shellcheck() -> None:
    assert OWN_WORKFLOWS
    result = actionlint(TEMPLATE_ROOT, OWN_WORKFLOWS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_own_workflows_pass_githubs_own_parser() -> None:
    result = github_parser(TEMPLATE_ROOT, OWN_WORKFLOWS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_own_github_config_has_no_zizmor_findings() -> None:
    result = zizmor(TEMPLATE_ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No findings" in result.stdout + result.stderr


def test_own_actions_are_pinned_to_their_newest_release_commits() -> None:
    for workflow in OWN_WORKFLOWS:
        assert action_pins(workflow)
        assert stale_pins(workflow) == []


def test_own_code_passes_ruff_check() -> None:
    run([sys.executable, "-m", "ruff", "check", "--no-cache", *OWN_PYTHON], TEMPLATE_ROOT)


def test_own_code_is_ruff_formatted() -> None:
    run(
        [sys.executable, "-m", "ruff", "format", "--no-cache", "--check", *OWN_PYTHON],
        TEMPLATE_ROOT,
    )


def test_copier_yml_is_generated_from_cookiecutter_json() -> None:
    """copier's questions come from cookiecutter.json: copier.yml is what the script writes."""
    result = run([sys.executable, "tools/copier_yml.py", "--check"], TEMPLATE_ROOT, check=False)
    assert result.returncode == 0, result.stderr
