"""Settings come from the environment once, and a bad value names its variable."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import pytest
from pydantic import SecretStr

from {{ cookiecutter.package_name }}.settings import (
    DEFAULT_UPSTREAM_BASE_URL,
    LIBRARY_VARIABLES,
    Settings,
    SettingsError,
    environment_name,
    is_known_variable,
{%- if cookiecutter.upstream_auth != "none" or cookiecutter.cache == "redis" %}
    is_secret,
{%- endif %}
    parser,
)

from .conftest import REQUIRED


def plain(value: object) -> object:
    """A setting's value, a secret's revealed: for comparisons only."""
    return value.get_secret_value() if isinstance(value, SecretStr) else value


def test_defaults_apply_when_nothing_else_is_set() -> None:
    settings = Settings.from_env(REQUIRED)

    for declared in fields(Settings):
        if not declared.metadata["required"]:
            assert getattr(settings, declared.name) == declared.default, declared.name
    assert settings.host == "127.0.0.1"
    assert settings.port == 8080
    assert settings.upstream_base_url == DEFAULT_UPSTREAM_BASE_URL


def test_values_are_read_and_converted() -> None:
    settings = Settings.from_env(
        REQUIRED
        | {
            "HOST": "0.0.0.0",
            "PORT": "9000",
            "UPSTREAM_BASE_URL": "http://127.0.0.1:1234/v1/",
            "UPSTREAM_TIMEOUT": "2.5",
            "UPSTREAM_RETRIES": "0",
            "UPSTREAM_CONCURRENCY": "7",
            "LOG_LEVEL": "debug",
            "ACCESS_LOG": "yes",
        }
    )

    assert settings.host == "0.0.0.0"
    assert settings.port == 9000
    assert settings.upstream_base_url == "http://127.0.0.1:1234/v1"
    assert settings.upstream_timeout == 2.5
    assert settings.upstream_retries == 0
    assert settings.upstream_concurrency == 7
    assert settings.log_level == "DEBUG"
    assert settings.access_log is True


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PORT", "abc"),
        ("PORT", "70000"),
        ("UPSTREAM_TIMEOUT", "0"),
        ("UPSTREAM_TIMEOUT", "nan"),
        ("UPSTREAM_RETRIES", "-1"),
        ("UPSTREAM_CONCURRENCY", "0"),
        ("UPSTREAM_BASE_URL", "ftp://example.com"),
        ("UPSTREAM_BASE_URL", "https://example.com/?q=1"),
        ("LOG_LEVEL", "LOUD"),
        ("ACCESS_LOG", "maybe"),
        ("LOG_FORMAT", "xml"),
        ("HOST", "bad host"),
        ("UPSTREAM_TIMEOUT", "soon"),
        ("UPSTREAM_RETRY_BACKOFF", "-0.5"),
        ("UPSTREAM_RETRY_BACKOFF", "fast"),
        ("UPSTREAM_BASE_URL", "http://[::1"),
        ("UPSTREAM_BASE_URL", "https://user:secret@example.com"),
        ("CIRCUIT_BREAKER_THRESHOLD", "-1"),
        ("MAX_IN_FLIGHT", "-1"),
    ],
)
def test_invalid_value_fails_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=rf"^{name}="):
        Settings.from_env(REQUIRED | {name: value})

{%- if cookiecutter.upstream_auth != "none" or cookiecutter.cache == "redis" %}


def secret_names() -> list[str]:
    return [environment_name(declared) for declared in fields(Settings) if is_secret(declared)]


@pytest.mark.parametrize("ending", ["", "\n", "\r\n"])
@pytest.mark.parametrize("name", secret_names())
def test_a_secret_is_read_from_the_file_its_file_variable_names(
    name: str, ending: str, tmp_path: Path
) -> None:
    value = "redis://:p%40ss@cache:6379/0" if name == "REDIS_URL" else "from a file"
    secret_file = tmp_path / "secret"
    secret_file.write_bytes(f"{value}{ending}".encode())
    environ = {key: text for key, text in REQUIRED.items() if key != name}

    settings = Settings.from_env(environ | {f"{name}_FILE": str(secret_file)})

    assert plain(getattr(settings, name.lower())) == value
    assert is_known_variable(f"{name}_FILE")


@pytest.mark.parametrize("name", secret_names())
def test_a_secret_given_twice_or_unreadable_fails_naming_it_never_its_value(
    name: str, tmp_path: Path
) -> None:
    value = "redis://:canary-value@cache:6379/0" if name == "REDIS_URL" else "canary-value"
    secret_file = tmp_path / "secret"
    secret_file.write_text(value, encoding="utf-8")

    for environ, message in [
        ({name: value, f"{name}_FILE": str(secret_file)}, "are both set"),
        ({f"{name}_FILE": str(tmp_path / "missing")}, "cannot read"),
        ({name: f"{value}\nX-Injected: 1"}, "control character"),
    ]:
        others = {key: text for key, text in REQUIRED.items() if key != name}
        with pytest.raises(SettingsError, match=message) as raised:
            Settings.from_env(others | environ)
        assert str(raised.value).startswith(name)
        assert "canary" not in str(raised.value)


def test_secrets_never_show_in_the_settings_repr() -> None:
    canaries = {
        name: "redis://:canary@cache:6379/0" if name == "REDIS_URL" else "canary"
        for name in secret_names()
    }
    settings = Settings.from_env(REQUIRED | canaries)

    assert all("canary" in str(plain(getattr(settings, name.lower()))) for name in canaries)
    assert "canary" not in repr(settings)
    assert "canary" not in str(settings)
{%- endif %}
{%- if cookiecutter.upstream_auth != "none" %}


@pytest.mark.parametrize("name", [name for name in REQUIRED if name in secret_names()])
@pytest.mark.parametrize("given", [None, "", "empty file"])
def test_a_required_secret_missing_or_empty_stops_the_start(
    name: str, given: str | None, tmp_path: Path
) -> None:
    environ = {key: text for key, text in REQUIRED.items() if key != name}
    if given == "empty file":
        (tmp_path / "empty").write_text("\n", encoding="utf-8")
        environ[f"{name}_FILE"] = str(tmp_path / "empty")
    elif given is not None:
        environ[name] = given

    with pytest.raises(SettingsError, match=rf"^{name}\b"):
        Settings.from_env(environ)


@pytest.mark.parametrize(
    "url",
    ["http://api.example.com", "http://10.0.0.1:8080"],
)
def test_credentials_are_never_sent_in_clear_text_but_to_loopback(url: str) -> None:
    with pytest.raises(SettingsError, match=r"^UPSTREAM_BASE_URL must be https"):
        Settings.from_env(REQUIRED | {"UPSTREAM_BASE_URL": url})
    for loopback in ["http://127.0.0.1:8080", "http://localhost:1", "http://[::1]:8080"]:
        assert Settings.from_env(REQUIRED | {"UPSTREAM_BASE_URL": loopback})
{%- endif %}
{%- if cookiecutter.upstream_auth == "api_key" %}


@pytest.mark.parametrize("header", ["Authorization", "cookie", "Host", "X-Request-ID", "X Key", ""])
def test_the_api_key_header_must_be_a_header_name_of_its_own(header: str) -> None:
    with pytest.raises(SettingsError, match=r"^UPSTREAM_API_KEY_HEADER="):
        Settings.from_env(REQUIRED | {"UPSTREAM_API_KEY_HEADER": header})
{%- elif cookiecutter.upstream_auth == "oauth2_client_credentials" %}


def test_the_token_endpoint_is_https_too() -> None:
    with pytest.raises(SettingsError, match=r"^UPSTREAM_TOKEN_URL must be https"):
        Settings.from_env(REQUIRED | {"UPSTREAM_TOKEN_URL": "http://auth.example.com/token"})


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("UPSTREAM_TOKEN_AUTH_METHOD", "private_key_jwt"),
        ("UPSTREAM_SCOPE", 'read "write"'),
        ("UPSTREAM_SCOPE", "read  write"),
        ("UPSTREAM_TOKEN_URL", "ftp://auth.example.com"),
    ],
)
def test_bad_oauth2_settings_fail_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=rf"^{name}="):
        Settings.from_env(REQUIRED | {name: value})
{%- endif %}


def documented_configuration() -> dict[str, str]:
    """CONFIGURATION.md's table: variable -> default, as it shows them ("required": none)."""
    text = (Path(__file__).parent.parent / "CONFIGURATION.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `([A-Z_0-9]+)` \| (?:`([^`]*)`|(required|empty))", text, re.M)
    return {name: "" if word == "empty" else default or word for name, default, word in rows}


def test_configuration_md_documents_every_setting_with_its_default() -> None:
    documented = documented_configuration()
    declared = {environment_name(field): field for field in fields(Settings)}

    assert sorted(documented) == sorted(declared)
    for name, shown in documented.items():
        if declared[name].metadata["required"]:
            assert shown == "required", f"{name}: the table should say it is required"
            continue
        parse = parser(declared[name])
        default = str(plain(declared[name].default))
        assert plain(parse(shown)) == plain(parse(default)), f"{name}: table says {shown}"


def test_every_setting_says_what_it_means() -> None:
    assert all(field.metadata.get("doc") for field in fields(Settings))


def test_known_variables_are_the_settings_and_the_documented_library_names() -> None:
    configuration = (Path(__file__).parent.parent / "CONFIGURATION.md").read_text(encoding="utf-8")

    assert is_known_variable("UPSTREAM_TIMEOUT")
    assert is_known_variable("WEB_CONCURRENCY")
    assert not is_known_variable("UPSTREAM_TIMEOUTS")
    assert not is_known_variable("WEB_CONCURRENCY_X")
    for name in LIBRARY_VARIABLES:
        assert f"`{name}" in configuration, f"{name} is not in CONFIGURATION.md"
