"""Replay: rebuild the unified tables from ``raw.records`` without calling any API.

A transformer fix must not cost a re-fetch at 1 req/s. For each planned stream the raw payloads
(not soft-deleted) are read in keyset-paged chunks of ``[pipeline] batch_rows``; the connector's
``wrap_records(payloads)`` turns a chunk back into a page document of the shape its
``transform(doc)`` reads, and the result goes through the same loader (raw landing skipped: the
payloads are already there). Rows whose content did not change are not rewritten. Checkpoints are
not touched; the stream lock is taken so a replay never overlaps a sync of the same stream.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import asyncpg
import orjson

from pipeline import locks, runs
from pipeline.errors import SkippableRecordError
from pipeline.load import LoadCounts, Loader, resolve_refs
from pipeline.log import bind_stream, get_logger
from pipeline.records import Batch, Reject
from pipeline.redact import redact_text
from pipeline.runner import RunContext, Stream, StreamFactory, close_run, open_run, plan_streams
from pipeline.runs import RunSummary, StreamResult
from pipeline.settings import Settings

log = get_logger(__name__)


async def _chunks(conn: asyncpg.Connection, source: str, resource: str, size: int) -> Any:
    """Raw payloads of one stream in source_id order, ``size`` at a time (keyset paging, flat memory)."""
    after = ""
    while True:
        rows = await conn.fetch(
            "SELECT source_id, payload::text AS payload FROM raw.records "
            "WHERE source = $1 AND resource = $2 AND source_id > $3 AND deleted_at IS NULL "
            "ORDER BY source_id LIMIT $4",
            source,
            resource,
            after,
            size,
        )
        if not rows:
            return
        after = rows[-1]["source_id"]
        yield [orjson.loads(r["payload"]) for r in rows]


async def replay_stream(ctx: RunContext, stream: Stream) -> StreamResult:
    """Re-transform and reload one stream's raw records; never raises for the stream's own failure."""
    name, resource = stream.source.name, stream.resource
    r = StreamResult(name, resource, "replay")
    started = time.monotonic()
    with bind_stream(run_id=ctx.run_id, source=name, stream=resource):
        async with ctx.pool.acquire() as conn:
            r.stream_run_id = await runs.start_stream_run(conn, ctx.run_id, r)
            if not await locks.try_lock_stream(conn, name, resource):
                r.status, r.error = (
                    "skipped",
                    f"{name}/{resource} is being loaded by another run; replay skipped",
                )
                await runs.finish_stream_run(conn, r)
                return r
            try:
                loader, total = Loader(conn, name, ctx.run_id), LoadCounts()
                async for payloads in _chunks(conn, name, resource, ctx.settings.pipeline.batch_rows):
                    try:
                        batch = stream.transform(stream.wrap_records(payloads))
                    except SkippableRecordError as exc:
                        batch = Batch(rejects=[Reject(resource, None, payloads, str(exc))])
                    total.add(await loader.load(batch, land_raw=False))
                    r.pages += 1
                    r.records += len(payloads)
                await resolve_refs(conn, name)
                r.inserted, r.updated, r.unchanged, r.rejected = (
                    total.inserted,
                    total.updated,
                    total.unchanged,
                    total.rejected,
                )
                r.status = "succeeded"
            except Exception as exc:  # one stream's failure is recorded, the others go on
                r.status, r.error = "failed", redact_text(f"{type(exc).__name__}: {exc}")
            finally:
                r.duration_seconds = round(time.monotonic() - started, 3)
                await runs.finish_stream_run(conn, r)
                await locks.unlock_stream(conn, name, resource)
        log.info(
            "stream_finished",
            **{f: getattr(r, f) for f in ("source", "resource", "mode", "status", "error")},
            records=r.records,
            inserted=r.inserted,
            updated=r.updated,
            unchanged=r.unchanged,
        )
    return r


async def replay(
    settings: Settings,
    pool: asyncpg.Pool,
    sources: Sequence[str] | None = None,
    resources: Sequence[str] | None = None,
    *,
    stream_factory: StreamFactory,
) -> RunSummary:
    """``pipeline replay``: every planned stream rebuilt from raw.records, one after the other."""
    plan = plan_streams(settings, sources, resources)
    args = {"sources": list(sources or ()), "resources": list(resources or ())}
    ctx = await open_run(settings, pool, "replay", args, None)
    results = [
        await replay_stream(ctx, stream_factory(src, resource, None))
        for src, names in plan
        for resource in names
    ]
    return await close_run(ctx, "replay", results)
