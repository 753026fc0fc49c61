"""Dagster on the sandbox: every asset = `pipeline sync`, partitions = backfills, one pool per API, checks."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import dagster as dg
import pytest

from pipeline.dagster_assets import build_defs, stream_key
from pipeline.orchestrate import rate_group
from pipeline.sandbox import core as sandbox_core
from tests import dbutil
from tests.dagster.kit import ThreadSandbox, sandbox_settings, table_digests

pytestmark = [pytest.mark.dagster, pytest.mark.db, pytest.mark.slow]

METADATA = ("records", "inserted", "updated", "deleted", "rejected", "requests", "429s", "seconds", "run_id")


@pytest.fixture
def second_db(database_url: str, template_database: str) -> Iterator[str]:
    name = dbutil.unique_name("pipeline_dg")
    yield asyncio.run(dbutil.create_database(database_url, name, template=template_database))
    asyncio.run(dbutil.drop_database(database_url, name))


@pytest.fixture
def dagster_storage_url(database_url: str) -> Iterator[str]:
    """An empty database for Dagster's own run, event and concurrency storage (dagster-postgres)."""
    name = dbutil.unique_name("dagster_storage")
    url = asyncio.run(dbutil.create_database(database_url, name))
    # SQLAlchemy 2.1 reads a bare postgresql:// as psycopg 3; dagster-postgres ships psycopg2.
    yield url.replace("postgresql://", "postgresql+psycopg2://", 1)
    asyncio.run(dbutil.drop_database(database_url, name))


def fetch(url: str, query: str, *args: Any) -> list[dict[str, Any]]:
    async def run() -> list[dict[str, Any]]:
        conn = await asyncpg.connect(url)
        try:
            return [dict(r) for r in await conn.fetch(query, *args)]
        finally:
            await conn.close()

    return asyncio.run(run())


def test_every_asset_loads_the_same_rows_as_pipeline_sync(
    db_url: str, second_db: str, tmp_path: Path
) -> None:
    """Materializing every asset in-process gives the tables `pipeline sync` gives (counts and digests)."""
    with ThreadSandbox() as sandbox:
        settings = sandbox_settings(sandbox, tmp_path / "sandbox.toml")
        env = {**os.environ, "DATABASE_URL": db_url}
        cli = subprocess.run(
            [sys.executable, "-m", "pipeline", "--config", str(settings.path), "--log-json", "sync"],
            capture_output=True, text=True, env=env, timeout=300, check=False,
        )  # fmt: skip
        assert cli.returncode == 0, cli.stderr[-3000:]

        defs = build_defs(settings, second_db)
        with dg.instance_for_test() as instance:
            result = defs.resolve_job_def("sync").execute_in_process(instance=instance)
        assert result.success

    streams = {stream_key(s.name, r) for s in settings.enabled_sources() for r in s.resources}
    materialized = {e.asset_key: e for e in result.get_asset_materialization_events()}
    assert set(materialized) == streams
    for key, event in materialized.items():
        meta = event.materialization.metadata
        assert set(METADATA) <= set(meta), key
    checks = result.get_asset_check_evaluations()
    assert len(checks) == 4 * len(streams)
    assert [(c.asset_key, c.check_name) for c in checks if not c.passed] == []

    expected, got = asyncio.run(table_digests(db_url)), asyncio.run(table_digests(second_db))
    assert sum(n for n, _ in expected.values()) > 5000
    assert got == expected


def test_three_anilist_partitions_are_backfills_and_leave_the_nightly_checkpoint(
    db_url: str, tmp_path: Path
) -> None:
    """Three monthly partitions = three `pipeline backfill` windows in etl.backfills; checkpoints stay."""
    with ThreadSandbox() as sandbox:
        settings = sandbox_settings(sandbox, tmp_path / "anilist.toml", only={"anilist"})
        world = sandbox.ctx.need_world()
        defs = build_defs(settings, db_url)
        with dg.instance_for_test() as instance:
            assert defs.resolve_job_def("sync").execute_in_process(instance=instance).success
            nightly = fetch(db_url, "SELECT * FROM etl.checkpoints ORDER BY source, resource")
            assert [(c["source"], c["resource"]) for c in nightly] == [
                ("anilist", "anime"),
                ("anilist", "manga"),
            ]
            assert all(c["cursor"] is not None for c in nightly)

            job = defs.resolve_job_def("anilist_backfill")
            months = ["2023-01-01", "2023-02-01", "2023-03-01"]
            records: dict[str, int] = {"anime": 0, "manga": 0}
            for month in months:
                result = job.execute_in_process(instance=instance, partition_key=month)
                assert result.success
                for event in result.get_asset_materialization_events():
                    records[event.asset_key.path[1]] += event.materialization.metadata["records"].value
            latest = instance.get_latest_materialization_event(stream_key("anilist", "anime"))
            assert latest is not None
            latest_backfill = latest.asset_materialization.metadata["backfill_id"].value

    ledger = fetch(db_url, "SELECT * FROM etl.backfills ORDER BY id")
    bounds = [
        (datetime(2023, 1, 1, tzinfo=UTC), datetime(2023, 2, 1, tzinfo=UTC)),
        (datetime(2023, 2, 1, tzinfo=UTC), datetime(2023, 3, 1, tzinfo=UTC)),
        (datetime(2023, 3, 1, tzinfo=UTC), datetime(2023, 4, 1, tzinfo=UTC)),
    ]
    assert [(b["source"], b["resource"], b["since"], b["until"], b["full_scan"]) for b in ledger] == [
        ("anilist", None, since, until, False) for since, until in bounds
    ]
    assert all(b["status"] == "done" for b in ledger)
    assert all(json.loads(b["progress"])[r]["done"] for b in ledger for r in ("anime", "manga"))
    assert latest_backfill == ledger[-1]["id"]
    # What the windows fetched: exactly the works the world changed in those three months.
    since, until = bounds[0][0].timestamp(), bounds[-1][1].timestamp()
    for kind in ("anime", "manga"):
        changed = [
            w for w in world.live() if w.kind == kind and w.anilist_id and since <= w.modified_at < until
        ]
        assert records[kind] == len(changed) > 0
    runs = fetch(db_url, "SELECT mode, backfill_id FROM etl.stream_runs WHERE mode = 'backfill'")
    assert sorted(r["backfill_id"] for r in runs) == sorted([b["id"] for b in ledger] * 2)
    assert fetch(db_url, "SELECT * FROM etl.checkpoints ORDER BY source, resource") == nightly


class Recorder:
    """(start, end) of every request the sandbox's AniList answered, with some latency added."""

    def __init__(self, service: str, latency: float) -> None:
        self.service, self.latency = service, latency
        self.spans: list[tuple[float, float]] = []
        self.original = sandbox_core._with_faults

    async def __call__(self, ctx: Any, service: str, request: Any, handler: Any, throttle: Any) -> Any:
        if service != self.service:
            return await self.original(ctx, service, request, handler, throttle)
        start = time.monotonic()
        try:
            await asyncio.sleep(self.latency)  # a slow API: requests in flight long enough to collide
            return await self.original(ctx, service, request, handler, throttle)
        finally:
            self.spans.append((start, time.monotonic()))

    def overlaps(self) -> int:
        spans = sorted(self.spans)
        return sum(1 for a, b in itertools.pairwise(spans) if b[0] < a[1])


def launch_together(home: Path, config: Path, db_url: str, job: str, partitions: list[str]) -> list[Any]:
    """Each partition as its own run in its own process (two run workers), started at once.

    The instance's storage is made here first: two workers creating its tables at the same moment
    race in Dagster's migrations (``type "alembic_version" already exists``).
    """
    with dg.DagsterInstance.from_config(str(home)) as instance:
        instance.get_runs(limit=1)  # reads the run storage: its tables exist before the workers look
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.dagster.partition_worker", str(config), db_url, job, p],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for p in partitions
    ]
    outputs = []
    try:
        for proc in procs:
            outputs.append(proc.communicate(timeout=300))
    finally:  # a worker that failed or hung: stop the others and close every pipe
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.communicate()
    out = []
    for proc, (stdout, stderr) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, stderr[-3000:]
        out.append(json.loads(stdout.strip().splitlines()[-1]))
    return out


def overlap(a: list[float], b: list[float]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def dagster_home(path: Path, storage_url: str, pool_limit: int | None) -> Path:
    """A DAGSTER_HOME whose dagster.yaml keeps runs, events and pool slots in PostgreSQL."""
    path.mkdir()
    lines = ["storage:", "  postgres:", f"    postgres_url: {storage_url}"]
    if pool_limit is not None:
        lines += ["concurrency:", "  pools:", f"    default_limit: {pool_limit}"]
    (path / "dagster.yaml").write_text("\n".join(lines) + "\n")
    return path


def test_pool_keeps_two_partitions_of_one_api_apart(
    db_url: str, dagster_storage_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two partitions launched together: with the pool their API ops never run at once, and never two
    AniList requests are in flight at once."""
    recorder = Recorder("anilist", latency=0.2)
    monkeypatch.setattr(sandbox_core, "_with_faults", recorder)
    with ThreadSandbox() as sandbox:
        settings = sandbox_settings(sandbox, tmp_path / "anilist.toml", only={"anilist"}, page_size=10)
        assert settings.path is not None

        # Without a pool limit both runs are inside their API op at the same time; only the shared
        # rate budget (etl.rate_groups, one in flight for AniList) keeps their requests apart.
        free_home = dagster_home(tmp_path / "free", dagster_storage_url, None)
        free = launch_together(
            free_home, settings.path, db_url, "anilist_backfill", ["2014-01-01", "2014-02-01"]
        )
        assert all(r["success"] for r in free)
        assert overlap(free[0]["step"], free[1]["step"])
        assert recorder.overlaps() == 0

        recorder.spans.clear()
        home = dagster_home(tmp_path / "pooled", dagster_storage_url, 1)
        # The deployment step of docs/OPERATIONS.md: explicit pool limits, so the two runs' first
        # claims do not both insert the default limit row (dagster-io/dagster#33552).
        env = {**os.environ, "DAGSTER_HOME": str(home), "PIPELINE_CONFIG": str(settings.path)}
        set_pools = subprocess.run(
            [sys.executable, "-m", "pipeline.dagster", "set-pools", "--limit", "1"],
            capture_output=True, text=True, env=env, timeout=300, check=False,
        )  # fmt: skip
        assert set_pools.returncode == 0, set_pools.stderr[-3000:]
        assert set_pools.stdout.split() == [rate_group(settings.sources["anilist"]), "1"]
        pooled = launch_together(
            home, settings.path, db_url, "anilist_backfill", ["2014-03-01", "2014-04-01"]
        )
        monkeypatch.setenv("DAGSTER_HOME", str(home))
        with dg.DagsterInstance.get() as instance:
            pools = {p.name: p.limit for p in instance.event_log_storage.get_pool_limits()}
    assert all(r["success"] for r in pooled)
    assert not overlap(pooled[0]["step"], pooled[1]["step"])  # the pool ran one op after the other
    assert pools == {rate_group(settings.sources["anilist"]): 1}
    assert rate_group(settings.sources["anilist"]).startswith("127.0.0.1_")
    assert len(recorder.spans) == sum(r["requests"] for r in pooled) > 20
    assert recorder.overlaps() == 0


def test_asset_checks_fail_on_an_incomplete_scan_and_pass_on_a_complete_one(db_url: str) -> None:
    """scan_complete fails when a scan saw 8 of 12 records and passes at 12 of 12."""
    from pipeline.runner import no_client
    from tests.integration import loadkit
    from tests.integration.loadkit import FakeStream, factory, item, page_doc

    async def prepare() -> None:
        conn = await asyncpg.connect(db_url)
        try:
            await loadkit.create_tables(conn)
        finally:
            await conn.close()

    asyncio.run(prepare())
    settings = loadkit.settings()
    source = settings.sources["fake"]

    def scan(pages: int, total: int) -> dict[str, bool]:
        docs = [page_doc([item(n) for n in range(p * 4, p * 4 + 4)], total) for p in range(pages)]
        stream = FakeStream(source, docs)
        defs = build_defs(
            settings, db_url, stream_factory=factory({"fake": stream}), client_factory=no_client
        )
        with dg.instance_for_test() as instance:
            result = defs.resolve_job_def("sync").execute_in_process(instance=instance)
        assert result.success
        return {c.check_name: c.passed for c in result.get_asset_check_evaluations()}

    good = {"scan_complete": True, "reject_share": True, "freshness": True, "delete_guard": True}
    # 8 seen of 12 expected: incomplete, and no run of the stream has succeeded yet.
    assert scan(pages=2, total=12) == {**good, "scan_complete": False, "freshness": False}
    [row] = fetch(db_url, "SELECT scan_completed_at, scan_incomplete_at FROM etl.checkpoints")
    assert row["scan_completed_at"] is None
    assert row["scan_incomplete_at"] is not None
    assert scan(pages=3, total=12) == good
    assert fetch(db_url, "SELECT scan_seen, scan_expected FROM etl.checkpoints") == [
        {"scan_seen": 12, "scan_expected": 12}
    ]


def test_set_pools_sets_every_pool_explicitly_and_refuses_an_empty_pool(
    dagster_storage_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """set_pool_limits writes one explicit limit per rate group in PostgreSQL storage, updates it on a
    second call and refuses 0 (a pool of no slots would hold its ops for ever)."""
    from pipeline.dagster_assets import pool_names, set_pool_limits
    from tests.integration import loadkit

    settings = loadkit.settings()
    [pool] = pool_names(settings)
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home(tmp_path / "home", dagster_storage_url, None)))
    with dg.DagsterInstance.get() as instance:
        assert set_pool_limits(instance, settings, 2) == {pool: 2}
        assert set_pool_limits(instance, settings) == {pool: 1}
        [limit] = instance.event_log_storage.get_pool_limits()
        assert (limit.name, limit.limit, limit.from_default) == (pool, 1, False)
        with pytest.raises(ValueError, match="at least 1 slot"):
            set_pool_limits(instance, settings, 0)
        assert [p.limit for p in instance.event_log_storage.get_pool_limits()] == [1]
