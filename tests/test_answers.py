"""The hooks judge answers: bad ones stop generation cleanly, odd but valid ones survive intact."""

from __future__ import annotations

import json
import shutil
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import TEMPLATE_ROOT, Bake, CopierApi, Install, copier_copy, run
from cookiecutter.main import cookiecutter
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from matrix import DEFAULT_PYTHON, OPTIONS, QUESTIONS, REFUSED

Cli = Callable[..., Any]

# Every answer test is in the quick run (`./dev test -m quick`).
pytestmark = pytest.mark.quick

# (variable named in the message, the answers given); each row must fail on that variable alone.
BAD_ANSWERS: list[tuple[str, dict[str, str]]] = [
    ("project_slug", {"project_slug": "My Service", "package_name": "my_service"}),
    ("project_slug", {"project_slug": "service-"}),
    ("project_slug", {"project_slug": "double--dash"}),
    ("package_name", {"package_name": "json"}),
    ("package_name", {"package_name": "asyncio"}),
    ("package_name", {"package_name": "aiohttp"}),
    ("package_name", {"package_name": "test"}),
    ("package_name", {"package_name": "yarl"}),
    ("package_name", {"package_name": "class"}),
    ("package_name", {"package_name": "2fast"}),
    ("package_name", {"package_name": "My-Package"}),
    ("upstream_name", {"upstream_name": "class"}),
    ("upstream_name", {"upstream_name": "42 API"}),
    ("package_name", {"package_name": "a" * 33}),
    ("upstream_name", {"upstream_name": "Abcdefghij Klmnopqrst Uvwxyzabcd Abcde"}),
    ("author_email", {"author_email": "nobody"}),
    ("author_email", {"author_email": "me@localhost"}),
    ("upstream_base_url", {"upstream_base_url": "api.example.com"}),
    ("upstream_base_url", {"upstream_base_url": "ftp://api.example.com"}),
    ("upstream_base_url", {"upstream_base_url": "https://"}),
    ("upstream_base_url", {"upstream_base_url": "https://api.example.com/?key=1"}),
    ("upstream_base_url", {"upstream_base_url": "https://api.example.com/#top"}),
    ("upstream_base_url", {"upstream_base_url": "https://user:secret@api.example.com"}),
    ("upstream_base_url", {"upstream_base_url": "https://api.example.com:port"}),
    ("version", {"version": "v1"}),
    ("version", {"version": "1.0-beta"}),
    ("copyright_year", {"copyright_year": "26"}),
    ("description", {"description": "two\nlines"}),
    ("description", {"description": "a\ttab"}),
    ("author_name", {"author_name": "bell\x07"}),
    # The answer is rendered once by cookiecutter; what is left must not be template syntax.
    ("description", {"description": "{% raw %}{{ leftover }}{% endraw %}"}),
    # Answers refused together (matrix.REFUSED); the error names the first of them.
    *(
        (
            next(iter(refused)),
            {
                name: ("yes" if value else "no") if isinstance(value, bool) else value
                for name, value in refused.items()
            },
        )
        for refused in REFUSED
    ),
    (
        "project_slug",
        {"deployment": "kubernetes", "project_slug": "a" * 64, "package_name": "a"},
    ),
    # Credentials are never sent in clear text: the project could not start with this default.
    (
        "upstream_base_url",
        {"upstream_auth": "bearer", "upstream_base_url": "http://api.example.com"},
    ),
]

GOOD_ANSWERS: list[dict[str, str]] = [
    {"upstream_base_url": "http://127.0.0.1:8080/"},
    {"upstream_base_url": "http://localhost:8080", "upstream_auth": "api_key"},
    {"upstream_base_url": "https://api.example.com/v2"},
    {"version": "1.0.0rc1"},
    {"version": "2.0.dev3"},
    {"package_name": "my_pkg", "project_slug": "x1-service"},
    {"upstream_name": "Ünïcødé Weather"},
    # The longest names the hook lets through: generated code must still fit 100 columns.
    {"package_name": "a" * 32, "upstream_name": "Abcdefghij Klmnopqrst Uvwxyzabcd Abcd"},
]

# Quotes, backslashes and non-ASCII in every free-text answer.
ODD_ANSWERS = {
    "project_name": 'Zoë\'s "Quoted" Service',
    "description": "He said \"hi\" \\ and 'bye' — ünïcødé",
    "author_name": 'Ann O\'Brien "The \\ Quoter"',
    "upstream_name": "Météo-France v2",
}

# Answers typed at the prompts; choices by number. A question not listed gets Enter (its
# default), so a new question needs no edit here.
PROMPTED = {
    "project_name": "Prompted Relay",
    "project_slug": "prompted-relay",
    "package_name": "prompted_relay",
    "description": 'Answers "typed" at the prompt \\ ok',
    "author_name": "Pat Prompt",
    "author_email": "pat@example.org",
    "version": "0.2.0",
    "upstream_name": "Acme Catalog",
    "upstream_base_url": "http://127.0.0.1:9000/v1/",
    "python_version": "2",
    "ci_provider": "2",
    "use_docker": "n",
    "use_pre_commit": "n",
    "license": "3",
    "copyright_year": "2031",
}
PROMPTED_AS_VALUES = {
    "python_version": OPTIONS["python_version"][1],
    "ci_provider": OPTIONS["ci_provider"][1],
    "use_docker": "no",
    "use_pre_commit": "no",
    "license": OPTIONS["license"][2],
}
# The questions cookiecutter asks, in its order (private ones are not asked).
ASKED = [name for name in QUESTIONS if not name.startswith("_")]


def tree(root: Path) -> dict[str, bytes | None]:
    """Every path under root with its bytes (None for a folder)."""
    return {
        str(path.relative_to(root)): path.read_bytes() if path.is_file() else None
        for path in sorted(root.rglob("*"))
    }


BAD_ANSWER_IDS = [f"{v}={a[v]!r}" if v in a else v for v, a in BAD_ANSWERS]


def copier_data(answers: dict[str, str]) -> dict[str, object]:
    """cookiecutter's command-line answers as copier's typed data (yes/no are booleans)."""
    return {
        name: {"yes": True, "no": False}.get(value, value)
        if isinstance(QUESTIONS[name], bool)
        else value
        for name, value in answers.items()
    }


@pytest.fixture(scope="session")
def copier_refusals(tmp_path_factory: pytest.TempPathFactory, copier_api: CopierApi) -> list[str]:
    """What copier says to each of BAD_ANSWERS (its API; its command line prints the same
    message after a traceback), from the working tree's template: its files copied to a plain
    folder, so copier reads them as they are, without a clone a case."""
    scratch = tmp_path_factory.mktemp("copier-refusals")
    source = scratch / "template"
    listed = run(["git", "ls-files", "-co", "--exclude-standard"], TEMPLATE_ROOT).stdout
    for name in listed.splitlines():
        if (TEMPLATE_ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(TEMPLATE_ROOT / name, source / name)
    refusals = [
        copier_api(copier_data(answers), scratch / f"project-{index}", source=source)
        for index, (_, answers) in enumerate(BAD_ANSWERS)
    ]
    assert not [path for path in scratch.iterdir() if path.name.startswith("project-")]
    return refusals


@pytest.mark.parametrize(
    ("index", "variable", "answers"),
    [(index, *case) for index, case in enumerate(BAD_ANSWERS)],
    ids=BAD_ANSWER_IDS,
)
def test_bad_answer_is_rejected_with_one_line_and_nothing_written(
    index: int,
    variable: str,
    answers: dict[str, str],
    cookiecutter_cli: Cli,
    tmp_path: Path,
    copier_refusals: list[str],
) -> None:
    result = cookiecutter_cli(
        tmp_path, "--no-input", *(f"{key}={value}" for key, value in answers.items())
    )
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR: ")]
    assert len(errors) == 1, result.stderr
    assert errors[0].startswith(f"ERROR: {variable}="), errors[0]
    assert " is invalid: expected " in errors[0]
    assert result.stderr.startswith(errors[0]), "the hook's message must come first"
    assert list(tmp_path.iterdir()) == []
    # copier refuses it too, with the same message (its validators run the same rules); the
    # value shown is the answer as given (cookiecutter shows it once rendered).
    refusal = copier_refusals[index]
    assert refusal.startswith("Validation error for question "), refusal
    message = refusal.split("': ", 1)[1]
    assert message.startswith(f"{variable}="), refusal
    assert message.split(" is invalid: ")[1] == errors[0].split(" is invalid: ")[1]


def test_copier_refuses_a_value_outside_a_choice_list_in_its_own_words(
    tmp_path: Path,
) -> None:
    result = copier_copy({"cache": "disk"}, tmp_path / "project", check=False)
    assert result.returncode != 0
    assert "Invalid choice for 'cache': 'disk' is not in ['none', 'memory', 'redis']" in (
        result.stderr
    )
    assert not (tmp_path / "project").exists()


def test_every_bad_answer_gets_its_own_line(cookiecutter_cli: Cli, tmp_path: Path) -> None:
    result = cookiecutter_cli(
        tmp_path, "--no-input", "package_name=json", "author_email=nobody", "version=v1"
    )
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR: ")]
    assert errors == [
        f"ERROR: {name}={value!r} is invalid: expected " + errors[index].split(": expected ", 1)[1]
        for index, (name, value) in enumerate(
            [("package_name", "json"), ("author_email", "nobody"), ("version", "v1")]
        )
    ]
    assert list(tmp_path.iterdir()) == []


def test_bad_package_name_message_says_what_is_accepted(
    cookiecutter_cli: Cli, tmp_path: Path
) -> None:
    result = cookiecutter_cli(tmp_path, "--no-input", "package_name=json")
    assert (
        "ERROR: package_name='json' is invalid: expected a lowercase Python identifier"
        in result.stderr
    )
    assert "standard-library" in result.stderr


@pytest.mark.parametrize("answers", GOOD_ANSWERS, ids=lambda answers: ",".join(answers.values()))
def test_unusual_but_valid_answer_is_accepted(answers: dict[str, str], bake: Bake) -> None:
    assert (bake(**answers) / "pyproject.toml").is_file()


def test_odd_characters_survive_exactly_in_toml_and_yaml(bake: Bake) -> None:
    project = bake(**ODD_ANSWERS, ci_provider="github")
    pyproject = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["project"]["description"] == ODD_ANSWERS["description"]
    assert pyproject["project"]["authors"] == [
        {"name": ODD_ANSWERS["author_name"], "email": "you@example.com"}
    ]
    for file in [*project.rglob("*.yml"), *project.rglob("*.yaml")]:
        yaml.safe_load(file.read_text(encoding="utf-8"))
    assert ODD_ANSWERS["author_name"] in (project / "LICENSE").read_text(encoding="utf-8")


@pytest.mark.slow
def test_odd_characters_still_give_a_project_that_passes_its_checks(
    bake: Bake, install: Install, mypy_cache: Path
) -> None:
    project = bake(**ODD_ANSWERS)
    python = install(project, DEFAULT_PYTHON)
    run([python, "-m", "ruff", "check", "--no-cache", "."], project)
    run([python, "-m", "mypy", "--cache-dir", mypy_cache], project)
    # Without the tests slow from computation (the app fuzzed, the batch): answers change neither.
    run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not slow"], project)


# Printable text (str.isprintable: no control, format, private-use, unassigned or separator
# characters but the plain space), without braces: cookiecutter renders each answer as a
# template before the hooks see it. Drawn directly, so hypothesis filters almost nothing.
printable_line = (
    st.text(
        alphabet=st.characters(
            codec="utf-8",
            exclude_categories=("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp", "Zs"),
            include_characters=" ",
            exclude_characters="{}",
        ),
        min_size=1,
        max_size=40,
    )
    .map(str.strip)
    .filter(bool)
)


@settings(
    max_examples=15, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(description=printable_line, author_name=printable_line)
def test_any_printable_text_round_trips_through_pyproject(
    bake: Bake, description: str, author_name: str
) -> None:
    for text in (description, author_name):
        assume(text.isprintable())  # a few code points the alphabet lets through
    project = bake(description=description, author_name=author_name)
    pyproject = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["project"]["description"] == description
    assert pyproject["project"]["authors"][0]["name"] == author_name


def test_prompted_answers_give_the_same_project_as_no_input(
    cookiecutter_cli: Cli, tmp_path: Path
) -> None:
    prompted_dir, flags_dir = tmp_path / "prompted", tmp_path / "flags"
    prompted_dir.mkdir()
    flags_dir.mkdir()
    stdin = "".join(f"{PROMPTED.get(name, '')}\n" for name in ASKED)
    prompted = cookiecutter_cli(prompted_dir, stdin=stdin)
    assert prompted.returncode == 0, prompted.stdout + prompted.stderr
    values = {name: PROMPTED_AS_VALUES.get(name, answer) for name, answer in PROMPTED.items()}
    flags = cookiecutter_cli(
        flags_dir, "--no-input", *(f"{name}={value}" for name, value in values.items())
    )
    assert flags.returncode == 0, flags.stdout + flags.stderr
    assert [path.name for path in prompted_dir.iterdir()] == ["prompted-relay"]
    assert tree(prompted_dir) == tree(flags_dir)
    assert (prompted_dir / "prompted-relay" / ".gitlab-ci.yml").is_file()


def test_stdin_ending_early_writes_nothing(cookiecutter_cli: Cli, tmp_path: Path) -> None:
    result = cookiecutter_cli(tmp_path, stdin="Half Answered\n")
    assert result.returncode != 0
    assert list(tmp_path.iterdir()) == []


def test_hooks_can_run_again_over_a_baked_project(
    cookiecutter_config: Path, tmp_path: Path
) -> None:
    # cruft renders the template twice per update, so the hooks must tolerate a second run.
    answers = {"ci_provider": "none", "use_docker": False, "license": "Proprietary"}
    trees = []
    for _ in range(2):
        cookiecutter(
            str(TEMPLATE_ROOT),
            no_input=True,
            extra_context=answers,
            output_dir=str(tmp_path),
            config_file=str(cookiecutter_config),
            overwrite_if_exists=True,
        )
        trees.append(tree(tmp_path))
    assert trees[0] == trees[1]
    assert not (tmp_path / "my-async-service" / ".github").exists()


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("python_version", "2.7"),
        ("ci_provider", "jenkins"),
        ("license", "WTFPL"),
        ("use_docker", "maybe"),
        ("use_pre_commit", 1),
    ],
)
def test_a_bad_choice_in_a_replay_file_is_rejected_by_the_hook(
    variable: str, value: object, tmp_path: Path
) -> None:
    # cookiecutter checks choices at its prompts and on its command line, not in a replay file.
    config = tmp_path / "config.yaml"
    config.write_text(f"cookiecutters_dir: {tmp_path / 'cc'}\nreplay_dir: {tmp_path / 'replay'}\n")
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    cli = [sys.executable, "-m", "cookiecutter", TEMPLATE_ROOT, "--config-file", config]
    run([*cli, "--no-input", "--output-dir", first], tmp_path)
    (replay,) = (tmp_path / "replay").glob("*.json")
    context = json.loads(replay.read_text(encoding="utf-8"))
    context["cookiecutter"][variable] = value
    replay.write_text(json.dumps(context), encoding="utf-8")

    result = run([*cli, "--replay-file", replay, "--output-dir", second], tmp_path, check=False)

    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR: ")]
    assert errors == [
        f"ERROR: {variable}={value!r} is invalid: expected " + errors[0].split(": expected ")[1]
    ]
    assert list(second.iterdir()) == []
