"""The client for the upstream API: one method per endpoint, each naming its path.

Sessions, timeouts, retries, the circuit breaker and errors come from ``core``; how they are
set is the service's business (``upstreams.py`` maps its settings to a ``UpstreamPolicy``).
"""

from __future__ import annotations

from ..common.jsonlib import JSONValue
from .core import UpstreamClient


class {{ cookiecutter.__upstream_class }}(UpstreamClient):
    """Calls the upstream API at its base URL (``UPSTREAM_BASE_URL`` in this service)."""

    name = "{{ cookiecutter.__upstream_module }}"

    async def get_item(self, item_id: str) -> JSONValue:
        """``GET /items/{item_id}``: the item as JSON data. Raises an ``UpstreamError``."""
        return await self.get_json("items", item_id)
