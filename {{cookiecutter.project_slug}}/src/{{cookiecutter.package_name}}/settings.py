"""Configuration, read from the environment once at start and passed to whoever needs it."""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from yarl import URL

DEFAULT_UPSTREAM_BASE_URL = {{ cookiecutter.upstream_base_url|quoted }}


class SettingsError(ValueError):
    """An environment variable holds a value the service cannot run with."""


@dataclass(frozen=True, slots=True)
class Settings:
    """Every tunable of the service; the defaults are safe for production."""

    host: str = "127.0.0.1"
    port: int = 8080
    log_level: str = "INFO"
    log_format: str = "auto"
    access_log: bool = False
    shutdown_timeout: float = 10.0
    max_body_bytes: int = 64 * 1024
    upstream_base_url: str = DEFAULT_UPSTREAM_BASE_URL
    upstream_timeout: float = 10.0
    upstream_connect_timeout: float = 3.0
    upstream_retries: int = 2
    upstream_retry_backoff: float = 0.1
    upstream_concurrency: int = 50
    upstream_pool_size: int = 100
    upstream_max_response_bytes: int = 1024 * 1024
    circuit_breaker_threshold: int = 0
    circuit_breaker_cooldown: float = 30.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``environ`` (default: the process environment).

        Raises SettingsError naming the variable when a value is invalid.
        """
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for field in fields(cls):
            name = field.name.upper()
            raw = environ.get(name)
            if raw is None:
                continue
            parse = _PARSERS[field.name]
            try:
                values[field.name] = parse(raw.strip())
            except ValueError as exc:
                raise SettingsError(f"{name}={raw!r} is invalid: {exc}") from None
        return cls(**values)


def _integer(low: int, high: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise ValueError(f"expected an integer from {low} to {high}") from None
        if not low <= value <= high:
            raise ValueError(f"expected an integer from {low} to {high}")
        return value

    return parse


def _seconds(*, allow_zero: bool) -> Callable[[str], float]:
    expected = "a number of seconds, 0 or more" if allow_zero else "a number of seconds above 0"

    def parse(raw: str) -> float:
        try:
            value = float(raw)
        except ValueError:
            raise ValueError(f"expected {expected}") from None
        too_small = value < 0 if allow_zero else value <= 0
        if too_small or not math.isfinite(value):
            raise ValueError(f"expected {expected}")
        return value

    return parse


def _boolean(raw: str) -> bool:
    lowered = raw.lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError("expected true or false")


def _log_level(raw: str) -> str:
    level = raw.upper()
    if level not in logging.getLevelNamesMapping():
        raise ValueError("expected one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
    return level


def _log_format(raw: str) -> str:
    log_format = raw.lower()
    if log_format not in {"auto", "text", "json"}:
        raise ValueError("expected auto, text or json")
    return log_format


def _host(raw: str) -> str:
    if not raw or any(char.isspace() for char in raw):
        raise ValueError("expected a host name or IP address")
    return raw


def _http_url(raw: str) -> str:
    try:
        url = URL(raw)
    except ValueError:
        raise ValueError("expected an http(s) URL") from None
    if url.scheme not in {"http", "https"} or not url.host or url.query_string or url.fragment:
        raise ValueError("expected an http(s) URL with a host and no query or fragment")
    if url.user is not None or url.password is not None:
        raise ValueError("credentials do not belong in the URL (they would reach the logs)")
    return raw.rstrip("/")


_PARSERS: dict[str, Callable[[str], Any]] = {
    "host": _host,
    "port": _integer(1, 65535),
    "log_level": _log_level,
    "log_format": _log_format,
    "access_log": _boolean,
    "shutdown_timeout": _seconds(allow_zero=False),
    "max_body_bytes": _integer(1, 1024**3),
    "upstream_base_url": _http_url,
    "upstream_timeout": _seconds(allow_zero=False),
    "upstream_connect_timeout": _seconds(allow_zero=False),
    "upstream_retries": _integer(0, 10),
    "upstream_retry_backoff": _seconds(allow_zero=True),
    "upstream_concurrency": _integer(1, 1000),
    "upstream_pool_size": _integer(1, 10_000),
    "upstream_max_response_bytes": _integer(1, 1024**3),
    "circuit_breaker_threshold": _integer(0, 1000),
    "circuit_breaker_cooldown": _seconds(allow_zero=False),
}
