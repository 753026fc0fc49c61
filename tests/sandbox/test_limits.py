"""Per-client fixed-window limits: Nekos bans and AniList lockouts, judged on the sandbox clock."""

from __future__ import annotations

from pipeline.sandbox.core import ServiceCounters
from pipeline.sandbox.limits import ANILIST_POLICY, NEKOS_POLICY, FixedWindowLimiter


class FakeClock:
    def __init__(self) -> None:
        self.t = 1_000_000.0

    def now(self) -> float:
        return self.t


def test_nekos_window_opens_at_first_request() -> None:
    """One request per second counted from the first request's arrival, not the wall-clock second."""
    clock = FakeClock()
    limiter = FixedWindowLimiter(NEKOS_POLICY, clock)
    clock.t += 0.9
    assert limiter.check("a").allowed
    clock.t += 0.5  # a new wall-clock second but the same window
    refused = limiter.check("a")
    assert not refused.allowed
    assert refused.retry_after is not None
    assert 0.49 < refused.retry_after <= 0.5
    clock.t += 0.5
    assert limiter.check("a").allowed
    assert limiter.check("b").allowed


def test_nekos_ten_violations_in_an_hour_ban_for_an_hour() -> None:
    """Every 429 is a violation; the tenth within an hour bans the client for an hour."""
    clock = FakeClock()
    counters = ServiceCounters()
    limiter = FixedWindowLimiter(NEKOS_POLICY, clock, counters)
    decisions = []
    for _ in range(10):
        limiter.check("a")
        decisions.append(limiter.check("a"))
        clock.t += 1.0
    assert [d.banned for d in decisions] == [False] * 9 + [True]
    assert decisions[-1].ban_started
    assert counters.bans == 1
    clock.t += 3000
    assert not limiter.check("a").allowed
    clock.t += 700
    assert limiter.check("a").allowed


def test_nekos_violations_older_than_an_hour_are_forgotten() -> None:
    """Violations spread over more than an hour never add up to a ban."""
    clock = FakeClock()
    limiter = FixedWindowLimiter(NEKOS_POLICY, clock)
    for _ in range(9):
        limiter.check("a")
        limiter.check("a")
        clock.t += 1.0
    clock.t += 3600
    limiter.check("a")
    assert not limiter.check("a").banned


def test_anilist_headers_claim_90_but_31st_request_is_refused_with_lockout() -> None:
    """30 requests per minute pass with Remaining counting down from 90; then a one-minute lockout."""
    clock = FakeClock()
    limiter = FixedWindowLimiter(ANILIST_POLICY, clock)
    allowed = [limiter.check("a") for _ in range(30)]
    assert all(d.allowed for d in allowed)
    assert allowed[0].limit == 90
    assert allowed[0].remaining == 89
    assert allowed[-1].remaining == 60
    refused = limiter.check("a")
    assert not refused.allowed
    assert refused.retry_after == 60.0
    assert refused.reset_at == clock.t + 60
    clock.t += 59
    assert not limiter.check("a").allowed
    clock.t += 1
    assert limiter.check("a").allowed


def test_reset_forgets_bans() -> None:
    """reset() clears every client's window, lockout and ban."""
    clock = FakeClock()
    limiter = FixedWindowLimiter(ANILIST_POLICY, clock)
    for _ in range(31):
        limiter.check("a")
    limiter.reset()
    assert limiter.check("a").allowed
