"""The client for the upstream API: one method per endpoint, each naming its path.

Sessions, timeouts, retries, the circuit breaker and errors come from ``core``; how they are
set, from ``policy``.
"""

from __future__ import annotations

from typing import Self

from ..jsonlib import JSONValue
from ..settings import Settings
from .core import NO_INSTRUMENTS, Instruments, UpstreamClient
from .policy import upstream_policy


class {{ cookiecutter.__upstream_class }}(UpstreamClient):
    """Calls the upstream API at ``UPSTREAM_BASE_URL``."""

    name = "{{ cookiecutter.__upstream_module }}"

    @classmethod
    def from_settings(cls, settings: Settings, instruments: Instruments = NO_INSTRUMENTS) -> Self:
        """Open the client; call from a running event loop, close with ``close()``."""
        return cls.open(settings.upstream_base_url, upstream_policy(settings), instruments)

    async def get_item(self, item_id: str) -> JSONValue:
        """``GET /items/{item_id}``: the item as JSON data. Raises an ``UpstreamError``."""
        return await self.get_json("items", item_id)
