"""Each of the benchmark's ablations takes out the piece it names, and only that piece.

A variant measured as "the default without X" is only worth its figure if it really lacks X
and still has everything else: started against the fake upstream, each must still answer the
API, and differ from the default only where its name says.
"""

from __future__ import annotations

import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import TEMPLATE_ROOT, Bake, Install
from matrix import DEFAULT_PYTHON
from support.prometheus import scrape, value

sys.path.insert(0, str(TEMPLATE_ROOT / "benchmarks"))
import run as benchmark
from ablations import ABLATIONS, FIXED_REQUEST_ID, PADDING, PADDING_BYTES, replace

SERVER = "my-async-service"
FRESH = "a new one per request"
REQUESTS = "http_server_request_duration_seconds_count"
ATTEMPTS = "upstream_request_duration_seconds_count"

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Expected:
    """What the service with one piece taken out still does."""

    request_id: str | None = FRESH  # the X-Request-ID answers carry (None: none)
    server: str | None = SERVER  # the Server header (None: aiohttp's own)
    requests_counted: bool = True
    attempts_counted: bool = True


EXPECTED = {
    "no middleware": Expected(request_id=None, server=None, requests_counted=False),
    "no-op middleware": Expected(request_id=None, server=None, requests_counted=False),
    "bare client": Expected(attempts_counted=False),
    "fixed request id": Expected(request_id=FIXED_REQUEST_ID),
    f"{PADDING_BYTES} more response bytes": Expected(server=SERVER + PADDING),
    "default GC": Expected(),  # the collector's thresholds cannot be seen from outside
}


@pytest.fixture(scope="module")
def service_python(bake: Bake, install: Install) -> Path:
    return install(bake(), DEFAULT_PYTHON)


def get(url: str) -> tuple[bytes, dict[str, str]]:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return answer.read(), dict(answer.headers)


def test_every_ablation_has_its_expectations() -> None:
    assert set(EXPECTED) == set(ABLATIONS)
    assert len(PADDING.encode()) == PADDING_BYTES  # what the ablation's name says


def test_an_ablation_of_a_renamed_piece_stops_instead_of_measuring_the_default() -> None:
    module = SimpleNamespace(tune_for_serving=print)
    replace(module, "tune_for_serving", len)
    assert module.tune_for_serving is len
    with pytest.raises(SystemExit, match="no 'tune_for_the_server'"):
        replace(module, "tune_for_the_server", len)
    assert not hasattr(module, "tune_for_the_server")


@pytest.mark.parametrize("name", sorted(ABLATIONS))
def test_ablation_takes_out_only_what_it_names(
    service_python: Path, upstream: str, name: str
) -> None:
    """Started exactly as the benchmark starts it (its variant and its ``server``)."""
    expected = EXPECTED[name]
    (variant,) = [
        variant
        for variant in benchmark.ablated_variants(str(service_python))
        if variant.name == f"{benchmark.ABLATED} {name}"
    ]
    with benchmark.server(variant, upstream) as (_, url, _):
        first, first_headers = get(url + "/api/items/7")
        second, second_headers = get(url + "/api/items/8")
        samples = scrape(url)

    assert (first, second) == (b'{"id":"7","name":"item 7"}', b'{"id":"8","name":"item 8"}')
    if expected.server is None:
        assert "aiohttp/" in first_headers["Server"]
    else:
        assert first_headers["Server"] == expected.server
    ids = {first_headers.get("X-Request-ID"), second_headers.get("X-Request-ID")}
    if expected.request_id == FRESH:
        assert None not in ids and len(ids) == 2
    else:
        assert ids == {expected.request_id}
    requests = value(samples, REQUESTS, method="GET", route="/api/items/{item_id}", status="200")
    assert requests == (2 if expected.requests_counted else 0)
    attempts = value(samples, ATTEMPTS, upstream="example_api", outcome="ok")
    assert attempts == (2 if expected.attempts_counted else 0)
