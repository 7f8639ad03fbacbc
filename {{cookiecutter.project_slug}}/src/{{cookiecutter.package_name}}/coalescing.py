"""Coalescing: concurrent calls for the same key share one call and its outcome.

A hot item asked for by many requests at once costs the upstream one request, and every
waiter gets the same answer, success or error. Nothing is kept once the call ends: this is not
a cache.

The first caller runs the call itself, in its own task and context (its request id and trace
are the ones the upstream sees); later callers wait for its outcome. No task is made per call:
on a busy service almost every call has one caller, and a task of its own cost it about 5 % of
a proxied request's CPU. The price is paid only when the caller running the call gives up (its
time budget, a batch that failed) while others wait: its call stops with it and the next waiter
starts it afresh. A waiter that gives up leaves the call to the others.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Hashable
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class _CallAbandonedError(Exception):
    """Tells a waiter that the caller running the call gave up: run it yourself."""


class _SharedCall(Generic[T]):
    """The futures of the callers waiting for one running call; each gets its outcome."""

    __slots__ = ("waiters",)

    def __init__(self) -> None:
        self.waiters: list[asyncio.Future[T]] = []

    def succeeded(self, result: T) -> None:
        for waiter in self._waiting():
            waiter.set_result(result)

    def failed(self, error: Exception) -> None:
        for waiter in self._waiting():
            waiter.set_exception(error)

    def abandoned(self) -> None:
        """The caller running the call gave up: the first waiter to wake runs it again."""
        for waiter in self._waiting():
            waiter.set_exception(_CallAbandonedError())

    def cancelled(self) -> None:
        for waiter in self._waiting():
            waiter.cancel()

    def _waiting(self) -> list[asyncio.Future[T]]:
        return [waiter for waiter in self.waiters if not waiter.done()]  # done: gave up


class Coalescer(Generic[T]):
    """Runs ``call()`` once per key at a time, however many callers ask for that key."""

    def __init__(self) -> None:
        self._calls: dict[Hashable, _SharedCall[T]] = {}

    @property
    def in_flight(self) -> int:
        """Distinct calls running now."""
        return len(self._calls)

    async def run(self, key: Hashable, call: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """The outcome of the call for ``key``: a running one if there is one, else a new one."""
        shared = self._calls.get(key)
        if shared is not None:
            return await self._wait(key, shared, call)
        shared = self._calls[key] = _SharedCall()
        try:
            result = await call()
        except Exception as error:
            shared.failed(error)
            raise
        except BaseException:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                shared.abandoned()
            else:  # the call itself was cancelled (at shutdown every task is): so are they
                shared.cancelled()
            raise
        else:
            shared.succeeded(result)
            return result
        finally:
            del self._calls[key]  # only the caller running a call removes it

    async def _wait(
        self, key: Hashable, shared: _SharedCall[T], call: Callable[[], Coroutine[Any, Any, T]]
    ) -> T:
        waiter: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        shared.waiters.append(waiter)
        try:
            return await waiter
        except _CallAbandonedError:
            return await self.run(key, call)
