"""Checks on what clients send, each failing with a 4xx JSON error, never a 500.

The rules are data (patterns, limits) that the OpenAPI document (``openapi.py``) states too,
so the description and the behaviour cannot drift apart.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from ..common.errors import InvalidRequestError
from ..common.jsonlib import JSONValue

MAX_BATCH_SIZE = 100
MAX_ITEM_ID_LENGTH = 128
MAX_INTEGER_ID = 2**53 - 1  # the largest integer every JSON parser reads exactly
# A safe single path segment: a letter or digit, then letters, digits, '_', '~', '-' and single
# dots (never '..'), so it can neither climb directories nor smuggle a query upstream.
# Anchored (JSON Schema patterns are not), matched whole ($ alone would allow a final
# newline), and without lookarounds: JSON Schema reads it the same way.
ITEM_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_~-]*(\.[A-Za-z0-9_~-]+)*\.?$"
_ITEM_ID = re.compile(ITEM_ID_PATTERN)
DEFAULT_LIST_LIMIT = 100
MAX_LIST_LIMIT = 1000
MAX_FILTER_LENGTH = 200
# A caller's Idempotency-Key: letters, digits and the few marks UUIDs, ULIDs and base64 use.
IDEMPOTENCY_KEY_PATTERN = r"^[A-Za-z0-9._:~+/=-]{1,255}$"
_IDEMPOTENCY_KEY = re.compile(IDEMPOTENCY_KEY_PATTERN)


def item_id(raw: str) -> str:
    """Return ``raw`` if it is a valid item id, else raise InvalidRequestError."""
    if len(raw) > MAX_ITEM_ID_LENGTH or not _ITEM_ID.fullmatch(raw):
        raise InvalidRequestError(
            "item_id must be 1-128 letters, digits, '_', '~', '-' or single dots,"
            " starting with a letter or digit"
        )
    return raw


def batch_ids(body: JSONValue) -> list[int | str]:
    """The ``ids`` of a batch request: 1 to MAX_BATCH_SIZE valid item ids (strings, or
    integers from 0 to MAX_INTEGER_ID), each of the JSON type the caller gave it."""
    if not isinstance(body, dict) or not isinstance(ids := body.get("ids"), list):
        raise InvalidRequestError('expected a JSON object like {"ids": ["1", "2"]}')
    if not 1 <= len(ids) <= MAX_BATCH_SIZE:
        raise InvalidRequestError(f"ids must hold 1 to {MAX_BATCH_SIZE} item ids")
    return [_batch_id(raw) for raw in ids]


def _batch_id(raw: JSONValue) -> int | str:
    """A valid id: a string as it is, an integer (JSON's 7 or 7.0) as an integer."""
    if isinstance(raw, str):
        return item_id(raw)
    if isinstance(raw, float) and raw.is_integer():
        raw = int(raw)  # JSON has one number type: 7.0 is the integer 7
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise InvalidRequestError("every id must be a string or an integer")
    if not 0 <= raw <= MAX_INTEGER_ID:
        raise InvalidRequestError(f"an integer id must be from 0 to {MAX_INTEGER_ID}")
    return raw


def listing(query: Mapping[str, str], filters: Sequence[str]) -> tuple[dict[str, str], int]:
    """The filters and the ``limit`` of a listing (``query`` as aiohttp gives it: a repeated
    parameter is there twice). Any other parameter (those starting with
    ``_`` are the upstream's paging controls), a repeated one, a filter over
    MAX_FILTER_LENGTH characters or a limit outside 1..MAX_LIST_LIMIT is a 400."""
    allowed = (*filters, "limit")
    if any(name not in allowed for name in query):
        raise InvalidRequestError(f"the query parameters are {', '.join(allowed)}; no others")
    if len(query) != len(set(query)):
        raise InvalidRequestError("give each query parameter at most once")
    limit = query.get("limit", str(DEFAULT_LIST_LIMIT))
    if not (limit.isascii() and limit.isdigit() and 1 <= int(limit) <= MAX_LIST_LIMIT):
        raise InvalidRequestError(f"limit must be a whole number from 1 to {MAX_LIST_LIMIT}")
    chosen = {name: query[name] for name in filters if name in query}
    if any(len(value) > MAX_FILTER_LENGTH for value in chosen.values()):
        raise InvalidRequestError(f"a filter is at most {MAX_FILTER_LENGTH} characters")
    return chosen, int(limit)


def idempotency_key(raw: str | None) -> str | None:
    """A caller's ``Idempotency-Key``, if it sent a valid one; 400 for an invalid one."""
    if raw is None:
        return None
    if not _IDEMPOTENCY_KEY.fullmatch(raw):
        raise InvalidRequestError(
            "Idempotency-Key must be 1-255 letters, digits or any of . _ : ~ + / = -"
        )
    return raw
