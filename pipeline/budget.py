"""One request budget per rate group, held in PostgreSQL and drawn from by every process and machine.

A *rate group* is the API host plus a hash of the credential identity (``host|identity``), or the
``rate_group`` a config names to join sources explicitly. Its row in ``etl.rate_groups`` holds the
next free send moment (GCRA with no burst: each reservation is ``spacing`` after the previous one),
the pause a 429 asked for, the hold a ``Remaining``/``Reset`` header asked for, and the in-flight
leases. ``etl.rate_take`` (migration 011) reserves in one statement, so a request costs one round
trip on the request's path (every statement goes over one connection the budget holds from its
first statement to ``close()``: taking one from the pool each time would add the pool's reset
statement); when the rate is high (``batch_size``) and several requests of the
process wait, one statement takes a batch of consecutive slots for all of them. Each slot holds its
own lease, which expires after the request's timeout, so a crashed holder leaks at most the slots
and leases it held (one batch). A finished request's lease is carried back by the process's next
statement (reservation, 429, header hold) when one follows within ``RELEASE_COALESCE_SECONDS``,
else by one release statement off the request path (so a process waiting on the cap is not
starved); a closing process also gives back the unused tail of its batch.

Times in the row are the database's epoch seconds: the one clock all machines share. Each answer
read at database time ``db_now`` between local moments ``t0`` and ``t1`` says the local clock is
``db - db_now`` + something in ``[t0, t1]``; the tightest bounds of the last ``OFFSET_WINDOW_SECONDS``
of answers map a slot to local time (the upper bound: the request never leaves before its slot,
however slow one answer was). A process whose send would be more than ``late_tolerance`` after its
slot (bounds' width plus a late wake) gives the slot up and reserves again: when no later slot was
granted meanwhile, the new slot is *now* (the one before it is still a spacing away), so a late
wake costs a round trip, not a whole spacing. No request leaves more than that tolerance after its
slot; the spacing's safety margin covers that plus the network's jitter (docs/RATE-LIMITS.md).

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
from typing import Any
from urllib.parse import urlsplit

import asyncpg
from asyncpg.exceptions import InternalClientError, OperatorInterventionError

from pipeline.clock import Clock
from pipeline.errors import DeferredError, ViolationBudgetError
from pipeline.log import get_logger
from pipeline.settings import SourceSettings

log = get_logger(__name__)

MIN_POLL_SECONDS = 0.02  # a full in-flight cap is re-checked at most this often
MAX_POLL_SECONDS = 1.0  # … and at least this often
OFFSET_WINDOW_SECONDS = 10.0  # clock-mapping samples kept: short enough that clock drift is < 1 ms
RELEASE_COALESCE_SECONDS = 0.01  # a lease not carried back by a reservation by then is released alone
BATCH_SPAN_SECONDS = 0.1  # a batch of slots never spans more of the group's time than this
MAX_BATCH = 16
CAP_LEAD_SECONDS = 0.05  # a process waiting on a full cap asks again this long before the slot
_IDENTITY_NAMESPACE = b"pipeline.rate_group:"
# A held connection that fails like this is gone (server restart, terminated backend, broken socket):
# the statement is sent once more on a fresh connection.
_LOST = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    InternalClientError,
    OperatorInterventionError,
)


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


def batch_size(source: SourceSettings) -> int:
    """The most slots one reservation takes: 1 unless the rate is high (spacing under 50 ms).

    A batch spans at most ``BATCH_SPAN_SECONDS`` of the group's slots, and never more than the
    in-flight cap (each slot holds a lease): a holder that crashes leaks at most that.
    """
    spacing = spacing_of(source)
    return max(1, min(MAX_BATCH, source.max_in_flight, int(BATCH_SPAN_SECONDS / spacing + 1e-9)))


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


class SlidingBounds:
    """The largest lower and the smallest upper bound of the samples of the last ``window`` seconds.

    Each ``add`` is O(1) amortised (a monotonic queue per bound: a sample that can no longer be the
    extreme before it expires is dropped at once), where a max/min over every kept sample cost
    ~0.2 ms per reservation at a thousand requests a second. Sample times must not decrease.
    """

    __slots__ = ("_highs", "_lows", "window")

    def __init__(self, window: float) -> None:
        self.window = window
        self._lows: collections.deque[tuple[float, float]] = collections.deque()  # lower bounds, falling
        self._highs: collections.deque[tuple[float, float]] = collections.deque()  # upper bounds, rising

    def add(self, at: float, lower: float, upper: float) -> tuple[float, float]:
        lows, highs = self._lows, self._highs
        while lows and lows[-1][1] <= lower:
            lows.pop()
        lows.append((at, lower))
        while highs and highs[-1][1] >= upper:
            highs.pop()
        highs.append((at, upper))
        cutoff = at - self.window
        while lows[0][0] < cutoff:
            lows.popleft()
        while highs[0][0] < cutoff:
            highs.popleft()
        return lows[0][1], highs[0][1]


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
        # The budget's own connection, taken at its first statement and held until close(): a
        # statement per request through pool.acquire() would pay the pool's reset statement (a
        # second round trip) and its bookkeeping on every request.
        self._conn: asyncpg.Connection | None = None
        self._conn_lock = asyncio.Lock()  # one statement at a time on it
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
        # Slots granted but not used yet (database time, lease id): a batch's tail.
        self._queue: collections.deque[tuple[float, str]] = collections.deque()
        self._lock = asyncio.Lock()
        self._wanting = 0  # local requests waiting for a slot: the size of the next batch
        self.batch_max = batch_size(source)
        self._cap_lead = min(CAP_LEAD_SECONDS, self.spacing / 4)
        self._refused = 0  # reservations refused in a row for a full cap
        self._lower = self._upper = 0.0
        self._flusher: asyncio.Task[None] | None = None
        self._checked = False
        # A full cap is re-checked soon (a short request ends), then less and less often.
        self._first_poll = max(MIN_POLL_SECONDS, min(self.spacing / 20, MAX_POLL_SECONDS))
        self._cap_poll = self._first_poll
        self._samples = SlidingBounds(OFFSET_WINDOW_SECONDS)  # clock-mapping answers
        self.round_trips = 0  # reservations (each on a request's path)
        self.releases = 0  # lease releases sent on their own (off the request path)
        self.cap_waits = 0  # reservations refused because the group's in-flight cap was full
        self.given_up = 0  # slots missed by more than late_tolerance (never used)
        self.moved = 0  # … of which the next reservation moved to now (no later slot was granted)
        self.batches = 0  # reservations that granted more than one slot
        self.feedbacks = 0  # pause / hold / violation statements
        self.early = 0  # slots given back at once: they filled the cap too long before they start

    # ------------------------------------------------------------------------------- reservation

    async def reserve(self) -> Reservation:
        """Wait for the group's next slot (and an in-flight lease); raise ``DeferredError`` if far."""
        if not self._checked:
            await self.refuse_if_spent()
            self._checked = True
        self._wanting += 1
        try:
            async with self._lock:  # local requests take the slots in order, one at a time
                return await self._next_slot()
        finally:
            self._wanting -= 1

    async def _next_slot(self) -> Reservation:
        late_slot: float | None = None
        while True:
            if not self._queue:
                await self._take(min(self.batch_max, max(1, self._wanting)), late_slot)
                late_slot = None
            slot, lease = self._queue.popleft()
            send_at = slot + self._upper  # the latest local moment the slot can be: never early
            now = self._clock.monotonic()
            if send_at > now:
                await self._sleep_to_slot(send_at - now)
            late = self._clock.monotonic() - send_at
            if late + (self._upper - self._lower) > self.late_tolerance:
                # Too late for this slot (a slow answer or a busy loop): sending now could come too
                # close to the next slot. Give it up; when it is the last one granted, the next
                # reservation moves it to now instead of queueing behind it.
                self.given_up += 1
                self._pending.append(lease)
                if not self._queue:
                    late_slot = slot
                continue
            return Reservation(lease, send_at)

    async def _take(self, count: int, late_slot: float | None) -> None:
        """One round trip: up to ``count`` consecutive slots with their leases, into the queue."""
        max_wait = self.source.max_wait_seconds
        while True:
            prefix = f"{self._token}:{next(self._ids)}"

            def arguments(prefix: str = prefix) -> tuple[object, ...]:
                return (
                    self.group,
                    self.spacing,
                    self.cap,
                    prefix,
                    count,
                    self.lease_ttl,
                    self._take_pending(),
                    max_wait,
                    late_slot,
                    self._db_time() if self._db_time else None,
                )

            row, t0 = await self._statement(
                "fetchrow", "SELECT * FROM etl.rate_take($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)", arguments
            )
            t1 = self._clock.monotonic()
            self.round_trips += 1
            assert row is not None
            db_now = float(row["db_now"])
            self._map(t0, t1, db_now)
            granted = int(row["granted"])
            log.debug(
                "rate_take",
                group=self.group,
                granted=granted,
                ahead=round(float(row["blocked_until"]) - db_now, 4),
                refused=self._refused,
                in_flight=int(row["in_flight"]),
            )
            if granted == 0:
                blocked = row["blocked_until"]
                if blocked is not None and float(blocked) - db_now > max_wait:
                    raise DeferredError(
                        f"{self.source.name}: rate group {self.group!r} is paused until "
                        f"{_moment(float(blocked))} (asked by the API), beyond max_wait_seconds="
                        f"{max_wait:g}; stopped this source, committed pages are kept; run again after "
                        "that moment",
                        resume_at=float(blocked),
                    )
                # The in-flight cap is full: come back a little before the slot could start (so the
                # next reservation gets that slot itself, not a later one), or soon if it could now.
                # The longer a process has been refused, the earlier it comes back: processes
                # racing for each slot of a full cap take turns instead of one starving.
                # A slot already due means the holder's request outlasts it: poll, backing off.
                self.cap_waits += 1
                self._refused += 1
                ahead = float(blocked) - db_now if blocked is not None else 0.0
                if ahead > MIN_POLL_SECONDS:
                    poll = max(MIN_POLL_SECONDS, ahead - self._lead())
                else:
                    poll = self._cap_poll
                    self._cap_poll = min(MAX_POLL_SECONDS, self._cap_poll * 2)  # a long request: back off
                await self._clock.sleep(poll)
                continue
            first = float(row["slot"])
            ahead = first - db_now
            if self.cap > 0 and int(row["in_flight"]) >= self.cap and ahead > self._lead() + MIN_POLL_SECONDS:
                # This lease filled the group's cap for a slot still far off: holding it through the
                # wait would lock every other process out until then, and the slot would go to
                # whoever asked first. Give it back (the slot too: nobody could take a later one)
                # and ask again just before it, where the process refused the longest comes first.
                await self._give_back(f"{prefix}.0", first)
                self._refused += 1
                self.early += 1
                await self._clock.sleep(max(MIN_POLL_SECONDS, ahead - self._lead()))
                continue
            self._cap_poll = self._first_poll
            self._refused = 0
            if granted > 1:
                self.batches += 1
            if late_slot is not None and abs(first - late_slot) < self.spacing / 2:
                self.moved += 1
            self._queue.extend((first + i * self.spacing, f"{prefix}.{i}") for i in range(granted))
            return

    async def _sleep_to_slot(self, seconds: float) -> None:
        """The last wait before a send (where a busy event loop wakes late)."""
        await self._clock.sleep(seconds)

    def _lead(self) -> float:
        """How long before a slot this process asks for it on a full cap: more, the longer refused."""
        return min(self.spacing / 2, self._cap_lead * max(1, self._refused))

    async def _give_back(self, lease: str, slot: float) -> None:
        """Return one just-granted lease and its slot (the group's last) in one statement."""
        await self._statement(
            "execute",
            "SELECT etl.rate_release($1, $2, $3, $4)",
            lambda: (self.group, [*self._take_pending(), lease], slot, slot + self.spacing),
        )
        self.releases += 1

    def _map(self, t0: float, t1: float, db_now: float) -> tuple[float, float]:
        """Bounds of ``local - db`` from the recent answers: (largest lower, smallest upper)."""
        lower, upper = self._samples.add(t1, t0 - db_now, t1 - db_now)
        if lower > upper:  # the clocks stepped (NTP, a resumed VM): trust the newest answer alone
            self._samples = SlidingBounds(OFFSET_WINDOW_SECONDS)
            lower, upper = self._samples.add(t1, t0 - db_now, t1 - db_now)
        self._lower, self._upper = lower, upper
        return lower, upper

    def release(self, reservation: Reservation) -> None:
        """The request is done: its lease goes back with the next statement, or soon by itself."""
        self._pending.append(reservation.lease)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush_soon())

    async def _flush_soon(self) -> None:
        await self._clock.sleep(RELEASE_COALESCE_SECONDS)
        await self.flush()

    async def flush(self, *, unused: bool = False) -> None:
        """Give back every lease no statement carried back yet (and, at close, unused slots)."""
        if not self._pending and not (unused and self._queue):
            return

        def arguments() -> tuple[object, ...]:
            release, unused_from, unused_to = self._take_pending(), None, None
            if unused and self._queue:
                unused_from, unused_to = self._queue[0][0], self._queue[-1][0] + self.spacing
                release += [lease for _, lease in self._queue]
                self._queue.clear()
            return self.group, release, unused_from, unused_to

        try:
            await self._statement("execute", "SELECT etl.rate_release($1, $2, $3, $4)", arguments)
            self.releases += 1
        except (*_LOST, asyncpg.PostgresError) as exc:
            # The leases expire by themselves after lease_ttl: a lost release costs capacity, not safety.
            log.warning("rate_release_failed", group=self.group, error=type(exc).__name__)

    async def close(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
            self._flusher = None
        try:
            await self.flush(unused=True)
        finally:
            async with self._conn_lock:  # never under a statement still running
                await self._drop()

    def _take_pending(self) -> list[str]:
        """The finished leases not carried back yet: they ride along with the statement being sent."""
        release, self._pending = self._pending, []
        return release

    async def _statement(
        self, method: str, sql: str, arguments: Callable[[], tuple[object, ...]]
    ) -> tuple[Any, float]:
        """Run one statement on the held connection: (its answer, the local moment it was sent).

        ``arguments`` is called once, when the statement is about to go (so the leases it carries
        back are the latest). A statement that fails or is cancelled hands the connection back to
        the pool, which resets or replaces it; one that fails because a held connection was lost is
        sent once more on a fresh one (a lost answer leaks at most that statement's slots and
        leases, which expire by themselves).
        """
        async with self._conn_lock:
            values = arguments()
            while True:
                fresh = self._conn is None
                if self._conn is None:
                    self._conn = await self.pool.acquire()
                started = self._clock.monotonic()
                try:
                    return await getattr(self._conn, method)(sql, *values), started
                except _LOST as exc:
                    await self._drop()
                    if fresh:
                        raise
                    log.info("rate_budget_reconnect", group=self.group, error=type(exc).__name__)
                except BaseException:
                    await self._drop()
                    raise

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(*_LOST, asyncpg.PostgresError):
                await self.pool.release(conn)

    # ---------------------------------------------------------------------------------- feedback

    async def pause(self, seconds: float) -> None:
        """Every process of the group waits ``seconds`` from now (a 429's Retry-After)."""
        await self._feedback(seconds, None)

    async def hold(self, seconds: float) -> None:
        """Every process of the group holds new sends ``seconds`` from now (reserve reached)."""
        await self._feedback(None, seconds)

    async def _feedback(self, pause: float | None, hold: float | None) -> None:
        await self._statement(
            "execute",
            "SELECT etl.rate_feedback($1, $2, $3, $4, $5)",
            lambda: (
                self.group,
                pause,
                hold,
                self._take_pending(),  # finished leases ride along
                self._db_time() if self._db_time else None,
            ),
        )
        self.feedbacks += 1

    async def record_violation(self, retry_after: float | None, pause_seconds: float) -> LedgerState:
        """Write a 429 to the ledger, pause the whole group, and return the window's count (one statement)."""
        # Sent again on a lost connection, a 429 may be counted twice: the ledger errs towards stopping.
        times, _ = await self._statement(
            "fetchval",
            "SELECT etl.rate_violation($1, $2, $3, $4, $5, $6, $7, $8)",
            lambda: (
                self.group,
                self.source.name,
                self.run_id,
                retry_after,
                pause_seconds,
                self.source.violation_window_seconds,
                self._take_pending(),
                self._db_time() if self._db_time else None,
            ),
        )
        self.feedbacks += 1
        return self._state([float(t) for t in times])

    async def ledger(self) -> LedgerState:
        rows, _ = await self._statement(
            "fetch",
            "WITH t AS (SELECT coalesce($3::double precision, extract(epoch FROM clock_timestamp())) AS now) "
            "SELECT extract(epoch FROM at)::double precision AS at FROM etl.rate_violations, t "
            "WHERE group_key = $1 AND extract(epoch FROM at) > t.now - $2 "
            "AND extract(epoch FROM at) <= t.now ORDER BY at",
            lambda: (
                self.group,
                self.source.violation_window_seconds,
                self._db_time() if self._db_time else None,
            ),
        )
        return self._state([float(r["at"]) for r in rows])

    def _state(self, times: list[float]) -> LedgerState:
        """The window's violations (oldest first) as a count and the moment the budget frees up."""
        window = self.source.violation_window_seconds
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
