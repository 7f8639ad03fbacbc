"""JSON responses: the only shape of body this service ever sends."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import hdrs, web
from pydantic import BaseModel, TypeAdapter

from ..common.jsonlib import dumps

# Given as a header rather than as ``content_type=``, which aiohttp would parse and rebuild for
# every response (about a microsecond each, measured).
_JSON_HEADERS: dict[str, str] = {hdrs.CONTENT_TYPE: "application/json"}


def json_response(
    data: object, *, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    """Serialize ``data`` with the fastest available JSON library."""
    merged = _JSON_HEADERS if headers is None else {**_JSON_HEADERS, **headers}
    return web.Response(body=dumps(data), status=status, headers=merged)


# Serializes anything pydantic can, models inside plain data included, by their runtime type.
_ANY_DATA: TypeAdapter[Any] = TypeAdapter(Any)


def model_response(value: object, *, status: int = 200) -> web.Response:
    """Serialize pydantic models (or plain data holding them) straight to JSON bytes, extra
    fields and each id's JSON type kept."""
    if isinstance(value, BaseModel):
        body = value.__pydantic_serializer__.to_json(value)
    else:
        body = _ANY_DATA.dump_json(value)
    return web.Response(body=body, status=status, headers=_JSON_HEADERS)


def error_response(
    status: int, message: str, *, headers: Mapping[str, str] | None = None
) -> web.Response:
    """The one error format: ``{"error": "<message>"}``."""
    return json_response({"error": message}, status=status, headers=headers)
