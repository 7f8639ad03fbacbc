"""Batch fetching: concurrent, bounded, ordered, and tolerant of per-item failures."""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from {{ cookiecutter.package_name }}.common.errors import (
    UpstreamNotFoundError,
    UpstreamTimeoutError,
)
from {{ cookiecutter.package_name }}.common.jsonlib import JSONValue
from {{ cookiecutter.package_name }}.web.batch import fetch_all


class InFlightCounter:
    """A fake fetch that records how many calls overlap, released by the test, not by time."""

    def __init__(self) -> None:
        self.in_flight = 0
        self.peak = 0
        self.gate = asyncio.Event()

    async def fetch(self, item_id: str) -> JSONValue:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            await self.gate.wait()
        finally:
            self.in_flight -= 1
        return {"id": item_id}


async def test_runs_up_to_the_limit_concurrently_and_never_more() -> None:
    counter = InFlightCounter()
    batch = asyncio.create_task(fetch_all(counter.fetch, [str(i) for i in range(20)], limit=4))

    for _ in range(10):  # let every task that can start do so
        await asyncio.sleep(0)
    assert counter.in_flight == 4

    counter.gate.set()
    results = await batch
    assert counter.peak == 4
    assert [entry["id"] for entry in results] == [str(i) for i in range(20)]


@pytest.mark.looptime
async def test_on_virtual_time_a_batch_takes_exactly_its_schedules_makespan() -> None:
    # Random latencies (pytest-randomly seeds `random`: the header's seed replays them).
    latencies = {str(n): round(random.uniform(0.001, 1.0), 3) for n in range(30)}
    limit = 4
    in_flight = peak = 0

    async def fetch(item_id: str) -> JSONValue:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        try:
            await asyncio.sleep(latencies[item_id])  # an upstream call, on the loop's clock
        finally:
            in_flight -= 1
        return {"id": item_id}

    loop = asyncio.get_running_loop()
    started = loop.time()
    results = await fetch_all(fetch, list(latencies), limit=limit)
    elapsed = loop.time() - started

    # The schedule the batch promises: in input order, each call takes the first slot to free.
    slots = [0.0] * limit
    for latency in latencies.values():
        heapq.heapreplace(slots, slots[0] + latency)
    assert elapsed == pytest.approx(max(slots), abs=1e-6)
    assert peak == limit
    assert [entry["id"] for entry in results] == list(latencies)


async def test_results_keep_input_order_when_calls_finish_out_of_order() -> None:
    finish_order = ["3", "1", "2"]
    events = {item_id: asyncio.Event() for item_id in finish_order}

    async def fetch(item_id: str) -> JSONValue:
        await events[item_id].wait()
        return {"id": item_id}

    batch = asyncio.create_task(fetch_all(fetch, ["1", "2", "3"], limit=3))
    for item_id in finish_order:
        await asyncio.sleep(0)
        events[item_id].set()

    assert await batch == [
        {"id": "1", "item": {"id": "1"}},
        {"id": "2", "item": {"id": "2"}},
        {"id": "3", "item": {"id": "3"}},
    ]


async def test_one_failing_item_is_reported_inline_and_the_rest_succeed() -> None:
    async def fetch(item_id: str) -> JSONValue:
        if item_id == "gone":
            raise UpstreamNotFoundError("not found upstream")
        if item_id == "slow":
            raise UpstreamTimeoutError("no answer within 1s")
        return {"id": item_id}

    results = await fetch_all(fetch, ["1", "gone", "slow"], limit=2)

    assert results == [
        {"id": "1", "item": {"id": "1"}},
        {"id": "gone", "error": "not found upstream", "status": 404},
        {"id": "slow", "error": "no answer within 1s", "status": 504},
    ]


@pytest.mark.slow  # computation: 40 Hypothesis examples, each a batch run to completion
@settings(max_examples=40, deadline=None)
@given(size=st.integers(1, 12), limit=st.integers(1, 5), data=st.data())
async def test_any_completion_order_keeps_the_bound_the_order_and_the_failures(
    size: int, limit: int, data: st.DataObject
) -> None:
    """A property over every way the upstream's answers can interleave: Hypothesis picks which
    call in flight answers next (no clock involved) and which ids fail."""
    item_ids = [str(n) for n in range(size)]
    failing = data.draw(st.sets(st.sampled_from(item_ids)), label="failing")
    answers: dict[str, asyncio.Event] = {}
    in_flight = peak = 0

    async def fetch(item_id: str) -> JSONValue:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        answers[item_id] = asyncio.Event()
        try:
            await answers[item_id].wait()
        finally:
            in_flight -= 1
        if item_id in failing:
            raise UpstreamNotFoundError("not found upstream")
        return {"id": item_id}

    batch = asyncio.create_task(fetch_all(fetch, item_ids, limit))
    try:
        for _ in range(size):
            for _ in range(5):  # let every call that can start, start
                await asyncio.sleep(0)
            waiting = sorted(item for item, answer in answers.items() if not answer.is_set())
            assert len(waiting) == min(limit, size - (len(answers) - len(waiting)))
            answers[data.draw(st.sampled_from(waiting), label="answers next")].set()
        results = await batch
    finally:  # Hypothesis may stop an example at a draw: the batch must not outlive it
        batch.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await batch

    assert peak == min(limit, size)
    assert [entry["id"] for entry in results] == item_ids
    for entry in results:
        if entry["id"] in failing:
            assert (entry["status"], entry["error"]) == (404, "not found upstream")
        else:
            assert entry["item"] == {"id": entry["id"]}
