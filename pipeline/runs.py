"""Run history in ``etl.runs``/``etl.stream_runs``, and the read side of ``pipeline status`` and ``runs``.

Writers are called by the runner; readers return plain dataclasses (``asdict`` gives the JSON the
CLI prints with ``--json``).
"""

from __future__ import annotations

import hashlib
import os
import socket
from dataclasses import dataclass, field
from datetime import datetime
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
    "deleted",
    "rejected",
    "requests",
    "retries",
    "rate_limited",
    "limiter_wait_seconds",
    "bytes",
)


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
        return self.status in ("succeeded", "skipped")


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


async def start_run(
    conn: asyncpg.Connection, command: str, args: dict[str, Any], config_path: str | None = None
) -> int:
    run_id: int = await conn.fetchval(
        "INSERT INTO etl.runs (command, args, config_path, host, pid) "
        "VALUES ($1, $2::text::jsonb, $3, $4, $5) RETURNING id",
        command,
        orjson.dumps(args, default=str).decode(),
        config_path,
        socket.gethostname(),
        os.getpid(),
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
    last_error: str | None
    rows: int  # raw records not soft-deleted
    cursor: str | None
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
        ), failure AS (
            SELECT DISTINCT ON (source, resource) source, resource, error FROM etl.stream_runs
            WHERE error IS NOT NULL ORDER BY source, resource, started_at DESC, id DESC
        ), counts AS (
            SELECT source, resource, count(*) AS n FROM raw.records WHERE deleted_at IS NULL
            GROUP BY source, resource
        )
        SELECT s.source, s.resource, l.status, l.started_at, ok.at AS success_at,
               extract(epoch FROM now() - ok.at) AS lag, f.error, coalesce(c.n, 0) AS n,
               cp.cursor, cp.scan, cp.scan_completed_at
        FROM streams s
        LEFT JOIN latest l USING (source, resource)
        LEFT JOIN success ok USING (source, resource)
        LEFT JOIN failure f USING (source, resource)
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
