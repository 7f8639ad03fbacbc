"""The local histogram and gauge must scrape exactly like prometheus-client's own classes."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Gauge, Histogram, generate_latest

from {{ cookiecutter.package_name }}.observability.local_metrics import LocalGauge, LocalHistogram

BUCKETS = (0.005, 0.01, 0.25, 1.0, 10.0)
# Below, on and between the bounds, and past the last one (counted only by +Inf).
OBSERVATIONS = [("GET", 0.0), ("GET", 0.005), ("GET", 0.007), ("POST", 0.25), ("GET", 30.0)]


def scrape(registry: CollectorRegistry) -> list[str]:
    """The exposition text, without the ``_created`` timestamps only prometheus-client writes."""
    lines = generate_latest(registry).decode().splitlines()
    return [line for line in lines if "_created" not in line]


def test_the_histogram_scrapes_like_prometheus_clients_own() -> None:
    local, reference = CollectorRegistry(), CollectorRegistry()
    mine = LocalHistogram("took_seconds", "How long", ["method"], buckets=BUCKETS, registry=local)
    theirs = Histogram("took_seconds", "How long", ["method"], buckets=BUCKETS, registry=reference)

    for method, seconds in OBSERVATIONS:
        mine.labels(method).observe(seconds)
        theirs.labels(method).observe(seconds)

    assert 'took_seconds_bucket{le="+Inf",method="GET"} 4.0' in scrape(local)
    assert scrape(local) == scrape(reference)


def test_the_gauge_scrapes_like_prometheus_clients_own() -> None:
    local, reference = CollectorRegistry(), CollectorRegistry()
    mine = LocalGauge("busy", "Busy now", registry=local)
    theirs = Gauge("busy", "Busy now", registry=reference)

    for gauge in (mine, theirs):
        gauge.inc()
        gauge.inc()
        gauge.dec()

    assert "busy 1.0" in scrape(local)
    assert scrape(local) == scrape(reference)


def test_a_wrong_number_of_labels_is_refused() -> None:
    histogram = LocalHistogram(
        "took_seconds", "How long", ["method"], buckets=BUCKETS, registry=CollectorRegistry()
    )

    with pytest.raises(ValueError, match="takes labels"):
        histogram.labels("GET", "extra")


def test_a_name_registered_twice_is_refused() -> None:
    registry = CollectorRegistry()
    LocalGauge("busy", "Busy now", registry=registry)

    with pytest.raises(ValueError, match="Duplicated"):
        LocalGauge("busy", "Busy now", registry=registry)
