"""Checks on what clients send, each failing with a 4xx JSON error, never a 500."""

from __future__ import annotations

import re

from .errors import InvalidRequestError
from .jsonlib import JSONValue

MAX_BATCH_SIZE = 100
# A safe single path segment: it cannot climb directories or smuggle a query into the upstream URL.
_ITEM_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.~-]{0,127}")


def item_id(raw: str) -> str:
    """Return ``raw`` if it is a valid item id, else raise InvalidRequestError."""
    if not _ITEM_ID.fullmatch(raw) or ".." in raw:
        raise InvalidRequestError("item_id must be 1-128 letters, digits, '.', '_', '~' or '-'")
    return raw


def batch_ids(body: JSONValue) -> list[str]:
    """The ``ids`` of a batch request: 1 to MAX_BATCH_SIZE valid item ids (strings or integers)."""
    if not isinstance(body, dict) or not isinstance(ids := body.get("ids"), list):
        raise InvalidRequestError('expected a JSON object like {"ids": ["1", "2"]}')
    if not 1 <= len(ids) <= MAX_BATCH_SIZE:
        raise InvalidRequestError(f"ids must hold 1 to {MAX_BATCH_SIZE} item ids")
    result = []
    for raw in ids:
        if isinstance(raw, bool) or not isinstance(raw, str | int):
            raise InvalidRequestError("every id must be a string or an integer")
        result.append(item_id(str(raw)))
    return result
