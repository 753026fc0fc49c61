"""The Python API: what the CLI does, callable from Python (an orchestrator, a notebook, a test).

Every function opens the configured database (``DATABASE_URL``, ``[database] url`` or the embedded
server; ``database_url=`` overrides both), applies pending migrations, does its work and returns a
frozen dataclass. Logging is configured as the CLI configures it (JSON lines on stderr when stderr
is not a terminal) unless ``log_level=None`` leaves the caller's logging set-up alone::

    from pipeline import api

    result = api.sync(config="config/sandbox.toml", source="kitsu", resource=["anime"])
    print(result.status, result.exit_code)
    for stream in result.streams:
        print(stream.source, stream.resource, stream.inserted, stream.updated)
    for row in api.status(config="config/sandbox.toml"):
        print(row.source, row.resource, row.last_status, row.rows)

Errors are raised, not printed: ``ConfigError`` (bad configuration or usage, the CLI's exit 2),
``DatabaseError`` (the database cannot be reached, also exit 2) and ``MigrationError``. A stream's
own failure is not raised: it is in ``RunResult.streams`` and ``RunResult.exit_code`` is 1.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import asyncpg

from pipeline import db, log, metrics, sources
from pipeline.drift import NewField
from pipeline.errors import ConfigError, DatabaseError
from pipeline.gcpolicy import batch_gc
from pipeline.progress import Progress
from pipeline.runs import OK_STATUSES, HolderRun, RunInfo, RunSummary, StreamResult, StreamStatus
from pipeline.settings import Settings, load_settings

__all__ = [
    "HolderRun",
    "NewField",
    "RunInfo",
    "RunResult",
    "StreamStatus",
    "StreamSummary",
    "backfill",
    "load",
    "new_fields",
    "replay",
    "runs",
    "status",
    "stuck_runs",
    "sync",
]

T = TypeVar("T")
Names = str | Sequence[str] | None
ConfigPath = str | os.PathLike[str] | None
MetricsPath = str | os.PathLike[str] | None


@dataclass(frozen=True, slots=True)
class StreamSummary:
    """What one stream did in one run (the row of ``etl.stream_runs``)."""

    source: str
    resource: str
    mode: str
    status: str
    error: str | None
    pages: int
    records: int
    inserted: int
    updated: int
    unchanged: int
    other_rows: int
    deleted: int
    rejected: int
    requests: int
    retries: int
    rate_limited: int
    limiter_wait_seconds: float
    bytes: int
    duration_seconds: float
    stream_run_id: int | None
    backfill_id: int | None

    @property
    def ok(self) -> bool:
        return self.status in OK_STATUSES

    @classmethod
    def of(cls, result: StreamResult) -> StreamSummary:
        return cls(**{f.name: getattr(result, f.name) for f in fields(cls)})


@dataclass(frozen=True, slots=True)
class RunResult:
    """A whole run (the row of ``etl.runs``) with its streams."""

    run_id: int
    command: str
    status: str  # succeeded | partial | failed | aborted
    streams: tuple[StreamSummary, ...]
    error: str | None = None
    backfill_id: int | None = None
    signal: int | None = None  # the signal that aborted the run (status "aborted")

    @property
    def ok(self) -> bool:
        return self.status == "succeeded"

    @property
    def exit_code(self) -> int:
        """0 every stream ok (or skipped), 143 / 130 after SIGTERM / SIGINT, 1 otherwise."""
        if self.signal is not None:
            return 128 + self.signal
        return 0 if self.ok else 1

    @classmethod
    def of(cls, summary: RunSummary) -> RunResult:
        return cls(
            run_id=summary.run_id,
            command=summary.command,
            status=summary.status,
            streams=tuple(StreamSummary.of(s) for s in summary.streams),
            error=summary.error,
            backfill_id=summary.backfill_id,
            signal=summary.signal,
        )


def load(config: ConfigPath = None, settings: Settings | None = None) -> Settings:
    """``settings`` as given, else the config file (``config``, ``$PIPELINE_CONFIG``, the default)."""
    if settings is not None:
        if config is not None:
            raise ConfigError("pass either config= (a file) or settings= (loaded settings), not both")
        return settings
    return load_settings(config)


def _names(value: Names) -> list[str] | None:
    if value is None:
        return None
    return [value] if isinstance(value, str) else list(value)


def _logging(level: str | None, json: bool | None) -> None:
    if level is not None:
        log.configure(level, json=json)


class _Metrics:
    """The ``metrics_file=`` of one call: checked before the run, written at its end whatever happened."""

    def __init__(self, command: str, path: MetricsPath) -> None:
        self.command = command
        self.path: Path | None = metrics.check_path(path) if path is not None else None
        self.last_success: dict[tuple[str, str], Any] | None = None

    async def read(self, pool: asyncpg.Pool, summary: RunSummary) -> None:
        """Each stream's last success, read while the database is open (after an abort too)."""
        if self.path is None:
            return
        try:
            self.last_success = await metrics.last_successes(
                pool, [(s.source, s.resource) for s in summary.streams]
            )
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.get_logger(__name__).warning("metrics_last_success_unread", error=type(exc).__name__)

    def write(self, text: str) -> None:
        if self.path is None:
            return
        try:
            metrics.write_atomically(self.path, text)
        except OSError as exc:  # the run's outcome stands; a stale file shows in its timestamp
            log.get_logger(__name__).error("metrics_file_failed", path=str(self.path), error=str(exc))

    def done(self, result: RunResult) -> None:
        self.write(
            metrics.render(
                self.command,
                run_id=result.run_id,
                status=result.status,
                exit_code=result.exit_code,
                streams=result.streams,
                last_success=self.last_success,
            )
        )

    def failed(self, exit_code: int) -> None:
        self.write(metrics.render(self.command, run_id=None, status="error", exit_code=exit_code))


@contextmanager
def _metrics(command: str, path: MetricsPath) -> Iterator[_Metrics]:
    """Write the metrics file when the run could not start or end (``error``), re-raising the error."""
    note = _Metrics(command, path)
    try:
        yield note
    except (ConfigError, DatabaseError):
        note.failed(2)
        raise
    except Exception:
        note.failed(1)
        raise


async def with_pool(
    settings: Settings, work: Callable[[asyncpg.Pool], Awaitable[T]], database_url: str | None = None
) -> T:
    """Open the database (``database_url``, else the configured or embedded one), migrate it, run ``work``."""
    url = db.resolve_url(database_url or settings.database_url())
    conn = await db.connect(url)
    try:
        await db.migrate(conn)
    finally:
        await conn.close()
    size = max(4, 2 * len(settings.enabled_sources()) + 2)
    async with db.pool_for(url, min_size=1, max_size=size) as pool:
        return await work(pool)


def sync(
    *,
    config: ConfigPath = None,
    settings: Settings | None = None,
    source: Names = None,
    resource: Names = None,
    full: bool = False,
    database_url: str | None = None,
    progress: Progress | None = None,
    log_level: str | None = "info",
    log_json: bool | None = None,
    allow_deletes: bool = False,
    include_disabled: bool = False,
    metrics_file: MetricsPath = None,
    max_pages: int | None = None,
) -> RunResult:
    """``pipeline sync``: every enabled source (or ``source``), incremental where the API allows.

    ``metrics_file``: write the run's figures there (Prometheus text format, ``pipeline.metrics``).
    ``max_pages``: a smoke test, at most that many pages per stream (``pipeline.runner``).
    """
    from pipeline.runner import check_max_pages, run_sync

    _logging(log_level, log_json)
    with _metrics("sync", metrics_file) as note:
        check_max_pages(max_pages)
        chosen = load(config, settings)

        async def work(pool: asyncpg.Pool) -> RunSummary:
            return await _noted(
                note,
                pool,
                run_sync(
                    chosen,
                    pool,
                    _names(source),
                    _names(resource),
                    full,
                    stream_factory=sources.build_stream,
                    client_factory=sources.open_client,
                    progress=progress,
                    allow_deletes=allow_deletes,
                    include_disabled=include_disabled,
                    max_pages=max_pages,
                ),
            )

        result = RunResult.of(run_interruptible(lambda: with_pool(chosen, work, database_url)))
        note.done(result)
    return result


async def _noted(note: _Metrics, pool: asyncpg.Pool, run: Awaitable[RunSummary]) -> RunSummary:
    """Run the core; read what the metrics file needs from the database before it closes."""
    from pipeline.runner import RunAborted

    try:
        summary = await run
    except RunAborted as aborted:
        await note.read(pool, aborted.summary)
        raise
    await note.read(pool, summary)
    return summary


def backfill(
    *,
    config: ConfigPath = None,
    settings: Settings | None = None,
    source: str | None = None,
    resource: Names = None,
    since: datetime | None = None,
    until: datetime | None = None,
    full: bool = False,
    resume: int | None = None,
    database_url: str | None = None,
    progress: Progress | None = None,
    log_level: str | None = "info",
    log_json: bool | None = None,
    allow_deletes: bool = False,
    include_disabled: bool = False,
    metrics_file: MetricsPath = None,
    max_pages: int | None = None,
) -> RunResult:
    """``pipeline backfill``: a window (``since``/``until``, UTC) or ``full`` re-scan, or ``resume`` one."""
    with _metrics("backfill", metrics_file) as note:
        result = _backfill(
            note, config, settings, source, resource, since, until, full, resume, database_url, progress,
            log_level, log_json, allow_deletes, include_disabled, max_pages,
        )  # fmt: skip
        note.done(result)
    return result


def _backfill(
    note: _Metrics,
    config: ConfigPath,
    settings: Settings | None,
    source: str | None,
    resource: Names,
    since: datetime | None,
    until: datetime | None,
    full: bool,
    resume: int | None,
    database_url: str | None,
    progress: Progress | None,
    log_level: str | None,
    log_json: bool | None,
    allow_deletes: bool,
    include_disabled: bool,
    max_pages: int | None,
) -> RunResult:
    from pipeline.backfill import run_backfill
    from pipeline.runner import check_max_pages

    check_max_pages(max_pages)
    if resume is None and not source:
        raise ConfigError("a backfill needs source=NAME, or resume=ID to continue one")
    if resume is None and not full and since is None:
        raise ConfigError("a backfill needs a window (since=…, optional until=…) or full=True")
    if full and (since is not None or until is not None):
        raise ConfigError("a backfill takes either full=True or since/until, not both")
    if since is not None and until is not None and since >= until:
        raise ConfigError(f"since {since.isoformat()} is not before until {until.isoformat()}; swap them")
    _logging(log_level, log_json)
    chosen = load(config, settings)
    if resume is None and not full and source in chosen.sources:
        reason = sources.window_refusal(chosen.sources[source])
        if reason is not None:  # never a silent full re-scan
            raise ConfigError(
                f"source {source} cannot back-fill a --since/--until window: {reason}. Re-load it whole "
                f"with 'pipeline backfill --source {source} --full' (the nightly checkpoint is not moved)"
            )

    async def work(pool: asyncpg.Pool) -> RunSummary:
        return await _noted(
            note,
            pool,
            run_backfill(
                chosen,
                pool,
                source,
                _names(resource),
                since,
                until,
                full,
                resume,
                stream_factory=sources.build_stream,
                client_factory=sources.open_client,
                progress=progress,
                allow_deletes=allow_deletes,
                include_disabled=include_disabled,
                max_pages=max_pages,
            ),
        )

    return RunResult.of(run_interruptible(lambda: with_pool(chosen, work, database_url)))


def run_interruptible(work: Callable[[], Awaitable[RunSummary]]) -> RunSummary:
    """Run ``work`` so that SIGTERM and SIGINT end it in the books.

    The first signal cancels the run: the batch in flight rolls back (committed pages stay), every
    stream and the run are recorded ``aborted`` and the summary comes back with ``signal`` set, so
    the exit code is 143 (SIGTERM) or 130 (SIGINT). A second signal is ignored while that happens.
    Outside the main thread (no signal handlers there) ``work`` simply runs.
    """
    from pipeline.runner import SIGNALS, RunAborted

    async def main() -> RunSummary:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        received: list[signal.Signals] = []

        def on_signal(sig: signal.Signals) -> None:
            if not received:
                received.append(sig)
                SIGNALS.append(sig.name)
                task.cancel()

        installed = threading.current_thread() is threading.main_thread()
        if installed:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, on_signal, sig)
        try:
            return await work()
        except RunAborted as aborted:
            aborted.summary.signal = int(received[0]) if received else int(signal.SIGTERM)
            return aborted.summary
        finally:
            if installed:
                for sig in (signal.SIGTERM, signal.SIGINT):
                    loop.remove_signal_handler(sig)

    with batch_gc():
        return asyncio.run(main())


def replay(
    *,
    config: ConfigPath = None,
    settings: Settings | None = None,
    source: Names = None,
    resource: Names = None,
    database_url: str | None = None,
    log_level: str | None = "info",
    log_json: bool | None = None,
    metrics_file: MetricsPath = None,
) -> RunResult:
    """``pipeline replay``: rebuild the unified tables from ``raw.records`` (no API calls)."""
    from pipeline.replay import replay as run_replay

    _logging(log_level, log_json)
    with _metrics("replay", metrics_file) as note:
        chosen = load(config, settings)

        async def work(pool: asyncpg.Pool) -> RunSummary:
            return await _noted(note, pool, run_replay(chosen, pool, _names(source), _names(resource)))

        with batch_gc():
            result = RunResult.of(asyncio.run(with_pool(chosen, work, database_url)))
        note.done(result)
    return result


def status(
    *,
    config: ConfigPath = None,
    settings: Settings | None = None,
    database_url: str | None = None,
    log_level: str | None = "info",
    log_json: bool | None = None,
) -> tuple[StreamStatus, ...]:
    """``pipeline status``: one row per stream known to checkpoints or run history."""
    from pipeline.runs import stream_status

    _logging(log_level, log_json)
    chosen = load(config, settings)

    async def work(pool: asyncpg.Pool) -> list[StreamStatus]:
        async with pool.acquire() as conn:
            return await stream_status(conn)

    return tuple(asyncio.run(with_pool(chosen, work, database_url)))


def new_fields(
    *,
    config: ConfigPath = None,
    settings: Settings | None = None,
    database_url: str | None = None,
    log_level: str | None = "info",
    log_json: bool | None = None,
) -> tuple[NewField, ...]:
    """Field paths that appeared after each stream's first run (schema drift), newest first."""
    from pipeline.drift import new_fields as find_new_fields

    _logging(log_level, log_json)
    chosen = load(config, settings)

    async def work(pool: asyncpg.Pool) -> list[NewField]:
        async with pool.acquire() as conn:
            return await find_new_fields(conn)

    return tuple(asyncio.run(with_pool(chosen, work, database_url)))


def stuck_runs(
    *,
    config: ConfigPath = None,
    settings: Settings | None = None,
    database_url: str | None = None,
    log_level: str | None = "info",
    log_json: bool | None = None,
) -> tuple[HolderRun, ...]:
    """Unfinished runs whose heartbeat is stale or that are past their deadline (hung or frozen)."""
    from pipeline.runs import stuck_runs as find_stuck_runs

    _logging(log_level, log_json)
    chosen = load(config, settings)

    async def work(pool: asyncpg.Pool) -> list[HolderRun]:
        async with pool.acquire() as conn:
            return await find_stuck_runs(conn)

    return tuple(asyncio.run(with_pool(chosen, work, database_url)))


def runs(
    *,
    last: int = 10,
    config: ConfigPath = None,
    settings: Settings | None = None,
    database_url: str | None = None,
    log_level: str | None = "info",
    log_json: bool | None = None,
) -> tuple[RunInfo, ...]:
    """``pipeline runs``: the ``last`` runs, newest first, each with its stream rows."""
    from pipeline.runs import recent_runs

    _logging(log_level, log_json)
    chosen = load(config, settings)

    async def work(pool: asyncpg.Pool) -> list[RunInfo]:
        async with pool.acquire() as conn:
            return await recent_runs(conn, last)

    return tuple(asyncio.run(with_pool(chosen, work, database_url)))
