"""OpenTelemetry tracing: a server span per request, a client span per upstream attempt, the
W3C ``traceparent`` continued from callers and passed on to upstreams.

Configured only by the standard ``OTEL_*`` variables. Nothing configured means no tracing:
without ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``..._TRACES_ENDPOINT``) the SDK is not started,
so a laptop run neither pays for spans nor logs a stream of connection errors to
localhost:4318. ``OTEL_SDK_DISABLED=true`` or ``OTEL_TRACES_EXPORTER=none`` turn it off too.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode
from yarl import URL

from ..clients.core import TraceAttempt
from ..settings import SettingsError
from .request_labels import PROBES, UNMATCHED, method_label, route_template

logger = logging.getLogger(__name__)

DEFAULT_SERVICE_NAME = "{{ cookiecutter.project_slug }}"
ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")


class TracingSettingsError(SettingsError):
    """An ``OTEL_*`` variable asks for something this service does not ship."""


def tracing_wanted() -> bool:
    """Whether the ``OTEL_*`` variables ask for traces; raises on a choice not shipped here."""
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporter = os.environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower()
    if exporter == "none":
        return False
    if exporter != "otlp":
        raise TracingSettingsError(
            f"OTEL_TRACES_EXPORTER={exporter} is invalid: expected otlp or none"
        )
    protocol = os.environ.get(
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
    )
    if protocol not in (None, "http/protobuf"):
        raise TracingSettingsError(
            f"OTLP protocol {protocol} is invalid: expected http/protobuf (OTLP over HTTP)"
        )
    return any(os.environ.get(name) for name in ENDPOINT_VARIABLES)


def provider_from_environment() -> TracerProvider | None:
    """A provider exporting OTLP over HTTP as the ``OTEL_*`` variables say; None when off.

    The SDK reads them itself: the endpoint, ``OTEL_SERVICE_NAME`` and resource attributes,
    the sampler (``OTEL_TRACES_SAMPLER``, ``..._ARG``), the batch sizes and delays.
    """
    if not tracing_wanted():
        logger.info("tracing off: set OTEL_EXPORTER_OTLP_ENDPOINT to send traces")
        return None
    resource = Resource.create()
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: DEFAULT_SERVICE_NAME}))
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider


def flush_on_cleanup(provider: TracerProvider) -> Callable[[web.Application], Awaitable[None]]:
    """An ``on_cleanup`` callback: export the spans still queued, then stop the provider, so
    none is lost on a graceful shutdown (SIGTERM included)."""

    async def flush(app: web.Application) -> None:
        await asyncio.to_thread(provider.shutdown)

    return flush


def attempt_tracer(provider: TracerProvider) -> TraceAttempt:
    """For the client core: a client span per attempt sent to an upstream, its context sent in
    ``traceparent``. Under a request that is not sampled, no span is made (none would be
    recorded): the caller's context and decision are passed on as they are."""
    tracer = provider.get_tracer(__name__)

    def traced_attempt(
        upstream: str, method: str, url: URL
    ) -> AbstractContextManager[Mapping[str, str]]:
        if trace.get_current_span().is_recording():
            return _client_span(tracer, upstream, method, url)
        headers: dict[str, str] = {}
        propagate.inject(headers)
        return nullcontext(headers)

    return traced_attempt


@contextmanager
def _client_span(
    tracer: trace.Tracer, upstream: str, method: str, url: URL
) -> Iterator[Mapping[str, str]]:
    """``url`` comes without its query: a query string may carry personal data."""
    attributes = {
        "http.request.method": method,
        "server.address": url.host or "",
        "url.full": str(url),
        "upstream": upstream,
    }
    span = tracer.start_span(method, kind=SpanKind.CLIENT, attributes=attributes)
    # The span goes out in the headers; it need not become the current span for that.
    headers: dict[str, str] = {}
    propagate.inject(headers, context=trace.set_span_in_context(span))
    try:
        yield headers
    except Exception as error:  # an upstream error, timeout or refused answer
        span.set_status(Status(StatusCode.ERROR, type(error).__name__))
        raise
    finally:
        span.end()


def trace_requests(provider: TracerProvider) -> Middleware:
    """A middleware giving each request (probes aside) a server span named by method and route
    template, continuing the caller's W3C trace context."""
    tracer = provider.get_tracer(__name__)

    @web.middleware
    async def traced(request: web.Request, handler: Handler) -> web.StreamResponse:
        route = route_template(request)
        if route in PROBES:
            return await handler(request)
        method = method_label(request.method)
        name = method
        attributes = {"http.request.method": method, "url.path": request.path}
        if route != UNMATCHED:
            name = f"{method} {route}"
            attributes["http.route"] = route
        # start_span and attach: what start_as_current_span does, without its two
        # context-manager layers, which every request, sampled or not, would pay.
        span = tracer.start_span(
            name,
            context=propagate.extract(request.headers),
            kind=SpanKind.SERVER,
            attributes=attributes,
        )
        token = otel_context.attach(trace.set_span_in_context(span))
        try:
            response = await handler(request)
        except web.HTTPException as exc:  # redirects: errors come as JSON responses
            span.set_attribute("http.response.status_code", exc.status)
            raise
        else:
            span.set_attribute("http.response.status_code", response.status)
            if response.status >= 500:
                span.set_status(Status(StatusCode.ERROR))
            return response
        finally:
            otel_context.detach(token)
            span.end()

    return traced


class TraceContextFilter(logging.Filter):
    """Stamp records logged inside a traced request with its ``trace_id`` and ``span_id``."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            record.trace_id = format(context.trace_id, "032x")
            record.span_id = format(context.span_id, "016x")
        return True
