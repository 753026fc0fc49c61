"""Proactive rate limiting that holds at the server, plus the service-wide pause gate.

Why not a plain leaky bucket: a server such as Nekos v1 opens a fixed window at the *arrival* of
the first request and answers 429 to request ``limit + 1`` inside it. A bucket that allows a burst
of ``limit`` and then drips one every ``1/rate`` puts ``limit + 1`` arrivals in one window, and even
a burst-free one at exactly ``1/rate`` loses to scheduling jitter. ``AdaptiveLimiter`` therefore
enforces two things on *send* times (corrected to the moment the request really left, when the
transport reports it):

* smooth spacing: consecutive sends at least ``per_seconds / (requests * factor)`` apart;
* a sliding window: never more than ``requests`` sends in any ``(per_seconds + margin) / factor``.

The second makes any fixed window anchored at any arrival see at most ``requests`` arrivals as long
as the network jitter stays under ``margin``. A 429 halves ``factor`` (multiplicative decrease),
widens ``margin`` and recovers ``factor`` slowly with each success (additive increase).
"""

from __future__ import annotations

import asyncio
import math
from collections import deque

from pipeline.clock import Clock
from pipeline.errors import PipelineError

MIN_FACTOR = 1 / 16
RECOVERY_PER_WINDOW = 0.05  # factor regained per window's worth of successful requests
MARGIN_STEP_SECONDS = 0.05
PAUSE_SLICE_SECONDS = 1.0  # paused workers re-check this often, so a stopped service wakes them


class Slot:
    """One reserved send; ``time`` moves to the real send moment once the transport reports it."""

    __slots__ = ("time",)

    def __init__(self, time: float) -> None:
        self.time = time

    def mark_sent(self, at: float) -> None:
        self.time = max(self.time, at)


class AdaptiveLimiter:
    """Send pacing for one service: smooth spacing + sliding window + header reserve, adaptive."""

    def __init__(
        self,
        requests: int,
        per_seconds: float,
        *,
        clock: Clock,
        margin: float = 0.02,
        reserve: int = 0,
        max_margin: float | None = None,
    ) -> None:
        if requests < 1 or per_seconds <= 0:
            raise ValueError(f"rate must be positive, got {requests} per {per_seconds}s")
        self.requests = requests
        self.per_seconds = per_seconds
        self.margin = margin
        self.reserve = reserve
        self.max_margin = max_margin if max_margin is not None else max(margin, per_seconds / requests / 2)
        self.factor = 1.0
        self._clock = clock
        self._slots: deque[Slot] = deque(maxlen=2 * requests)
        self._not_before = -math.inf
        self._lock = asyncio.Lock()
        # aiolimiter's bucket keeps the configured long-run budget as a hard ceiling; the spacing
        # and window below are stricter and adaptive, so in steady state the bucket never waits.
        self._bucket = clock.bucket(requests, per_seconds)

    @property
    def rate(self) -> float:
        """Requests per second currently allowed (after adaptation and margin)."""
        return self.requests * self.factor / (self.per_seconds + self.margin)

    async def acquire(self) -> tuple[Slot, float]:
        """Wait for the next send slot; return it and the seconds spent waiting."""
        started = self._clock.monotonic()
        async with self._lock:  # FIFO: waiters are served in arrival order
            async with self._bucket:
                pass
            while True:
                now = self._clock.monotonic()
                ready = self._ready_at()
                if now >= ready:
                    break
                # Re-check after waking: a slot may have been pushed later by its real send time.
                await self._clock.sleep(ready - now)
            slot = Slot(now)
            self._slots.append(slot)
        return slot, now - started

    def _ready_at(self) -> float:
        ready = self._not_before
        if not self._slots:
            return ready
        times = sorted(s.time for s in self._slots)
        ready = max(ready, times[-1] + self.per_seconds / (self.requests * self.factor))
        if len(times) >= self.requests:
            window = (self.per_seconds + self.margin) / self.factor
            ready = max(ready, times[-self.requests] + window)
        return ready

    @property
    def held_until(self) -> float:
        """Monotonic moment before which no send may leave (a header hold), or -inf."""
        return self._not_before

    def on_success(self) -> None:
        """Recover slowly: a full window of successes gives back ``RECOVERY_PER_WINDOW``."""
        if self.factor < 1.0:
            self.factor = min(1.0, self.factor + RECOVERY_PER_WINDOW / self.requests)

    def on_rate_limited(self) -> None:
        """A 429 means our spacing did not hold at the server: slow down and widen the margin."""
        self.factor = max(MIN_FACTOR, self.factor / 2)
        self.margin = min(self.max_margin, self.margin + max(self.margin, MARGIN_STEP_SECONDS))

    def observe_quota(self, limit: int | None, remaining: int | None, reset_at: float | None) -> bool:
        """Hold new sends until ``reset_at`` (monotonic) when the server says we reached the reserve."""
        if remaining is None or reset_at is None:
            return False
        reserve = min(self.reserve, limit - 1) if limit is not None and limit > 0 else self.reserve
        if remaining > reserve:
            return False
        self._not_before = max(self._not_before, reset_at)
        return True

    def __repr__(self) -> str:
        return (
            f"AdaptiveLimiter({self.requests}/{self.per_seconds}s, factor={self.factor:.3f}, "
            f"margin={self.margin:.3f}s)"
        )


class PauseGate:
    """Service-wide pause after a 429, and the stop switch once the violation budget is spent."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._until = -math.inf
        self._stopped: PipelineError | None = None

    @property
    def paused_until(self) -> float:
        return self._until

    def pause_until(self, moment: float) -> None:
        self._until = max(self._until, moment)

    def stop(self, error: PipelineError) -> None:
        self._stopped = error

    def check(self) -> None:
        """Raise the stop error if the service was stopped."""
        if self._stopped is not None:
            raise self._stopped

    def is_paused(self) -> bool:
        return self._clock.monotonic() < self._until

    async def wait(self) -> float:
        """Sleep until the pause is over (waking early if the service stops); return seconds waited."""
        started = self._clock.monotonic()
        while True:
            self.check()
            left = self._until - self._clock.monotonic()
            if left <= 0:
                return self._clock.monotonic() - started
            await self._clock.sleep(min(left, PAUSE_SLICE_SECONDS))
