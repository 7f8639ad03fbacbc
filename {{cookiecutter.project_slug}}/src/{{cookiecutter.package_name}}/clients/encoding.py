"""Requests as the upstream gets them: the query in one canonical order, the body serialized
once, and the headers a caller may add (never the ones the core owns)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final
from urllib.parse import urlencode

from pydantic import BaseModel

from ..common import request_ids
from ..common.jsonlib import dumps

IDEMPOTENCY_KEY_HEADER: Final = "Idempotency-Key"
# Headers the core sets itself; a caller's extra headers may not replace them.
OWNED_HEADERS = frozenset(
    {
        request_ids.HEADER.lower(),
        IDEMPOTENCY_KEY_HEADER.lower(),
        "authorization",
        "content-type",
        "traceparent",
        "tracestate",
    }
)

# Query parameters: a list value repeats its key (``?tag=a&tag=b``), in the list's order.
QueryValue = str | int | float
Query = Mapping[str, QueryValue | Sequence[QueryValue]]
CanonicalQuery = tuple[tuple[str, str], ...]


def checked_headers(headers: Mapping[str, str] | None) -> Mapping[str, str]:
    """A caller's extra headers, refused when they would replace one the core sets."""
    if not headers:
        return {}
    owned = sorted(name for name in headers if name.lower() in OWNED_HEADERS)
    if owned:
        raise ValueError(f"the client core sets {', '.join(owned)} itself")
    return headers


def encode_body(
    json: object, form: Mapping[str, str] | None, headers: dict[str, str]
) -> bytes | None:
    """The request body, serialized once for every attempt, with its Content-Type."""
    if json is not None and form is not None:
        raise ValueError("send a JSON body or a form body, not both")
    if form is not None:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        return urlencode(form).encode()
    if json is None:
        return None
    headers["Content-Type"] = "application/json"
    if isinstance(json, BaseModel):
        return json.model_dump_json(exclude_unset=True).encode()
    return dumps(json)


def canonical_query(params: Query) -> CanonicalQuery:
    """The parameters as (name, value) pairs sorted by name; a list value's items keep their
    order (``?tag=b&tag=a`` may mean something else than ``?tag=a&tag=b``)."""
    pairs: list[tuple[str, str]] = []
    for name in sorted(params):
        value = params[name]
        values = value if isinstance(value, Sequence) and not isinstance(value, str) else [value]
        pairs.extend((name, _query_text(item)) for item in values)
    return tuple(pairs)


def _query_text(value: QueryValue) -> str:
    if isinstance(value, bool):  # a bool is an int: say which spelling the upstream gets
        raise TypeError("pass query flags as strings ('true', '1'): upstreams disagree on them")
    return value if isinstance(value, str) else str(value)
