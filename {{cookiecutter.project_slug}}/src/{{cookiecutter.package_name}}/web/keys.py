"""Typed keys for what hangs off the application: no module-level state anywhere."""

from __future__ import annotations

from aiohttp import web

from ..clients import {{ cookiecutter.__upstream_class }}
from ..clients.core import Instruments
{%- if cookiecutter.use_metrics %}
from ..observability.metrics import Metrics
{%- endif %}
from ..settings import Settings
from .lifecycle import Lifecycle

INSTRUMENTS = web.AppKey("instruments", Instruments)  # what watches upstream calls
LIFECYCLE = web.AppKey("lifecycle", Lifecycle)
{%- if cookiecutter.use_metrics %}
METRICS = web.AppKey("metrics", Metrics)
{%- endif %}
OPENAPI = web.AppKey("openapi", bytes)  # the document, serialized once at start
SETTINGS = web.AppKey("settings", Settings)
UPSTREAM = web.AppKey("upstream", {{ cookiecutter.__upstream_class }})
