"""The exceptions the upstream client raises, and the HTTP status each one maps to.

Handlers see these, never aiohttp's client exceptions: transport details stay in the client.
"""

from __future__ import annotations


class UpstreamError(Exception):
    """The upstream API did not give a usable answer."""

    status = 502


class UpstreamNotFoundError(UpstreamError):
    """The upstream API says the requested resource does not exist."""

    status = 404


class UpstreamUnavailableError(UpstreamError):
    """Server errors after retries, a failed connection or an unusable response."""

    status = 502


class UpstreamTimeoutError(UpstreamError):
    """The upstream API did not answer within the time budget."""

    status = 504


class UpstreamCircuitOpenError(UpstreamError):
    """Recent calls failed, so this one was not even tried (see circuit_breaker.py)."""

    status = 503
