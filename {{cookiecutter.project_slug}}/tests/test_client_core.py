"""The client core on its own: what an observer sees, and what the core may depend on."""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from {{ cookiecutter.package_name }}.clients import {{ cookiecutter.__upstream_class }}, core
from {{ cookiecutter.package_name }}.clients.core import Outcome, UpstreamPolicy
from {{ cookiecutter.package_name }}.errors import UpstreamNotFoundError, UpstreamTimeoutError

from .fake_upstream import FakeUpstream, Reply


@dataclass
class RecordingObserver:
    """Keeps what the core reports, in order."""

    attempts: list[tuple[str, Outcome]] = field(default_factory=list)
    retries: list[str] = field(default_factory=list)

    def attempt_finished(self, upstream: str, outcome: Outcome, seconds: float) -> None:
        assert seconds >= 0
        self.attempts.append((upstream, outcome))

    def retrying(self, upstream: str) -> None:
        self.retries.append(upstream)


Client = {{ cookiecutter.__upstream_class }}
NO_WAIT = UpstreamPolicy(timeout=2.0, retries=2, retry_backoff=0.0)
NAME = Client.name


async def test_observer_sees_every_attempt_and_every_retry(fake_upstream: FakeUpstream) -> None:
    fake_upstream.queue(Reply(status=503), Reply(status=502), Reply(json={"id": "1"}))
    observer = RecordingObserver()

    async with Client.open(fake_upstream.base_url, NO_WAIT, observer) as api:
        await api.get_item("1")

    assert observer.attempts == [(NAME, "error"), (NAME, "error"), (NAME, "ok")]
    assert observer.retries == [NAME, NAME]


async def test_observer_tells_not_found_from_timeout(fake_upstream: FakeUpstream) -> None:
    fake_upstream.queue(Reply(status=404), Reply(hang=True))
    observer = RecordingObserver()
    impatient = UpstreamPolicy(timeout=0.2, retries=0)

    async with Client.open(fake_upstream.base_url, impatient, observer) as api:
        with pytest.raises(UpstreamNotFoundError):
            await api.get_item("1")
        with pytest.raises(UpstreamTimeoutError):
            await api.get_item("2")

    assert observer.attempts == [(NAME, "not_found"), (NAME, "timeout")]
    assert observer.retries == []


def test_core_depends_on_nothing_above_it() -> None:
    source = Path(core.__file__).read_text(encoding="utf-8")
    local = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.level > 0:
            names = [node.module] if node.module else [alias.name for alias in node.names]
            local |= {"." * node.level + name for name in names}
    # Not the settings, handlers, middlewares or app: the core can serve any upstream.
    assert local == {"..circuit_breaker", "..errors", "..jsonlib", "..request_ids"}
