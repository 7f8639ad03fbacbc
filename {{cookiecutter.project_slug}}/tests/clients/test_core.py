"""The client core on its own: what an observer sees of its calls. What the core may import is
checked by import-linter (``[tool.importlinter]`` in pyproject.toml)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest
from yarl import URL

from {{ cookiecutter.package_name }}.clients import {{ cookiecutter.__upstream_class }}
from {{ cookiecutter.package_name }}.clients.core import (
    MISS,
    Instruments,
    Miss,
    Outcome,
    UpstreamPolicy,
)
from {{ cookiecutter.package_name }}.common.errors import (
    UpstreamNotFoundError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
)

from ..fake_upstream import FakeUpstream, Reply


@dataclass
class RecordingObserver:
    """Keeps what the core reports, in order."""

    attempts: list[tuple[str, Outcome]] = field(default_factory=list)
    retries: list[str] = field(default_factory=list)
    circuit: list[tuple[str, bool]] = field(default_factory=list)
    cache_hits: list[bool] = field(default_factory=list)
{%- if cookiecutter.upstream_auth == "oauth2_client_credentials" %}
    token_requests: list[tuple[str, str]] = field(default_factory=list)
{%- endif %}

    def attempt_finished(self, upstream: str, outcome: Outcome, seconds: float) -> None:
        assert seconds >= 0
        self.attempts.append((upstream, outcome))

    def retrying(self, upstream: str) -> None:
        self.retries.append(upstream)

    def circuit_changed(self, upstream: str, is_open: bool) -> None:
        self.circuit.append((upstream, is_open))

    def cache_used(self, upstream: str, hit: bool) -> None:
        self.cache_hits.append(hit)
{%- if cookiecutter.upstream_auth == "oauth2_client_credentials" %}

    def token_requested(self, upstream: str, outcome: str) -> None:
        self.token_requests.append((upstream, outcome))
{%- endif %}


class DictCache:
    """The smallest ``ResponseCache``: keeps what it is offered, with its Cache-Control."""

    def __init__(self) -> None:
        self.kept: dict[str, tuple[bytes, str | None]] = {}
        self.forgotten: list[str] = []
        self.closed = False

    async def lookup(self, key: str) -> bytes | Miss:
        return self.kept[key][0] if key in self.kept else MISS

    def store(self, key: str, body: bytes, cache_control: str | None) -> None:
        self.kept[key] = (body, cache_control)

    async def forget(self, key: str) -> None:
        self.forgotten.append(key)
        self.kept.pop(key, None)

    async def close(self) -> None:
        self.closed = True


Client = {{ cookiecutter.__upstream_class }}
NO_WAIT = UpstreamPolicy(timeout=2.0, retries=2, retry_backoff=0.0)
NAME = Client.name
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.fixture(autouse=True)
def scripted(fake_upstream: FakeUpstream) -> None:
    """These tests are about the core's mechanics: every answer they do not queue is this one.
    The Example API itself is exercised in ``test_{{ cookiecutter.__upstream_module }}.py``."""
    fake_upstream.default = Reply(json={"id": "default"})


async def test_observer_sees_every_attempt_and_every_retry(fake_upstream: FakeUpstream) -> None:
    fake_upstream.queue(Reply(status=503), Reply(status=502), Reply(json={"id": "1"}))
    observer = RecordingObserver()

    async with Client.open(fake_upstream.base_url, NO_WAIT, Instruments(observer)) as api:
        await api.get_json("items", "1")

    assert observer.attempts == [(NAME, "error"), (NAME, "error"), (NAME, "ok")]
    assert observer.retries == [NAME, NAME]


async def test_a_cache_is_asked_first_and_offered_each_200_with_its_cache_control(
    fake_upstream: FakeUpstream,
) -> None:
    cache, observer = DictCache(), RecordingObserver()
    cached = UpstreamPolicy(retries=0, cache=lambda name: cache)
    fake_upstream.queue(
        Reply(body=b'{"id":"1"}', headers={"Cache-Control": "max-age=5"}),
        Reply(status=404),
    )

    async with Client.open(fake_upstream.base_url, cached, Instruments(observer)) as api:
        first = await api.get_json("items", "1")
        second = await api.get_json("items", "1")
        with pytest.raises(UpstreamNotFoundError):
            await api.get_json("items", "2")

    assert first == second == {"id": "1"}
    assert fake_upstream.requests == ["1", "2"]
    # The raw body is kept: a hit is validated once, from bytes, like an answer off the wire.
    assert cache.kept == {f"{fake_upstream.base_url}/items/1": (b'{"id":"1"}', "max-age=5")}
    assert observer.cache_hits == [False, True, False]
    assert cache.closed  # closing the client closes its cache


@pytest.mark.looptime
async def test_observer_tells_not_found_from_timeout(fake_upstream: FakeUpstream) -> None:
    fake_upstream.queue(Reply(status=404), Reply(hang=True))
    observer = RecordingObserver()
    impatient = UpstreamPolicy(timeout=0.2, retries=0)

    async with Client.open(fake_upstream.base_url, impatient, Instruments(observer)) as api:
        with pytest.raises(UpstreamNotFoundError):
            await api.get_json("items", "1")
        with pytest.raises(UpstreamTimeoutError):
            await api.get_json("items", "2")

    assert observer.attempts == [(NAME, "not_found"), (NAME, "timeout")]
    assert observer.retries == []


async def test_observer_sees_the_circuit_start_closed_open_and_close(
    fake_upstream: FakeUpstream,
) -> None:
    fake_upstream.queue(Reply(status=500), Reply(json={"id": "1"}))
    observer = RecordingObserver()
    fragile = UpstreamPolicy(retries=0, circuit_breaker_threshold=1, circuit_breaker_cooldown=0.05)

    async with Client.open(fake_upstream.base_url, fragile, Instruments(observer)) as api:
        with pytest.raises(UpstreamUnavailableError):
            await api.get_json("items", "1")
        await asyncio.sleep(0.06)  # past the cool-down: the next call is the probe
        await api.get_json("items", "1")

    assert observer.circuit == [(NAME, False), (NAME, True), (NAME, False)]


async def test_a_tracer_wraps_each_attempt_adds_its_headers_and_sees_its_failure(
    fake_upstream: FakeUpstream,
) -> None:
    fake_upstream.queue(Reply(status=503), Reply(json={"id": "1"}))
    traced: list[tuple[str, str, str]] = []

    @contextmanager
    def trace_attempt(upstream: str, method: str, url: URL) -> Iterator[Mapping[str, str]]:
        try:
            yield {"traceparent": TRACEPARENT}
        except Exception as error:
            traced.append((upstream, f"{method} {url}", type(error).__name__))
            raise
        traced.append((upstream, f"{method} {url}", "ok"))

    instruments = Instruments(trace_attempt=trace_attempt)
    async with Client.open(fake_upstream.base_url, NO_WAIT, instruments) as api:
        await api.get_json("items", "1", params={"email": "someone@example.com"})

    # The query stays out of the trace: it may carry personal data.
    sent = f"GET {fake_upstream.base_url}/items/1"
    assert traced == [(NAME, sent, "_RetryableStatusError"), (NAME, sent, "ok")]
    assert fake_upstream.traceparents == [TRACEPARENT, TRACEPARENT]
