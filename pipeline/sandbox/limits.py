"""Per-client fixed-window rate limits with lockouts and bans, as the real services enforce them.

One ``FixedWindowLimiter`` per simulated service. A client's window opens at its first request
(like a Redis ``INCR`` + ``EXPIRE`` on the first hit) and lasts ``window`` seconds; more than
``limit`` requests in it are refused. Presets:

- ``NEKOS_POLICY``: 1 request per second; every refused request is a violation; 10 violations
  within an hour ban the client for an hour.
- ``ANILIST_POLICY``: 30 requests per minute while the headers report 90 (``Remaining`` counts
  down from 90, so a client sees 429 at ``Remaining`` = 60); a refusal locks the client out for a
  minute.

Time is the sandbox clock's, so tests move past windows, lockouts and bans with ``advance``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float: ...


class BanCounter(Protocol):
    bans: int


@dataclass(frozen=True)
class LimitPolicy:
    limit: int
    window: float
    reported_limit: int | None = None  # what X-RateLimit-Limit claims; ``limit`` if None
    lockout: float = 0.0  # after a refusal, refuse everything for this long
    ban_after: int | None = None  # violations within ``ban_window`` that start a ban
    ban_window: float = 3600.0
    ban_duration: float = 3600.0

    @property
    def shown_limit(self) -> int:
        return self.reported_limit if self.reported_limit is not None else self.limit


NEKOS_POLICY = LimitPolicy(limit=1, window=1.0, ban_after=10, ban_window=3600.0, ban_duration=3600.0)
ANILIST_POLICY = LimitPolicy(limit=30, window=60.0, reported_limit=90, lockout=60.0)
ANILIST_V1_POLICY = LimitPolicy(limit=90, window=60.0)


@dataclass(frozen=True)
class Decision:
    """The verdict on one request, with what the service puts in its headers."""

    allowed: bool
    limit: int
    remaining: int
    reset_in: float  # seconds until the window (or lockout/ban) ends
    reset_at: float  # the same moment as sandbox epoch seconds
    retry_after: float | None
    banned: bool = False
    violations: int = 0
    ban_started: bool = False


@dataclass
class _Client:
    window_start: float | None = None
    count: int = 0
    locked_until: float = 0.0
    violations_start: float | None = None
    violations: int = 0
    banned_until: float = 0.0


class FixedWindowLimiter:
    """Judges each request of each client against one ``LimitPolicy``."""

    def __init__(self, policy: LimitPolicy, clock: Clock, counters: BanCounter | None = None) -> None:
        self.policy = policy
        self._clock = clock
        self._counters = counters
        self._clients: dict[str, _Client] = {}

    def reset(self) -> None:
        self._clients.clear()

    def is_banned(self, client: str) -> bool:
        state = self._clients.get(client)
        return state is not None and state.banned_until > self._clock.now()

    def check(self, client: str) -> Decision:
        """Count one request of ``client`` and say whether it may be served."""
        now = self._clock.now()
        policy = self.policy
        state = self._clients.setdefault(client, _Client())
        if state.banned_until > now:
            return self._refuse(state, now, state.banned_until, banned=True)
        if state.locked_until > now:
            return self._refuse(state, now, state.locked_until)
        if state.window_start is None or now >= state.window_start + policy.window:
            state.window_start, state.count = now, 0
        state.count += 1
        window_end = state.window_start + policy.window
        if state.count <= policy.limit:
            used = state.count
            return Decision(
                allowed=True,
                limit=policy.shown_limit,
                remaining=max(0, policy.shown_limit - used),
                reset_in=window_end - now,
                reset_at=window_end,
                retry_after=None,
                violations=state.violations,
            )
        return self._violate(state, now, window_end)

    def _violate(self, state: _Client, now: float, window_end: float) -> Decision:
        policy = self.policy
        if state.violations_start is None or now >= state.violations_start + policy.ban_window:
            state.violations_start, state.violations = now, 0
        state.violations += 1
        if policy.ban_after is not None and state.violations >= policy.ban_after:
            state.banned_until = now + policy.ban_duration
            state.violations_start, state.violations = None, 0
            if self._counters is not None:
                self._counters.bans += 1
            decision = self._refuse(state, now, state.banned_until, banned=True)
            return Decision(**{**decision.__dict__, "ban_started": True})
        until = window_end
        if policy.lockout > 0:
            state.locked_until = now + policy.lockout
            state.window_start, state.count = None, 0
            until = state.locked_until
        return self._refuse(state, now, until)

    def _refuse(self, state: _Client, now: float, until: float, *, banned: bool = False) -> Decision:
        wait = max(0.0, until - now)
        return Decision(
            allowed=False,
            limit=self.policy.shown_limit,
            remaining=0,
            reset_in=wait,
            reset_at=until,
            retry_after=wait,
            banned=banned,
            violations=state.violations,
        )
