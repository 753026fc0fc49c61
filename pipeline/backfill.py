"""Backfills: a window (since/until) or a full re-scan, run from a row of ``etl.backfills``.

The ledger row holds per-resource progress (the same scan shape as a nightly checkpoint: scan id,
committed pages, cursor, done), advanced in the transaction of each batch, so ``--resume ID``
continues where it stopped. Nothing here reads or writes the nightly ``etl.checkpoints`` cursor or
scan: a backfill never moves the nightly position.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

import asyncpg
import orjson

from pipeline.checkpoints import with_seen_ids
from pipeline.errors import ConfigError
from pipeline.progress import Progress
from pipeline.runner import (
    ClientFactory,
    RunContext,
    StreamFactory,
    abort_run,
    check_max_pages,
    close_run,
    no_client,
    open_run,
    plan_streams,
    run_sources,
    run_stream,
    shared_budgets,
    stop_heartbeat,
)
from pipeline.runs import RunSummary
from pipeline.settings import Settings
from pipeline.streams import PageSet, Stream, StreamState, Window, decode_cursor


async def create_backfill(
    conn: asyncpg.Connection,
    source: str,
    resource: str | None,
    since: datetime | None,
    until: datetime | None,
    full: bool,
) -> int:
    """Add a pending ledger row; a window needs ``since`` unless it is a full re-scan."""
    if not full and since is None:
        raise ConfigError("a backfill needs --since DATE (with optional --until) or --full")
    if since is not None and until is not None and until <= since:
        raise ConfigError(f"backfill window is empty: --until {until.isoformat()} is not after --since")
    backfill_id: int = await conn.fetchval(
        "INSERT INTO etl.backfills (source, resource, since, until, full_scan) VALUES ($1, $2, $3, $4, $5) "
        "RETURNING id",
        source,
        resource,
        since,
        until,
        full,
    )
    return backfill_id


async def get_backfill(conn: asyncpg.Connection, backfill_id: int) -> asyncpg.Record:
    row = await conn.fetchrow("SELECT * FROM etl.backfills WHERE id = $1", backfill_id)
    if row is None:
        raise ConfigError(
            f"no backfill with id {backfill_id} in etl.backfills; list them with 'pipeline status'"
        )
    return row


def _progress(row: asyncpg.Record) -> dict[str, Any]:
    value = row["progress"]
    if isinstance(value, str):
        loaded: dict[str, Any] = orjson.loads(value)
        return loaded
    return dict(value or {})


def backfill_state(ctx: RunContext, row: asyncpg.Record) -> Any:
    """The StateFactory of a backfill: window from the ledger row, resume point from its progress."""
    window = Window(since=row["since"], until=row["until"], full=row["full_scan"])

    async def begin(conn: asyncpg.Connection, stream: Stream) -> StreamState:
        fresh = await get_backfill(conn, row["id"])
        entry = _progress(fresh).get(stream.resource, {})
        state = StreamState(
            stream.source.name,
            stream.resource,
            "backfill",
            ctx.started_at,
            auth=stream.auth_identity,
            window=window,
            backfill_id=row["id"],
            scan_id=f"bf{row['id']}:{stream.resource}",
        )
        if entry and entry.get("auth") == stream.auth_identity:
            state = replace(
                state,
                committed=PageSet(entry.get("pages", ())),
                cursor=decode_cursor(entry.get("cursor"), entry.get("cursor_kind")),
                expected_total=entry.get("expected_total"),
            )
        return await with_seen_ids(conn, state)

    return begin


async def run_backfill(
    settings: Settings,
    pool: asyncpg.Pool,
    source: str | None = None,
    resource: Sequence[str] | str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    full: bool = False,
    resume_id: int | None = None,
    *,
    stream_factory: StreamFactory,
    client_factory: ClientFactory = no_client,
    progress: Progress | None = None,
    allow_deletes: bool = False,
    include_disabled: bool = False,
    max_pages: int | None = None,
) -> RunSummary:
    """``pipeline backfill``: create (or resume) a ledger row and run its streams in backfill mode.

    ``max_pages`` (a smoke test) loads at most that many pages per stream and saves no progress:
    the ledger row goes back to ``pending`` and ``--resume ID`` then runs the backfill whole.
    """
    check_max_pages(max_pages)
    resources = [resource] if isinstance(resource, str) else list(resource or ())
    async with pool.acquire() as conn:
        if resume_id is not None:
            row = await get_backfill(conn, resume_id)
            if row["status"] == "done":
                raise ConfigError(
                    f"backfill {resume_id} is already done; start a new one instead of --resume"
                )
        else:
            if source is None:
                raise ConfigError("pipeline backfill needs --source NAME (or --resume ID)")
            plan_streams(
                settings, [source], resources or None, include_disabled=include_disabled
            )  # validates names before writing
            one = resources[0] if len(resources) == 1 else None
            row = await get_backfill(conn, await create_backfill(conn, source, one, since, until, full))
    chosen = [row["resource"]] if row["resource"] else resources or None
    done = {name for name, entry in _progress(row).items() if entry.get("done")}
    plan = [
        (src, [r for r in rs if r not in done])
        for src, rs in plan_streams(settings, [row["source"]], chosen, include_disabled=include_disabled)
    ]
    args: dict[str, Any] = {
        "backfill_id": row["id"],
        "source": row["source"],
        "resources": chosen,
        "full": row["full_scan"],
    }
    if max_pages is not None:
        args["max_pages"] = max_pages
    ctx = await open_run(
        settings, pool, "backfill", args, progress, allow_deletes=allow_deletes, max_pages=max_pages
    )
    await pool.execute(
        "UPDATE etl.backfills SET status = 'running', started_at = now(), run_id = $2, error = NULL "
        "WHERE id = $1",
        row["id"],
        ctx.run_id,
    )
    begin = backfill_state(ctx, row)
    clients = shared_budgets(ctx, client_factory)
    try:
        results = await run_sources(
            plan, stream_factory, clients, lambda s: run_stream(ctx, s, begin, "backfill")
        )
    except asyncio.CancelledError:
        aborted = await abort_run(ctx, "backfill")
        await pool.execute(
            "UPDATE etl.backfills SET status = 'failed', finished_at = now(), error = $2 WHERE id = $1",
            row["id"],
            f"{aborted.summary.error}; resume: pipeline backfill --resume {row['id']}",
        )
        aborted.summary.backfill_id = row["id"]
        raise aborted from None
    finally:
        await stop_heartbeat(ctx)
    failed = [r for r in results if r.status not in ("succeeded", "sampled")]  # skipped (locked): not done
    if max_pages is not None and not failed:
        status = "pending"  # sampled: nothing of it is done, a --resume runs it whole
        error: str | None = (
            f"smoke test by run {ctx.run_id} (--max-pages {max_pages}), no progress saved; "
            f"run it whole: pipeline backfill --resume {row['id']}"
        )
    else:
        status = "failed" if failed else "done"
        error = "; ".join(f"{r.resource}: {r.error}" for r in failed) or None
    await pool.execute(
        "UPDATE etl.backfills SET status = $2, finished_at = now(), error = $3 WHERE id = $1",
        row["id"],
        status,
        error,
    )
    summary = await close_run(ctx, "backfill", results)
    summary.backfill_id = row["id"]
    return summary
