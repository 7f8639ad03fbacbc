"""Validate every answer before cookiecutter writes a file.

Each rule is one row: the variable, a check, and what would be accepted. A failed check
prints one line on stderr and the hook exits 1, so cookiecutter removes the project folder.
Answers arrive as JSON inside a raw string: ``tojson`` escapes quotes, so no answer can
break out of the literal. The hook is quiet and has no side effects (cruft runs it twice).
"""

import ipaddress
import json
import keyword
import re
import sys
import urllib.parse
from collections.abc import Callable

ANSWERS = json.loads(r'{{ cookiecutter | tojson }}')

# Each question's allowed values (None: free text), read from cookiecutter.json.
OPTIONS: dict[str, list[object] | None] = json.loads(
    r'{{ cookiecutter | template_options | tojson }}'
)
TEXT_VARIABLES = [name for name, allowed in OPTIONS.items() if allowed is None]
CHOICES = {name: allowed for name, allowed in OPTIONS.items() if allowed is not None}

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

# The project may target a newer Python than the one running cookiecutter.
NEWER_STDLIB_MODULE_NAMES = frozenset({"_colorize", "_pyrepl", "annotationlib", "compression"})

# Built from pieces: this file is itself rendered by Jinja before it runs.
TEMPLATE_MARKERS = tuple("{" + second for second in ("{", "%", "#"))


def is_one_line_text(value: object) -> bool:
    """Printable (so no newline or control character) and free of Jinja markers."""
    return (
        isinstance(value, str)
        and value.isprintable()
        and not any(marker in value for marker in TEMPLATE_MARKERS)
    )


def matches(pattern: str) -> Callable[[object], bool]:
    compiled = re.compile(pattern)
    return lambda value: isinstance(value, str) and compiled.fullmatch(value) is not None


def one_of(*allowed: object) -> Callable[[object], bool]:
    # Same type too: 1 == True in Python, but 1 is no answer to a yes/no question.
    return lambda value: any(value == a and type(value) is type(a) for a in allowed)


def is_identifier(value: object) -> bool:
    return (
        isinstance(value, str)
        and re.fullmatch(r"[a-z_][a-z0-9_]*", value) is not None
        and not keyword.iskeyword(value)
    )


def is_free_package_name(value: object) -> bool:
    return (
        is_identifier(value)
        and value not in sys.stdlib_module_names
        and value not in NEWER_STDLIB_MODULE_NAMES
        and value not in DEPENDENCY_IMPORT_NAMES
    )


def at_most(length: int) -> Callable[[object], bool]:
    return lambda value: isinstance(value, str) and len(value) <= length


def needs_docker_for_kubernetes(value: object) -> bool:
    return value != "kubernetes" or ANSWERS.get("use_docker") is True


def fits_kubernetes_names(value: object) -> bool:
    return ANSWERS.get("deployment") != "kubernetes" or len(str(value)) <= 63


def is_base_url(value: object) -> bool:
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


def is_https_with_credentials(value: object) -> bool:
    """With upstream credentials the service refuses a base URL in clear text (but to loopback)
    at start: a project that could not start with its own default is refused here instead."""
    if ANSWERS.get("upstream_auth", "none") == "none" or not is_base_url(value):
        return True
    url = urllib.parse.urlsplit(str(value))
    host = url.hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    return url.scheme == "https" or loopback


SLUG = r"[a-z][a-z0-9]*(-[a-z0-9]+)*"
MAX_PACKAGE_NAME = 32
MAX_CLIENT_CLASS = 40
EMAIL = r"[^@\s]+@[^@\s]+\.[^@\s]+"
VERSION = r"\d+(\.\d+)*((a|b|rc)\d+)?(\.post\d+)?(\.dev\d+)?"

# (variable, message key, check, what would be accepted)
RULES: list[tuple[str, str, Callable[[object], bool], str]] = [
    *(
        (name, name, is_one_line_text, "one line of printable text without Jinja markers ("
         + ", ".join(TEMPLATE_MARKERS) + ")")
        for name in TEXT_VARIABLES
    ),
    ("project_name", "project_name", matches(r".*\w.*"),
     "a name with at least one letter or digit"),
    ("project_slug", "project_slug", matches(SLUG),
     f"lowercase letters, digits and single dashes, starting with a letter ({SLUG})"),
    ("package_name", "package_name", is_free_package_name,
     "a lowercase Python identifier ([a-z_][a-z0-9_]*) that is not a keyword and does not"
     " shadow a standard-library module or a dependency (e.g. asyncio, json, aiohttp, test)"),
    ("__upstream_module", "upstream_name", is_identifier,
     "a name whose slug is a Python identifier: start with a letter and avoid keywords"
     f" (it gives the client module {ANSWERS.get('__upstream_module')!r})"),
    # Generated code is formatted for 100-column lines: cap the names that appear in it.
    ("package_name", "package_name", at_most(MAX_PACKAGE_NAME),
     f"at most {MAX_PACKAGE_NAME} characters"),
    ("__upstream_class", "upstream_name", at_most(MAX_CLIENT_CLASS),
     f"a shorter name: the client class {ANSWERS.get('__upstream_class')!r} must have at most"
     f" {MAX_CLIENT_CLASS} characters"),
    ("author_email", "author_email", matches(EMAIL), "an email address like name@example.com"),
    ("upstream_base_url", "upstream_base_url", is_base_url,
     "an http:// or https:// URL with a host and no user info, query or fragment,"
     " e.g. https://api.example.com"),
    ("version", "version", matches(VERSION),
     "a PEP 440 version such as 0.1.0, 1.0.0rc1 or 2.0.dev3"),
    # Choices and yes/no options: cookiecutter checks them at its prompts and on its command
    # line, but not in a replay file.
    *(
        (name, name, one_of(*allowed),
         "yes or no" if allowed == [True, False] else "one of " + ", ".join(map(str, allowed)))
        for name, allowed in CHOICES.items()
    ),
    ("copyright_year", "copyright_year", matches(r"\d{4}"), "a four-digit year such as 2026"),
    # Answers that only fail together.
    ("deployment", "deployment", needs_docker_for_kubernetes,
     "none when use_docker is no (the manifests deploy the image the Dockerfile builds)"),
    ("upstream_base_url", "upstream_base_url", is_https_with_credentials,
     "an https:// URL when upstream_auth is not none (credentials are never sent in clear text;"
     " http:// only to a loopback address)"),
    ("project_slug", "project_slug", fits_kubernetes_names,
     "at most 63 characters with deployment=kubernetes (it names Kubernetes objects)"),
]


def errors(answers: dict[str, object]) -> list[str]:
    """One message per failed rule; a variable that already failed is not checked again."""
    failed: set[str] = set()
    messages = []
    for variable, shown_as, check, accepted in RULES:
        if shown_as in failed:
            continue
        value = answers.get(variable)
        if not check(value):
            failed.add(shown_as)
            shown_value = answers.get(shown_as, value)
            messages.append(f"ERROR: {shown_as}={shown_value!r} is invalid: expected {accepted}")
    return messages


def main() -> int:
    messages = errors(ANSWERS)
    for message in messages:
        print(message, file=sys.stderr)
    return 1 if messages else 0


if __name__ == "__main__":
    sys.exit(main())
