"""The client for the upstream API: the shapes it reads and writes, one method per endpoint.

Sessions, timeouts, retries, pagination, the circuit breaker and errors come from ``core``; how
they are set is the service's business (``upstreams.py`` maps its settings to a
``UpstreamPolicy``). The models follow json-server 0.17's conventions, so ``npx
json-server@0.17 db.json`` is a working upstream to try the service against.

Models are frozen: coalesced and cached answers are shared by every caller. Fields beyond the
declared ones are kept (``extra="allow"``), so a richer upstream item passes through whole.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, model_validator

from .core import UpstreamClient
from .encoding import QueryValue

# The filters a listing accepts, each an exact match on the field of that name.
ITEM_FILTERS = ("name", "color")
MAX_NAME_LENGTH = 200


class Item(BaseModel):
    """An item as the upstream answers it: an id of the JSON type it chose, and a name."""

    model_config = ConfigDict(frozen=True, extra="allow")

    id: StrictInt | StrictStr
    name: str


class _Write(BaseModel):
    """What a write sends: declared fields and any others, never an id (the upstream owns it)."""

    model_config = ConfigDict(
        frozen=True, extra="allow", json_schema_extra={"not": {"required": ["id"]}}
    )

    @model_validator(mode="before")
    @classmethod
    def _no_id(cls, data: Any) -> Any:
        if isinstance(data, dict) and "id" in data:
            raise ValueError("the upstream chooses the id: leave it out")
        return data


class NewItem(_Write):
    """What creating an item sends: a name, and any other fields."""

    name: str = Field(min_length=1, max_length=MAX_NAME_LENGTH)


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)  # "left out", not a value a client could send


class ItemChanges(_Write):
    """What updating an item sends: only the fields that change, each optional. Unset fields
    are not sent (the core sends models without them)."""

    name: str = Field(
        default="", min_length=1, max_length=MAX_NAME_LENGTH, json_schema_extra=_no_default
    )


class {{ cookiecutter.__upstream_class }}(UpstreamClient):
    """Calls the upstream API at its base URL (``UPSTREAM_BASE_URL`` in this service)."""

    name = "{{ cookiecutter.__upstream_module }}"

    async def get_item(self, item_id: str) -> Item:
        """``GET /items/{item_id}``. Raises an ``UpstreamError``."""
        return await self.get(Item, "items", item_id)

    def list_items(
        self, filters: Mapping[str, str], *, page_size: int, max_pages: int
    ) -> AsyncGenerator[list[Item]]:
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
