"""Request bodies: JSON only, read within ``REQUEST_BODY_TIMEOUT`` (``MAX_BODY_BYTES`` is
aiohttp's ``client_max_size``: 413 past it), and validated by a model when a route has one."""

from __future__ import annotations

import asyncio
from typing import TypeVar

from aiohttp import web
from pydantic import TypeAdapter, ValidationError

from ..common.errors import InvalidRequestError, RequestTimeoutError, UnsupportedMediaTypeError
from .keys import SETTINGS

T = TypeVar("T")
MAX_PROBLEMS_SHOWN = 3


async def json_body(request: web.Request) -> bytes:
    """The raw body of a JSON request: 415 for another media type, 408 when it is slow."""
    if request.content_type != "application/json":
        raise UnsupportedMediaTypeError("expected Content-Type: application/json")
    body_timeout = request.app[SETTINGS].request_body_timeout
    try:
        async with asyncio.timeout(body_timeout):
            return await request.read()
    except TimeoutError:
        raise RequestTimeoutError(f"request body not received within {body_timeout:g}s") from None


async def model_body(request: web.Request, model: TypeAdapter[T]) -> T:
    """The body validated as ``model``, straight from its bytes. A 400 names each field that
    is wrong and why, never the value sent (it may be personal data)."""
    raw = await json_body(request)
    try:
        return model.validate_json(raw)
    except ValidationError as error:
        raise InvalidRequestError(_problems(error)) from None


def _problems(error: ValidationError) -> str:
    problems = error.errors(include_url=False, include_input=False, include_context=False)
    if problems[0]["type"] == "json_invalid":
        return "request body is not valid JSON"
    shown = [
        f"{'.'.join(map(str, problem['loc'])) or 'body'}: {problem['msg']}"
        for problem in problems[:MAX_PROBLEMS_SHOWN]
    ]
    more = len(problems) - MAX_PROBLEMS_SHOWN
    return "invalid body: " + "; ".join(shown) + (f" (and {more} more)" if more > 0 else "")
