"""The application factory: wires settings, the upstream client, routes and middlewares."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import TypeVar

from aiohttp import web
from aiohttp.typedefs import Middleware
{%- if cookiecutter.use_tracing %}
from opentelemetry.sdk.trace import TracerProvider
{%- endif %}
{%- if cookiecutter.use_metrics %}
from prometheus_client import CollectorRegistry
{%- endif %}

from .clients import {{ cookiecutter.__upstream_class }}
from .clients.core import Instruments
from .common.jsonlib import dumps
from .garbage_collection import tune_for_serving
from .observability.access_log import AccessLogger
from .observability.logs import quiet_malformed_requests
{%- if cookiecutter.use_metrics %}
from .observability.metrics import Metrics, add_metrics_route
{%- endif %}
{%- if cookiecutter.use_tracing %}
from .observability.tracing import (
    attempt_tracer,
    flush_on_cleanup,
    provider_from_environment,
    trace_requests,
)
{%- endif %}
from .settings import Settings
from .upstreams import open_{{ cookiecutter.__upstream_module }}
from .web.handlers import add_routes
from .web.keys import INSTRUMENTS, LIFECYCLE, {% if cookiecutter.use_metrics %}METRICS, {% endif %}OPENAPI, SETTINGS, UPSTREAM
from .web.lifecycle import Lifecycle, drain_on_sigterm
from .web.middlewares import request_middleware
from .web.openapi import document
from .web.shedding import InFlightLimit

# After refusing a request before its body was read (408, 413), aiohttp keeps reading the rest
# for this long so the client can still read the answer; then the connection is closed and its
# descriptor released (aiohttp's default is 10 s, which lets slow clients hold descriptors).
LINGERING_SECONDS = 2.0

Client = TypeVar("Client")
CleanupContext = Callable[[web.Application], AsyncIterator[None]]
OpenClient = Callable[[Settings, Instruments], AbstractAsyncContextManager[Client]]


def create_app(
    settings: Settings,
    upstream: {{ cookiecutter.__upstream_class }} | None = None,
{%- if cookiecutter.use_tracing %}
    tracer_provider: TracerProvider | None = None,
{%- endif %}
) -> web.Application:
    """Build the app. Pass ``upstream`` to use a ready client (tests pass a mock).

    Without one, the app opens its own client at startup and closes it at cleanup.
{%- if cookiecutter.use_tracing %}
    With a ``tracer_provider``, requests and upstream calls are traced (the caller owns it).
{%- endif %}
    """
    middlewares: list[Middleware] = []
{%- if cookiecutter.use_tracing %}
    trace_attempt = None
    if tracer_provider is not None:
        middlewares.append(trace_requests(tracer_provider))
        trace_attempt = attempt_tracer(tracer_provider)
{%- endif %}
{%- if cookiecutter.use_metrics %}
    metrics = Metrics(CollectorRegistry())
{%- endif %}
    limit = InFlightLimit(settings.max_in_flight) if settings.max_in_flight > 0 else None
    middlewares.append(request_middleware(limit{% if cookiecutter.use_metrics %}, metrics{% endif %}))
    app = web.Application(
        middlewares=middlewares,
        client_max_size=settings.max_body_bytes,
        # Applies however the app is served: ``python -m``, gunicorn or the test client.
        handler_args={
            "access_log_class": AccessLogger,
            "keepalive_timeout": settings.keepalive_timeout,
            "lingering_time": LINGERING_SECONDS,
        },
    )
    app[SETTINGS] = settings
    app[LIFECYCLE] = Lifecycle()
    app[OPENAPI] = dumps(document())
{%- if cookiecutter.use_metrics %}
    app[METRICS] = metrics
{%- endif %}
    app[INSTRUMENTS] = Instruments(
{%- if cookiecutter.use_metrics %}observer=metrics{% endif %}
{%- if cookiecutter.use_metrics and cookiecutter.use_tracing %}, {% endif %}
{%- if cookiecutter.use_tracing %}trace_attempt=trace_attempt{% endif %})
    if upstream is None:
        open_upstream = open_{{ cookiecutter.__upstream_module }}
        app.cleanup_ctx.append(client_context(UPSTREAM, open_upstream))
    else:
        app[UPSTREAM] = upstream
    add_routes(app)
{%- if cookiecutter.use_metrics %}
    add_metrics_route(app, metrics)
{%- endif %}
    return app


def client_context(key: web.AppKey[Client], open_client: OpenClient[Client]) -> CleanupContext:
    """Open a client when the app starts, keep it under ``key``, close it when the app stops.

    The client gets the app's instruments, so metrics and tracing see its calls.
    """

    async def lifetime(app: web.Application) -> AsyncIterator[None]:
        async with open_client(app[SETTINGS], app[INSTRUMENTS]) as client:
            app[key] = client
            yield

    return lifetime


def serving_app(settings: Settings) -> web.Application:
    """The app as a server runs it (``python -m`` or gunicorn): the garbage collector set for
    serving, and the SIGTERM drain, if set.
{%- if cookiecutter.use_tracing %}

    Tracing as the ``OTEL_*`` variables say: its spans are flushed when the app stops.
    """
{%- else %}"""{% endif %}
{%- if cookiecutter.use_tracing %}
    tracer_provider = provider_from_environment()
    app = create_app(settings, tracer_provider=tracer_provider)
    if tracer_provider is not None:
        app.on_cleanup.append(flush_on_cleanup(tracer_provider))
{%- else %}
    app = create_app(settings)
{%- endif %}
    tune_for_serving(app)
    if settings.shutdown_drain_seconds > 0:
        drain_on_sigterm(app, app[LIFECYCLE], settings.shutdown_drain_seconds)
    return app


async def app_factory() -> web.Application:
    """Entry point for gunicorn's ``aiohttp.GunicornWebWorker``: settings from the environment."""
    quiet_malformed_requests()
    return serving_app(Settings.from_env())
