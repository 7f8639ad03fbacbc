"""Configuration, read from the environment once at start and passed to whoever needs it.

Each setting is declared once, below: its variable is the field's name in capitals, with its
parser, default and a one-line meaning beside it. The README's table is checked against this.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import Field, dataclass, field, fields
from typing import Any

from yarl import URL

DEFAULT_UPSTREAM_BASE_URL = {{ cookiecutter.upstream_base_url|quoted }}


class SettingsError(ValueError):
    """An environment variable holds a value the service cannot run with."""


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


def _number(expected: str, *, allow_zero: bool) -> Callable[[str], float]:
    """A parser for a finite number above 0 (or 0 and above); ``expected`` names it in errors."""

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


def _seconds(*, allow_zero: bool) -> Callable[[str], float]:
    expected = "a number of seconds, 0 or more" if allow_zero else "a number of seconds above 0"
    return _number(expected, allow_zero=allow_zero)


_rate = _number("a number of requests per second, 0 or more", allow_zero=True)


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


{%- if cookiecutter.cache == "redis" %}


def _redis_url(raw: str) -> str:
    try:
        url = URL(raw)
    except ValueError:
        raise ValueError("expected a redis://, rediss:// or unix:// URL") from None
    if url.scheme not in {"redis", "rediss", "unix"} or not (url.host or url.path):
        raise ValueError("expected a redis://, rediss:// or unix:// URL")
    return raw
{%- endif %}


def setting(default: Any, parse: Callable[[str], Any], doc: str) -> Any:
    """Declare one setting: its default, the parser for its variable's text, what it means."""
    return field(default=default, metadata={"parse": parse, "doc": doc})


def parser(declared: Field[Any]) -> Callable[[str], Any]:
    """The parser a setting was declared with."""
    parse: Callable[[str], Any] = declared.metadata["parse"]
    return parse


def environment_name(declared: Field[Any]) -> str:
    return declared.name.upper()


@dataclass(frozen=True, slots=True)
class Settings:
    """Every tunable of the service; the defaults are safe for production."""

    host: str = setting("127.0.0.1", _host, "Interface to listen on")
    port: int = setting(8080, _integer(1, 65535), "TCP port")
    log_level: str = setting("INFO", _log_level, "Lowest level logged")
    log_format: str = setting("auto", _log_format, "text, json, or auto (text on a terminal)")
    access_log: bool = setting(False, _boolean, "Log one line per request")
    shutdown_timeout: float = setting(
        10.0, _seconds(allow_zero=False), "Seconds in-flight requests get after SIGTERM"
    )
    shutdown_drain_seconds: float = setting(
        0.0, _seconds(allow_zero=True), "Seconds to go on serving after SIGTERM, not ready"
    )
    max_body_bytes: int = setting(64 * 1024, _integer(1, 1024**3), "Largest request body")
    request_body_timeout: float = setting(
        10.0, _seconds(allow_zero=False), "Seconds to receive a whole request body (then 408)"
    )
    keepalive_timeout: float = setting(
        75.0, _seconds(allow_zero=False), "Seconds an idle or header-reading connection is kept"
    )
    max_in_flight: int = setting(
        200, _integer(0, 1_000_000), "API requests answered at once; more get 503 (0: no limit)"
    )
    upstream_base_url: str = setting(
        DEFAULT_UPSTREAM_BASE_URL, _http_url, "Base URL of the upstream API"
    )
    upstream_timeout: float = setting(
        10.0, _seconds(allow_zero=False), "Seconds for one upstream call, retries included"
    )
    upstream_connect_timeout: float = setting(
        3.0, _seconds(allow_zero=False), "Seconds to connect to the upstream"
    )
    upstream_retries: int = setting(2, _integer(0, 10), "Extra attempts after transient failures")
    upstream_retry_backoff: float = setting(
        0.1, _seconds(allow_zero=True), "Base of the jittered exponential backoff, in seconds"
    )
    upstream_concurrency: int = setting(
        50, _integer(1, 1000), "Upstream calls one batch runs at once"
    )
    upstream_pool_size: int = setting(
        100, _integer(1, 10_000), "Open upstream connections, at most"
    )
    upstream_coalesce: bool = setting(
        True, _boolean, "Concurrent reads of the same item share one upstream call"
    )
    upstream_rate_limit: float = setting(
        0.0, _rate, "Most requests per second to the upstream, per process (0: no limit)"
    )
    upstream_idempotency_keys: bool = setting(
        False, _boolean, "The upstream honours Idempotency-Key: re-send POST and PATCH"
    )
    upstream_max_response_bytes: int = setting(
        1024 * 1024, _integer(1, 1024**3), "Largest upstream body read"
    )
    circuit_breaker_threshold: int = setting(
        0, _integer(0, 1000), "Consecutive upstream failures that open the circuit (0: off)"
    )
    circuit_breaker_cooldown: float = setting(
        30.0, _seconds(allow_zero=False), "Seconds the circuit stays open before a probe"
    )

{%- if cookiecutter.cache != "none" %}
    cache_ttl_seconds: float = setting(
        30.0, _seconds(allow_zero=False), "Seconds an upstream answer is kept, at most"
    )
{%- endif %}
{%- if cookiecutter.cache == "memory" %}
    cache_max_entries: int = setting(
        10_000, _integer(1, 10_000_000), "Answers kept in memory, at most (least recent out)"
    )
{%- elif cookiecutter.cache == "redis" %}
    redis_url: str = setting("redis://localhost:6379/0", _redis_url, "Redis for the cache")
    redis_timeout: float = setting(
        0.05, _seconds(allow_zero=False), "Seconds a Redis command may take (then: a miss)"
    )
{%- endif %}

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``environ`` (default: the process environment).

        Raises SettingsError naming the variable when a value is invalid.
        """
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for declared in fields(cls):
            name = environment_name(declared)
            raw = environ.get(name)
            if raw is None:
                continue
            try:
                values[declared.name] = parser(declared)(raw.strip())
            except ValueError as exc:
                raise SettingsError(f"{name}={raw!r} is invalid: {exc}") from None
        return cls(**values)


# Variables the libraries the service uses read under their own documented names (listed in
# CONFIGURATION.md); a name ending in "_" stands for every name with that prefix.
LIBRARY_VARIABLES = (
    "WEB_CONCURRENCY",  # gunicorn.conf.py
{%- if cookiecutter.use_metrics %}
    "PROMETHEUS_MULTIPROC_DIR",  # prometheus-client
{%- endif %}
{%- if cookiecutter.use_tracing %}
    "OTEL_",  # OpenTelemetry
{%- endif %}
)


def is_known_variable(name: str) -> bool:
    """Whether the service or a library it uses reads ``name``: deployments check with this
    that they set nothing that would be silently ignored."""
    if name in {environment_name(declared) for declared in fields(Settings)}:
        return True
    return any(
        name.startswith(known) if known.endswith("_") else name == known
        for known in LIBRARY_VARIABLES
    )
