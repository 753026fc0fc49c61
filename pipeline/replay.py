"""Replay: rebuild the unified tables from ``raw.records`` without calling any API.

A transformer fix must not cost a re-fetch at 1 req/s. Replay builds no connector and opens no
client: for each planned stream it reads the raw payloads (not soft-deleted) of every raw resource
the stream's pages land (``pipeline.transform.lands``; Kitsu's ``characters`` stream lands
``characters`` and ``media-characters``) in keyset-paged chunks of ``[pipeline] batch_rows``,
rebuilds a page document (``pipeline.transform.wrap``) and calls the same pure transform as the
runner, with the same context read from the database (Zou entity type names). Raw resources every
stream of a kind may land (Zou ``events``) are replayed once per source after its streams, unless
``--resource`` narrows the replay. The result goes through the same loader (raw landing skipped:
the payloads are already there); rows whose content did not change are not rewritten. Checkpoints
are not touched; the stream lock is taken so a replay never overlaps a sync of the same stream.

A stream that fails (a transform error, a lost connection) is recorded as failed and the others go
on; the run row always ends, ``failed`` if replay itself could not finish.
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
from pipeline.load.context import read_context
from pipeline.log import bind_stream, get_logger
from pipeline.records import Batch, Reject
from pipeline.redact import redact_text
from pipeline.runner import RunContext, StreamFactory, close_run, open_run, plan_streams, stop_heartbeat
from pipeline.runs import RunSummary, StreamResult
from pipeline.settings import Settings, SourceSettings
from pipeline.sources import main_tables
from pipeline.transform import SHARED_RAW, lands, spec, transform, wrap

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


async def _reload(
    ctx: RunContext,
    conn: asyncpg.Connection,
    source: SourceSettings,
    raw: Sequence[str],
    r: StreamResult,
    main: tuple[str, ...] | None,
) -> None:
    """Re-transform and reload the raw records of ``raw`` resources (in order) into the unified tables.

    The counts are those of the stream's ``main`` tables (every table when None), as a sync reports.
    """
    loader, total, kind = Loader(conn, source.name, ctx.run_id), LoadCounts(), source.kind
    for resource in raw:
        context = await read_context(conn, source.name, spec(kind, resource).context)
        async for payloads in _chunks(conn, source.name, resource, ctx.settings.pipeline.batch_rows):
            try:
                batch = transform(kind, resource, wrap(kind, resource, payloads), context)
            except SkippableRecordError as exc:
                batch = Batch(rejects=[Reject(resource, None, payloads, str(exc))])
            total.add(await loader.load(batch, land_raw=False))
            r.pages += 1
            r.records += len(payloads)
    await resolve_refs(conn, source.name)
    total.settle(main)
    r.inserted, r.updated, r.unchanged, r.other_rows, r.rejected = (
        total.inserted,
        total.updated,
        total.unchanged,
        total.other_rows,
        total.rejected,
    )


def _main_tables(kind: str, resource: str) -> tuple[str, ...] | None:
    """What the stream's counts count; None (every table) for a transform no connector pages."""
    try:
        return main_tables(kind, resource)
    except KeyError:
        return None


async def replay_stream(
    ctx: RunContext, source: SourceSettings, resource: str, raw: Sequence[str] | None = None
) -> StreamResult:
    """Replay one stream (or the shared raw ``raw`` resources); never raises for its own failure."""
    name = source.name
    r = StreamResult(name, resource, "replay")
    started = time.monotonic()
    with bind_stream(run_id=ctx.run_id, source=name, stream=resource):
        try:
            async with ctx.pool.acquire() as conn:
                r.stream_run_id = await runs.start_stream_run(conn, ctx.run_id, r)
                if not await locks.try_lock_stream(conn, name, resource):
                    r.status = "skipped"
                    r.error = f"{name}/{resource} is being loaded by another run; replay skipped"
                    await runs.finish_stream_run(conn, r)
                    return r
                try:
                    main = None if raw else _main_tables(source.kind, resource)
                    await _reload(ctx, conn, source, raw or lands(source.kind, resource), r, main)
                    r.status = "succeeded"
                except Exception as exc:  # one stream's failure is recorded, the others go on
                    r.status, r.error = "failed", redact_text(f"{type(exc).__name__}: {exc}")
                finally:
                    r.duration_seconds = round(time.monotonic() - started, 3)
                    await runs.finish_stream_run(conn, r)
                    await locks.unlock_stream(conn, name, resource)
        except Exception as exc:  # not even the stream's bookkeeping worked (connection lost)
            r.status, r.error = "failed", redact_text(f"{type(exc).__name__}: {exc}")
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
    stream_factory: StreamFactory | None = None,
) -> RunSummary:
    """``pipeline replay``: every planned stream rebuilt from raw.records, one after the other.

    ``stream_factory`` is accepted for callers written before replay stopped building connectors;
    it is not used (replay needs no connector and no client).
    """
    plan = plan_streams(settings, sources, resources, include_disabled=True)  # no API calls
    for src, names in plan:  # an unknown transform is a configuration error, before any run row
        for resource in names:
            for raw in lands(src.kind, resource):
                spec(src.kind, raw)
    args = {"sources": list(sources or ()), "resources": list(resources or ())}
    ctx = await open_run(settings, pool, "replay", args, None)
    results: list[StreamResult] = []
    try:
        for src, names in plan:
            for resource in names:
                results.append(await replay_stream(ctx, src, resource))
            for shared in () if resources else SHARED_RAW.get(src.kind, ()):
                results.append(await replay_stream(ctx, src, shared, raw=(shared,)))
    except BaseException as exc:  # cancelled or the database went away: the run row still ends
        await stop_heartbeat(ctx)
        async with pool.acquire() as conn:
            await runs.finish_run(conn, ctx.run_id, "failed", redact_text(f"{type(exc).__name__}: {exc}"))
        raise
    return await close_run(ctx, "replay", results)
