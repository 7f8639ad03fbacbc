"""Settings come from the environment once, and a bad value names its variable."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import pytest

from {{ cookiecutter.package_name }}.settings import (
    DEFAULT_UPSTREAM_BASE_URL,
    LIBRARY_VARIABLES,
    Settings,
    SettingsError,
    environment_name,
    is_known_variable,
    parser,
)


def test_defaults_apply_when_the_environment_is_empty() -> None:
    settings = Settings.from_env({})

    assert settings == Settings()
    assert settings.host == "127.0.0.1"
    assert settings.port == 8080
    assert settings.upstream_base_url == DEFAULT_UPSTREAM_BASE_URL


def test_values_are_read_and_converted() -> None:
    settings = Settings.from_env(
        {
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
        Settings.from_env({name: value})


def documented_configuration() -> dict[str, str]:
    """CONFIGURATION.md's table: variable -> default, as it shows them."""
    text = (Path(__file__).parent.parent / "CONFIGURATION.md").read_text(encoding="utf-8")
    return dict(re.findall(r"^\| `([A-Z_0-9]+)` \| `([^`]*)`", text, re.M))


def test_configuration_md_documents_every_setting_with_its_default() -> None:
    documented = documented_configuration()
    declared = {environment_name(field): field for field in fields(Settings)}

    assert sorted(documented) == sorted(declared)
    for name, shown in documented.items():
        parse = parser(declared[name])
        assert parse(shown) == parse(str(declared[name].default)), f"{name}: table says {shown}"


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
