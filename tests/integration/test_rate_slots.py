"""Round trips of the shared rate budget (etl.rate_take, migration 011) on a fake clock, real PostgreSQL.

Batched slots when the rate is high (several requests of one process waiting: one statement for
all of them), a crashed batch holder leaking at most its batch, a missed slot moved to now instead
of a whole spacing later, the unused tail of a batch given back, a full cap's waiter getting the
very next slot, and feedback (429s, holds) carrying finished leases back in the same statement.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import orjson
import pytest

from pipeline.budget import SharedBudget, batch_size
from pipeline.clock import VirtualClock
from tests.integration.test_rate_budget import close_made, made, nekos

pytestmark = pytest.mark.db


@pytest.fixture
async def pool(pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Pool]:
    """The test's pool; the budgets a test made are closed before it (each holds a connection)."""
    yield pool
    await close_made()


def fast(**overrides: Any) -> Any:
    """100 requests per second, 8 in flight: spacing 10.2 ms, batches of up to 8."""
    values: dict[str, Any] = {
        "kind": "zou",
        "name": "zou",
        "base_url": "http://127.0.0.1:8705/api",
        "rate": {"requests": 100, "per_seconds": 1.0},
        "max_in_flight": 8,
        "safety_margin_seconds": 0.02,
        "timeout_seconds": 5.0,
    }
    values.update(overrides)
    return nekos(**values)


def budget(pool: asyncpg.Pool, clock: VirtualClock, source: Any, run: int = 1) -> SharedBudget:
    return made(SharedBudget(pool, source, run_id=run, clock=clock, db_time=clock.wall))


async def budget_backends(pool: asyncpg.Pool) -> set[int]:
    """Backends of the test's database whose last statement was a budget's (not a pool's reset)."""
    rows = await pool.fetch(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
        "AND pid <> pg_backend_pid() AND query LIKE 'SELECT etl.rate_%'"
    )
    return {r[0] for r in rows}


async def leases(pool: asyncpg.Pool, group: str) -> dict[str, float]:
    raw = await pool.fetchval("SELECT leases::text FROM etl.rate_groups WHERE group_key = $1", group)
    return dict(orjson.loads(raw)) if raw else {}


async def test_batch_size_only_grows_at_high_rates() -> None:
    """One slot per statement at Nekos' 1 req/s and Kitsu's 4 req/s; a batch at 100 req/s, within the cap."""
    assert batch_size(nekos()) == 1
    assert batch_size(nekos(rate={"requests": 4, "per_seconds": 1.0}, max_in_flight=4)) == 1
    assert batch_size(fast()) == 8  # 0.1 s of 10.2 ms slots is 9, capped by the 8 leases in flight
    assert batch_size(fast(max_in_flight=3)) == 3


async def test_batches_cut_round_trips_and_keep_the_spacing(pool: asyncpg.Pool) -> None:
    """Eight workers at 100 req/s: far fewer statements than requests, sends still 10.2 ms apart."""
    clock = VirtualClock(idle_rounds=2000)
    shared = budget(pool, clock, fast())
    sends: list[float] = []

    async def worker() -> None:
        for _ in range(25):
            reservation = await shared.reserve()
            assert clock.monotonic() >= reservation.send_at  # never before its slot
            sends.append(clock.monotonic())
            shared.release(reservation)

    async with asyncio.TaskGroup() as group:
        for _ in range(8):
            group.create_task(worker())
    await shared.close()
    assert len(sends) == 200
    gaps = [b - a for a, b in itertools.pairwise(sorted(sends))]
    assert min(gaps) >= shared.spacing - shared.late_tolerance - 1e-6
    assert shared.batches > 0
    assert shared.round_trips <= 200 / 4  # several slots per statement, on the request path
    assert sorted(sends)[-1] - sorted(sends)[0] <= 199 * shared.spacing + 0.2  # and little rate lost
    assert await leases(pool, shared.group) == {}  # every lease came back


async def test_a_crashed_batch_holder_leaks_at_most_its_batch(pool: asyncpg.Pool) -> None:
    """A process that takes a batch and dies: its unused slots are lost and its leases count against
    the cap until they expire (timeout + spacing), never longer, and never beyond the batch."""
    clock = VirtualClock(idle_rounds=2000)
    source = fast(max_in_flight=4)
    crashed, alive = budget(pool, clock, source, 1), budget(pool, clock, source, 2)
    crashed._wanting = 3  # three of its requests were waiting: one statement takes three slots
    await crashed._take(3, None)
    assert len(crashed._queue) == 3
    held = await leases(pool, crashed.group)
    assert len(held) == 3
    expiry = max(held.values()) - clock.wall()
    assert expiry <= 2 * source.timeout_seconds  # at most the last slot + timeout + spacing
    # The survivor's slots come after the dead batch (3 slots lost), and only one lease is left to it.
    first = await alive.reserve()
    assert first.send_at >= 3 * alive.spacing - 1e-6
    waiting = asyncio.create_task(alive.reserve())
    await clock.sleep(1.0)
    assert not waiting.done()  # cap 4: three dead leases + its own in flight
    await asyncio.wait_for(waiting, timeout=60)
    assert clock.monotonic() >= source.timeout_seconds  # got in once the dead leases expired
    assert clock.monotonic() <= expiry + 1.0
    await alive.close()


async def test_a_missed_slot_moves_to_now_instead_of_a_spacing_later(pool: asyncpg.Pool) -> None:
    """A busy loop wakes 0.2 s after its slot: the slot is given up, and as no later slot was granted
    the next reservation starts now, not a whole 1.03 s after the missed one."""
    clock = VirtualClock(idle_rounds=2000)
    source = nekos()
    alone = budget(pool, clock, source)
    first = await alone.reserve()
    alone.release(first)
    await alone.flush()  # the lease is back before the loop turns busy
    original = alone._sleep_to_slot

    async def oversleep(seconds: float) -> None:  # wakes 0.2 s late, once
        alone._sleep_to_slot = original  # type: ignore[method-assign]
        await original(seconds + 0.2)

    alone._sleep_to_slot = oversleep  # type: ignore[method-assign]
    second = await alone.reserve()
    assert (alone.given_up, alone.moved) == (1, 1)
    assert second.send_at - first.send_at == pytest.approx(1.03 + 0.2, abs=0.05)  # not 2.06
    alone.release(second)
    third = await alone.reserve()  # the spacing is kept from the moved slot
    assert third.send_at - second.send_at >= 1.03 - 1e-6
    await alone.close()


async def test_a_missed_slot_is_not_moved_when_a_later_one_was_granted(pool: asyncpg.Pool) -> None:
    """Another process reserved after the missed slot: moving it would crowd that one; it queues."""
    clock = VirtualClock(idle_rounds=2000)
    source = nekos(max_in_flight=3)
    late, other = budget(pool, clock, source, 1), budget(pool, clock, source, 2)
    late.release(await late.reserve())  # next slot 1.03 s away
    await late.flush()
    original = late._sleep_to_slot

    async def oversleep(seconds: float) -> None:
        late._sleep_to_slot = original  # type: ignore[method-assign]
        await other.reserve()  # the other process takes the slot after ours while we sleep
        await original(seconds + 0.2)

    late._sleep_to_slot = oversleep  # type: ignore[method-assign]
    reservation = await late.reserve()
    assert (late.given_up, late.moved) == (1, 0)
    assert reservation.send_at >= 3 * 1.03 - 1e-6  # after the other process's slot


async def test_close_gives_back_the_unused_tail_of_a_batch(pool: asyncpg.Pool) -> None:
    """Slots a closing process will not use go back: the group's next slot is the first unused one."""
    clock = VirtualClock(idle_rounds=2000)
    source = fast()
    shared = budget(pool, clock, source)
    shared._wanting = 5
    await shared._take(5, None)
    first_unused = shared._queue[1][0]
    used = await shared.reserve()
    shared.release(used)
    await shared.close()
    next_at = await pool.fetchval("SELECT next_at FROM etl.rate_groups WHERE group_key = $1", shared.group)
    assert next_at == pytest.approx(first_unused)
    assert await leases(pool, shared.group) == {}


async def test_a_full_caps_waiter_gets_the_very_next_slot(pool: asyncpg.Pool) -> None:
    """Cap 1 across two processes: the waiter asks again just before the slot and gets that slot itself."""
    clock = VirtualClock(idle_rounds=2000)
    source = nekos()
    a, b = budget(pool, clock, source, 1), budget(pool, clock, source, 2)
    held = await a.reserve()
    waiting = asyncio.create_task(b.reserve())
    await clock.sleep(0.05)  # a's request takes 50 ms
    a.release(held)
    got = await asyncio.wait_for(waiting, timeout=60)
    assert b.cap_waits >= 1
    assert got.send_at - held.send_at == pytest.approx(1.03, abs=0.005)  # no drift past the slot
    b.release(got)
    await a.close()
    await b.close()


async def test_feedback_carries_finished_leases_in_one_statement(pool: asyncpg.Pool) -> None:
    """A 429 (ledger + pause) and a header hold each cost one statement, which also gives the lease back."""
    clock = VirtualClock(idle_rounds=2000)
    shared = budget(pool, clock, nekos(violation_budget=5))
    reservation = await shared.reserve()
    shared._pending.append(reservation.lease)  # the request ended with a 429, no release sent yet
    state = await shared.record_violation(retry_after=2.0, pause_seconds=2.0)
    assert state.count == 1
    assert (shared.feedbacks, shared.releases) == (1, 0)
    assert await leases(pool, shared.group) == {}
    paused = await pool.fetchval(
        "SELECT paused_until FROM etl.rate_groups WHERE group_key = $1", shared.group
    )
    assert paused == pytest.approx(clock.wall() + 2.0)
    again = await shared.reserve()  # the slot 2 s away would fill the cap: given back, taken at its time
    assert again.send_at >= 2.0
    assert shared.early == 1
    shared._pending.append(again.lease)
    releases = shared.releases
    await shared.hold(30.0)
    assert (shared.feedbacks, shared.releases) == (2, releases)  # the hold carried the lease back
    assert await leases(pool, shared.group) == {}
    hold = await pool.fetchval("SELECT hold_until FROM etl.rate_groups WHERE group_key = $1", shared.group)
    assert hold == pytest.approx(clock.wall() + 30.0)


async def test_statements_share_one_held_connection_and_a_lost_one_is_replaced(pool: asyncpg.Pool) -> None:
    """Every statement of a budget goes over one connection it holds (no pool acquire and reset per
    request); when that connection dies (a server restart, a terminated backend) the statement is
    sent again on a fresh one, and close() gives the connection back to the pool."""
    clock = VirtualClock(idle_rounds=2000)
    shared = budget(pool, clock, nekos(rate={"requests": 100, "per_seconds": 1.0}))
    backends = set()
    for _ in range(5):
        reservation = await shared.reserve()
        shared.release(reservation)
        await shared.flush()
        # The budget's backend: its last statement is the budget's own, not a pool's reset.
        backends |= await budget_backends(pool)
    assert len(backends) == 1
    assert pool.get_size() - pool.get_idle_size() == 1  # held between statements
    killed = await pool.fetchval(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
    )
    assert killed >= 1
    reservation = await shared.reserve()  # sent again on a fresh connection from the pool
    shared.release(reservation)
    await shared.flush()
    assert len(await budget_backends(pool)) == 1
    assert pool.get_size() - pool.get_idle_size() == 1
    await shared.close()
    assert pool.get_idle_size() == pool.get_size()  # given back
    assert await leases(pool, shared.group) == {}
