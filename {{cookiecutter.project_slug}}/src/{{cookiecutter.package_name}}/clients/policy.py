"""How the settings say upstreams are called: the ``UPSTREAM_*`` and ``CIRCUIT_BREAKER_*``
{%- if cookiecutter.cache != "none" %}
variables as the core's ``UpstreamPolicy``, and the ``CACHE_*`` ones{% if cookiecutter.cache == "redis" %}
(and ``REDIS_*``){% endif %} as its cache."""
{%- else %}
variables as the core's ``UpstreamPolicy``."""
{%- endif %}

from __future__ import annotations

from ..settings import Settings
{% if cookiecutter.cache == "memory" -%}
from .caching import MemoryCache
{% elif cookiecutter.cache == "redis" -%}
from .caching import RedisCache
{% endif -%}
from .core import {% if cookiecutter.cache != "none" %}ResponseCache, {% endif %}UpstreamPolicy


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
{%- if cookiecutter.cache != "none" %}
        cache=lambda name: response_cache(settings, name),
{%- endif %}
    )
{%- if cookiecutter.cache != "none" %}


def response_cache(settings: Settings, upstream: str) -> ResponseCache:
    """The cache for one upstream's answers (``upstream`` is its client's name)."""
{%- if cookiecutter.cache == "memory" %}
    return MemoryCache(settings.cache_ttl_seconds, settings.cache_max_entries)
{%- else %}
    return RedisCache.open(
        settings.redis_url, settings.cache_ttl_seconds, settings.redis_timeout, upstream
    )
{%- endif %}
{%- endif %}
