"""A histogram and a gauge kept as plain numbers in this process, for the single-process server.

prometheus-client's own metrics are made for threads and for several worker processes: every
update takes a lock and passes through a few layers of calls (about 4,000 machine instructions
for one gauge ``inc``, 8,000 for a histogram ``observe``, counted under callgrind). The service
updates three series on every request, always from its event loop's thread, so here they are
plain numbers, turned into the same Prometheus families only when scraped (the scrape runs on
the event loop too). Under gunicorn the values must live in files shared by the workers:
``metrics.py`` then uses prometheus-client's own classes.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence

from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

INFINITY = float("inf")


class HistogramSeries:
    """One labelled series: how many observations fell in each bucket (the last is +Inf)."""

    __slots__ = ("_bounds", "counts", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self._bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.total = 0.0

    def observe(self, amount: float) -> None:
        # The first bound >= amount: Prometheus buckets count observations "less or equal".
        self.counts[bisect_left(self._bounds, amount)] += 1
        self.total += amount


class LocalHistogram(Collector):
    """Answers ``labels(...).observe(x)`` like prometheus-client's ``Histogram``."""

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str],
        *,
        buckets: Sequence[float],
        registry: CollectorRegistry,
    ) -> None:
        self._name = name
        self._documentation = documentation
        self._labelnames = tuple(labelnames)
        self._bounds = tuple(bound for bound in buckets if bound != INFINITY)
        # Bucket labels written as prometheus-client writes them (its helper is untyped).
        names = [floatToGoString(bound) for bound in self._bounds]  # type: ignore[no-untyped-call]
        self._bucket_names = [*names, "+Inf"]
        self._series: dict[tuple[str, ...], HistogramSeries] = {}
        registry.register(self)

    def labels(self, *values: str) -> HistogramSeries:
        if len(values) != len(self._labelnames):
            raise ValueError(f"{self._name} takes labels {self._labelnames}, got {values}")
        series = self._series.get(values)
        if series is None:
            series = self._series[values] = HistogramSeries(self._bounds)
        return series

    def describe(self) -> list[Metric]:
        return [HistogramMetricFamily(self._name, self._documentation, labels=self._labelnames)]

    def collect(self) -> list[Metric]:
        family = HistogramMetricFamily(self._name, self._documentation, labels=self._labelnames)
        for values, series in self._series.items():
            cumulative, buckets = 0, []
            for bucket_name, count in zip(self._bucket_names, series.counts, strict=True):
                cumulative += count
                buckets.append((bucket_name, float(cumulative)))
            family.add_metric(values, buckets, series.total)
        return [family]


class LocalGauge(Collector):
    """Answers ``inc()`` and ``dec()`` like prometheus-client's ``Gauge`` without labels."""

    def __init__(self, name: str, documentation: str, *, registry: CollectorRegistry) -> None:
        self._name = name
        self._documentation = documentation
        self.value = 0.0
        registry.register(self)

    def inc(self, amount: float = 1.0) -> None:
        self.value += amount

    def dec(self, amount: float = 1.0) -> None:
        self.value -= amount

    def describe(self) -> list[Metric]:
        return [GaugeMetricFamily(self._name, self._documentation)]

    def collect(self) -> list[Metric]:
        return [GaugeMetricFamily(self._name, self._documentation, value=self.value)]
