"""Dagster definitions for the pipeline, built from one configuration (``pipeline.dagster`` holds ``defs``).

Needs the optional extra: ``pip install -e '.[dagster]'``. What ``build_defs`` returns:

* **one asset per stream**, key ``[source, resource]``, grouped by source. The streams of a source
  are one ``multi_asset`` (subsettable), so a run of any selection of them is one ``pipeline sync``
  of that source: one client and login, the Zou events log walked once, resources in configured
  order. Dependencies between streams (Zou projects before entities before tasks, Kitsu media
  before episodes) are asset deps; the description names the unified tables a stream writes; each
  materialization carries records, inserted, updated, deleted, rejected, requests, 429s, seconds and
  the pipeline run id.
* **one concurrency pool per rate group** (``pipeline.orchestrate.rate_group``) on every op that
  calls an API, so with a pool limit of 1 two Dagster runs never call one API at once;
  ``set_pool_limits`` (``python -m pipeline.dagster set-pools``) gives each pool its limit.
* **backfills**: ``<source>_backfill`` jobs, partitioned by month of the source's change time, for
  sources that can select a time window (AniList ``updatedAt``, Zou events); each partition is one
  ``pipeline backfill --since … --until …`` row of ``etl.backfills``, so a Dagster backfill over a
  range never moves the nightly checkpoint. ``<source>_full_rescan`` jobs run ``pipeline backfill
  --full`` (the way to re-scan Kitsu, AniList v1 and Nekos out of band). Both report materializations
  of the stream assets they reload.
* **asset checks** per stream computed from the data: ``scan_complete``, ``reject_share``,
  ``freshness``, ``delete_guard`` (``pipeline.orchestrate``).
* the ``sync`` job (every stream and check), the ``nightly_sync`` schedule (``[pipeline] schedule``,
  UTC) and the ``deferred_streams`` sensor, which re-runs streams whose last run was deferred or
  stopped by a rate limit once they may resume.
"""

# No ``from __future__ import annotations`` here: Dagster reads the ``context`` annotation of a
# compute function as a class at definition time, and a postponed (string) one is refused.
import asyncio
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, time
from functools import partial
from typing import Any

import asyncpg
import dagster as dg

from pipeline import sources
from pipeline.orchestrate import (
    CHECK_DESCRIPTIONS,
    CHECKS,
    Outcome,
    Runner,
    deferred_streams,
    evaluate,
    rate_group,
    stream_deps,
    stream_metadata,
    tables_written,
    windowed,
)
from pipeline.runner import ClientFactory, StreamFactory
from pipeline.runs import RunSummary
from pipeline.settings import Settings, SourceSettings, load_settings

RETRY = dg.RetryPolicy(max_retries=2, delay=60, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)
DEFERRED_SENSOR_SECONDS = 600
SEVERITY = {"freshness": dg.AssetCheckSeverity.WARN}


def stream_key(source: str, resource: str) -> dg.AssetKey:
    return dg.AssetKey([source, resource])


def _description(src: SourceSettings, resource: str, tables: Sequence[str]) -> str:
    tables_text = ", ".join(tables)
    mode = "incremental after its first full scan" if windowed(src) else "full re-scan with content hashes"
    return f"{src.kind} {resource} of source '{src.name}' ({mode}); writes {tables_text}."


def _specs(src: SourceSettings, runner: Runner) -> list[dg.AssetSpec]:
    specs = []
    for resource in src.resources:
        tables = tables_written(src, resource, runner.stream_factory)
        specs.append(
            dg.AssetSpec(
                stream_key(src.name, resource),
                deps=[stream_key(src.name, parent) for parent in stream_deps(src, resource)],
                description=_description(src, resource, tables),
                group_name=src.name,
                kinds={"postgres"},
                skippable=True,
                tags={"pipeline/kind": src.kind},
                metadata={"tables": ", ".join(tables), "rate_group": rate_group(src)},
            )
        )
    return specs


def _report(
    context: dg.OpExecutionContext, summary: RunSummary, wanted: Sequence[str], *, asset_results: bool
) -> Iterator[Any]:
    """One materialization per stream that did its work; a failed stream fails the step after."""
    failed = []
    for r in summary.streams:
        if r.resource not in wanted:
            continue
        meta = stream_metadata(summary, r)
        # An incomplete scan loaded its pages (nothing deleted): reported, and its scan_complete check fails.
        if r.status in ("succeeded", "incomplete"):
            key = stream_key(r.source, r.resource)
            if asset_results:
                yield dg.MaterializeResult(asset_key=key, metadata=meta)
            else:
                yield dg.AssetMaterialization(asset_key=key, metadata=meta)
        elif r.status == "failed":
            failed.append(f"{r.source}/{r.resource}: {r.error}")
        else:  # skipped (locked elsewhere, re-scan not due), deferred, stopped: nothing new to report
            context.log.warning(f"{r.source}/{r.resource} {r.status}: {r.error}")
    if failed:
        raise dg.Failure(
            description=f"pipeline run {summary.run_id}: {len(failed)} stream(s) failed",
            metadata={"errors": "\n".join(failed), "run_id": summary.run_id},
        )


def _stream_assets(src: SourceSettings, runner: Runner) -> dg.AssetsDefinition:
    @dg.multi_asset(
        name=f"{src.name}_streams",
        specs=_specs(src, runner),
        can_subset=True,
        pool=rate_group(src),
        retry_policy=RETRY,
        config_schema={"full": dg.Field(bool, default_value=False, description="re-scan (sync --full)")},
        description=f"pipeline sync --source {src.name}",
    )
    def _sync(context: dg.AssetExecutionContext) -> Iterator[Any]:
        keys = context.selected_asset_keys
        wanted = [r for r in src.resources if stream_key(src.name, r) in keys]
        summary = asyncio.run(
            runner.sync(src.name, wanted, bool(context.op_execution_context.op_config["full"]))
        )
        yield from _report(context.op_execution_context, summary, wanted, asset_results=True)

    return _sync


async def _evaluate(
    settings: Settings, source: str, resource: str, names: Sequence[str], conn: asyncpg.Connection
) -> list[Outcome]:
    return await evaluate(conn, settings, source, resource, names)


def _checks(src: SourceSettings, runner: Runner) -> dg.AssetChecksDefinition:
    specs = [
        dg.AssetCheckSpec(name, asset=stream_key(src.name, resource), description=CHECK_DESCRIPTIONS[name])
        for resource in src.resources
        for name in CHECKS
    ]

    @dg.multi_asset_check(name=f"{src.name}_checks", specs=specs, can_subset=True)
    def _run_checks(context: dg.AssetCheckExecutionContext) -> Iterator[dg.AssetCheckResult]:
        selected = context.selected_asset_check_keys
        for resource in src.resources:
            key = stream_key(src.name, resource)
            names = [c.name for c in selected if c.asset_key == key]
            if not names:
                continue
            work = partial(_evaluate, runner.settings, src.name, resource, names)
            outcomes = asyncio.run(runner.query(work))
            for o in outcomes:
                yield dg.AssetCheckResult(
                    asset_key=key,
                    check_name=o.name,
                    passed=o.passed,
                    description=o.description,
                    metadata=o.metadata,
                    severity=SEVERITY.get(o.name, dg.AssetCheckSeverity.ERROR),
                )

    return _run_checks


def _partitions(settings: Settings) -> dg.MonthlyPartitionsDefinition:
    start = datetime.combine(settings.pipeline.backfill_start, time(), tzinfo=UTC)
    return dg.MonthlyPartitionsDefinition(start_date=start, timezone="UTC")


def _backfill_jobs(src: SourceSettings, runner: Runner, settings: Settings) -> list[dg.JobDefinition]:
    jobs = []
    if windowed(src):

        @dg.op(name=f"{src.name}_backfill_window", out={}, pool=rate_group(src), retry_policy=RETRY)
        def _window(context: dg.OpExecutionContext) -> Iterator[Any]:
            window = context.partition_time_window
            summary = asyncio.run(runner.backfill(src.name, since=window.start, until=window.end))
            context.log.info(
                f"backfill {summary.backfill_id} of {src.name} window {window.start:%Y-%m-%d} .. "
                f"{window.end:%Y-%m-%d}: {summary.status}"
            )
            yield from _report(context, summary, src.resources, asset_results=False)

        @dg.job(
            name=f"{src.name}_backfill",
            partitions_def=_partitions(settings),
            description=(
                f"pipeline backfill --source {src.name} for one month of changes per partition "
                "(recorded in etl.backfills; the nightly checkpoint never moves)"
            ),
            tags={"pipeline/rate_group": rate_group(src)},
        )
        def _window_job() -> None:
            _window()

        jobs.append(_window_job)

    @dg.op(name=f"{src.name}_full_rescan_op", out={}, pool=rate_group(src), retry_policy=RETRY)
    def _full(context: dg.OpExecutionContext) -> Iterator[Any]:
        summary = asyncio.run(runner.backfill(src.name, full=True))
        context.log.info(f"backfill {summary.backfill_id} of {src.name} (full re-scan): {summary.status}")
        yield from _report(context, summary, src.resources, asset_results=False)

    @dg.job(
        name=f"{src.name}_full_rescan",
        description=f"pipeline backfill --source {src.name} --full (recorded in etl.backfills)",
        tags={"pipeline/rate_group": rate_group(src)},
    )
    def _full_job() -> None:
        _full()

    jobs.append(_full_job)
    return jobs


def _deferred_sensor(runner: Runner, known: set[dg.AssetKey], job: Any) -> dg.SensorDefinition:
    @dg.sensor(
        name="deferred_streams",
        job=job,
        minimum_interval_seconds=DEFERRED_SENSOR_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="re-runs the streams whose last run was deferred or stopped by a rate limit",
    )
    def _sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
        rows = asyncio.run(runner.query(deferred_streams))
        keys = [stream_key(s, r) for s, r, _ in rows if stream_key(s, r) in known]
        if not keys:
            return dg.SkipReason("no deferred or stopped stream")
        run_key = "resume-" + "-".join(str(i) for *_, i in rows)
        return dg.SensorResult(run_requests=[dg.RunRequest(run_key=run_key, asset_selection=keys)])

    return _sensor


def build_defs(
    settings: Settings | None = None,
    database_url: str | None = None,
    *,
    stream_factory: StreamFactory = sources.build_stream,
    client_factory: ClientFactory = sources.open_client,
) -> dg.Definitions:
    """Definitions for every enabled source of ``settings`` (default: ``$PIPELINE_CONFIG``).

    ``database_url`` overrides ``DATABASE_URL`` / ``[database] url`` (``None``: those, then the
    embedded server).
    """
    settings = settings or load_settings()
    runner = Runner(settings, database_url, stream_factory, client_factory)
    enabled = settings.enabled_sources()
    assets = [_stream_assets(src, runner) for src in enabled]
    checks = [_checks(src, runner) for src in enabled]
    sync = dg.define_asset_job("sync", selection=dg.AssetSelection.all())
    jobs: list[Any] = [sync]
    for src in enabled:
        jobs.extend(_backfill_jobs(src, runner, settings))
    nightly = dg.ScheduleDefinition(
        name="nightly_sync",
        job=sync,
        cron_schedule=settings.pipeline.schedule,
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"pipeline sync of every enabled stream at '{settings.pipeline.schedule}' (UTC)",
    )
    known = {stream_key(src.name, r) for src in enabled for r in src.resources}
    return dg.Definitions(
        assets=assets,
        asset_checks=checks,
        jobs=jobs,
        schedules=[nightly],
        sensors=[_deferred_sensor(runner, known, sync)],
    )


def pool_names(settings: Settings) -> list[str]:
    """The pool of every enabled source, each once, in configured order."""
    return list(dict.fromkeys(rate_group(src) for src in settings.enabled_sources()))


def set_pool_limits(instance: dg.DagsterInstance, settings: Settings, limit: int = 1) -> dict[str, int]:
    """Give the pool of every enabled source an explicit slot limit in ``instance``'s storage.

    Explicit limits are what keep two runs apart from their first step: with only
    ``concurrency: pools: default_limit`` in ``dagster.yaml``, the first claim of a new pool
    inserts its limit row, and two runs claiming it at the same instant on PostgreSQL make one of
    them fail with a unique violation on ``concurrency_limits`` (dagster-io/dagster#33552).
    Setting a limit again only updates it. Returns the limits as the storage now holds them.
    """
    if limit < 1:
        raise ValueError(f"pool limit {limit}: a pool needs at least 1 slot (0 would hold its ops for ever)")
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        raise ValueError(
            f"the Dagster storage of this instance ({type(storage).__name__}) keeps no pool limits: "
            "run `dagster instance migrate` (an older schema), or keep Dagster's storage in "
            "PostgreSQL (storage: postgres: in $DAGSTER_HOME/dagster.yaml, docs/OPERATIONS.md)"
        )
    pools = pool_names(settings)
    for pool in pools:
        storage.set_concurrency_slots(pool, limit)
    held = {p.name: p.limit for p in storage.get_pool_limits()}
    return {pool: held[pool] for pool in pools}
