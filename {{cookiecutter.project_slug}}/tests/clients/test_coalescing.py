"""Coalescing on its own: one call per key at a time, shared outcomes, cancellation rules."""

from __future__ import annotations

import asyncio

import pytest

from {{ cookiecutter.package_name }}.clients.coalescing import Coalescer


class Call:
    """A call that waits for ``release`` and counts how often it started and was cancelled."""

    def __init__(self, outcome: object = "answer") -> None:
        self.outcome = outcome
        self.started = 0
        self.cancelled = 0
        self.release = asyncio.Event()

    async def __call__(self) -> object:
        self.started += 1
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        return self.outcome


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_concurrent_callers_of_one_key_share_one_call_and_its_answer() -> None:
    coalescer: Coalescer[object] = Coalescer()
    call, other = Call("seven"), Call("eight")
    waiters = [asyncio.create_task(coalescer.run("7", call)) for _ in range(50)]
    elsewhere = asyncio.create_task(coalescer.run("8", other))
    await settle()
    call.release.set()
    other.release.set()

    assert await asyncio.gather(*waiters) == ["seven"] * 50
    assert await elsewhere == "eight"
    assert (call.started, other.started) == (1, 1)
    assert coalescer.in_flight == 0
    # Nothing is kept: the next caller starts a new call.
    again = Call("seven again")
    again.release.set()
    assert await coalescer.run("7", again) == "seven again"


async def test_every_waiter_gets_the_same_error() -> None:
    coalescer: Coalescer[object] = Coalescer()
    failure = LookupError("upstream says no")
    call = Call(failure)
    waiters = [asyncio.create_task(coalescer.run("7", call)) for _ in range(3)]
    await settle()
    call.release.set()

    results = await asyncio.gather(*waiters, return_exceptions=True)

    assert results == [failure] * 3
    assert call.started == 1


async def test_a_waiter_giving_up_leaves_the_call_to_the_others() -> None:
    coalescer: Coalescer[object] = Coalescer()
    call = Call()
    patient = asyncio.create_task(coalescer.run("7", call))
    impatient = asyncio.create_task(coalescer.run("7", call))
    await settle()
    impatient.cancel()
    await settle()
    call.release.set()

    assert await patient == "answer"
    assert impatient.cancelled()
    assert (call.started, call.cancelled) == (1, 0)


async def test_when_the_caller_running_the_call_gives_up_the_next_waiter_runs_it() -> None:
    coalescer: Coalescer[object] = Coalescer()
    call = Call()
    impatient = asyncio.create_task(coalescer.run("7", call))
    patient = [asyncio.create_task(coalescer.run("7", call)) for _ in range(3)]
    await settle()
    impatient.cancel()
    await settle()

    assert (call.started, call.cancelled) == (2, 1)  # one new call for the three of them
    assert coalescer.in_flight == 1
    call.release.set()
    assert await asyncio.gather(*patient) == ["answer"] * 3
    assert impatient.cancelled()
    assert coalescer.in_flight == 0


async def test_the_call_is_cancelled_once_every_waiter_is_gone() -> None:
    coalescer: Coalescer[object] = Coalescer()
    call = Call()
    waiters = [asyncio.create_task(coalescer.run("7", call)) for _ in range(2)]
    await settle()
    for waiter in waiters:
        waiter.cancel()
    await settle()

    assert call.cancelled == 1
    assert coalescer.in_flight == 0
    with pytest.raises(asyncio.CancelledError):
        await waiters[0]


async def test_a_call_cancelled_from_outside_ends_its_waiters_too() -> None:
    """At shutdown every task is cancelled, the call's own included: nobody waits forever."""
    coalescer: Coalescer[object] = Coalescer()

    async def cancelled() -> object:
        raise asyncio.CancelledError

    waiters = [asyncio.create_task(coalescer.run("7", cancelled)) for _ in range(2)]
    await settle()

    assert [waiter.cancelled() for waiter in waiters] == [True, True]
    assert coalescer.in_flight == 0


async def test_a_call_cancelled_from_within_cancels_its_waiters_without_a_new_call() -> None:
    coalescer: Coalescer[object] = Coalescer()
    call = Call(asyncio.CancelledError())
    waiters = [asyncio.create_task(coalescer.run("7", call)) for _ in range(3)]
    await settle()
    call.release.set()
    await settle()

    assert [waiter.cancelled() for waiter in waiters] == [True] * 3
    assert call.started == 1
    assert coalescer.in_flight == 0
