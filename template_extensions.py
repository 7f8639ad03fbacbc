"""Jinja extensions of this template, for cookiecutter and for copier alike.

cookiecutter loads them from ``_extensions`` in cookiecutter.json (this folder is on its import
path while it renders); copier from ``_jinja_extensions`` in copier.yml, through
copier-template-extensions, which loads this file by its path. Only jinja2 and the standard
library are imported at the top: a copier user has no cookiecutter installed.

- ``TemplateFilters`` (both tools): ``quoted``, ``pythons_from``, ``unchosen_paths``,
  ``template_path``, and the answer rules, as the ``answer_problems`` filter (cookiecutter's
  pre_gen hook) and the ``answer_problem`` function (copier's validators): one set of rules
  and messages.
- ``CookiecutterCompat`` (copier only): what cookiecutter has built in and cookiecutter.json
  uses: the ``slugify`` filter (python-slugify, as cookiecutter's) and the ``now`` tag.

Each extension removes this module from ``sys.modules`` when an environment loads it, so the
next environment imports the file afresh: cruft renders an old and a new template commit in one
process, and a cached module would give the new commit the old commit's filters.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import keyword
import re
import sys
import urllib.parse
import zoneinfo
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

from jinja2 import Environment, nodes, pass_context
from jinja2.ext import Extension
from jinja2.parser import Parser
from jinja2.runtime import Context, Undefined

Answers = Mapping[str, Any]


# --- The template's questions ---------------------------------------------------------------


def template_root(context: Context | None = None) -> Path:
    """The folder of the template being rendered.

    copier loads this file from the template it renders, each time. cookiecutter (and cruft,
    which renders two commits of one clone) renders hooks from the template's root and the
    project's files from its project folder, one level down, so the working directory says.
    """
    if context is not None and "_copier_conf" in context:
        return Path(__file__).resolve().parent
    for candidate in (Path.cwd(), Path.cwd().parent):
        if (candidate / "cookiecutter.json").is_file():
            return candidate
    raise FileNotFoundError(f"cookiecutter.json not found from {Path.cwd()}")


def template_questions(context: Context | None = None) -> dict[str, Any]:
    """cookiecutter.json, read on each call from the template being rendered."""
    text = (template_root(context) / "cookiecutter.json").read_text(encoding="utf-8")
    questions: dict[str, Any] = json.loads(text)
    return questions


def options_of(questions: Mapping[str, Any]) -> dict[str, list[Any] | None]:
    """Every question's allowed values: its choices, yes/no for a boolean, None for free text."""
    return {
        name: [True, False]
        if isinstance(value, bool)
        else value
        if isinstance(value, list)
        else None
        for name, value in questions.items()
        if not name.startswith("_")
    }


# --- The answer rules -----------------------------------------------------------------------

# Import names a generated project depends on (runtime, speedups, dev and build tools) or
# uses itself: a package with one of these names would shadow it.
DEPENDENCY_IMPORT_NAMES = frozenset(
    {
        "_pytest",
        "aiohappyeyeballs",
        "aiohttp",
        "aiolimiter",
        "aiosignal",
        "attr",
        "attrs",
        "conftest",
        "coverage",
        "frozenlist",
        "google",
        "gunicorn",
        "hatchling",
        "hypothesis",
        "idna",
        "importlib_metadata",
        "iniconfig",
        "jsonschema",
        "multidict",
        "mypy",
        "mypy_extensions",
        "mypyc",
        "openapi_spec_validator",
        "opentelemetry",
        "orjson",
        "packaging",
        "pip",
        "pluggy",
        "prometheus_client",
        "propcache",
        "pytest",
        "pytest_aiohttp",
        "pytest_asyncio",
        "requests",
        "ruff",
        "schemathesis",
        "setuptools",
        "src",
        "test",
        "tests",
        "typing_extensions",
        "uvloop",
        "wrapt",
        "yarl",
        "zipp",
    }
)

# The project may target a newer Python than the one rendering it.
NEWER_STDLIB_MODULE_NAMES = frozenset({"_colorize", "_pyrepl", "annotationlib", "compression"})

TEMPLATE_MARKERS = ("{{", "{%", "{#")

SLUG = r"[a-z][a-z0-9]*(-[a-z0-9]+)*"
MAX_PACKAGE_NAME = 32
MAX_CLIENT_CLASS = 40
EMAIL = r"[^@\s]+@[^@\s]+\.[^@\s]+"
VERSION = r"\d+(\.\d+)*((a|b|rc)\d+)?(\.post\d+)?(\.dev\d+)?"

Check = Callable[[object, Answers], bool]


class Rule(NamedTuple):
    """``variable``'s value must pass ``check``; a failure names ``shown_as`` (the question the
    user answered) and says what ``accepted``. ``needs``: the other questions the check reads."""

    variable: str
    shown_as: str
    check: Check
    accepted: str | Callable[[Answers], str]
    needs: tuple[str, ...] = ()


def is_one_line_text(value: object, _: Answers) -> bool:
    """Printable (so no newline or control character) and free of Jinja markers."""
    return (
        isinstance(value, str)
        and value.isprintable()
        and not any(marker in value for marker in TEMPLATE_MARKERS)
    )


def matches(pattern: str) -> Check:
    compiled = re.compile(pattern)
    return lambda value, _: isinstance(value, str) and compiled.fullmatch(value) is not None


def one_of(*allowed: object) -> Check:
    # Same type too: 1 == True in Python, but 1 is no answer to a yes/no question.
    return lambda value, _: any(value == a and type(value) is type(a) for a in allowed)


def is_identifier(value: object, _: Answers) -> bool:
    return (
        isinstance(value, str)
        and re.fullmatch(r"[a-z_][a-z0-9_]*", value) is not None
        and not keyword.iskeyword(value)
    )


def is_free_package_name(value: object, answers: Answers) -> bool:
    return (
        is_identifier(value, answers)
        and value not in sys.stdlib_module_names
        and value not in NEWER_STDLIB_MODULE_NAMES
        and value not in DEPENDENCY_IMPORT_NAMES
    )


def at_most(length: int) -> Check:
    return lambda value, _: isinstance(value, str) and len(value) <= length


def is_base_url(value: object, _: Answers) -> bool:
    if not isinstance(value, str) or not value.isprintable() or " " in value:
        return False
    try:
        url = urllib.parse.urlsplit(value)
        url.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError:
        return False
    return (
        url.scheme in {"http", "https"}
        and bool(url.hostname)
        and "@" not in url.netloc
        and not url.query
        and not url.fragment
        and "?" not in value
        and "#" not in value
    )


def is_https_with_credentials(value: object, answers: Answers) -> bool:
    """With upstream credentials the service refuses a base URL in clear text (but to loopback)
    at start: a project that could not start with its own default is refused here instead."""
    if answers.get("upstream_auth", "none") == "none" or not is_base_url(value, answers):
        return True
    url = urllib.parse.urlsplit(str(value))
    host = url.hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    return url.scheme == "https" or loopback


def needs_docker_for_kubernetes(value: object, answers: Answers) -> bool:
    return value != "kubernetes" or answers.get("use_docker") is True


def fits_kubernetes_names(value: object, answers: Answers) -> bool:
    return answers.get("deployment") != "kubernetes" or len(str(value)) <= 63


def rules(options: Mapping[str, list[Any] | None]) -> list[Rule]:
    """Every rule, in the order they are checked."""
    text_variables = [name for name, allowed in options.items() if allowed is None]
    choices = {name: allowed for name, allowed in options.items() if allowed is not None}
    markers = ", ".join(TEMPLATE_MARKERS)
    return [
        *(
            Rule(
                name,
                name,
                is_one_line_text,
                f"one line of printable text without Jinja markers ({markers})",
            )
            for name in text_variables
        ),
        Rule(
            "project_name",
            "project_name",
            matches(r".*\w.*"),
            "a name with at least one letter or digit",
        ),
        Rule(
            "project_slug",
            "project_slug",
            matches(SLUG),
            f"lowercase letters, digits and single dashes, starting with a letter ({SLUG})",
        ),
        Rule(
            "package_name",
            "package_name",
            is_free_package_name,
            "a lowercase Python identifier ([a-z_][a-z0-9_]*) that is not a keyword and does"
            " not shadow a standard-library module or a dependency (e.g. asyncio, json,"
            " aiohttp, test)",
        ),
        Rule(
            "__upstream_module",
            "upstream_name",
            is_identifier,
            lambda answers: (
                "a name whose slug is a Python identifier: start with a letter and"
                f" avoid keywords (it gives the client module {answers.get('__upstream_module')!r})"
            ),
        ),
        # Generated code is formatted for 100-column lines: cap the names that appear in it.
        Rule(
            "package_name",
            "package_name",
            at_most(MAX_PACKAGE_NAME),
            f"at most {MAX_PACKAGE_NAME} characters",
        ),
        Rule(
            "__upstream_class",
            "upstream_name",
            at_most(MAX_CLIENT_CLASS),
            lambda answers: (
                "a shorter name: the client class"
                f" {answers.get('__upstream_class')!r} must have at most {MAX_CLIENT_CLASS}"
                " characters"
            ),
        ),
        Rule(
            "author_email", "author_email", matches(EMAIL), "an email address like name@example.com"
        ),
        Rule(
            "upstream_base_url",
            "upstream_base_url",
            is_base_url,
            "an http:// or https:// URL with a host and no user info, query or fragment,"
            " e.g. https://api.example.com",
        ),
        Rule(
            "version",
            "version",
            matches(VERSION),
            "a PEP 440 version such as 0.1.0, 1.0.0rc1 or 2.0.dev3",
        ),
        # Choices and yes/no options: the tools check them at their prompts, but cookiecutter
        # not in a replay file.
        *(
            Rule(
                name,
                name,
                one_of(*allowed),
                "yes or no"
                if allowed == [True, False]
                else "one of " + ", ".join(map(str, allowed)),
            )
            for name, allowed in choices.items()
        ),
        Rule(
            "copyright_year", "copyright_year", matches(r"\d{4}"), "a four-digit year such as 2026"
        ),
        # Answers that only fail together.
        Rule(
            "deployment",
            "deployment",
            needs_docker_for_kubernetes,
            "none when use_docker is no (the manifests deploy the image the Dockerfile builds)",
            needs=("use_docker",),
        ),
        Rule(
            "upstream_base_url",
            "upstream_base_url",
            is_https_with_credentials,
            "an https:// URL when upstream_auth is not none (credentials are never sent in"
            " clear text; http:// only to a loopback address)",
            needs=("upstream_auth",),
        ),
        Rule(
            "project_slug",
            "project_slug",
            fits_kubernetes_names,
            "at most 63 characters with deployment=kubernetes (it names Kubernetes objects)",
            needs=("deployment",),
        ),
    ]


def problems(answers: Answers, questions: Mapping[str, Any], only: str | None = None) -> list[str]:
    """One message per failed rule; a question that already failed is not checked again.

    With ``only``, just the rules that involve that question and whose answers are all known
    (copier asks one question at a time; a rule that reads a later answer runs when that one is
    given).
    """
    failed: set[str] = set()
    messages = []
    for rule in rules(options_of(questions)):
        involved = {rule.shown_as, *rule.needs}
        if only is not None and (only not in involved or not involved <= answers.keys()):
            continue
        if rule.shown_as in failed:
            continue
        value = answers.get(rule.variable)
        if not rule.check(value, answers):
            failed.add(rule.shown_as)
            shown_value = answers.get(rule.shown_as, value)
            accepted = rule.accepted if isinstance(rule.accepted, str) else rule.accepted(answers)
            messages.append(f"{rule.shown_as}={shown_value!r} is invalid: expected {accepted}")
    return messages


def with_private_variables(
    environment: Environment, answers: Answers, questions: Mapping[str, Any]
) -> dict[str, Any]:
    """The answers and the values cookiecutter.json derives from them (``__name`` keys),
    rendered from their templates there, as cookiecutter renders them."""
    complete = dict(answers)
    for name, template in questions.items():
        if name.startswith("__") and not name.startswith("___") and isinstance(template, str):
            try:
                complete[name] = environment.from_string(template).render(cookiecutter=complete)
            except Exception:  # an answer it depends on is still missing
                continue
    return complete


# --- What the answers did not choose --------------------------------------------------------

# (question, answer) -> the paths, relative to the generated project, that this answer leaves
# out ({package} is the package's folder). cookiecutter's post_gen hook removes them after
# rendering; copier never renders them (copier.yml's _exclude).
UNCHOSEN: dict[tuple[str, object], tuple[str, ...]] = {
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


def unchosen_paths(answers: Answers) -> list[str]:
    """The paths these answers leave out of the project (see UNCHOSEN)."""
    return [
        path.format(package=answers["package_name"])
        for (question, answer), paths in UNCHOSEN.items()
        if question in answers
        and answers[question] == answer
        and type(answers[question]) is type(answer)
        for path in paths
    ]


# --- The extensions -------------------------------------------------------------------------


def forget_this_module() -> None:
    """Make the next environment import this file again (see the module's docstring)."""
    sys.modules.pop(__name__, None)


def quoted(value: object) -> str:
    """A double-quoted string literal valid, and meaning the same, in TOML, YAML and Python.

    Answers are untrusted; the rules have already refused non-printable characters, so
    escaping backslash and quote suffices."""
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


@pass_context
def pythons_from(context: Context, minimum: str) -> list[str]:
    """The supported Pythons from ``minimum`` on: the generated CI tests each of them."""
    versions = template_questions(context)["python_version"]
    return list(versions[versions.index(minimum) :])


def template_path(relative: str) -> str:
    """The absolute path of a file of the template being rendered (cookiecutter's hooks)."""
    return str(template_root() / relative)


def answer_problems(answers: Answers) -> list[str]:
    """cookiecutter's pre_gen hook: the problems of all the answers (its context)."""
    return problems(answers, template_questions())


def copier_answers(context: Context, questions: Mapping[str, Any]) -> dict[str, Any]:
    """The answers copier has so far, and the values derived from them."""
    given = {
        name: context[name]
        for name in options_of(questions)
        if name in context and not isinstance(context[name], Undefined)
    }
    return with_private_variables(context.environment, given, questions)


@pass_context
def answer_problem(context: Context, question: str) -> str:
    """A copier validator: the first problem involving ``question``, or nothing."""
    questions = template_questions(context)
    return next(iter(problems(copier_answers(context, questions), questions, only=question)), "")


@pass_context
def cookiecutter_context(context: Context) -> dict[str, Any]:
    """For copier: the ``cookiecutter`` variable the template's files read, as cookiecutter
    makes it (every answer, and the values derived from them)."""
    return copier_answers(context, template_questions(context))


class TemplateFilters(Extension):
    """The template's own filters and functions, for both tools."""

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        environment.filters.update(
            quoted=quoted,
            pythons_from=pythons_from,
            answer_problems=answer_problems,
            unchosen_paths=unchosen_paths,
            template_path=template_path,
        )
        environment.globals.update(
            answer_problem=answer_problem, cookiecutter_context=cookiecutter_context
        )
        forget_this_module()


class CookiecutterCompat(Extension):
    """For copier: cookiecutter's ``slugify`` filter and ``now`` tag, which cookiecutter.json
    uses. ``{% now 'utc', '%Y' %}``: the time in that zone, in that strftime format."""

    tags: ClassVar[set[str]] = {"now"}

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        environment.filters["slugify"] = slugify
        forget_this_module()

    def parse(self, parser: Parser) -> nodes.Output:
        lineno = next(parser.stream).lineno
        zone = parser.parse_expression()
        fmt = (
            parser.parse_expression() if parser.stream.skip_if("comma") else nodes.Const("%Y-%m-%d")
        )
        call = self.call_method("_now", [zone, fmt], lineno=lineno)
        return nodes.Output([call], lineno=lineno)

    @staticmethod
    def _now(zone: str, fmt: str) -> str:
        tz = datetime.UTC if zone.lower() == "utc" else zoneinfo.ZoneInfo(zone)
        return datetime.datetime.now(tz).strftime(fmt)


def slugify(value: object, **options: Any) -> str:
    """cookiecutter's slugify: python-slugify's, which copier users install beside copier."""
    try:
        from slugify import slugify as python_slugify
    except ImportError as error:
        raise RuntimeError(
            "this template needs python-slugify beside copier: see the template's README"
        ) from error
    result: str = python_slugify(str(value), **options)
    return result
