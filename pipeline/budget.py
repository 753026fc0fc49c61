"""One request budget per rate group, held in PostgreSQL and drawn from by every process and machine.

A *rate group* is the API host plus a hash of the credential identity (``host|identity``), or the
``rate_group`` a config names to join sources explicitly. Its row in ``etl.rate_groups`` holds the
next free send moment (GCRA with no burst: each reservation is ``spacing`` after the previous one),
the pause a 429 asked for, the hold a ``Remaining``/``Reset`` header asked for, and the in-flight
leases. ``etl.rate_reserve`` does a reservation in one statement, so a request costs one round
trip on the request's path; a lease expires after the request's timeout, so a crashed holder leaks
at most one slot and one lease per request it had in flight. A finished request's lease is given
back with the next reservation when one follows within ``RELEASE_COALESCE_SECONDS``, else by one
release statement off the request path (so a process waiting on the cap is not starved).

Times in the row are the database's epoch seconds: the one clock all machines share. Each answer
read at database time ``db_now`` between local moments ``t0`` and ``t1`` says the local clock is
``db - db_now`` + something in ``[t0, t1]``; the tightest bounds of the last ``OFFSET_WINDOW_SECONDS``
of answers map a slot to local time (the upper bound: the request never leaves before its slot,
however slow one answer was). A process whose send would be more than ``late_tolerance`` after its
slot (bounds' width plus a late wake) gives the slot up and reserves again, so no request leaves
more than that after its slot; the spacing's safety margin covers that plus the network's jitter
(docs/RATE-LIMITS.md).

The violation ledger (``etl.rate_violations``) counts 429s over the API's own window across
processes and runs; a process that finds the budget spent refuses the source before its first
request, naming the moment it may run again.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import itertools
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

import asyncpg

from pipeline.clock import Clock
from pipeline.errors import DeferredError, ViolationBudgetError
from pipeline.log import get_logger
from pipeline.settings import SourceSettings

log = get_logger(__name__)

MIN_POLL_SECONDS = 0.02  # a full in-flight cap is re-checked at most this often
MAX_POLL_SECONDS = 1.0  # … and at least this often
OFFSET_WINDOW_SECONDS = 10.0  # clock-mapping samples kept: short enough that clock drift is < 1 ms
RELEASE_COALESCE_SECONDS = 0.01  # a lease not carried back by a reservation by then is released alone
_IDENTITY_NAMESPACE = b"pipeline.rate_group:"


def identity_of(source: SourceSettings) -> str:
    """Who the API sees: ``anonymous`` or a short hash of the account (never a secret, never a token)."""
    auth = source.auth
    if auth.kind == "none":
        return "anonymous"
    if auth.kind == "bearer":
        who = auth.token.get_secret_value()
    elif auth.kind == "oauth_password":
        who = f"{auth.username}|{auth.client_id or ''}"
    elif auth.kind == "oauth_client_credentials":
        who = auth.client_id
    else:
        who = auth.email
    digest = hashlib.blake2b(_IDENTITY_NAMESPACE + who.encode(), digest_size=8).hexdigest()
    return f"{auth.kind}:{digest}"


def group_of(source: SourceSettings) -> str:
    """The source's rate group: ``rate_group`` from the config, else ``host[:port]|identity``."""
    if source.rate_group:
        return source.rate_group
    host = (urlsplit(source.base_url).netloc.rsplit("@", 1)[-1]).lower()
    return f"{host}|{identity_of(source)}"


def spacing_of(source: SourceSettings) -> float:
    """Seconds between two sends of the group: ``(per_seconds + margin) / requests``.

    Evenly spaced sends at this spacing put at most ``requests`` arrivals in any window of
    ``per_seconds`` as long as each arrival is late by less than the margin.
    """
    return (source.rate.per_seconds + source.safety_margin_seconds) / source.rate.requests


def _moment(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


@dataclass(frozen=True, slots=True)
class Reservation:
    """One granted slot: its lease id and the local monotonic moment it may leave."""

    lease: str
    send_at: float


@dataclass(frozen=True, slots=True)
class LedgerState:
    """Violations of a group inside its window, and when the budget frees up again (epoch)."""

    count: int
    free_at: float | None


class SharedBudget:
    """The database side of one source's pacing: reserve, release, pause, hold, ledger."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        source: SourceSettings,
        run_id: int | None,
        clock: Clock,
        *,
        db_time: Callable[[], float] | None = None,
        late_tolerance: float | None = None,
    ) -> None:
        self.pool = pool
        self.source = source
        self.group = group_of(source)
        self.run_id = run_id
        self.spacing = spacing_of(source)
        self.cap = source.max_in_flight
        self.lease_ttl = source.timeout_seconds + self.spacing
        # A slot missed by more than this is given up: half the margin, so lateness never eats it.
        self.late_tolerance = (
            late_tolerance if late_tolerance is not None else max(0.002, source.safety_margin_seconds / 2)
        )
        self._clock = clock
        self._db_time = db_time  # tests: the fake clock's epoch instead of the database's
        self._token = secrets.token_hex(4)
        self._ids = itertools.count(1)
        self._pending: list[str] = []
        self._flusher: asyncio.Task[None] | None = None
        self._checked = False
        # A full cap is re-checked soon (a short request ends), then less and less often.
        self._first_poll = max(MIN_POLL_SECONDS, min(self.spacing / 20, MAX_POLL_SECONDS))
        self._cap_poll = self._first_poll
        self._samples: collections.deque[tuple[float, float, float]] = collections.deque()
        self.round_trips = 0  # reservations (each on a request's path)
        self.releases = 0  # lease releases sent on their own (off the request path)
        self.cap_waits = 0  # reservations refused because the group's in-flight cap was full
        self.given_up = 0

    # ------------------------------------------------------------------------------- reservation

    async def reserve(self) -> Reservation:
        """Wait for the group's next slot (and an in-flight lease); raise ``DeferredError`` if far."""
        if not self._checked:
            await self.refuse_if_spent()
            self._checked = True
        max_wait = self.source.max_wait_seconds
        while True:
            lease = f"{self._token}:{next(self._ids)}"
            release, self._pending = self._pending, []
            t0 = self._clock.monotonic()
            async with self.pool.acquire() as conn:
                row = await conn.fetchrow(
                    "SELECT * FROM etl.rate_reserve($1, $2, $3, $4, $5, $6, $7, $8)",
                    self.group,
                    self.spacing,
                    self.cap,
                    lease,
                    self.lease_ttl,
                    release,
                    max_wait,
                    self._db_time() if self._db_time else None,
                )
            t1 = self._clock.monotonic()
            self.round_trips += 1
            assert row is not None
            db_now = float(row["db_now"])
            if not row["granted"]:
                blocked = row["blocked_until"]
                if blocked is not None and float(blocked) - db_now > max_wait:
                    raise DeferredError(
                        f"{self.source.name}: rate group {self.group!r} is paused until "
                        f"{_moment(float(blocked))} (asked by the API), beyond max_wait_seconds="
                        f"{max_wait:g}; stopped this source, committed pages are kept; run again after "
                        "that moment",
                        resume_at=float(blocked),
                    )
                # The in-flight cap is full: come back when a lease may be back, not before the
                # moment the slot would start anyway.
                self.cap_waits += 1
                soonest = float(blocked) - db_now if blocked is not None else 0.0
                poll = soonest if soonest > MIN_POLL_SECONDS else self._cap_poll
                self._cap_poll = min(MAX_POLL_SECONDS, self._cap_poll * 2)  # a long request: back off
                await self._clock.sleep(poll)
                continue
            self._cap_poll = self._first_poll
            lower, upper = self._map(t0, t1, db_now)
            slot = float(row["slot"])
            send_at = slot + upper  # the latest local moment the slot can be: never early
            now = self._clock.monotonic()
            if send_at > now:
                await self._clock.sleep(send_at - now)
            late = self._clock.monotonic() - send_at
            if late + (upper - lower) > self.late_tolerance:
                # Too late for this slot (a slow answer or a busy loop): sending now could come too
                # close to the next process's slot. Give it up and take a later one.
                self.given_up += 1
                self._pending.append(lease)
                continue
            return Reservation(lease, send_at)

    def _map(self, t0: float, t1: float, db_now: float) -> tuple[float, float]:
        """Bounds of ``local - db`` from the recent answers: (largest lower, smallest upper)."""
        self._samples.append((t1, t0 - db_now, t1 - db_now))
        while self._samples and self._samples[0][0] < t1 - OFFSET_WINDOW_SECONDS:
            self._samples.popleft()
        lower = max(s[1] for s in self._samples)
        upper = min(s[2] for s in self._samples)
        if lower > upper:  # the clocks stepped (NTP, a resumed VM): trust the newest answer alone
            self._samples.clear()
            self._samples.append((t1, t0 - db_now, t1 - db_now))
            lower, upper = t0 - db_now, t1 - db_now
        return lower, upper

    def release(self, reservation: Reservation) -> None:
        """The request is done: its lease goes back with the next reservation, or soon by itself."""
        self._pending.append(reservation.lease)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush_soon())

    async def _flush_soon(self) -> None:
        await self._clock.sleep(RELEASE_COALESCE_SECONDS)
        await self.flush()

    async def flush(self) -> None:
        """Give back every lease no reservation carried back yet."""
        release, self._pending = self._pending, []
        if not release:
            return
        try:
            async with self.pool.acquire() as conn:
                await conn.execute("SELECT etl.rate_release($1, $2)", self.group, release)
            self.releases += 1
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            # The leases expire by themselves after lease_ttl: a lost release costs capacity, not safety.
            log.warning("rate_release_failed", group=self.group, error=type(exc).__name__)

    async def close(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
            self._flusher = None
        await self.flush()

    # ---------------------------------------------------------------------------------- feedback

    async def pause(self, seconds: float) -> None:
        """Every process of the group waits ``seconds`` from now (a 429's Retry-After)."""
        await self._push("paused_until", seconds)

    async def hold(self, seconds: float) -> None:
        """Every process of the group holds new sends ``seconds`` from now (reserve reached)."""
        await self._push("hold_until", seconds)

    async def _push(self, column: str, seconds: float) -> None:
        now = self._db_time() if self._db_time else None
        async with self.pool.acquire() as conn:
            await conn.execute(
                "INSERT INTO etl.rate_groups (group_key) VALUES ($1) ON CONFLICT DO NOTHING", self.group
            )
            await conn.execute(
                f"UPDATE etl.rate_groups SET {column} = greatest({column}, "
                "coalesce($3::double precision, extract(epoch FROM clock_timestamp())) + $2), "
                "updated_at = now() WHERE group_key = $1",
                self.group,
                seconds,
                now,
            )

    async def record_violation(self, retry_after: float | None, pause_seconds: float) -> LedgerState:
        """Write a 429 to the ledger, pause the whole group, and return the window's count."""
        now = self._db_time() if self._db_time else None
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO etl.rate_violations (group_key, source, run_id, retry_after, at) "
                "VALUES ($1, $2, $3, $4, coalesce(to_timestamp($5::double precision), now()))",
                self.group,
                self.source.name,
                self.run_id,
                retry_after,
                now,
            )
            await conn.execute(
                "INSERT INTO etl.rate_groups (group_key) VALUES ($1) ON CONFLICT DO NOTHING", self.group
            )
            await conn.execute(
                "UPDATE etl.rate_groups SET paused_until = greatest(paused_until, "
                "coalesce($3::double precision, extract(epoch FROM clock_timestamp())) + $2), "
                "updated_at = now() WHERE group_key = $1",
                self.group,
                pause_seconds,
                now,
            )
            return await self._ledger(conn, now)

    async def ledger(self) -> LedgerState:
        async with self.pool.acquire() as conn:
            return await self._ledger(conn, self._db_time() if self._db_time else None)

    async def _ledger(self, conn: asyncpg.Connection, now: float | None) -> LedgerState:
        window = self.source.violation_window_seconds
        rows = await conn.fetch(
            "WITH t AS (SELECT coalesce($3::double precision, extract(epoch FROM clock_timestamp())) AS now) "
            "SELECT extract(epoch FROM at)::double precision AS at FROM etl.rate_violations, t "
            "WHERE group_key = $1 AND extract(epoch FROM at) > t.now - $2 "
            "AND extract(epoch FROM at) <= t.now ORDER BY at",
            self.group,
            window,
            now,
        )
        times = [float(r["at"]) for r in rows]
        budget = self.source.violation_budget
        free_at = times[len(times) - budget] + window if len(times) >= budget else None
        return LedgerState(len(times), free_at)

    def spent_error(self, state: LedgerState) -> ViolationBudgetError:
        src = self.source
        when = _moment(state.free_at) if state.free_at is not None else "the window ends"
        return ViolationBudgetError(
            f"{src.name}: rate group {self.group!r} received {state.count} × 429 in the last "
            f"{src.violation_window_seconds:g} s (all processes and runs), reaching violation_budget="
            f"{src.violation_budget}; stopped before the API bans it. It may run again after {when}; "
            f"if 429s recur, lower [sources.{src.name}].rate or raise safety_margin_seconds",
            resume_at=state.free_at,
        )

    async def refuse_if_spent(self) -> None:
        """At a source's start: refuse it while the ledger says its violation budget is spent."""
        state = await self.ledger()
        if state.count >= self.source.violation_budget:
            raise self.spent_error(state)

    def __repr__(self) -> str:
        return f"SharedBudget(group={self.group!r}, spacing={self.spacing:.4f}s, cap={self.cap})"
