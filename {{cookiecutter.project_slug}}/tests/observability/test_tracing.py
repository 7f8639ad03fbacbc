"""Tracing: spans named by route template, W3C context continued and passed upstream, trace ids
in log lines, and what the OTEL_* variables switch on and off."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from unittest.mock import AsyncMock

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from pytest_aiohttp import AiohttpClient

from {{ cookiecutter.package_name }}.app import create_app
from {{ cookiecutter.package_name }}.common.errors import UpstreamUnavailableError
from {{ cookiecutter.package_name }}.observability.logs import JsonFormatter
from {{ cookiecutter.package_name }}.observability.tracing import (
    DEFAULT_SERVICE_NAME,
    TraceContextFilter,
    TracingSettingsError,
    provider_from_environment,
)
from {{ cookiecutter.package_name }}.settings import Settings

from ..fake_upstream import FakeUpstream

Client = TestClient[web.Request, web.Application]
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"


@pytest.fixture
def exported() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    yield exporter
    exporter.shutdown()


@pytest.fixture
def provider(exported: InMemorySpanExporter) -> Iterator[TracerProvider]:
    """A provider that keeps finished spans in memory, exported as each one ends."""
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exported))
    yield provider
    provider.shutdown()


@pytest.fixture
async def traced_client(
    aiohttp_client: AiohttpClient, settings: Settings, upstream: AsyncMock, provider: TracerProvider
) -> Client:
    return await aiohttp_client(create_app(settings, upstream=upstream, tracer_provider=provider))


def hex_ids(span: ReadableSpan) -> tuple[str, str]:
    context = span.get_span_context()
    assert context is not None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


async def test_server_span_is_named_by_route_template_and_continues_the_callers_trace(
    traced_client: Client, upstream: AsyncMock, exported: InMemorySpanExporter
) -> None:
    upstream.get_item.return_value = {"id": "7"}

    response = await traced_client.get("/api/items/7", headers={"traceparent": TRACEPARENT})

    assert response.status == 200
    (span,) = exported.get_finished_spans()
    assert span.name == "GET /api/items/{item_id}"
    assert span.kind is SpanKind.SERVER
    assert hex_ids(span)[0] == TRACE_ID
    assert span.parent is not None
    assert format(span.parent.span_id, "016x") == PARENT_ID
    assert span.attributes is not None
    assert span.attributes["http.route"] == "/api/items/{item_id}"
    assert span.attributes["http.response.status_code"] == 200


async def test_upstream_attempt_is_a_client_span_whose_context_goes_upstream(
    aiohttp_client: AiohttpClient,
    upstream_settings: Settings,
    fake_upstream: FakeUpstream,
    provider: TracerProvider,
    exported: InMemorySpanExporter,
) -> None:
    fake_upstream.add({"id": 1, "name": "one"})
    client = await aiohttp_client(create_app(upstream_settings, tracer_provider=provider))

    assert (await client.get("/api/items/1")).status == 200

    spans = {span.kind: span for span in exported.get_finished_spans()}
    server, upstream_call = spans[SpanKind.SERVER], spans[SpanKind.CLIENT]
    assert upstream_call.parent is not None
    assert format(upstream_call.parent.span_id, "016x") == hex_ids(server)[1]
    assert upstream_call.attributes is not None
    assert upstream_call.attributes["url.full"] == f"{fake_upstream.base_url}/items/1"
    trace_id, span_id = hex_ids(upstream_call)
    (sent,) = fake_upstream.traceparents
    assert sent is not None
    assert sent.startswith(f"00-{trace_id}-{span_id}-")  # then the trace flags


async def test_probes_are_not_traced_and_an_unrouted_path_is_named_by_method_alone(
    traced_client: Client, exported: InMemorySpanExporter
) -> None:
    for path in ("/health", "/health/live", "/health/ready", "/no/such/path"):
        await traced_client.get(path)

    assert [span.name for span in exported.get_finished_spans()] == ["GET"]


async def test_a_5xx_answer_marks_the_span_as_an_error(
    traced_client: Client, upstream: AsyncMock, exported: InMemorySpanExporter
) -> None:
    upstream.get_item.side_effect = UpstreamUnavailableError("down")

    assert (await traced_client.get("/api/items/7")).status == 502

    (span,) = exported.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR


def test_log_lines_inside_a_span_carry_its_trace_and_span_ids(provider: TracerProvider) -> None:
    with provider.get_tracer(__name__).start_as_current_span("request") as span:
        record = logging.LogRecord("x", logging.INFO, __file__, 1, "inside", None, None)
        TraceContextFilter().filter(record)
    outside = logging.LogRecord("x", logging.INFO, __file__, 1, "outside", None, None)
    TraceContextFilter().filter(outside)

    line = json.loads(JsonFormatter().format(record))
    context = span.get_span_context()
    assert (line["trace_id"], line["span_id"]) == (
        format(context.trace_id, "032x"),
        format(context.span_id, "016x"),
    )
    assert "trace_id" not in json.loads(JsonFormatter().format(outside))
    assert trace.get_current_span() is trace.INVALID_SPAN


@pytest.fixture
def otel_environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No OTEL_* variable from the machine running the tests."""
    for name in [name for name in os.environ if name.startswith("OTEL_")]:
        monkeypatch.delenv(name)
    return monkeypatch


def test_nothing_configured_means_no_tracing_and_one_line_saying_so(
    otel_environment: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        assert provider_from_environment() is None
    assert "OTEL_EXPORTER_OTLP_ENDPOINT" in caplog.text


@pytest.mark.parametrize(
    ("variable", "value"), [("OTEL_SDK_DISABLED", "true"), ("OTEL_TRACES_EXPORTER", "none")]
)
def test_the_standard_off_switches_win_over_an_endpoint(
    otel_environment: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    otel_environment.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    otel_environment.setenv(variable, value)
    assert provider_from_environment() is None


@pytest.mark.parametrize(
    ("service_name", "expected"), [(None, DEFAULT_SERVICE_NAME), ("checkout", "checkout")]
)
def test_an_endpoint_turns_tracing_on_named_after_the_project_unless_told(
    otel_environment: pytest.MonkeyPatch, service_name: str | None, expected: str
) -> None:
    otel_environment.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    if service_name is not None:
        otel_environment.setenv("OTEL_SERVICE_NAME", service_name)

    provider = provider_from_environment()

    assert provider is not None
    assert provider.resource.attributes[SERVICE_NAME] == expected
    provider.shutdown()


@pytest.mark.parametrize(
    ("variable", "value"),
    [("OTEL_TRACES_EXPORTER", "zipkin"), ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")],
)
def test_an_exporter_not_shipped_is_refused_naming_the_variable(
    otel_environment: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    otel_environment.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    otel_environment.setenv(variable, value)
    with pytest.raises(TracingSettingsError, match=value):
        provider_from_environment()
{%- if cookiecutter.upstream_auth == "oauth2_client_credentials" %}


async def test_each_token_request_is_a_client_span_of_its_own(
    aiohttp_client: AiohttpClient,
    upstream_settings: Settings,
    fake_upstream: FakeUpstream,
    provider: TracerProvider,
    exported: InMemorySpanExporter,
) -> None:
    fake_upstream.add({"id": 1, "name": "one"}, {"id": 2, "name": "two"})
    client = await aiohttp_client(create_app(upstream_settings, tracer_provider=provider))

    assert (await client.get("/api/items/1")).status == 200
    assert (await client.get("/api/items/2")).status == 200  # the token is reused

    clients = [span for span in exported.get_finished_spans() if span.kind == SpanKind.CLIENT]
    urls = [span.attributes["url.full"] for span in clients if span.attributes is not None]
    assert urls == [
        upstream_settings.upstream_token_url,
        f"{fake_upstream.base_url}/items/1",
        f"{fake_upstream.base_url}/items/2",
    ]
    assert clients[0].name == "POST"
{%- endif %}
