"""Read a started service's /metrics with Prometheus's own parser (prometheus-client's)."""

from __future__ import annotations

import urllib.request

from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(base_url: str) -> Samples:
    """Every sample of one ``GET /metrics`` (on a new connection), by name and labels."""
    with urllib.request.urlopen(f"{base_url}/metrics", timeout=10) as answer:
        assert answer.headers.get_content_type() == "text/plain"
        text = answer.read().decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value; 0 when the series does not exist (yet)."""
    return samples.get((name, frozenset(labels.items())), 0.0)
