"""Fetch many items at once: concurrently, never more than a fixed number in flight."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from ..common.errors import UpstreamError

Fetch = Callable[[str], Awaitable[object]]


async def fetch_all(
    fetch: Fetch, item_ids: Sequence[int | str], limit: int
) -> list[dict[str, object]]:
    """Return one entry per id, in input order: ``{"id", "item"}`` or ``{"id", "error", "status"}``,
    each id as the caller sent it (an integer stays an integer).

    An upstream failure for one item is reported inline; it does not fail the others.
    """
    gate = asyncio.Semaphore(limit)

    async def fetch_one(item_id: int | str) -> dict[str, object]:
        async with gate:
            try:
                item = await fetch(str(item_id))
            except UpstreamError as error:
                return {"id": item_id, "error": str(error), "status": error.status}
        return {"id": item_id, "item": item}

    return list(await asyncio.gather(*(fetch_one(item_id) for item_id in item_ids)))
