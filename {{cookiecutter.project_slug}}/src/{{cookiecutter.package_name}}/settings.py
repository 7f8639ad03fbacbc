"""Configuration, read from the environment once at start and passed to whoever needs it.

Each setting is declared once, below: its variable is the field's name in capitals, with its
parser, default and a one-line meaning beside it. The README's table is checked against this.
Secrets (credentials, URLs that may hold a password) also come from a file named by
``<NAME>_FILE`` (Docker and Kubernetes secrets), and no message or repr ever shows them.
"""

from __future__ import annotations

import logging
import math
import os
{%- if cookiecutter.upstream_auth in ["api_key", "oauth2_client_credentials"] %}
import re
{%- endif %}
from collections.abc import Callable, Mapping
from dataclasses import Field, dataclass, field, fields
{%- if cookiecutter.upstream_auth != "none" %}
from ipaddress import ip_address
{%- endif %}
from typing import Any

from pydantic import SecretStr
from yarl import URL

DEFAULT_UPSTREAM_BASE_URL = {{ cookiecutter.upstream_base_url|quoted }}


FILE_SUFFIX = "_FILE"  # a secret's variable with this suffix names a file that holds it


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


def _redis_url(raw: str) -> SecretStr:
    _secret(raw)  # no line break or other control character
    try:
        url = URL(raw)
    except ValueError:
        raise ValueError("expected a redis://, rediss:// or unix:// URL") from None
    if url.scheme not in {"redis", "rediss", "unix"} or not (url.host or url.path):
        raise ValueError("expected a redis://, rediss:// or unix:// URL")
    return SecretStr(raw)
{%- endif %}


def _secret(raw: str) -> SecretStr:
    """A credential, kept in pydantic's ``SecretStr``: its repr and str are stars."""
    if not raw:
        raise ValueError("it is empty")
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in raw):
        raise ValueError("it holds a control character (a line break?)")
    return SecretStr(raw)
{%- if cookiecutter.upstream_auth == "api_key" %}


# A header name (RFC 9110's token), and the headers an API key must not take the place of.
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_NOT_FOR_A_KEY = frozenset(
    {
        "authorization",
        "cookie",
        "host",
        "content-length",
        "content-type",
        "transfer-encoding",
        "idempotency-key",
        "x-request-id",
        "traceparent",
        "tracestate",
    }
)


def _api_key_header(raw: str) -> str:
    if not _HEADER_NAME.fullmatch(raw):
        raise ValueError("expected a header name")
    if raw.lower() in _NOT_FOR_A_KEY:
        raise ValueError(f"{raw} is not a header for an API key")
    return raw
{%- elif cookiecutter.upstream_auth == "oauth2_client_credentials" %}


def _optional_http_url(raw: str) -> str:
    return _http_url(raw) if raw else ""


# RFC 6749 section 3.3: scope tokens of printable ASCII but space, quote and backslash.
_SCOPE = re.compile(r"[\x21\x23-\x5B\x5D-\x7E]+( [\x21\x23-\x5B\x5D-\x7E]+)*")


def _scope(raw: str) -> str:
    if raw and not _SCOPE.fullmatch(raw):
        raise ValueError("expected scope names separated by single spaces")
    return raw


def _token_auth_method(raw: str) -> str:
    method = raw.lower()
    if method not in {"client_secret_basic", "client_secret_post"}:
        raise ValueError("expected client_secret_basic or client_secret_post")
    return method
{%- endif %}
{%- if cookiecutter.upstream_auth != "none" %}


def _is_loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return ip_address((host or "").strip("[]")).is_loopback
    except ValueError:
        return False
{%- endif %}


def setting(
    default: Any,
    parse: Callable[[str], Any],
    doc: str,
    *,
    secret: bool = False,
    required: bool = False,
) -> Any:
    """Declare one setting: its default, the parser for its variable's text, what it means.

    A ``secret`` is also read from the file ``<NAME>_FILE`` names, and never shown; a
    ``required`` one has no usable default (its default is empty) and must be set.
    """
    metadata = {"parse": parse, "doc": doc, "secret": secret, "required": required}
    return field(default=default, metadata=metadata)


def secret(doc: str) -> Any:
    """Declare a required credential: from ``<NAME>`` or the file ``<NAME>_FILE`` names."""
    return setting(SecretStr(""), _secret, doc, secret=True, required=True)


def parser(declared: Field[Any]) -> Callable[[str], Any]:
    """The parser a setting was declared with."""
    parse: Callable[[str], Any] = declared.metadata["parse"]
    return parse


def environment_name(declared: Field[Any]) -> str:
    return declared.name.upper()


def is_secret(declared: Field[Any]) -> bool:
    """Whether a setting is a secret: read from a file too, never shown."""
    return bool(declared.metadata["secret"])


def _secret_text(environ: Mapping[str, str], name: str) -> str | None:
    """A secret's text from ``name`` or from the file ``name_FILE`` names (its content less one
    trailing line break); None when neither is set. Read once, at start: a rotated secret
    needs a restart."""
    path = environ.get(name + FILE_SUFFIX)
    if path is None:
        return environ.get(name)
    if name in environ:
        raise SettingsError(f"{name} and {name}{FILE_SUFFIX} are both set: set one")
    try:
        with open(path, encoding="utf-8") as file:
            text = file.read()
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or "not UTF-8 text"
        raise SettingsError(f"{name}{FILE_SUFFIX}: cannot read {path!r}: {reason}") from None
    return text.removesuffix("\n").removesuffix("\r")


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
{%- if cookiecutter.upstream_auth == "api_key" %}
    upstream_api_key: SecretStr = secret("API key sent to the upstream with every request")
    upstream_api_key_header: str = setting(
        "X-API-Key", _api_key_header, "Header that carries the API key"
    )
{%- elif cookiecutter.upstream_auth == "bearer" %}
    upstream_bearer_token: SecretStr = secret("Token sent as Authorization: Bearer <token>")
{%- elif cookiecutter.upstream_auth == "oauth2_client_credentials" %}
    upstream_token_url: str = setting(
        "", _optional_http_url, "OAuth2 token endpoint (client credentials grant)", required=True
    )
    upstream_client_id: SecretStr = secret("OAuth2 client id")
    upstream_client_secret: SecretStr = secret("OAuth2 client secret")
    upstream_scope: str = setting("", _scope, "Scopes asked for, space-separated (optional)")
    upstream_token_auth_method: str = setting(
        "client_secret_basic",
        _token_auth_method,
        "How the client authenticates to the token endpoint",
    )
{%- endif %}
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
    redis_url: SecretStr = setting(
        SecretStr("redis://localhost:6379/0"), _redis_url, "Redis for the cache", secret=True
    )
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
            if is_secret(declared):
                raw = _secret_text(environ, name)
            else:
                raw = environ.get(name)
                raw = None if raw is None else raw.strip()
            if raw is None:
                continue
            try:
                values[declared.name] = parser(declared)(raw)
            except ValueError as exc:
                shown = name if is_secret(declared) else f"{name}={raw!r}"
                raise SettingsError(f"{shown} is invalid: {exc}") from None
        return cls(**values)

    def __post_init__(self) -> None:
        """Refuse settings the service cannot run with: a required one left unset{% if cookiecutter.upstream_auth != "none" %}, or
        credentials that would travel in clear text{% endif %}."""
        for declared in fields(self):
            if declared.metadata["required"] and not _text(getattr(self, declared.name)):
                name = environment_name(declared)
                if is_secret(declared):
                    name += f" (or {name}{FILE_SUFFIX}, naming a file that holds it)"
                raise SettingsError(f"{name} is required")
{%- if cookiecutter.upstream_auth != "none" %}
        # Credentials go to these URLs: never in clear text, unless to this machine.
        for name, url in [
            ("UPSTREAM_BASE_URL", self.upstream_base_url),
{%- if cookiecutter.upstream_auth == "oauth2_client_credentials" %}
            ("UPSTREAM_TOKEN_URL", self.upstream_token_url),
{%- endif %}
        ]:
            parsed = URL(url)
            if parsed.scheme != "https" and not _is_loopback(parsed.host):
                raise SettingsError(
                    f"{name} must be https: credentials are sent to it (http only to loopback)"
                )
{%- endif %}


def _text(value: object) -> str:
    return value.get_secret_value() if isinstance(value, SecretStr) else str(value)


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
    for declared in fields(Settings):
        if name == environment_name(declared):
            return True
        if is_secret(declared) and name == environment_name(declared) + FILE_SUFFIX:
            return True
    return any(
        name.startswith(known) if known.endswith("_") else name == known
        for known in LIBRARY_VARIABLES
    )
