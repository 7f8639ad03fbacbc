"""Typed keys for what hangs off the application: no module-level state anywhere."""

from __future__ import annotations

from aiohttp import web

from .clients import {{ cookiecutter.__upstream_class }}
from .lifecycle import Lifecycle
from .settings import Settings

LIFECYCLE = web.AppKey("lifecycle", Lifecycle)
OPENAPI = web.AppKey("openapi", bytes)  # the document, serialized once at start
SETTINGS = web.AppKey("settings", Settings)
UPSTREAM = web.AppKey("upstream", {{ cookiecutter.__upstream_class }})
