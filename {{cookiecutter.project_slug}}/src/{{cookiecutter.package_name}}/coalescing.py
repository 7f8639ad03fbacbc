"""Coalescing: concurrent calls for the same key share one call and its outcome.

A hot item asked for by many requests at once costs the upstream one request, and every
waiter gets the same answer, success or error. A waiter that gives up (its own time budget, a
batch that failed) leaves the call running for the others; when the last waiter is gone, the
call is cancelled. Nothing is kept once the call ends: this is not a cache.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")


class _SharedCall(Generic[T]):
    __slots__ = ("future", "waiters")

    def __init__(self, future: asyncio.Future[T]) -> None:
        self.future = future
        self.waiters = 0


class Coalescer(Generic[T]):
    """Runs ``call()`` once per key at a time, however many callers ask for that key."""

    def __init__(self) -> None:
        self._calls: dict[Hashable, _SharedCall[T]] = {}

    @property
    def in_flight(self) -> int:
        """Distinct calls running now."""
        return len(self._calls)

    async def run(self, key: Hashable, call: Callable[[], Awaitable[T]]) -> T:
        """The outcome of the call for ``key``: a running one if there is one, else a new one.

        The call runs in its own task, in a copy of the first caller's context (its request id
        and trace are the ones the upstream sees).
        """
        shared = self._calls.get(key)
        if shared is None:
            shared = _SharedCall(asyncio.ensure_future(call()))
            self._calls[key] = shared
            shared.future.add_done_callback(lambda done: self._ended(key, shared, done))
        shared.waiters += 1
        try:
            return await asyncio.shield(shared.future)
        finally:
            shared.waiters -= 1
            if shared.waiters == 0 and not shared.future.done():
                self._forget(key, shared)  # a caller arriving now starts afresh
                shared.future.cancel()  # nobody wants the answer any more

    def _ended(self, key: Hashable, shared: _SharedCall[T], done: asyncio.Future[T]) -> None:
        self._forget(key, shared)
        if not done.cancelled():
            done.exception()  # seen here, so a failure nobody awaited is not reported as lost

    def _forget(self, key: Hashable, shared: _SharedCall[T]) -> None:
        if self._calls.get(key) is shared:
            del self._calls[key]
