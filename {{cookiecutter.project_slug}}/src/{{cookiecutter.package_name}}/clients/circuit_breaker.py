"""A small circuit breaker: after repeated upstream failures, fail fast for a cool-down.

Failing fast spares a struggling upstream and answers callers at once (503) instead of making
each of them wait for a timeout. After the cool-down one probe call is let through: success
closes the circuit, failure opens it again.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ..common.errors import UpstreamCircuitOpenError


class CircuitBreaker:
    """Opens after ``threshold`` consecutive failures; probes again after ``cooldown`` seconds."""

    def __init__(
        self,
        threshold: int,
        cooldown: float,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[bool], None] | None = None,
    ) -> None:
        """``on_change(is_open)`` is told each time the circuit opens or closes (for metrics)."""
        self._threshold = threshold
        self._on_change = on_change
        self._cooldown = cooldown
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._probing = False

    @property
    def is_open(self) -> bool:
        return self._opened_at is not None

    def before_call(self) -> None:
        """Raise UpstreamCircuitOpenError unless a call may go through now."""
        if self._opened_at is None:
            return
        if self._probing or self._clock() - self._opened_at < self._cooldown:
            raise UpstreamCircuitOpenError("upstream is failing; not calling it for now")
        self._probing = True  # half-open: this one call is the probe

    def record_success(self) -> None:
        was_open = self._opened_at is not None
        self._failures = 0
        self._opened_at = None
        self._probing = False
        if was_open and self._on_change is not None:
            self._on_change(False)

    def release_probe(self) -> None:
        """The probe ended without a verdict (it was cancelled): allow another one."""
        self._probing = False

    def record_failure(self) -> None:
        self._failures += 1
        self._probing = False
        if self._opened_at is not None or self._failures >= self._threshold:
            was_open = self._opened_at is not None
            self._opened_at = self._clock()
            if not was_open and self._on_change is not None:
                self._on_change(True)
