"""Run history in ``etl.runs``/``etl.stream_runs``, and the read side of ``pipeline status`` and ``runs``.

Writers are called by the runner; readers return plain dataclasses (``asdict`` gives the JSON the
CLI prints with ``--json``).
"""

from __future__ import annotations

import hashlib
import os
import socket
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import orjson

from pipeline.redact import redact_text

STREAM_COUNTERS = (
    "pages",
    "records",
    "inserted",
    "updated",
    "unchanged",
    "other_rows",
    "deleted",
    "rejected",
    "requests",
    "retries",
    "rate_limited",
    "limiter_wait_seconds",
    "bytes",
)


# A stream that ended in one of these is fine: exit 0 (sampled: a --max-pages smoke test loaded
# its pages and marked nothing done).
OK_STATUSES = ("succeeded", "sampled", "skipped")


@dataclass(slots=True)
class StreamResult:
    """What one stream did in one run (mirrors ``etl.stream_runs``)."""

    source: str
    resource: str
    mode: str
    status: str = "running"
    error: str | None = None
    pages: int = 0
    records: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    other_rows: int = 0  # rows written to the stream's other tables (included records, links)
    deleted: int = 0
    rejected: int = 0
    requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    limiter_wait_seconds: float = 0.0
    bytes: int = 0
    duration_seconds: float = 0.0
    stream_run_id: int | None = None
    backfill_id: int | None = None

    @property
    def ok(self) -> bool:
        """Skipped streams are fine (a live run has them), so are sampled ones (``--max-pages``);
        deferred, stuck and stopped are not."""
        return self.status in OK_STATUSES


@dataclass(slots=True)
class RunSummary:
    """A whole run; ``exit_code`` is what the CLI returns (0 all ok, 1 some stream failed)."""

    run_id: int
    command: str
    status: str
    streams: list[StreamResult] = field(default_factory=list)
    error: str | None = None
    backfill_id: int | None = None

    signal: int | None = None  # the signal that aborted the run

    @property
    def exit_code(self) -> int:
        if self.signal is not None:
            return 128 + self.signal  # SIGTERM 143, SIGINT 130
        return 0 if self.status == "succeeded" else 1


def run_status(results: list[StreamResult]) -> str:
    """succeeded (all ok or skipped), failed (none ok), partial otherwise."""
    if all(r.ok for r in results):
        return "succeeded"
    if not any(r.ok for r in results):
        return "failed"
    return "partial"


HEARTBEAT_SECONDS = 30.0  # a running run refreshes etl.runs.heartbeat_at this often
STALE_AFTER_SECONDS = 120.0  # a heartbeat older than this: the process is gone or frozen


async def start_run(
    conn: asyncpg.Connection,
    command: str,
    args: dict[str, Any],
    config_path: str | None = None,
    max_minutes: float = 0.0,
) -> int:
    """Insert the run (host, pid, first heartbeat, deadline = now + ``max_minutes`` unless 0)."""
    run_id: int = await conn.fetchval(
        "INSERT INTO etl.runs (command, args, config_path, host, pid, heartbeat_at, deadline_at) "
        "VALUES ($1, $2::text::jsonb, $3, $4, $5, now(), "
        "CASE WHEN $6 > 0 THEN now() + $6 * interval '1 minute' END) RETURNING id",
        command,
        orjson.dumps(args, default=str).decode(),
        config_path,
        socket.gethostname(),
        os.getpid(),
        float(max_minutes),
    )
    return run_id


def run_lock_key(run_id: int) -> int:
    """The advisory lock a live run holds for its whole life (a dead run's is free)."""
    digest = hashlib.blake2b(f"pipeline.run:{run_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


async def hold_run_lock(conn: asyncpg.Connection, run_id: int) -> None:
    await conn.execute("SELECT pg_advisory_lock($1)", run_lock_key(run_id))


async def release_run_lock(conn: asyncpg.Connection, run_id: int) -> None:
    await conn.execute("SELECT pg_advisory_unlock($1)", run_lock_key(run_id))


async def abort_stale_runs(conn: asyncpg.Connection, found_by: int) -> list[int]:
    """Mark ``aborted`` every run left ``running`` whose run lock is free: its process died (SIGKILL).

    A live run holds its lock on an open connection, so ``pg_try_advisory_lock`` fails for it; a
    killed run's connection closed and PostgreSQL freed the lock. Its running streams are
    aborted too. Returns the run ids marked.
    """
    marked = []
    for row in await conn.fetch("SELECT id FROM etl.runs WHERE status = 'running' AND id <> $1", found_by):
        key = run_lock_key(row["id"])
        if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", key):
            continue  # alive (or being finished right now)
        try:
            note = f"the run's process ended without finishing it (found by run {found_by})"
            await conn.execute(
                "UPDATE etl.stream_runs SET status = 'aborted', finished_at = now(), "
                "error = coalesce(error, $2) WHERE run_id = $1 AND status = 'running'",
                row["id"],
                note,
            )
            await conn.execute(
                "UPDATE etl.runs SET status = 'aborted', finished_at = now(), error = coalesce(error, $2) "
                "WHERE id = $1 AND status = 'running'",
                row["id"],
                note,
            )
            marked.append(row["id"])
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", key)
    return marked


async def heartbeat(conn: asyncpg.Connection, run_id: int) -> None:
    await conn.execute("UPDATE etl.runs SET heartbeat_at = now() WHERE id = $1", run_id)


@dataclass(slots=True)
class HolderRun:
    """The run holding a stream (or any run that looks stuck), as ``pipeline status`` shows it."""

    run_id: int
    command: str
    host: str | None
    pid: int | None
    started_at: datetime
    age_seconds: float
    heartbeat_age_seconds: float | None
    deadline_at: datetime | None
    stale: bool  # no heartbeat for STALE_AFTER_SECONDS: the process is gone or frozen
    overdue: bool  # past its deadline (max_run_minutes)

    @property
    def stuck(self) -> bool:
        return self.stale or self.overdue

    def describe(self) -> str:
        why = []
        if self.stale:
            beat = self.heartbeat_age_seconds
            why.append(f"no heartbeat for {_age(beat)}" if beat is not None else "no heartbeat")
        if self.overdue and self.deadline_at is not None:
            why.append(f"past its deadline {self.deadline_at:%Y-%m-%d %H:%M:%S %Z}")
        return (
            f"run {self.run_id} ({self.command}) on host {self.host or '?'} pid {self.pid or '?'}, "
            f"age {_age(self.age_seconds)}" + (f": {', '.join(why)}" if why else "")
        )


def _age(seconds: float) -> str:
    return str(timedelta(seconds=round(seconds)))


_HOLDER_COLUMNS = f"""
    r.id, r.command, r.host, r.pid, r.started_at, r.deadline_at,
    extract(epoch FROM now() - r.started_at)::double precision AS age,
    extract(epoch FROM now() - r.heartbeat_at)::double precision AS beat,
    (r.heartbeat_at IS NOT NULL AND r.heartbeat_at < now() - interval '{STALE_AFTER_SECONDS:g} seconds')
        AS stale,
    coalesce(r.deadline_at < now(), false) AS overdue
"""


def _holder(row: asyncpg.Record) -> HolderRun:
    return HolderRun(
        run_id=row["id"],
        command=row["command"],
        host=row["host"],
        pid=row["pid"],
        started_at=row["started_at"],
        age_seconds=float(row["age"]),
        heartbeat_age_seconds=float(row["beat"]) if row["beat"] is not None else None,
        deadline_at=row["deadline_at"],
        stale=bool(row["stale"]),
        overdue=bool(row["overdue"]),
    )


async def holder_run(conn: asyncpg.Connection, source: str, resource: str, own_run: int) -> HolderRun | None:
    """The unfinished run that has the stream running (the one holding its lock), if recorded."""
    row = await conn.fetchrow(
        f"SELECT {_HOLDER_COLUMNS} FROM etl.stream_runs s JOIN etl.runs r ON r.id = s.run_id "
        "WHERE s.source = $1 AND s.resource = $2 AND s.status = 'running' AND s.finished_at IS NULL "
        "AND r.finished_at IS NULL AND r.id <> $3 ORDER BY s.id DESC LIMIT 1",
        source,
        resource,
        own_run,
    )
    return _holder(row) if row is not None else None


async def stuck_runs(conn: asyncpg.Connection) -> list[HolderRun]:
    """Unfinished runs with a stale heartbeat or past their deadline (``pipeline status``)."""
    rows = await conn.fetch(
        f"SELECT {_HOLDER_COLUMNS} FROM etl.runs r WHERE r.finished_at IS NULL ORDER BY r.id"
    )
    return [h for h in map(_holder, rows) if h.stuck]


async def finish_run(conn: asyncpg.Connection, run_id: int, status: str, error: str | None = None) -> None:
    await conn.execute(
        "UPDATE etl.runs SET finished_at = now(), status = $2, error = $3 WHERE id = $1",
        run_id,
        status,
        redact_text(error) if error else error,
    )


async def start_stream_run(conn: asyncpg.Connection, run_id: int, result: StreamResult) -> int:
    stream_run_id: int = await conn.fetchval(
        "INSERT INTO etl.stream_runs (run_id, source, resource, mode, backfill_id) "
        "VALUES ($1, $2, $3, $4, $5) RETURNING id",
        run_id,
        result.source,
        result.resource,
        result.mode,
        result.backfill_id,
    )
    return stream_run_id


async def finish_stream_run(conn: asyncpg.Connection, result: StreamResult) -> None:
    sets = ", ".join(f"{name} = ${i}" for i, name in enumerate(STREAM_COUNTERS, start=6))
    await conn.execute(
        f"UPDATE etl.stream_runs SET finished_at = now(), status = $2, error = $3, mode = $4, "
        f"duration_seconds = $5, {sets} WHERE id = $1",
        result.stream_run_id,
        result.status,
        redact_text(result.error) if result.error else result.error,
        result.mode,
        result.duration_seconds,
        *(getattr(result, name) for name in STREAM_COUNTERS),
    )


@dataclass(frozen=True, slots=True)
class StreamStatus:
    """One row of ``pipeline status``."""

    source: str
    resource: str
    last_status: str | None
    last_started_at: datetime | None
    last_success_at: datetime | None
    lag_seconds: float | None  # since the last successful finish
    last_error: str | None  # of the latest run only: an old failure is not shown beside a success
    rows: int  # raw records not soft-deleted
    cursor: str | None
    cursor_kind: str | None  # epoch, timestamp or opaque (e.g. the Zou events watermark as JSON)
    scan_pages_committed: int
    scan_expected_total: int | None
    scan_completed_at: datetime | None


async def stream_status(conn: asyncpg.Connection) -> list[StreamStatus]:
    """Every stream known to checkpoints or run history, with its latest state."""
    rows = await conn.fetch(
        """
        WITH streams AS (
            SELECT source, resource FROM etl.checkpoints
            UNION SELECT DISTINCT source, resource FROM etl.stream_runs WHERE mode <> 'replay'
        ), latest AS (
            SELECT DISTINCT ON (source, resource) source, resource, status, started_at, error
            FROM etl.stream_runs WHERE status <> 'skipped' ORDER BY source, resource, started_at DESC, id DESC
        ), success AS (
            SELECT source, resource, max(finished_at) AS at FROM etl.stream_runs
            WHERE status = 'succeeded' AND mode <> 'replay' GROUP BY source, resource
        ), counts AS (
            SELECT source, resource, count(*) AS n FROM raw.records WHERE deleted_at IS NULL
            GROUP BY source, resource
        )
        SELECT s.source, s.resource, l.status, l.started_at, ok.at AS success_at,
               extract(epoch FROM now() - ok.at) AS lag, l.error, coalesce(c.n, 0) AS n,
               cp.cursor, cp.cursor_kind, cp.scan, cp.scan_completed_at
        FROM streams s
        LEFT JOIN latest l USING (source, resource)
        LEFT JOIN success ok USING (source, resource)
        LEFT JOIN counts c USING (source, resource)
        LEFT JOIN etl.checkpoints cp USING (source, resource)
        ORDER BY s.source, s.resource
        """
    )
    out = []
    for r in rows:
        scan = r["scan"] if isinstance(r["scan"], dict) else orjson.loads(r["scan"] or "{}")
        pages = sum(hi - lo + 1 for lo, hi in scan.get("pages", ()))
        out.append(
            StreamStatus(
                source=r["source"],
                resource=r["resource"],
                last_status=r["status"],
                last_started_at=r["started_at"],
                last_success_at=r["success_at"],
                lag_seconds=float(r["lag"]) if r["lag"] is not None else None,
                last_error=redact_text(r["error"]) if r["error"] else None,
                rows=r["n"],
                cursor=r["cursor"],
                cursor_kind=r["cursor_kind"],
                scan_pages_committed=pages,
                scan_expected_total=scan.get("expected_total"),
                scan_completed_at=r["scan_completed_at"],
            )
        )
    return out


@dataclass(frozen=True, slots=True)
class RunInfo:
    """One row of ``pipeline runs``: the run and its streams."""

    run_id: int
    command: str
    status: str
    started_at: datetime
    finished_at: datetime | None
    error: str | None
    streams: list[dict[str, Any]]


async def recent_runs(conn: asyncpg.Connection, last: int = 10) -> list[RunInfo]:
    """The ``last`` runs, newest first, each with its stream rows as dicts."""
    runs = await conn.fetch("SELECT * FROM etl.runs ORDER BY id DESC LIMIT $1", last)
    streams = await conn.fetch(
        "SELECT * FROM etl.stream_runs WHERE run_id = ANY($1::bigint[]) ORDER BY id", [r["id"] for r in runs]
    )
    by_run: dict[int, list[dict[str, Any]]] = {}
    for s in streams:
        row = dict(s)
        if row.get("error"):
            row["error"] = redact_text(row["error"])
        by_run.setdefault(s["run_id"], []).append(row)
    return [
        RunInfo(
            run_id=r["id"],
            command=r["command"],
            status=r["status"],
            started_at=r["started_at"],
            finished_at=r["finished_at"],
            error=redact_text(r["error"]) if r["error"] else None,
            streams=by_run.get(r["id"], []),
        )
        for r in runs
    ]
