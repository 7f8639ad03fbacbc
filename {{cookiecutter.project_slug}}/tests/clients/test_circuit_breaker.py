"""The circuit breaker's states, driven by a fake clock instead of real waiting."""

from __future__ import annotations

import pytest

from {{ cookiecutter.package_name }}.clients.circuit_breaker import CircuitBreaker
from {{ cookiecutter.package_name }}.common.errors import UpstreamCircuitOpenError


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def breaker(clock: FakeClock) -> CircuitBreaker:
    return CircuitBreaker(threshold=3, cooldown=30.0, clock=clock)


def open_then_wait_out_the_cooldown(breaker: CircuitBreaker, clock: FakeClock) -> None:
    for _ in range(3):
        breaker.record_failure()
    clock.now += 30.0


def test_stays_closed_below_the_threshold(breaker: CircuitBreaker) -> None:
    for _ in range(2):
        breaker.before_call()
        breaker.record_failure()

    breaker.before_call()
    assert not breaker.is_open


def test_a_success_resets_the_failure_count(breaker: CircuitBreaker) -> None:
    for _ in range(2):
        breaker.record_failure()
    breaker.record_success()
    for _ in range(2):
        breaker.record_failure()

    assert not breaker.is_open


def test_opens_at_the_threshold_and_fails_fast(breaker: CircuitBreaker) -> None:
    for _ in range(3):
        breaker.record_failure()

    assert breaker.is_open
    with pytest.raises(UpstreamCircuitOpenError):
        breaker.before_call()


def test_after_the_cooldown_one_probe_goes_through(
    breaker: CircuitBreaker, clock: FakeClock
) -> None:
    open_then_wait_out_the_cooldown(breaker, clock)

    breaker.before_call()  # the probe
    with pytest.raises(UpstreamCircuitOpenError):
        breaker.before_call()  # others still fail fast while it runs


def test_successful_probe_closes_the_circuit(breaker: CircuitBreaker, clock: FakeClock) -> None:
    open_then_wait_out_the_cooldown(breaker, clock)
    breaker.before_call()

    breaker.record_success()

    assert not breaker.is_open
    breaker.before_call()


def test_failed_probe_reopens_for_another_cooldown(
    breaker: CircuitBreaker, clock: FakeClock
) -> None:
    open_then_wait_out_the_cooldown(breaker, clock)
    breaker.before_call()

    breaker.record_failure()

    with pytest.raises(UpstreamCircuitOpenError):
        breaker.before_call()
    clock.now += 30.0
    breaker.before_call()


def test_cancelled_probe_lets_the_next_call_probe(
    breaker: CircuitBreaker, clock: FakeClock
) -> None:
    open_then_wait_out_the_cooldown(breaker, clock)
    breaker.before_call()

    breaker.release_probe()

    breaker.before_call()
