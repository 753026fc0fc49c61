"""What an orchestrator needs from the pipeline, without importing one (``pipeline.dagster`` wires it).

* the stream graph: which streams exist, the ones each depends on (Zou projects before entities
  before tasks, Kitsu media before episodes) and the unified tables each writes;
* the rate group of a source (the name of its orchestrator concurrency pool);
* running a selection of streams as one ``pipeline sync`` / ``pipeline backfill`` run on a database URL;
* checks computed from the data a run left behind: scan completeness, reject share, freshness lag,
  deletes within the mass-delete guard; and the streams left ``deferred`` (or ``stopped``) to resume.

Everything here is plain asyncio + asyncpg and is tested without the orchestrator installed.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import asyncpg

from pipeline import sources
from pipeline.api import with_pool
from pipeline.budget import group_of
from pipeline.connectors import connector_spec
from pipeline.runner import ClientFactory, StreamFactory
from pipeline.runs import RunSummary, StreamResult
from pipeline.settings import Settings, SourceSettings

T = TypeVar("T")

# The mass-delete guard's default (``max_delete_share`` per source) for sources not in the settings.
DEFAULT_MAX_DELETE_SHARE = 0.05
DEFERRED_STATUSES = ("deferred", "stopped")


def rate_group(source: SourceSettings) -> str:
    """The orchestrator pool of a source: its shared rate budget's group (``pipeline.budget.group_of``:
    ``rate_group`` from the config, else API host[:port] + credential identity), in pool-safe characters.

    Sources of one group share one pool, so two runs never call one API budget at once. Only
    letters, digits, ``.``, ``_`` and ``-`` are kept (pool names appear in URLs of the Dagster UI).
    """
    return re.sub(r"[^A-Za-z0-9._-]", "_", group_of(source))


def stream_deps(source: SourceSettings, resource: str) -> tuple[str, ...]:
    """The streams of ``source`` that ``resource`` loads after: its parents configured before it.

    The runner loads a source's streams in configured order, so a parent listed after its child
    is no dependency of that run (the child's references are resolved when the parent loads).
    """
    wanted = connector_spec(source.kind).stream_deps.get(resource, ())
    if resource not in source.resources:
        return ()
    earlier = source.resources[: source.resources.index(resource)]
    return tuple(r for r in wanted if r in earlier)


class _Placeholder:
    """Stands in for a ServiceClient when only a stream's static description is read."""


def tables_written(
    source: SourceSettings, resource: str, stream_factory: StreamFactory = sources.build_stream
) -> tuple[str, ...]:
    """The unified tables a stream writes (its connector's ``owned_tables``), plus ``raw.records``."""
    stream = stream_factory(source, resource, _Placeholder())
    return (*stream.owned_tables, "raw.records")


def windowed(source: SourceSettings) -> bool:
    return connector_spec(source.kind).windowed


@dataclass(frozen=True, slots=True)
class Runner:
    """Runs streams of one configuration against one database (``None`` = ``DATABASE_URL``/config).

    Like ``pipeline.api.sync``/``backfill`` (and through its ``with_pool``), with the stream and
    client factories injectable and no logging set-up (the orchestrator owns the process's logging).
    """

    settings: Settings
    database_url: str | None = None
    stream_factory: StreamFactory = sources.build_stream
    client_factory: ClientFactory = sources.open_client

    async def sync(self, source: str, resources: Sequence[str], full: bool = False) -> RunSummary:
        from pipeline.runner import run_sync

        async def work(pool: asyncpg.Pool) -> RunSummary:
            return await run_sync(
                self.settings,
                pool,
                [source],
                list(resources),
                full,
                stream_factory=self.stream_factory,
                client_factory=self.client_factory,
            )

        return await with_pool(self.settings, work, self.database_url)

    async def backfill(
        self,
        source: str,
        since: datetime | None = None,
        until: datetime | None = None,
        full: bool = False,
        resources: Sequence[str] = (),
    ) -> RunSummary:
        from pipeline.backfill import run_backfill

        async def work(pool: asyncpg.Pool) -> RunSummary:
            return await run_backfill(
                self.settings,
                pool,
                source,
                list(resources) or None,
                since,
                until,
                full,
                stream_factory=self.stream_factory,
                client_factory=self.client_factory,
            )

        return await with_pool(self.settings, work, self.database_url)

    async def query(self, work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        async def run(pool: asyncpg.Pool) -> T:
            async with pool.acquire() as conn:
                return await work(conn)

        return await with_pool(self.settings, run, self.database_url)


def stream_metadata(summary: RunSummary, r: StreamResult) -> dict[str, Any]:
    """What one stream's materialization reports."""
    return {
        "status": r.status,
        "mode": r.mode,
        "records": r.records,
        "inserted": r.inserted,
        "updated": r.updated,
        "unchanged": r.unchanged,
        "other_rows": r.other_rows,
        "deleted": r.deleted,
        "rejected": r.rejected,
        "requests": r.requests,
        "429s": r.rate_limited,
        "seconds": r.duration_seconds,
        "run_id": summary.run_id,
        "backfill_id": summary.backfill_id,
    }


# ------------------------------------------------------------------------------------------ checks


@dataclass(frozen=True, slots=True)
class Outcome:
    """One check's verdict on one stream, with the figures it was judged on."""

    name: str
    passed: bool
    description: str
    metadata: dict[str, Any] = field(default_factory=dict)


CHECKS = ("scan_complete", "reject_share", "freshness", "delete_guard")
CHECK_DESCRIPTIONS = {
    "scan_complete": "the last completed full scan saw every record the source said it has (seen = expected)",
    "reject_share": "the last run rejected at most [pipeline] max_reject_share of the records it fetched",
    "freshness": "the last successful run finished less than [pipeline] max_lag_hours ago",
    "delete_guard": (
        "the last run soft-deleted at most the mass-delete guard's share of the stream's live rows"
    ),
}


async def _last_run(conn: asyncpg.Connection, source: str, resource: str) -> asyncpg.Record | None:
    """The latest non-replay, non-skipped stream run (a skip did no work to judge)."""
    return await conn.fetchrow(
        "SELECT * FROM etl.stream_runs WHERE source = $1 AND resource = $2 AND mode <> 'replay' "
        "AND status NOT IN ('skipped', 'running') ORDER BY started_at DESC, id DESC LIMIT 1",
        source,
        resource,
    )


async def check_scan_complete(conn: asyncpg.Connection, source: str, resource: str) -> Outcome:
    row = await conn.fetchrow(
        "SELECT scan_completed_at, scan_incomplete_at, scan_seen, scan_expected FROM etl.checkpoints "
        "WHERE source = $1 AND resource = $2",
        source,
        resource,
    )
    name = "scan_complete"
    incomplete = row["scan_incomplete_at"] if row else None
    if incomplete is not None and (row["scan_completed_at"] is None or incomplete > row["scan_completed_at"]):
        return Outcome(
            name,
            False,
            f"{source}/{resource}: the last scan ended incomplete ({incomplete.isoformat()}); nothing was "
            "deleted and the next run scans again (see `pipeline status`)",
            {"incomplete_at": incomplete.isoformat()},
        )
    if row is None or row["scan_completed_at"] is None:
        return Outcome(name, False, f"{source}/{resource}: no full scan has completed yet")
    seen, expected = row["scan_seen"], row["scan_expected"]
    meta = {"seen": seen, "expected": expected, "completed_at": row["scan_completed_at"].isoformat()}
    if expected is None:
        return Outcome(name, True, f"{source}/{resource}: the source gives no total; saw {seen}", meta)
    if seen is None or seen < expected:
        return Outcome(
            name,
            False,
            f"{source}/{resource}: the last scan saw {seen} of {expected} records; nothing was deleted, "
            "run `pipeline sync --full` (or the full re-scan job) to scan again",
            meta,
        )
    return Outcome(name, True, f"{source}/{resource}: saw {seen} of {expected}", meta)


async def check_reject_share(
    conn: asyncpg.Connection, source: str, resource: str, max_share: float
) -> Outcome:
    name = "reject_share"
    run = await _last_run(conn, source, resource)
    if run is None:
        return Outcome(name, False, f"{source}/{resource}: no run yet")
    records, rejected = run["records"], run["rejected"]
    share = rejected / records if records else 0.0
    meta = {"records": records, "rejected": rejected, "share": round(share, 4), "max_share": max_share}
    meta["run_id"] = run["run_id"]
    if share > max_share:
        return Outcome(
            name,
            False,
            f"{source}/{resource}: run {run['run_id']} rejected {rejected} of {records} records "
            f"({share:.1%} > {max_share:.1%}); see etl.rejects, fix the transform, then `pipeline replay`",
            meta,
        )
    return Outcome(name, True, f"{source}/{resource}: {rejected} of {records} rejected", meta)


async def check_freshness(
    conn: asyncpg.Connection, source: str, resource: str, max_lag_hours: float, now: datetime | None = None
) -> Outcome:
    name = "freshness"
    at = await conn.fetchval(
        "SELECT max(finished_at) FROM etl.stream_runs WHERE source = $1 AND resource = $2 "
        "AND status = 'succeeded' AND mode <> 'replay'",
        source,
        resource,
    )
    if at is None:
        return Outcome(name, False, f"{source}/{resource}: never synced successfully")
    lag_hours = ((now or datetime.now(UTC)) - at).total_seconds() / 3600
    meta = {
        "last_success_at": at.isoformat(),
        "lag_hours": round(lag_hours, 2),
        "max_lag_hours": max_lag_hours,
    }
    if lag_hours > max_lag_hours:
        return Outcome(
            name,
            False,
            f"{source}/{resource}: last successful sync {lag_hours:.1f} h ago (> max_lag_hours "
            f"{max_lag_hours:g}); see `pipeline status` for the error",
            meta,
        )
    return Outcome(name, True, f"{source}/{resource}: synced {lag_hours:.1f} h ago", meta)


async def check_delete_guard(
    conn: asyncpg.Connection, source: str, resource: str, max_share: float
) -> Outcome:
    name = "delete_guard"
    run = await _last_run(conn, source, resource)
    if run is None:
        return Outcome(name, False, f"{source}/{resource}: no run yet")
    live = await conn.fetchval(
        "SELECT count(*) FROM raw.records WHERE source = $1 AND resource = $2 AND deleted_at IS NULL",
        source,
        resource,
    )
    deleted = run["deleted"]
    before = live + deleted
    share = deleted / before if before else 0.0
    meta = {"deleted": deleted, "live_before": before, "share": round(share, 4), "max_share": max_share}
    meta["run_id"] = run["run_id"]
    if share > max_share:
        return Outcome(
            name,
            False,
            f"{source}/{resource}: run {run['run_id']} deleted {deleted} of {before} live rows "
            f"({share:.1%} > {max_share:.1%}); check the source before trusting these deletes",
            meta,
        )
    return Outcome(name, True, f"{source}/{resource}: deleted {deleted} of {before}", meta)


async def evaluate(
    conn: asyncpg.Connection, settings: Settings, source: str, resource: str, checks: Sequence[str] = CHECKS
) -> list[Outcome]:
    """The named checks for one stream, in ``CHECKS`` order."""
    knobs = settings.pipeline
    out: list[Outcome] = []
    for name in CHECKS:
        if name not in checks:
            continue
        if name == "scan_complete":
            out.append(await check_scan_complete(conn, source, resource))
        elif name == "reject_share":
            out.append(await check_reject_share(conn, source, resource, knobs.max_reject_share))
        elif name == "freshness":
            out.append(await check_freshness(conn, source, resource, knobs.max_lag_hours))
        else:
            share = settings.sources[source].max_delete_share if source in settings.sources else None
            out.append(await check_delete_guard(conn, source, resource, share or DEFAULT_MAX_DELETE_SHARE))
    return out


async def deferred_streams(conn: asyncpg.Connection) -> list[tuple[str, str, int]]:
    """(source, resource, stream run id) of every stream whose latest run was deferred or stopped."""
    rows = await conn.fetch(
        """SELECT source, resource, id, status FROM (
               SELECT DISTINCT ON (source, resource) source, resource, id, status FROM etl.stream_runs
               WHERE mode <> 'replay' AND status <> 'skipped'
               ORDER BY source, resource, started_at DESC, id DESC) latest
           WHERE status = ANY($1::text[]) ORDER BY source, resource""",
        list(DEFERRED_STATUSES),
    )
    return [(r["source"], r["resource"], r["id"]) for r in rows]
