"""The upstreams this service calls, as its settings configure them: one ``open_*`` function
per upstream, with the ``UPSTREAM_*`` and ``CIRCUIT_BREAKER_*`` variables as the client core's
{%- if cookiecutter.cache != "none" %}
``UpstreamPolicy`` and the ``CACHE_*`` {% if cookiecutter.cache == "redis" %}and ``REDIS_*`` {% endif %}ones as its cache.
{%- else %}
``UpstreamPolicy``.
{%- endif %}

The mapping lives here, in the app's wiring, so the ``clients`` package never reads settings.
"""

from __future__ import annotations
{% if cookiecutter.cache == "memory" or cookiecutter.upstream_auth == "oauth2_client_credentials" %}
import asyncio
{% endif %}
from .clients import {{ cookiecutter.__upstream_class }}
{%- if cookiecutter.upstream_auth == "api_key" %}
from .clients.auth import api_key_headers
{%- elif cookiecutter.upstream_auth == "bearer" %}
from .clients.auth import bearer_headers
{%- elif cookiecutter.upstream_auth == "oauth2_client_credentials" %}
from .clients.auth import ClientCredentials
{%- endif %}
{% if cookiecutter.cache == "memory" -%}
from .clients.caching import MemoryCache
{% elif cookiecutter.cache == "redis" -%}
from .clients.caching import RedisCache
{% endif -%}
from .clients.core import NO_INSTRUMENTS, Instruments, {% if cookiecutter.cache != "none" %}ResponseCache, {% endif %}UpstreamPolicy
from .settings import Settings


def open_{{ cookiecutter.__upstream_module }}(
    settings: Settings,
    instruments: Instruments = NO_INSTRUMENTS,
) -> {{ cookiecutter.__upstream_class }}:
    """Open the client for ``UPSTREAM_BASE_URL``; call from a running event loop, then close it."""
    base_url, policy = settings.upstream_base_url, upstream_policy(settings)
{%- if cookiecutter.upstream_auth == "api_key" %}
    credentials = api_key_headers(settings.upstream_api_key_header, settings.upstream_api_key)
    return {{ cookiecutter.__upstream_class }}.open(
        base_url,
        policy,
        instruments,
        credentials=credentials,
    )
{%- elif cookiecutter.upstream_auth == "bearer" %}
    credentials = bearer_headers(settings.upstream_bearer_token)
    return {{ cookiecutter.__upstream_class }}.open(
        base_url,
        policy,
        instruments,
        credentials=credentials,
    )
{%- elif cookiecutter.upstream_auth == "oauth2_client_credentials" %}
    tokens = ClientCredentials(
        settings.upstream_token_url,
        settings.upstream_client_id,
        settings.upstream_client_secret,
        scope=settings.upstream_scope,
        auth_method=settings.upstream_token_auth_method,
        upstream={{ cookiecutter.__upstream_class }}.name,
        instruments=instruments,
        clock=asyncio.get_running_loop().time,  # follows virtual time in tests (looptime)
    )
    return {{ cookiecutter.__upstream_class }}.open(
        base_url,
        policy,
        instruments,
        tokens=tokens,
    )
{%- else %}
    return {{ cookiecutter.__upstream_class }}.open(base_url, policy, instruments)
{%- endif %}


def upstream_policy(settings: Settings) -> UpstreamPolicy:
    """The policy for an upstream that follows the service-wide upstream settings."""
    return UpstreamPolicy(
        timeout=settings.upstream_timeout,
        connect_timeout=settings.upstream_connect_timeout,
        retries=settings.upstream_retries,
        retry_backoff=settings.upstream_retry_backoff,
        pool_size=settings.upstream_pool_size,
        max_response_bytes=settings.upstream_max_response_bytes,
        circuit_breaker_threshold=settings.circuit_breaker_threshold,
        circuit_breaker_cooldown=settings.circuit_breaker_cooldown,
        coalesce=settings.upstream_coalesce,
        rate_limit=settings.upstream_rate_limit,
        idempotency_keys=settings.upstream_idempotency_keys,
{%- if cookiecutter.cache != "none" %}
        cache=lambda name: response_cache(settings, name),
{%- endif %}
    )
{%- if cookiecutter.cache != "none" %}


def response_cache(settings: Settings, upstream: str) -> ResponseCache:
    """The cache for one upstream's answers (``upstream`` is its client's name); call from a
    running event loop."""
{%- if cookiecutter.cache == "memory" %}
    # Expiry on the loop's clock: it follows virtual time in tests (looptime).
    clock = asyncio.get_running_loop().time
    return MemoryCache(settings.cache_ttl_seconds, settings.cache_max_entries, clock)
{%- else %}
    return RedisCache.open(
        settings.redis_url.get_secret_value(),
        settings.cache_ttl_seconds,
        settings.redis_timeout,
        upstream,
    )
{%- endif %}
{%- endif %}
