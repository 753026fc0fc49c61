"""The shared rate budget (etl.rate_groups, etl.rate_reserve) on a fake clock, against real PostgreSQL.

Several ``SharedBudget`` objects on one group stand for several processes or machines: they share
nothing but the database. ``db_time`` gives the function the virtual clock's epoch, so waits,
pauses, lease expiry and the ledger's window are exact and instant.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import pytest

from pipeline.budget import SharedBudget, group_of, spacing_of
from pipeline.clock import VirtualClock
from pipeline.errors import DeferredError, ViolationBudgetError
from pipeline.settings import SourceSettings
from tests.unit.test_http_client import make_settings


def nekos(**overrides: Any) -> SourceSettings:
    values: dict[str, Any] = {
        "kind": "nekos",
        "name": "nekos",
        "base_url": "http://127.0.0.1:8704/api",
        "rate": {"requests": 1, "per_seconds": 1.0},
        "max_in_flight": 1,
        "safety_margin_seconds": 0.03,
        "violation_budget": 3,
    }
    values.update(overrides)
    return make_settings(**values)


MADE: list[SharedBudget] = []  # every budget a test made: each holds a connection until closed


async def close_made() -> None:
    made, MADE[:] = list(MADE), []
    for budget in made:
        await budget.close()


@pytest.fixture
async def pool(pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Pool]:
    """The test's pool; the budgets a test made (and left open, as a crashed process) are closed before it."""
    yield pool
    await close_made()


def made(budget: SharedBudget) -> SharedBudget:
    """Remember ``budget`` for closing; on a virtual clock its statements take no virtual time.

    The clock moves once the loop has been idle for some rounds, which a statement's round trip to
    a busy server can outlast: time would then jump while the statement is on the wire (a sleeper
    wakes early, or a release lands after a slot it was meant to precede).
    """
    clock = budget._clock
    if isinstance(clock, VirtualClock):
        statement = budget._statement

        async def frozen(
            method: str, sql: str, arguments: Callable[[], tuple[object, ...]]
        ) -> tuple[Any, float]:
            with clock.frozen():
                return await statement(method, sql, arguments)

        budget._statement = frozen  # type: ignore[method-assign]
    MADE.append(budget)
    return budget


def budgets(pool: asyncpg.Pool, clock: VirtualClock, source: SourceSettings, n: int) -> list[SharedBudget]:
    return [made(SharedBudget(pool, source, run_id=i + 1, clock=clock, db_time=clock.wall)) for i in range(n)]


async def test_group_is_host_and_identity_never_the_secret() -> None:
    """Default group: host:port plus a hash of the identity; the token never appears; rate_group joins."""
    token = "s3cret-token-value"
    a = nekos(auth={"kind": "bearer", "token": token})
    b = nekos(name="nekos_b", auth={"kind": "bearer", "token": token})
    other = nekos(auth={"kind": "bearer", "token": "another"})
    assert group_of(a) == group_of(b)
    assert group_of(a).startswith("127.0.0.1:8704|bearer:")
    assert token not in group_of(a)
    assert group_of(a) != group_of(other)
    assert group_of(nekos()) == "127.0.0.1:8704|anonymous"
    assert group_of(nekos(rate_group="nekos-shared")) == "nekos-shared"
    assert spacing_of(a) == pytest.approx(1.03)


async def test_three_processes_share_one_spacing(pool: asyncpg.Pool) -> None:
    """Three budgets taking turns as fast as they can: slots 1.03 s apart, each send at/after its slot."""
    clock = VirtualClock(idle_rounds=2000)
    group = budgets(pool, clock, nekos(max_in_flight=3), 3)  # the cap is tested below
    sends: list[tuple[float, int]] = []
    # Round robin, so the virtual clock only moves while one reservation sleeps (never while a
    # query is on the wire); tests/integration/test_rate_processes.py does it concurrently, for real.
    for _ in range(6):
        for i, budget in enumerate(group):
            reservation = await budget.reserve()
            assert clock.monotonic() >= reservation.send_at
            sends.append((clock.monotonic(), i))
            budget.release(reservation)
    for budget in group:
        await budget.close()
    times = sorted(t for t, _ in sends)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert len(times) == 18
    # Each send leaves at/after its slot and at most late_tolerance (half the margin) after it, so
    # no two sends of the group come closer than spacing - tolerance = 1.015 s, above the limit's 1 s.
    tolerance = group[0].late_tolerance
    assert tolerance == pytest.approx(0.015)
    assert min(gaps) >= 1.03 - tolerance - 1e-6
    assert times[-1] - times[0] == pytest.approx(17 * 1.03, abs=0.02)  # and no slot wasted
    assert {i for _, i in sends} == {0, 1, 2}
    assert sum(b.round_trips for b in group) <= 18 + 2  # one reservation per request, on its path
    assert sum(b.cap_waits for b in group) == 0


async def test_in_flight_cap_holds_across_processes_and_a_crashed_lease_expires(
    pool: asyncpg.Pool,
) -> None:
    """Cap 2: a third process waits for a lease; a holder that never gives one back leaks it for ttl."""
    clock = VirtualClock(idle_rounds=2000)
    source = nekos(rate={"requests": 100, "per_seconds": 1.0}, max_in_flight=2, timeout_seconds=10.0)
    a, b, c = budgets(pool, clock, source, 3)
    first = await a.reserve()
    await b.reserve()  # b "crashes": its lease is never released
    waiting = asyncio.create_task(c.reserve())
    await clock.sleep(1.0)
    assert not waiting.done()  # two leases in flight: the cap is full
    a.release(first)
    await a.flush()
    granted = await asyncio.wait_for(waiting, timeout=30)
    assert clock.monotonic() < 2.0
    c.release(granted)
    await c.close()
    # Now a's and c's leases are back; b's still counts until it expires (timeout + spacing).
    again = await a.reserve()
    third = asyncio.create_task(c.reserve())
    await clock.sleep(2.0)
    assert not third.done()
    await asyncio.wait_for(third, timeout=30)
    assert clock.monotonic() >= 10.0  # b's lease expired, so c got in
    a.release(again)
    await a.close()


async def test_a_429_pauses_every_process_and_long_pauses_defer(pool: asyncpg.Pool) -> None:
    """One process's 429 pause holds the others' next slot; a pause beyond max_wait defers them."""
    clock = VirtualClock(idle_rounds=2000)
    a, b = budgets(pool, clock, nekos(max_wait_seconds=60), 2)
    await a.reserve()
    state = await a.record_violation(retry_after=5.0, pause_seconds=5.0)
    assert state.count == 1
    started = clock.monotonic()
    await b.reserve()
    assert clock.monotonic() - started >= 5.0
    await a.pause(86400)
    with pytest.raises(DeferredError) as caught:
        await b.reserve()
    assert caught.value.resume_at == pytest.approx(clock.wall() + 86400, abs=2)
    assert "max_wait_seconds=60" in str(caught.value)
    hold = budgets(pool, clock, nekos(name="other", rate_group="held", max_wait_seconds=60), 1)[0]
    await hold.hold(120)  # Remaining reached the reserve until a reset 2 min away
    with pytest.raises(DeferredError):
        await hold.reserve()


async def test_ledger_counts_the_window_across_runs_and_refuses_at_start(pool: asyncpg.Pool) -> None:
    """Budget 3 over a rolling hour: 3 violations from different runs refuse the next start until the
    oldest ages out, and the message says when."""
    clock = VirtualClock(idle_rounds=2000)
    runs = budgets(pool, clock, nekos(), 3)
    for run in runs:
        await run.record_violation(retry_after=1.0, pause_seconds=1.0)
        await clock.sleep(600)  # violations at 0, 10 and 20 minutes
    fresh = budgets(pool, clock, nekos(), 1)[0]
    with pytest.raises(ViolationBudgetError) as caught:
        await fresh.reserve()
    assert caught.value.resume_at == pytest.approx(clock.wall() - 1800 + 3600, abs=1)
    assert "may run again after" in str(caught.value)
    clock.advance(1801)  # the first violation left the window: two remain, under the budget
    again = budgets(pool, clock, nekos(), 1)[0]
    await again.reserve()
    assert (await again.ledger()).count == 2
    rows = await pool.fetch("SELECT run_id, source FROM etl.rate_violations ORDER BY id")
    assert [(r["run_id"], r["source"]) for r in rows] == [(1, "nekos"), (2, "nekos"), (3, "nekos")]


async def test_a_late_wake_gives_the_slot_up(pool: asyncpg.Pool) -> None:
    """A process that wakes after its slot plus the tolerance reserves again instead of sending late."""
    clock = VirtualClock(idle_rounds=2000)
    source = nekos(max_in_flight=2)
    late = made(SharedBudget(pool, source, 1, clock, db_time=clock.wall))
    other = made(SharedBudget(pool, source, 2, clock, db_time=clock.wall))
    await other.reserve()  # the group's next slot is now 1.03 s away
    original_sleep = late._sleep_to_slot

    async def oversleep(seconds: float) -> None:  # a busy event loop: wakes 0.2 s late once
        late._sleep_to_slot = original_sleep  # type: ignore[method-assign]
        await original_sleep(seconds + 0.2)

    late._sleep_to_slot = oversleep  # type: ignore[method-assign]
    reservation = await late.reserve()
    assert late.given_up == 1
    assert clock.monotonic() - reservation.send_at <= late.late_tolerance
