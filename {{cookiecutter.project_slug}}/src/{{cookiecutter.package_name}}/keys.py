"""Typed keys for what hangs off the application: no module-level state anywhere."""

from __future__ import annotations

from aiohttp import web

from .clients import {{ cookiecutter.__upstream_class }}
from .settings import Settings

OPENAPI = web.AppKey("openapi", bytes)  # the document, serialized once at start
SETTINGS = web.AppKey("settings", Settings)
UPSTREAM = web.AppKey("upstream", {{ cookiecutter.__upstream_class }})
