"""The runner: plan streams, fetch → bounded queue → transform + load, record what happened.

A *stream* is (source, resource). Sources run concurrently under one ``asyncio.TaskGroup``; the
resources of one source run one after the other in configured order (they share the source's rate
budget, and parents such as Zou projects then load before their children). Each source's client
draws from its rate group's budget in PostgreSQL (``pipeline.budget``), shared with every other
process using the database. Each stream holds one connection for its life: it takes the stream's
advisory lock on it (an overlapping run skips the stream, ``status = 'skipped'``, as long as the
holder's heartbeat is fresh and it is within its deadline; otherwise ``status = 'stuck'`` naming
the holder) and loads every batch through it. ``max_run_minutes`` / ``max_stream_minutes`` stop
fetching cleanly (what was fetched is committed, ``status = 'deferred'``), as does a server that
asks for a wait beyond ``max_wait_seconds``. Inside a stream a producer task
iterates the connector's pages into a queue of ``[pipeline] queue_pages`` pages and a consumer
transforms them (``pipeline.transform.transform(kind, resource, doc, context)``, never through
the connector; ``context`` is read once per stream from the raw records already loaded) while a
load task commits the previous batch (one-slot hand-off, batches in order, each with its
checkpoint); batches hold up to ``batch_rows`` records / ``batch_bytes`` bytes, are handed over
early once ``batch_min_rows`` are pending and the loader is free, and never wait more than
``flush_seconds``: slow APIs commit every page within that delay, fast ones commit big batches.

The connector contract (``Page``, ``Stream``, ``StreamState``) is ``pipeline.streams``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg

from pipeline import checkpoints, drift, locks, runs, tables
from pipeline.budget import SharedBudget
from pipeline.checkpoints import Tracker
from pipeline.clock import SystemClock
from pipeline.errors import (
    ConfigError,
    DeferredError,
    FatalError,
    SkippableRecordError,
    ViolationBudgetError,
)
from pipeline.load import Loader, delete_ids, resolve_refs
from pipeline.load.context import read_context
from pipeline.load.poison import screen
from pipeline.log import bind_stream, get_logger
from pipeline.progress import NoProgress, Progress
from pipeline.records import Batch, Reject
from pipeline.redact import redact_text
from pipeline.runs import RunSummary, StreamResult
from pipeline.settings import Settings, SourceSettings
from pipeline.streams import Cursor, Page, RequestCounters, Stream, StreamState, later
from pipeline.transform import Context, transform
from pipeline.transform import spec as transform_spec

log = get_logger(__name__)
MIN_RECORDS_FOR_REJECT_SHARE = 100  # below this a stream is judged only at its end
SIGNALS: list[str] = []  # signals received by this process (``commands.run_interruptible`` notes them)


StreamFactory = Callable[[SourceSettings, str, Any], Stream]
ClientFactory = Callable[[SourceSettings], AbstractAsyncContextManager[Any]]
StateFactory = Callable[[asyncpg.Connection, Stream], Awaitable[StreamState]]


@asynccontextmanager
async def no_client(_: SourceSettings) -> AsyncIterator[None]:
    yield None


@dataclass(slots=True)
class RunContext:
    settings: Settings
    pool: asyncpg.Pool
    run_id: int
    started_at: datetime
    progress: Progress = field(default_factory=NoProgress)
    allow_deletes: bool = False  # --allow-deletes: a scan's verified deletes pass max_delete_share
    max_pages: int | None = None  # --max-pages: a smoke test (``sample_pages``), nothing marked done
    results: list[StreamResult] = field(default_factory=list)  # every stream that ended, in order
    lock_conn: asyncpg.Connection | None = None  # holds the run lock: a live run is never "stale"
    interrupted_by: list[str] = field(default_factory=lambda: SIGNALS)  # what cancelled the run
    deadline: float | None = None  # time.monotonic() moment of max_run_minutes, if set
    heartbeat: asyncio.Task[None] | None = None

    def stream_deadline(self, started: float) -> float | None:
        """The earlier of the run's deadline and ``started + max_stream_minutes``."""
        minutes = self.settings.pipeline.max_stream_minutes
        own = started + minutes * 60 if minutes > 0 else None
        known = [d for d in (self.deadline, own) if d is not None]
        return min(known) if known else None


class RunAborted(Exception):
    """SIGTERM / SIGINT: the run and its streams are recorded ``aborted``; ``summary`` says what was done."""

    def __init__(self, summary: RunSummary) -> None:
        super().__init__(f"run {summary.run_id} aborted")
        self.summary = summary


def plan_streams(
    settings: Settings,
    sources: Sequence[str] | None = None,
    resources: Sequence[str] | None = None,
    *,
    include_disabled: bool = False,
) -> list[tuple[SourceSettings, list[str]]]:
    """Enabled sources (or the named ones) with their configured resources (or the named ones).

    A named source with ``enabled = false`` is refused unless ``include_disabled`` (it may be
    disabled for a reason: terms of use, credentials, a server gone).
    """
    if sources:
        unknown = [s for s in sources if s not in settings.sources]
        if unknown:
            raise ConfigError(
                f"unknown source(s) {unknown}; configured: {', '.join(settings.sources) or 'none'}"
            )
        chosen = [settings.sources[s] for s in sources]
        disabled = [s.name for s in chosen if not s.enabled]
        if disabled and not include_disabled:
            where = f" in {settings.path}" if settings.path else ""
            raise ConfigError(
                f"source(s) {', '.join(disabled)} are disabled (enabled = false{where}); nothing was "
                "fetched. Set enabled = true, or pass --include-disabled to run them this once"
            )
    else:
        chosen = settings.enabled_sources()
    plan = []
    for src in chosen:
        wanted = [r for r in src.resources if not resources or r in resources]
        if wanted:
            plan.append((src, wanted))
    if resources and not plan:
        raise ConfigError(f"no configured source has resource(s) {list(resources)}; check --resource")
    return plan


def check_max_pages(max_pages: int | None) -> None:
    if max_pages is not None and max_pages < 1:
        raise ConfigError(
            f"--max-pages {max_pages!r}: give a whole number of pages, 1 or more (e.g. --max-pages 2)"
        )


def _first_error(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def _records_in(batch: Batch) -> int:
    seen = {(r.resource, str(r.source_id)) for r in batch.raw}
    orphans = sum(
        1 for j in batch.rejects if j.source_id is None or (j.resource, str(j.source_id)) not in seen
    )
    return len(batch.raw) + orphans


@dataclass(slots=True)
class _Pending:
    """Transformed pages handed to the load task: one transaction with their checkpoint."""

    batch: Batch = field(default_factory=Batch)
    keys: list[int] = field(default_factory=list)
    cursor: Cursor | None = None
    total: int | None = None
    deletes: dict[str, list[str]] = field(default_factory=dict)
    nbytes: int = 0
    pages: int = 0
    since: float = 0.0  # loop time the first page arrived (the bounded commit delay runs from it)


class _Consumer:
    """Transforms queued pages while a load task commits the previous batch, each with its checkpoint.

    Two tasks share the stream's event loop: the transform task absorbs pages into a pending batch
    and hands it over through a one-slot queue; the load task writes handed-over batches in order,
    each in one transaction with its checkpoint (built from that batch's pages only, right before
    its load). PostgreSQL works on one batch while Python transforms the next, so both cores run.

    Flush policy: a batch is handed over when it is full (``batch_rows`` / ``batch_bytes``); when it
    holds ``batch_min_rows`` records, no page is waiting and the load task is free; when its first
    page has waited ``flush_seconds`` (slow APIs still commit every page within that delay); and at
    the end of the stream (or after a transform error, before the error is raised).
    """

    def __init__(
        self,
        ctx: RunContext,
        stream: Stream,
        tracker: Tracker,
        loader: Loader,
        result: StreamResult,
        context: Context,
    ):
        self.ctx, self.stream, self.tracker, self.loader, self.result = ctx, stream, tracker, loader, result
        self.kind, self.context = stream.source.kind, context
        self.knobs = ctx.settings.pipeline
        self.unknown_seen: set[tuple[str, str]] = set()  # vocabulary values logged once per stream
        self.fields = drift.FieldTally()  # field paths of the fetched records (schema drift)
        self.written_tables: set[str] = set()  # tables this stream changed rows in (for resolve_refs)
        self.complete: bool | None = None  # False: the connector knows its scan missed records
        self.pending = _Pending()
        self.busy = False  # the load task is writing a batch
        self.bar = f"{stream.source.name}/{stream.resource}"
        self.bar_total: int | None = None  # records this run should load, from the API's count

    def hint(self, total: int) -> None:
        """A total the API gave: the bar shows it (less what a resumed scan already loaded) and an ETA."""
        remaining = max(total - len(self.tracker.state.seen_ids), 0)
        if remaining != self.bar_total:
            self.bar_total = remaining
            self.ctx.progress.advance(self.bar, 0, remaining)

    def absorb(self, page: Page) -> None:
        if page.total_hint is not None:
            self.hint(page.total_hint)
        try:
            part = transform(self.kind, self.stream.resource, page.doc, self.context)
        except SkippableRecordError as exc:  # the transform gave up on the whole page
            part = Batch(rejects=[Reject(self.stream.resource, None, page.doc, str(exc), url=page.url)])
        part = screen(part, self.stream.source.name, page.url)  # NUL, too deep: rejected, not loaded
        for field_name, value in part.unknown:
            if (field_name, value) not in self.unknown_seen:
                self.unknown_seen.add((field_name, value))
                log.warning("unknown_vocabulary", field=field_name, value=value, stored_as="unknown")
        for field_name, note in part.notes:
            if (field_name, note) not in self.unknown_seen:
                self.unknown_seen.add((field_name, note))
                log.warning("data_quality", field=field_name, note=note, stored_as="NULL")
        self.fields.absorb(part.raw)
        p = self.pending
        if not p.pages:
            p.since = asyncio.get_running_loop().time()
        p.batch.extend(part)
        self.result.records += _records_in(part)
        p.pages += 1
        p.nbytes += page.nbytes
        if page.key is not None:
            p.keys.append(page.key)
        if page.cursor is not None:
            p.cursor = page.cursor if p.cursor is None else later(p.cursor, page.cursor)
        if page.expected_total is not None:
            p.total = page.expected_total
        if page.complete is not None:
            self.complete = page.complete
        for target, ids in page.deletes.items():
            p.deletes.setdefault(target, []).extend(ids)

    def full(self) -> bool:
        p = self.pending
        return len(p.batch) >= self.knobs.batch_rows or p.nbytes >= self.knobs.batch_bytes

    async def commit(self, p: _Pending) -> None:
        """Load one handed-over batch with its checkpoint advance, in one transaction."""
        state = self.tracker.state
        sampling = self.ctx.max_pages is not None
        if sampling:  # a smoke test loads the data and nothing else: no checkpoint, no delete
            hook, p.deletes = None, {}
        else:
            hook = self.tracker.hook(p.keys, p.cursor, p.total)
        scanning = not sampling and (state.mode == "full" or (state.window is not None and state.window.full))
        counts = await self.loader.load(
            p.batch, after=hook, seen_scan=state.scan_id if scanning else None, tombstones=p.deletes
        )
        self.written_tables.update(name for name, n in counts.tables.items() if n)
        r = self.result
        r.pages += p.pages
        r.inserted += counts.inserted
        r.updated += counts.updated
        r.unchanged += counts.unchanged
        r.other_rows += counts.other_rows
        r.rejected += counts.rejected
        # A tombstone is usually given for the unified table and for raw: count each record once.
        r.deleted += len({i for ids in p.deletes.values() for i in ids})
        self.ctx.progress.advance(self.bar, len(p.batch))
        self.check_rejects(final=False)

    def check_rejects(self, *, final: bool) -> None:
        r, share = self.result, self.knobs.max_reject_share
        if (
            r.records
            and (final or r.records >= MIN_RECORDS_FOR_REJECT_SHARE)
            and r.rejected / r.records > share
        ):
            raise FatalError(
                f"{r.source}/{r.resource}: {r.rejected} of {r.records} records failed to transform "
                f"(> max_reject_share {share}); see etl.rejects for run {self.ctx.run_id}, fix the "
                "transform, then run 'pipeline replay'"
            )

    async def run(self, queue: asyncio.Queue[Page | None]) -> None:
        handoff: asyncio.Queue[_Pending | None] = asyncio.Queue(maxsize=1)
        drained = asyncio.Event()
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._load_loop(handoff, drained))
            tasks.create_task(self._transform_loop(queue, handoff, drained))

    async def _load_loop(self, handoff: asyncio.Queue[_Pending | None], drained: asyncio.Event) -> None:
        try:
            while (p := await handoff.get()) is not None:
                self.busy = True
                await self.commit(p)
                self.busy = False
        finally:
            drained.set()

    async def _hand_off(self, handoff: asyncio.Queue[_Pending | None]) -> None:
        if self.pending.pages:
            pending, self.pending = self.pending, _Pending()
            await handoff.put(pending)  # waits while the load task still holds a batch

    async def _transform_loop(
        self,
        queue: asyncio.Queue[Page | None],
        handoff: asyncio.Queue[_Pending | None],
        drained: asyncio.Event,
    ) -> None:
        loop = asyncio.get_running_loop()
        delay, min_rows = self.knobs.flush_seconds, self.knobs.batch_min_rows
        try:
            while True:
                if not queue.empty():
                    page = queue.get_nowait()
                elif self.pending.pages:
                    left = self.pending.since + delay - loop.time()
                    try:
                        page = await asyncio.wait_for(queue.get(), max(left, 0.0))
                    except TimeoutError:  # the first page waited long enough: commit what there is
                        await self._hand_off(handoff)
                        continue
                else:
                    page = await queue.get()
                if page is None:
                    break
                self.absorb(page)
                if self.full():
                    await self._hand_off(handoff)
                elif len(self.pending.batch) >= min_rows and queue.empty() and not self.busy:
                    await asyncio.sleep(0)  # let a producer with pages ready refill first
                    if queue.empty():
                        await self._hand_off(handoff)
        except Exception:  # commit every page transformed before the error, then raise it
            await self._finish(handoff, drained)
            raise
        await self._finish(handoff, drained)

    async def _finish(self, handoff: asyncio.Queue[_Pending | None], drained: asyncio.Event) -> None:
        await self._hand_off(handoff)
        await handoff.put(None)
        await drained.wait()


async def _pump(
    ctx: RunContext,
    stream: Stream,
    state: StreamState,
    conn: asyncpg.Connection,
    r: StreamResult,
    deadline: float | None = None,
) -> None:
    queue: asyncio.Queue[Page | None] = asyncio.Queue(maxsize=ctx.settings.pipeline.queue_pages)
    main = getattr(stream, "main_tables", None)  # optional: the owned tables when absent
    records = getattr(stream, "record_resource", None)  # optional: the raw records of the stream's name
    lag = ctx.settings.pipeline.cursor_lag_seconds
    # A verified delete reaches the rows keyed by the listed records: the main tables (a Kitsu
    # media-staff scan deletes credits, never the people it included).
    tracker = Tracker(state, lag, ctx.run_id, tuple(main or stream.owned_tables), records, delete_ids)
    loader = Loader(conn, state.source, ctx.run_id, stream.owned_tables, main, record_resource=records)
    needs = transform_spec(stream.source.kind, stream.resource).context
    context = await read_context(conn, state.source, needs)
    consumer = _Consumer(ctx, stream, tracker, loader, r, context)

    pages = stream.pages(state) if ctx.max_pages is None else sample_pages(stream.pages(state), ctx.max_pages)
    await _drain(pages, queue, consumer, deadline, lambda: _deadline_passed(ctx, r))
    consumer.check_rejects(final=True)
    if ctx.max_pages is not None:
        if consumer.written_tables:
            await resolve_refs(conn, state.source, consumer.written_tables)
        await _check_drift(ctx, stream, conn, consumer.fields)
        raise Sampled(
            f"{state.source}/{state.resource}: smoke test, {r.pages} page(s) loaded (--max-pages "
            f"{ctx.max_pages}); no scan marked complete, nothing deleted, checkpoint not moved"
        )
    gone = await _verify_unseen(stream, state, tracker, conn, queue, consumer)
    r.deleted += await tracker.complete(
        conn,
        complete=consumer.complete is not False,
        gone=gone,
        allow_deletes=ctx.allow_deletes,
        max_delete_share=stream.source.max_delete_share,
    )
    if consumer.written_tables:  # nothing written, nothing new to point at
        await resolve_refs(conn, state.source, consumer.written_tables)
    await _check_drift(ctx, stream, conn, consumer.fields)


class Sampled(Exception):
    """A ``--max-pages`` stream loaded its pages; it ends ``sampled`` with nothing marked done."""


async def sample_pages(pages: AsyncIterator[Page], limit: int) -> AsyncIterator[Page]:
    """At most ``limit`` pages of ``pages``, then the connector's walk is closed (its fetches cancelled).

    A smoke test (``--max-pages N``) loads these pages and nothing else: the hook that advances a
    checkpoint is not run (a partial incremental walk must not move the watermark past records it
    never read: AniList and Zou walks can go newest-first), the scan's seen ids are not recorded,
    no lookup by id runs and no tombstone or unseen record is deleted; a backfill's progress is not
    saved. The next normal run starts exactly where it would have without the smoke test.
    """
    count = 0
    try:
        if limit <= 0:
            return
        async for page in pages:
            yield page
            count += 1
            if count >= limit:
                return
    finally:
        closer = getattr(pages, "aclose", None)
        if closer is not None:
            await closer()


async def _drain(
    pages: AsyncIterator[Page],
    queue: asyncio.Queue[Page | None],
    consumer: _Consumer,
    deadline: float | None = None,
    expired: Callable[[], Exception] | None = None,
) -> None:
    """Producer → bounded queue → consumer until ``pages`` ends; a fetch error fails after the commit.

    At ``deadline`` (loop time) fetching stops and ``expired()`` is raised once what was fetched is
    committed.
    """
    fetch_error: list[Exception] = []

    async def produce() -> None:
        limit = asyncio.timeout_at(deadline) if deadline is not None else None
        try:
            if limit is None:
                async for page in pages:
                    await queue.put(page)
            else:
                async with limit:
                    async for page in pages:
                        await queue.put(page)
        except TimeoutError as exc:
            if limit is not None and limit.expired() and expired is not None:  # stop, keep what we have
                fetch_error.append(expired())
            else:
                fetch_error.append(exc)
        except Exception as exc:  # let the consumer commit what was already fetched, then fail
            fetch_error.append(exc)
        await queue.put(None)

    try:
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(produce())
            tasks.create_task(consumer.run(queue))
    except BaseExceptionGroup as group:
        raise _first_error(group) from None
    if fetch_error:
        raise fetch_error[0]


async def _verify_unseen(
    stream: Stream,
    state: StreamState,
    tracker: Tracker,
    conn: asyncpg.Connection,
    queue: asyncio.Queue[Page | None],
    consumer: _Consumer,
) -> list[str] | None:
    """Look the records the scan did not see up by id; return those confirmed gone.

    The records that answer are loaded like any page (a targeted re-read: they count as seen and
    their content is refreshed). ``None``: the connector has no lookup by id, so the two-scan
    rule applies. Nothing is looked up for a scan that cannot delete anyway.
    """
    lookup: Callable[[Sequence[str]], AsyncIterator[Page]] | None = getattr(stream, "lookup", None)
    scanning = state.mode == "full" or (state.window is not None and state.window.full)
    if lookup is None or not scanning or state.expected_total is None or consumer.complete is False:
        return None
    candidates = await tracker.unseen(conn)
    if not candidates:
        return []
    log.info("verify_unseen", candidates=len(candidates))
    present: set[str] = set()

    async def answers() -> AsyncIterator[Page]:
        async for page in lookup(candidates):
            present.update(page.present)
            yield page

    await _drain(answers(), queue, consumer)
    if present:  # they exist: seen by this scan, as far as deleting goes
        await conn.execute(
            "INSERT INTO etl.scan_seen (scan_id, source_id) SELECT $1, unnest($2::text[]) "
            "ON CONFLICT DO NOTHING",
            state.scan_id,
            sorted(present),
        )
    gone = [i for i in await tracker.unseen(conn) if i not in present]
    log.info(
        "verify_unseen_done", candidates=len(candidates), answered=len(candidates) - len(gone), gone=len(gone)
    )
    return gone


async def _check_drift(
    ctx: RunContext, stream: Stream, conn: asyncpg.Connection, fields: drift.FieldTally
) -> None:
    """Record the stream's field paths; drift is logged, and fails the stream under ``on_drift = "fail"``."""
    report = await drift.record(conn, stream.source.name, fields, ctx.run_id)
    for resource, path in report.new:
        log.warning("schema_drift", change="new_field", resource=resource, path=path)
    for resource, path in report.vanished:
        log.warning("schema_drift", change="vanished_field", resource=resource, path=path)
    if report and stream.source.on_drift == "fail":
        raise FatalError(
            f"{stream.source.name}/{stream.resource}: schema drift, {report.describe()}; the data is "
            "loaded and raw.records has every field: update the transform (then 'pipeline replay'), "
            f'or set on_drift = "warn" for [sources.{stream.source.name}]'
        )


def _deadline_passed(ctx: RunContext, r: StreamResult) -> DeferredError:
    knobs = ctx.settings.pipeline
    return DeferredError(
        f"{r.source}/{r.resource}: deadline reached (max_run_minutes={knobs.max_run_minutes:g}, "
        f"max_stream_minutes={knobs.max_stream_minutes:g}); stopped fetching, committed pages are kept "
        "and the next run resumes from them"
    )


async def _locked_elsewhere(
    ctx: RunContext, conn: asyncpg.Connection, stream: Stream, r: StreamResult
) -> None:
    """Skipped while a live run within its deadline has the stream; stuck (exit 1) otherwise."""
    name = stream.source.name
    pid = await locks.lock_holder(conn, name, stream.resource)
    holder = await runs.holder_run(conn, name, stream.resource, ctx.run_id)
    if holder is not None and holder.stuck:
        r.status = "stuck"
        r.error = (
            f"{name}/{stream.resource} is held by a stuck run: {holder.describe()} (database backend "
            f"pid {pid}); nothing was loaded. Stop that process (or end its database session: "
            f"SELECT pg_terminate_backend({pid})) and re-run"
        )
        log.error("stream_stuck", holder_run=holder.run_id, host=holder.host, pid=holder.pid)
    else:
        r.status = "skipped"
        who = f"run {holder.run_id} on host {holder.host} pid {holder.pid}, " if holder is not None else ""
        r.error = (
            f"{name}/{stream.resource} is being loaded by another run ({who}database backend pid "
            f"{pid}); skipped so nothing loads twice"
        )
        log.warning("stream_skipped", reason="locked", holder_pid=pid)
    r.stream_run_id = await runs.start_stream_run(conn, ctx.run_id, r)
    await runs.finish_stream_run(conn, r)


def _copy_stats(stream: Stream, r: StreamResult) -> None:
    stats: RequestCounters | None = getattr(stream, "stats", None)
    if stats is not None:
        r.requests, r.retries, r.rate_limited = stats.requests, stats.retries, stats.rate_limited
        r.limiter_wait_seconds, r.bytes = float(stats.wait_seconds), stats.bytes


async def run_stream(
    ctx: RunContext, stream: Stream, begin: StateFactory, mode_hint: str = "full"
) -> StreamResult:
    """Lock, resume, pump and record one stream; never raises for the stream's own failures."""
    name = stream.source.name
    r = StreamResult(name, stream.resource, mode_hint)
    started = time.monotonic()
    with bind_stream(run_id=ctx.run_id, source=name, stream=stream.resource):
        async with ctx.pool.acquire() as conn:
            if not await locks.try_lock_stream(conn, name, stream.resource):
                await _locked_elsewhere(ctx, conn, stream, r)
                return r
            try:
                state = await begin(conn, stream)
                r.mode, r.backfill_id = state.mode, state.backfill_id
                r.stream_run_id = await runs.start_stream_run(conn, ctx.run_id, r)
                ctx.progress.start(f"{name}/{stream.resource}", None)  # totals come with pages
                await _pump(ctx, stream, state, conn, r, ctx.stream_deadline(started))
                r.status = "succeeded"
            except Sampled as exc:
                r.status = "sampled"
                log.info("stream_sampled", detail=str(exc))
            except checkpoints.ScanIncomplete as exc:
                r.status, r.error = "incomplete", str(exc)
                log.warning("stream_incomplete", error=r.error)
            except checkpoints.MassDeleteRefused as exc:
                r.status, r.error = "failed", str(exc)
                log.error("stream_failed", error=r.error)
            except asyncio.CancelledError:  # SIGTERM / SIGINT: the batch in flight rolled back
                r.status = "aborted"
                by = " or ".join(ctx.interrupted_by) or "cancellation"
                r.error = f"interrupted by {by}; committed pages are kept, the next run resumes"
                raise
            except RescanNotDue as exc:
                r.status, r.error = "skipped", str(exc)
                log.info("stream_skipped", reason="rescan_not_due", detail=str(exc))
            except ViolationBudgetError as exc:
                r.status, r.error = "stopped", redact_text(str(exc))
                log.error("stream_stopped", error=r.error)
            except DeferredError as exc:
                r.status, r.error = "deferred", redact_text(str(exc))
                log.warning("stream_deferred", error=r.error)
            except Exception as exc:  # a stream's failure is recorded, other streams go on
                r.status, r.error = "failed", redact_text(f"{type(exc).__name__}: {exc}")
                log.error("stream_failed", error=r.error)
            finally:
                r.duration_seconds = round(time.monotonic() - started, 3)
                _copy_stats(stream, r)
                ctx.results.append(r)
                await _record_stream_end(ctx, conn, r)
                await locks.unlock_stream(conn, name, stream.resource)
                ctx.progress.finish(f"{name}/{stream.resource}", r.status)
        log.info("stream_finished", **_summary(r))
    return r


async def _record_stream_end(ctx: RunContext, conn: asyncpg.Connection, r: StreamResult) -> None:
    """Write the stream's row; after a cancelled query its connection may be unusable, so use another."""
    try:
        if r.stream_run_id is None:
            r.stream_run_id = await runs.start_stream_run(conn, ctx.run_id, r)
        await runs.finish_stream_run(conn, r)
    except (asyncpg.InterfaceError, asyncpg.PostgresError):
        if r.status != "aborted":
            raise
        async with ctx.pool.acquire() as other:
            if r.stream_run_id is None:
                r.stream_run_id = await runs.start_stream_run(other, ctx.run_id, r)
            await runs.finish_stream_run(other, r)


def _summary(r: StreamResult) -> dict[str, Any]:
    fields = ("source", "resource", "mode", "status", "error", "duration_seconds", *runs.STREAM_COUNTERS)
    return {f: getattr(r, f) for f in fields}


class RescanNotDue(Exception):
    """The stream's last full scan is younger than its source's ``min_rescan_minutes``."""


async def _check_rescan_due(
    conn: asyncpg.Connection, stream: Stream, state: StreamState, now: datetime
) -> None:
    wait = stream.source.min_rescan_minutes
    if state.mode != "full" or wait <= 0 or state.committed:
        return  # incremental, no minimum, or a scan in progress that must be finished
    row = await checkpoints.read_checkpoint(conn, stream.source.name, stream.resource)
    if row is not None and row["scan_incomplete_at"] is not None:
        return  # the last scan did not see everything: scan again now
    done = row["scan_completed_at"] if row else None
    if done is not None and (now - done).total_seconds() < wait * 60:
        minutes = (now - done).total_seconds() / 60
        raise RescanNotDue(
            f"last full scan completed {minutes:.0f} min ago (min_rescan_minutes = {wait:g}); "
            "run `pipeline sync --full` to scan anyway"
        )


def nightly_state(ctx: RunContext, full: bool) -> StateFactory:
    async def begin(conn: asyncpg.Connection, stream: Stream) -> StreamState:
        state = await checkpoints.begin_stream(
            conn,
            stream.source.name,
            stream.resource,
            full=full,
            incremental_capable=stream.incremental,
            auth=stream.auth_identity,
            run_started_at=ctx.started_at,
        )
        if state.mode == "incremental" and await _full_scan_due(conn, stream, ctx.started_at):
            state = await checkpoints.begin_stream(
                conn,
                stream.source.name,
                stream.resource,
                full=True,
                incremental_capable=stream.incremental,
                auth=stream.auth_identity,
                run_started_at=ctx.started_at,
            )
        if not full and ctx.max_pages is None:  # a smoke test marks nothing done: always due
            await _check_rescan_due(conn, stream, state, ctx.started_at)
        return state

    return begin


async def _full_scan_due(conn: asyncpg.Connection, stream: Stream, now: datetime) -> bool:
    """An incremental stream whose connector asks for a periodic full scan (``full_scan_hours``:
    its incremental walk cannot see deletes) and whose last completed scan is older than that
    (0 hours: every run)."""
    hours = getattr(stream, "full_scan_hours", None)
    if hours is None:
        return False
    row = await checkpoints.read_checkpoint(conn, stream.source.name, stream.resource)
    done = row["scan_completed_at"] if row else None
    due = done is None or (now - done).total_seconds() >= float(hours) * 3600
    if due:
        log.info("periodic_full_scan", resource=stream.resource, last_completed=str(done), every_hours=hours)
    return due


StreamRunner = Callable[[Stream], Awaitable[StreamResult]]


async def run_sources(
    plan: Iterable[tuple[SourceSettings, list[str]]],
    stream_factory: StreamFactory,
    client_factory: ClientFactory,
    run_one: StreamRunner,
) -> list[StreamResult]:
    """Sources concurrently, each source's resources in order; failures stay inside their stream."""
    results: list[StreamResult] = []
    # Import the unified models before any source sends a request: an import is synchronous, and
    # one inside a running stream holds every other stream's due rate slots with it.
    tables.registered()

    async def one_source(src: SourceSettings, resources: list[str]) -> None:
        try:
            async with client_factory(src) as client:
                for resource in resources:
                    results.append(await run_one(stream_factory(src, resource, client)))
        except Exception as exc:  # the client could not even start: every remaining stream failed
            done = {r.resource for r in results if r.source == src.name}
            for resource in resources:
                if resource not in done:
                    error = redact_text(f"{type(exc).__name__}: {exc}")
                    results.append(StreamResult(src.name, resource, "full", status="failed", error=error))
            log.error("source_failed", source=src.name, error=redact_text(str(exc)))

    async with asyncio.TaskGroup() as tasks:
        for src, resources in plan:
            tasks.create_task(one_source(src, resources))
    return results


def shared_budgets(ctx: RunContext, client_factory: ClientFactory) -> ClientFactory:
    """Wrap a client factory so every client draws from its rate group's budget in the database."""

    @asynccontextmanager
    async def open_client(src: SourceSettings) -> AsyncIterator[Any]:
        async with client_factory(src) as client:
            attach = getattr(client, "share_budget", None)
            if attach is not None:
                attach(SharedBudget(ctx.pool, src, ctx.run_id, getattr(client, "clock", SystemClock())))
            yield client

    return open_client


async def _beat(pool: asyncpg.Pool, run_id: int) -> None:
    """Refresh etl.runs.heartbeat_at while the run lives, so other runs can tell it from a stuck one."""
    while True:
        await asyncio.sleep(runs.HEARTBEAT_SECONDS)
        try:
            async with pool.acquire() as conn:
                await runs.heartbeat(conn, run_id)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("heartbeat_failed", run_id=run_id, error=type(exc).__name__)


async def open_run(
    settings: Settings,
    pool: asyncpg.Pool,
    command: str,
    args: dict[str, Any],
    progress: Progress | None,
    *,
    allow_deletes: bool = False,
    max_pages: int | None = None,
) -> RunContext:
    config = str(settings.path) if settings.path else None
    minutes = settings.pipeline.max_run_minutes
    lock_conn: asyncpg.Connection = await pool.acquire()
    try:
        run_id = await runs.start_run(lock_conn, command, args, config, minutes)
        await runs.hold_run_lock(lock_conn, run_id)
        stale = await runs.abort_stale_runs(lock_conn, run_id)
    except BaseException:
        await pool.release(lock_conn)
        raise
    if stale:
        log.warning("stale_runs_aborted", runs=stale, reason="their process died; locks were free")
    ctx = RunContext(
        settings,
        pool,
        run_id,
        datetime.now(UTC),
        progress or NoProgress(),
        allow_deletes=allow_deletes,
        max_pages=max_pages,
        lock_conn=lock_conn,
        deadline=time.monotonic() + minutes * 60 if minutes > 0 else None,
    )
    ctx.heartbeat = asyncio.create_task(_beat(pool, run_id))
    return ctx


async def _release_run_lock(ctx: RunContext) -> None:
    conn, ctx.lock_conn = ctx.lock_conn, None
    if conn is None:
        return
    try:
        await runs.release_run_lock(conn, ctx.run_id)
    finally:
        await ctx.pool.release(conn)


async def abort_run(ctx: RunContext, command: str) -> RunAborted:
    """After SIGTERM / SIGINT: the run ``aborted`` in the books, with what its streams did."""
    reason = f"interrupted by {' or '.join(ctx.interrupted_by) or 'cancellation'}"
    await stop_heartbeat(ctx)
    async with ctx.pool.acquire() as conn:
        await runs.finish_run(conn, ctx.run_id, "aborted", reason)
    await _release_run_lock(ctx)
    log.warning("run_aborted", run_id=ctx.run_id, command=command, reason=reason)
    return RunAborted(RunSummary(ctx.run_id, command, "aborted", list(ctx.results), error=reason))


async def stop_heartbeat(ctx: RunContext) -> None:
    """End the run's heartbeat task (``close_run`` does; call it on paths that end a run otherwise)."""
    if ctx.heartbeat is not None:
        ctx.heartbeat.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ctx.heartbeat
        ctx.heartbeat = None


async def close_run(ctx: RunContext, command: str, results: list[StreamResult]) -> RunSummary:
    await stop_heartbeat(ctx)
    status = runs.run_status(results) if results else "succeeded"
    async with ctx.pool.acquire() as conn:
        await runs.finish_run(conn, ctx.run_id, status)
    await _release_run_lock(ctx)
    log.info("run_finished", run_id=ctx.run_id, command=command, status=status, streams=len(results))
    return RunSummary(ctx.run_id, command, status, results)


async def run_sync(
    settings: Settings,
    pool: asyncpg.Pool,
    sources: Sequence[str] | None = None,
    resources: Sequence[str] | None = None,
    full: bool = False,
    *,
    stream_factory: StreamFactory,
    client_factory: ClientFactory = no_client,
    progress: Progress | None = None,
    allow_deletes: bool = False,
    include_disabled: bool = False,
    max_pages: int | None = None,
) -> RunSummary:
    """``pipeline sync``: every planned stream, incremental where possible (``full`` forces re-scans).

    ``max_pages``: a smoke test, at most that many pages per stream (``sample_pages``).
    """
    check_max_pages(max_pages)
    plan = plan_streams(settings, sources, resources, include_disabled=include_disabled)
    args: dict[str, Any] = {"sources": list(sources or ()), "resources": list(resources or ()), "full": full}
    if allow_deletes:
        args["allow_deletes"] = True
    if max_pages is not None:
        args["max_pages"] = max_pages
    ctx = await open_run(
        settings, pool, "sync", args, progress, allow_deletes=allow_deletes, max_pages=max_pages
    )
    begin = nightly_state(ctx, full)
    clients = shared_budgets(ctx, client_factory)
    try:
        results = await run_sources(plan, stream_factory, clients, lambda s: run_stream(ctx, s, begin))
    except asyncio.CancelledError:
        raise await abort_run(ctx, "sync") from None
    finally:
        await stop_heartbeat(ctx)
    return await close_run(ctx, "sync", results)
