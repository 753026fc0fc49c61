"""Time as a dependency: the HTTP engine reads and sleeps only through a ``Clock``.

``SystemClock`` is the real one. ``VirtualClock`` is a deterministic stand-in for tests and
simulations: its time moves only when every task is asleep on it, so a test that waits an hour
of rate-limit pauses finishes in milliseconds and still sees exact durations.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import time
from collections.abc import Iterator
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from aiolimiter import AsyncLimiter


class Clock(Protocol):
    """Monotonic seconds for spacing, wall-clock epoch seconds for server dates, and sleep."""

    def monotonic(self) -> float: ...

    def wall(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...

    def bucket(self, max_rate: int, time_period: float) -> AbstractAsyncContextManager[None]:
        """A leaky bucket holding the long-run budget on this clock's time."""
        ...


class _NoBucket:
    """Virtual time needs no real-time bucket: the limiter's own spacing runs on the clock."""

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *exc: object) -> None:
        return None


class SystemClock:
    """The real clock: ``time.monotonic`` (the event loop's clock), ``time.time``, ``asyncio.sleep``."""

    def monotonic(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    def bucket(self, max_rate: int, time_period: float) -> AbstractAsyncContextManager[None]:
        """aiolimiter's leaky bucket on the event loop's clock: the hard ceiling of the budget."""
        return AsyncLimiter(max_rate, time_period)

    def __repr__(self) -> str:
        return "SystemClock()"


class VirtualClock:
    """Virtual time that jumps to the next sleeper's deadline once the event loop has gone quiet.

    "Quiet" means ``idle_rounds`` consecutive loop iterations passed without the clock being
    advanced; that is enough for in-memory fakes (aioresponses), not for real sockets: wrap real
    I/O (a database statement) in ``frozen()``, and time stands still until its answer is in.
    """

    def __init__(self, start_wall: float = 1_700_000_000.0, *, idle_rounds: int = 64) -> None:
        self._now = 0.0
        self._start_wall = start_wall
        self._idle_rounds = idle_rounds
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._ticking = False
        self._rounds_left = idle_rounds
        self._frozen = 0  # real I/O in flight (``frozen()``): time does not move
        self.slept = 0.0  # total seconds requested through sleep(), for assertions

    def monotonic(self) -> float:
        return self._now

    def wall(self) -> float:
        return self._start_wall + self._now

    def bucket(self, max_rate: int, time_period: float) -> AbstractAsyncContextManager[None]:
        return _NoBucket()

    def advance(self, seconds: float) -> None:
        """Move time forward by hand (sleepers whose deadline passed wake up)."""
        self._now += seconds
        self._wake_due()

    @contextlib.contextmanager
    def frozen(self) -> Iterator[None]:
        """Time stands still inside: real I/O in flight takes no virtual time, however slow it is."""
        self._frozen += 1
        try:
            yield
        finally:
            self._frozen -= 1
            self._rounds_left = self._idle_rounds  # its answer is activity: the countdown restarts

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        self.slept += seconds
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        heapq.heappush(self._sleepers, (self._now + seconds, next(self._order), future))
        self._rounds_left = self._idle_rounds  # a new sleeper is activity: the countdown restarts
        if not self._ticking:
            self._ticking = True
            loop.call_soon(self._tick)
        await future

    def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        if self._frozen:
            loop.call_soon(self._tick)
            return
        if self._rounds_left > 0:
            self._rounds_left -= 1
            loop.call_soon(self._tick)
            return
        while self._sleepers and self._sleepers[0][2].done():  # cancelled sleepers
            heapq.heappop(self._sleepers)
        if not self._sleepers:
            self._ticking = False
            return
        self._now = max(self._now, self._sleepers[0][0])
        self._wake_due()
        self._rounds_left = self._idle_rounds
        loop.call_soon(self._tick)

    def _wake_due(self) -> None:
        while self._sleepers and self._sleepers[0][0] <= self._now:
            _, _, future = heapq.heappop(self._sleepers)
            if not future.done():
                future.set_result(None)

    def __repr__(self) -> str:
        return f"VirtualClock(now={self._now:.3f})"
