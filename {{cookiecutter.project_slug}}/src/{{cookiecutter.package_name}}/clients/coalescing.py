"""Coalescing: concurrent calls for the same key share one call and its outcome.

A hot item asked for by many requests at once costs the upstream one request, and every
waiter gets the same answer, success or error. Nothing is kept once the call ends: this is not
a cache.

The first caller runs the call itself, in its own task and context (its request id and trace
are the ones the upstream sees); later callers wait for its outcome. No task is made per call:
on a busy service almost every call has one caller, and a task of its own cost it about 5 % of
a proxied request's instructions (measured under callgrind). The price is paid only when the
caller running the call gives up (its time budget, a batch that failed) while others wait: its
call stops with it and the next waiter starts it afresh. A waiter that gives up leaves the call
to the others.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Hashable
from operator import methodcaller
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class _CallAbandonedError(Exception):
    """Tells a waiter that the caller running the call gave up: run it yourself."""


Waiters = list["asyncio.Future[T]"]


class Coalescer(Generic[T]):
    """Runs ``call()`` once per key at a time, however many callers ask for that key."""

    def __init__(self) -> None:
        self._waiters: dict[Hashable, Waiters[T]] = {}  # one entry per running call

    @property
    def in_flight(self) -> int:
        """Distinct calls running now."""
        return len(self._waiters)

    async def run(
        self, key: Hashable, call: Callable[..., Coroutine[Any, Any, T]], *args: Any
    ) -> T:
        """The outcome of ``call(*args)`` for ``key``: a running one if there is one, else a new
        one. (The arguments apart rather than a ``partial``: one object less per call.)"""
        waiters = self._waiters.get(key)
        if waiters is not None:
            return await self._wait(key, waiters, call, args)
        waiters = self._waiters[key] = []
        try:
            result = await call(*args)
        except Exception as error:
            _settle(waiters, methodcaller("set_exception", error))
            raise
        except BaseException:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                _settle(waiters, methodcaller("set_exception", _CallAbandonedError()))
            else:  # the call itself was cancelled (at shutdown every task is): so are they
                _settle(waiters, methodcaller("cancel"))
            raise
        else:
            _settle(waiters, methodcaller("set_result", result))
            return result
        finally:
            del self._waiters[key]  # only the caller running a call removes it

    async def _wait(
        self,
        key: Hashable,
        waiters: Waiters[T],
        call: Callable[..., Coroutine[Any, Any, T]],
        args: tuple[Any, ...],
    ) -> T:
        waiter: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        waiters.append(waiter)
        try:
            return await waiter
        except _CallAbandonedError:
            return await self.run(key, call, *args)


def _settle(waiters: Waiters[T], outcome: Callable[[asyncio.Future[T]], object]) -> None:
    """Give every waiter still waiting the call's outcome (a done one has given up)."""
    for waiter in waiters:
        if not waiter.done():
            outcome(waiter)
