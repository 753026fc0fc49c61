"""The virtual clock holds still while real I/O is in flight (``frozen()``), however long it takes."""

from __future__ import annotations

import asyncio

from pipeline.clock import VirtualClock


async def test_time_stands_still_while_frozen_and_moves_after() -> None:
    clock = VirtualClock(idle_rounds=8)
    woke: list[float] = []

    async def sleeper() -> None:
        await clock.sleep(5.0)
        woke.append(clock.monotonic())

    task = asyncio.create_task(sleeper())
    with clock.frozen():  # a statement on the wire: many idle loop rounds pass, time does not
        for _ in range(500):
            await asyncio.sleep(0)
        assert clock.monotonic() == 0.0
        assert woke == []
    await asyncio.wait_for(task, timeout=5)
    assert woke == [5.0]


async def test_without_freezing_idle_rounds_move_time() -> None:
    """The same wait unfrozen: the clock jumps once the loop was idle (what frozen() prevents)."""
    clock = VirtualClock(idle_rounds=8)
    task = asyncio.create_task(clock.sleep(5.0))
    for _ in range(500):
        await asyncio.sleep(0)
    assert task.done()
    assert clock.monotonic() == 5.0
