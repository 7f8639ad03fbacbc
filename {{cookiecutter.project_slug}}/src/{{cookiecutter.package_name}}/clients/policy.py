"""How the settings say upstreams are called: the ``UPSTREAM_*`` and ``CIRCUIT_BREAKER_*``
variables as the core's ``UpstreamPolicy``."""

from __future__ import annotations

from ..settings import Settings
from .core import UpstreamPolicy


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
    )
