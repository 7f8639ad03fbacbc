"""Prometheus metrics, served at ``GET /metrics``; their names and labels are public.

What is counted: every request but the probes and ``/metrics`` itself (see
``request_labels``), and every attempt sent to an upstream. Counts are exact.

Under several worker processes (gunicorn) each scrape must report the totals of all of them:
with ``PROMETHEUS_MULTIPROC_DIR`` set (``gunicorn.conf.py`` sets it) values live in files in
that directory and a scrape sums them, prometheus-client's multiprocess mode. In one process,
the series updated on every request are ``local_metrics``' plain numbers instead (cheaper).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
{%- if cookiecutter.upstream_auth == "oauth2_client_credentials" %}
from typing import Literal
{%- endif %}

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, multiprocess
from prometheus_client.aiohttp import make_aiohttp_handler

from ..clients.core import Outcome
from .local_metrics import LocalGauge, LocalHistogram
from .request_labels import PROBES, method_label

MULTIPROCESS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
# Seconds: from a cache-hit fast answer to the default upstream time budget (10 s).
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """The service's metrics, and the label children resolved once each, not per request."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        # Updated on every request: plain numbers in one process, shared files under gunicorn.
        shared = multiprocess_mode()
        histogram = Histogram if shared else LocalHistogram
        self.request_duration: Histogram | LocalHistogram = histogram(
            "http_server_request_duration_seconds",
            "Time to answer a request, by method, route template and status",
            ["method", "route", "status"],
            buckets=REQUEST_BUCKETS,
            registry=registry,
        )
        in_flight = ("http_server_requests_in_flight", "Requests being answered now")
        self.requests_in_flight: Gauge | LocalGauge = (
            Gauge(*in_flight, multiprocess_mode="livesum", registry=registry)
            if shared
            else LocalGauge(*in_flight, registry=registry)
        )
        self.upstream_duration: Histogram | LocalHistogram = histogram(
            "upstream_request_duration_seconds",
            "Time of each attempt sent to an upstream, by outcome",
            ["upstream", "outcome"],
            buckets=REQUEST_BUCKETS,
            registry=registry,
        )
        self.upstream_retries = Counter(
            "upstream_retries",
            "Attempts an upstream call made after its first",
            ["upstream"],
            registry=registry,
        )
        self.upstream_circuit_open = Gauge(
            "upstream_circuit_open",
            "1 while an upstream's circuit breaker refuses calls (in any worker), else 0",
            ["upstream"],
            multiprocess_mode="livemax",
            registry=registry,
        )
        self.cache_requests = Counter(
            "cache_requests",
            "Lookups in the response cache, by result (hit or miss); none without a cache",
            ["result"],
            registry=registry,
        )
{%- if cookiecutter.upstream_auth == "oauth2_client_credentials" %}
        self.upstream_token_requests = Counter(
            "upstream_token_requests",
            "Requests for an access token to an upstream's token endpoint, by outcome",
            ["upstream", "outcome"],
            registry=registry,
        )
{%- endif %}
        self._cache_results: dict[bool, Callable[[], None]] = {}
        self._request_children: dict[tuple[str, str, int], Callable[[float], None]] = {}
        self._attempt_children: dict[tuple[str, str], Callable[[float], None]] = {}

    # Called by the service's middleware around each request.

    def request_started(self, route: str) -> float | None:
        """Count a request in flight; when it started, or None if it is not counted (probes)."""
        if route in PROBES:
            return None
        self.requests_in_flight.inc()
        return time.perf_counter()

    def request_finished(self, method: str, route: str, status: int, started: float) -> None:
        """A counted request was answered: out of flight, and timed with its status."""
        seconds = time.perf_counter() - started
        self.requests_in_flight.dec()
        observe = self._request_children.get((method, route, status))
        if observe is None:
            observe = self._request_child(method, route, status)
        observe(seconds)

    def request_abandoned(self) -> None:
        """A counted request got no answer (cancelled): out of flight, not timed."""
        self.requests_in_flight.dec()

    def _request_child(self, method: str, route: str, status: int) -> Callable[[float], None]:
        label = method_label(method)
        observe = self.request_duration.labels(label, route, str(status)).observe
        if label == method:  # other methods are not remembered: their names are unbounded
            self._request_children[method, route, status] = observe
        return observe

    # The client core's UpstreamObserver: told of each attempt, retry and breaker change.

    def attempt_finished(self, upstream: str, outcome: Outcome, seconds: float) -> None:
        observe = self._attempt_children.get((upstream, outcome))
        if observe is None:
            observe = self.upstream_duration.labels(upstream, outcome).observe
            self._attempt_children[upstream, outcome] = observe
        observe(seconds)

    def retrying(self, upstream: str) -> None:
        self.upstream_retries.labels(upstream).inc()

    def circuit_changed(self, upstream: str, is_open: bool) -> None:
        self.upstream_circuit_open.labels(upstream).set(1 if is_open else 0)

    def cache_used(self, upstream: str, hit: bool) -> None:
        count = self._cache_results.get(hit)
        if count is None:
            count = self.cache_requests.labels("hit" if hit else "miss").inc
            self._cache_results[hit] = count
        count()

{%- if cookiecutter.upstream_auth == "oauth2_client_credentials" %}

    def token_requested(self, upstream: str, outcome: Literal["ok", "error", "timeout"]) -> None:
        self.upstream_token_requests.labels(upstream, outcome).inc()
{%- endif %}


def multiprocess_mode() -> bool:
    """Whether values go to files shared by several workers (prometheus-client reads the same
    variable when it is imported)."""
    return MULTIPROCESS_DIR_VARIABLE in os.environ


def exposition_registry(metrics: Metrics) -> CollectorRegistry:
    """What a scrape reads: this process's registry, or all workers' files in multiprocess mode."""
    if not multiprocess_mode():
        return metrics.registry
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return registry


def add_metrics_route(app: web.Application, metrics: Metrics) -> None:
    """``GET /metrics`` in the Prometheus text format, by prometheus-client's own handler."""
    app.router.add_get("/metrics", make_aiohttp_handler(exposition_registry(metrics)))
