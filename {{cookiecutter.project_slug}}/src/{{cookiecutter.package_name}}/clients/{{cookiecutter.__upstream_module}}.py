"""The client for the upstream API: the shapes it reads and writes, one method per endpoint.

Sessions, timeouts, retries, pagination, the circuit breaker and errors come from ``core``; how
they are set is the service's business (``upstreams.py`` maps its settings to a
``UpstreamPolicy``). The models follow json-server 0.17's conventions, so ``npx
json-server@0.17 db.json`` is a working upstream to try the service against.

Models are frozen: coalesced and cached answers are shared by every caller. Fields beyond the
declared ones are kept (``extra="allow"``), so a richer upstream item passes through whole.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, model_validator

from .core import QueryValue, UpstreamClient

# The filters a listing accepts, each an exact match on the field of that name.
ITEM_FILTERS = ("name", "color")
NAME = Field(min_length=1, max_length=200)


class Item(BaseModel):
    """An item as the upstream answers it: an id of the JSON type it chose, and a name."""

    model_config = ConfigDict(frozen=True, extra="allow")

    id: StrictInt | StrictStr
    name: str


class NewItem(BaseModel):
    """What creating an item sends: a name, and any other fields; the upstream picks the id."""

    model_config = ConfigDict(frozen=True, extra="allow")

    name: str = NAME

    @model_validator(mode="before")
    @classmethod
    def _no_id(cls, data: Any) -> Any:
        if isinstance(data, dict) and "id" in data:
            raise ValueError("the upstream chooses the id: leave it out")
        return data


class ItemChanges(NewItem):
    """What updating an item sends: only the fields that change (all optional)."""

    name: str = Field(default="", min_length=1, max_length=200)


class {{ cookiecutter.__upstream_class }}(UpstreamClient):
    """Calls the upstream API at its base URL (``UPSTREAM_BASE_URL`` in this service)."""

    name = "{{ cookiecutter.__upstream_module }}"

    async def get_item(self, item_id: str) -> Item:
        """``GET /items/{item_id}``. Raises an ``UpstreamError``."""
        return await self.get(Item, "items", item_id)

    def list_items(
        self, filters: Mapping[str, str], *, page_size: int, max_pages: int
    ) -> AsyncIterator[list[Item]]:
        """``GET /items?<filters>&_page=1&_limit=<page_size>``, then each ``rel="next"`` page."""
        params: dict[str, QueryValue] = {**filters, "_page": 1, "_limit": page_size}
        return self.pages(list[Item], "items", params=params, max_pages=max_pages)

    async def create_item(self, item: NewItem, idempotency_key: str | None = None) -> Item:
        """``POST /items``: the created item, with the id the upstream chose."""
        return await self.post(Item, "items", json=item, idempotency_key=idempotency_key)

    async def update_item(
        self, item_id: str, changes: ItemChanges, idempotency_key: str | None = None
    ) -> Item:
        """``PATCH /items/{item_id}`` with only the fields that change: the updated item."""
        return await self.patch(
            Item, "items", item_id, json=changes, idempotency_key=idempotency_key
        )

    async def delete_item(self, item_id: str) -> None:
        """``DELETE /items/{item_id}``."""
        await self.delete("items", item_id)
