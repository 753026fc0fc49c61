"""AdaptiveLimiter, PauseGate, VirtualClock and 429 header parsing, on a virtual clock."""

from __future__ import annotations

import asyncio
from email.utils import formatdate

import pytest

from pipeline.clock import VirtualClock
from pipeline.errors import ViolationBudgetError
from pipeline.ratelimit import AdaptiveLimiter, PauseGate
from pipeline.responses import (
    Outcome,
    classify_response,
    parse_retry_after,
    read_quota,
    reset_seconds,
    wait_from_headers,
)

NOW = 1_700_000_000.0


async def send_times(limiter: AdaptiveLimiter, clock: VirtualClock, n: int, workers: int) -> list[float]:
    """Acquire ``n`` slots from ``workers`` concurrent tasks; return the slot times in order."""
    times: list[float] = []
    queue = list(range(n))

    async def worker() -> None:
        while queue:
            queue.pop()
            slot, _ = await limiter.acquire()
            times.append(slot.time)

    async with asyncio.TaskGroup() as group:
        for _ in range(workers):
            group.create_task(worker())
    return sorted(times)


@pytest.mark.parametrize(("requests", "per", "margin"), [(1, 1.0, 0.05), (4, 1.0, 0.02), (30, 60.0, 0.0)])
async def test_no_fixed_window_anchored_at_any_send_holds_more_than_the_limit(
    requests: int, per: float, margin: float
) -> None:
    """Any window of per_seconds + margin starting at a send contains at most ``requests`` sends."""
    clock = VirtualClock()
    limiter = AdaptiveLimiter(requests, per, clock=clock, margin=margin)
    times = await send_times(limiter, clock, n=3 * requests + 5, workers=6)
    for i, start in enumerate(times):
        inside = [t for t in times[i:] if t < start + per + margin - 1e-9]
        assert len(inside) <= requests
    expected = (len(times) - 1) / (requests / per)  # (N − burst) / rate with burst = 1
    assert times[-1] - times[0] >= expected - 1e-9


async def test_spacing_follows_the_real_send_time() -> None:
    """A slot whose request left late (slow connect) pushes the next one back accordingly."""
    clock = VirtualClock()
    limiter = AdaptiveLimiter(1, 1.0, clock=clock, margin=0.05)
    slot, _ = await limiter.acquire()
    slot.mark_sent(0.3)  # the transport reported the headers leaving 300 ms after the slot
    second, waited = await limiter.acquire()
    assert second.time == pytest.approx(1.35)
    assert waited == pytest.approx(1.35)


async def test_429_halves_rate_widens_margin_and_success_recovers() -> None:
    """on_rate_limited halves the factor and widens the margin; successes recover it additively."""
    limiter = AdaptiveLimiter(4, 1.0, clock=VirtualClock(), margin=0.02)
    before = limiter.rate
    limiter.on_rate_limited()
    assert limiter.factor == 0.5
    assert limiter.margin == pytest.approx(0.07)
    assert limiter.rate < before / 2
    for _ in range(4):
        limiter.on_success()
    assert limiter.factor == pytest.approx(0.55)
    for _ in range(1000):
        limiter.on_success()
    assert limiter.factor == 1.0
    for _ in range(20):
        limiter.on_rate_limited()
    assert limiter.factor == 1 / 16
    assert limiter.margin == pytest.approx(0.125)  # capped at half the smooth gap


async def test_quota_reserve_holds_until_reset() -> None:
    """Remaining at or below the reserve holds sends until the reset; above it does not."""
    clock = VirtualClock()
    limiter = AdaptiveLimiter(90, 60.0, clock=clock, reserve=2)
    assert not limiter.observe_quota(90, 10, 30.0)
    assert not limiter.observe_quota(90, 1, None)  # no reset moment known: nothing to hold until
    assert limiter.observe_quota(90, 2, 30.0)
    slot, waited = await limiter.acquire()
    assert slot.time == pytest.approx(30.0)
    assert waited == pytest.approx(30.0)


def test_reserve_never_exceeds_limit_minus_one() -> None:
    """A reserve of 1 on a limit-1 API (Nekos) would hold even a fresh window; it is clamped to 0."""
    limiter = AdaptiveLimiter(1, 1.0, clock=VirtualClock(), reserve=1)
    assert not limiter.observe_quota(1, 1, 1.0)
    assert limiter.observe_quota(1, 0, 1.0)
    assert limiter.observe_quota(3, 1, 1.0)  # with limit 3 the reserve of 1 applies in full
    assert not limiter.observe_quota(3, 2, 1.0)


async def test_pause_gate_waits_and_stop_wakes_sleepers() -> None:
    """The gate holds every waiter until the pause ends; stop() makes sleepers raise within a slice."""
    clock = VirtualClock()
    gate = PauseGate(clock)
    gate.pause_until(5.0)
    waited = await asyncio.gather(gate.wait(), gate.wait())
    assert waited == [pytest.approx(5.0), pytest.approx(5.0)]
    gate.pause_until(3600.0)

    async def stop_soon() -> None:
        await clock.sleep(2.5)
        gate.stop(ViolationBudgetError("demo: stopped"))

    async def both() -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(gate.wait())
            group.create_task(stop_soon())

    with pytest.raises(ExceptionGroup) as caught:
        await both()
    assert isinstance(caught.value.exceptions[0], ViolationBudgetError)
    assert clock.monotonic() <= 5.0 + 3.0


async def test_virtual_clock_orders_concurrent_sleepers() -> None:
    """Concurrent sleepers wake in deadline order, each at its own virtual time."""
    clock = VirtualClock()
    woke: list[tuple[str, float]] = []

    async def nap(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append((name, clock.monotonic()))

    async with asyncio.TaskGroup() as group:
        group.create_task(nap("long", 3.0))
        group.create_task(nap("short", 1.0))
        group.create_task(nap("mid", 2.0))
    assert woke == [("short", 1.0), ("mid", 2.0), ("long", 3.0)]
    assert clock.wall() == NOW + 3.0


def test_retry_after_seconds_and_http_date() -> None:
    """Retry-After is read as delta-seconds or as an HTTP date relative to the wall clock."""
    assert parse_retry_after("7", NOW) == 7.0
    assert parse_retry_after(formatdate(NOW + 90, usegmt=True), NOW) == pytest.approx(90.0)
    assert parse_retry_after(formatdate(NOW - 90, usegmt=True), NOW) == 0.0
    assert parse_retry_after("soon", NOW) is None
    assert parse_retry_after(None, NOW) is None


def test_reset_header_is_a_timestamp_or_a_delta() -> None:
    """X-RateLimit-Reset is a unix timestamp for AniList and a delta for Nekos: both read right."""
    assert reset_seconds(NOW + 60, NOW) == pytest.approx(60.0)
    assert reset_seconds(60, NOW) == 60.0
    headers = {"Retry-After": "3", "X-RateLimit-Reset": str(int(NOW) + 45)}
    assert wait_from_headers(headers, now_wall=NOW) == pytest.approx(45.0)
    quota = read_quota(
        {"X-RateLimit-Limit": "90", "X-RateLimit-Remaining": "59", "X-RateLimit-Reset": "12"},
        now_wall=NOW,
    )
    assert (quota.limit, quota.remaining, quota.reset_in) == (90, 59, 12.0)


@pytest.mark.parametrize(
    ("status", "body", "outcome"),
    [
        (200, b'{"data": []}', Outcome.OK),
        (204, b"", Outcome.OK),
        (200, b'{"data": [', Outcome.TRANSIENT),
        (429, b"Retry later", Outcome.RATE_LIMITED),
        (503, b"<html>", Outcome.TRANSIENT),
        (401, b'{"msg": "Missing Authorization Header"}', Outcome.AUTH_EXPIRED),
        (422, b'{"message": "Signature has expired"}', Outcome.AUTH_EXPIRED),
        (422, b'{"message": "Invalid filter"}', Outcome.FATAL),
        (404, b'{"errors": [{"title": "Record not found"}]}', Outcome.FATAL),
    ],
)
def test_classify_response(status: int, body: bytes, outcome: Outcome) -> None:
    """The one classifier maps status and body to the right outcome."""
    assert classify_response(status, {}, body, now_wall=NOW).outcome is outcome


def test_reset_is_read_by_magnitude_never_a_wait_of_years() -> None:
    """An epoch (the AniList kind) or a small delta (Nekos) each means the right wait; a past moment, none."""
    assert reset_seconds(NOW + 90, NOW) == pytest.approx(90.0)
    assert reset_seconds(30, NOW) == 30.0
    assert reset_seconds(NOW - 5, NOW) == 0.0
