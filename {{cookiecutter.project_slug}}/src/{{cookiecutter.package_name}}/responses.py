"""JSON responses: the only shape of body this service ever sends."""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web

from .jsonlib import dumps


def json_response(
    data: object, *, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    """Serialize ``data`` with the fastest available JSON library."""
    return web.Response(
        body=dumps(data), status=status, headers=headers, content_type="application/json"
    )


def error_response(
    status: int, message: str, *, headers: Mapping[str, str] | None = None
) -> web.Response:
    """The one error format: ``{"error": "<message>"}``."""
    return json_response({"error": message}, status=status, headers=headers)
