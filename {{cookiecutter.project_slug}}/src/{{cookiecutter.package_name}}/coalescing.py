"""Coalescing: concurrent calls for the same key share one call and its outcome.

A hot item asked for by many requests at once costs the upstream one request, and every
waiter gets the same answer, success or error. A waiter that gives up (its own time budget, a
batch that failed) leaves the call running for the others; when the last waiter is gone, the
call is cancelled. Nothing is kept once the call ends: this is not a cache.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Hashable
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class _SharedCall(Generic[T]):
    """One running call and the futures of the callers waiting for it.

    Each caller waits on its own future, so cancelling a caller cancels only that future,
    never the call (what ``asyncio.shield`` does, with one callback hop fewer per call).
    """

    __slots__ = ("task", "waiters")

    def __init__(self, task: asyncio.Task[T]) -> None:
        self.task = task
        self.waiters: list[asyncio.Future[T]] = []


class Coalescer(Generic[T]):
    """Runs ``call()`` once per key at a time, however many callers ask for that key."""

    def __init__(self) -> None:
        self._calls: dict[Hashable, _SharedCall[T]] = {}

    @property
    def in_flight(self) -> int:
        """Distinct calls running now."""
        return len(self._calls)

    async def run(self, key: Hashable, call: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """The outcome of the call for ``key``: a running one if there is one, else a new one.

        The call runs in its own task, in a copy of the first caller's context (its request id
        and trace are the ones the upstream sees).
        """
        loop = asyncio.get_running_loop()
        shared = self._calls.get(key)
        if shared is None:
            shared = _SharedCall(loop.create_task(call()))
            self._calls[key] = shared
            shared.task.add_done_callback(lambda done: self._ended(key, shared))
        waiter: asyncio.Future[T] = loop.create_future()
        shared.waiters.append(waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            self._leave(key, shared, waiter)
            raise

    def _leave(self, key: Hashable, shared: _SharedCall[T], waiter: asyncio.Future[T]) -> None:
        """A caller gave up: when it was the last one, the call is not wanted any more."""
        shared.waiters.remove(waiter)
        if not shared.waiters and not shared.task.done():
            self._forget(key, shared)  # a caller arriving now starts afresh
            shared.task.cancel()

    def _ended(self, key: Hashable, shared: _SharedCall[T]) -> None:
        self._forget(key, shared)
        task = shared.task
        cancelled = task.cancelled()
        # Read here, so a failure nobody awaited is not reported as lost.
        error = None if cancelled else task.exception()
        for waiter in shared.waiters:
            if waiter.done():  # its caller was cancelled meanwhile
                continue
            if cancelled:
                waiter.cancel()
            elif error is not None:
                waiter.set_exception(error)
            else:
                waiter.set_result(task.result())

    def _forget(self, key: Hashable, shared: _SharedCall[T]) -> None:
        if self._calls.get(key) is shared:
            del self._calls[key]
