"""The runner with a fake connector on real PostgreSQL: resume, locks, rejects, deletes, run history."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from structlog.testing import capture_logs

from pipeline import runner, runs
from pipeline.locks import lock_key
from pipeline.runner import run_sync
from tests.integration import loadkit
from tests.integration.loadkit import FakeStream, factory, item, page_doc

pytestmark = pytest.mark.db


@pytest.fixture
async def db(pool: asyncpg.Pool) -> asyncpg.Pool:
    async with pool.acquire() as conn:
        await loadkit.create_tables(conn)
    return pool


def docs(
    pages: int, per_page: int = 5, total: int | None = None, skip: frozenset[int] = frozenset()
) -> list[Any]:
    total = pages * per_page - len(skip) if total is None else total
    out = []
    for p in range(pages):
        ids = [n for n in range(p * per_page, (p + 1) * per_page) if n not in skip]
        out.append(page_doc([item(n) for n in ids], total))
    return out


async def shows(pool: asyncpg.Pool, where: str = "true") -> list[str]:
    rows = await pool.fetch(f"SELECT source_id FROM loadtest.shows WHERE {where} ORDER BY source_id::int")
    return [r["source_id"] for r in rows]


async def sync(pool: asyncpg.Pool, stream: FakeStream, **kw: Any) -> Any:
    settings = kw.pop("settings", None) or loadkit.settings(stream.source.name)
    return await run_sync(settings, pool, stream_factory=factory({stream.source.name: stream}), **kw)


def fake(docs_: list[Any], name: str = "fake", **kw: Any) -> FakeStream:
    return FakeStream(loadkit.settings(name).sources[name], docs_, **kw)


async def test_sync_loads_everything_and_records_the_run(db: asyncpg.Pool) -> None:
    """A full sync loads every page, records run and stream rows, and logs one stream_finished line."""
    with capture_logs() as logs:
        summary = await sync(db, fake(docs(4)))
    assert (summary.status, summary.exit_code) == ("succeeded", 0)
    assert len(await shows(db)) == 20
    result = summary.streams[0]
    # The counts are rows of the stream's main table; the studios and tag links the shows
    # brought are other rows.
    assert (result.pages, result.records, result.inserted, result.requests) == (4, 20, 20, 4)
    studios = await db.fetchval("SELECT count(*) FROM loadtest.studios")
    links = await db.fetchval("SELECT count(*) FROM loadtest.show_tags")
    assert studios > 0
    assert links > 0
    assert result.other_rows == studios + links
    row = await db.fetchrow("SELECT * FROM etl.stream_runs")
    assert (row["status"], row["mode"], row["records"], row["inserted"]) == ("succeeded", "full", 20, 20)
    assert row["other_rows"] == result.other_rows
    assert await db.fetchval("SELECT status FROM etl.runs") == "succeeded"
    finished = [e for e in logs if e["event"] == "stream_finished"]
    assert len(finished) == 1
    assert (finished[0]["records"], finished[0]["status"], finished[0]["source"]) == (20, "succeeded", "fake")
    checkpoint = await db.fetchrow("SELECT * FROM etl.checkpoints")
    assert checkpoint["scan_completed_at"] is not None
    assert checkpoint["scan_seen"] == 20


async def test_rerun_of_unchanged_data_writes_no_rows(db: asyncpg.Pool) -> None:
    """A second full sync of the same data inserts and updates nothing and counts every row unchanged."""
    await sync(db, fake(docs(3)))
    summary = await sync(db, fake(docs(3)))
    result = summary.streams[0]
    assert (result.inserted, result.updated, result.deleted) == (0, 0, 0)
    assert result.unchanged >= 15  # every show, and the studios once per batch


async def test_crashed_scan_resumes_from_the_committed_page_set(db: asyncpg.Pool) -> None:
    """Pages committed out of order are remembered as a set; the re-run fetches only the others."""
    order = [3, 0, 5, 1, 4, 2]
    first = fake(docs(6), order=order, fail_after=3)
    summary = await sync(db, first)
    assert summary.streams[0].status == "failed"
    assert summary.exit_code == 1
    assert "connection reset" in (summary.streams[0].error or "")
    scan = await db.fetchval("SELECT scan FROM etl.checkpoints")
    assert scan["pages"] == [[0, 0], [3, 3], [5, 5]]
    assert await db.fetchval("SELECT scan_completed_at FROM etl.checkpoints") is None
    again = fake(docs(6), order=order)
    summary = await sync(db, again)
    assert summary.status == "succeeded"
    assert again.stats.requests == 3  # pages 1, 4, 2 only
    assert await shows(db) == [str(n) for n in range(30)]
    assert await db.fetchval("SELECT scan FROM etl.checkpoints") == {}


async def test_overlapping_run_skips_the_locked_stream(db: asyncpg.Pool) -> None:
    """While one run holds a stream, a second run skips it with a clear message and loads nothing."""
    entered, release = asyncio.Event(), asyncio.Event()

    async def hold(n: int) -> None:
        if n == 0:
            entered.set()
            await release.wait()

    slow = fake(docs(2), on_page=hold)
    async with asyncio.TaskGroup() as tasks:
        first = tasks.create_task(sync(db, slow))
        await entered.wait()
        second_stream = fake(docs(2))
        second = await sync(db, second_stream)
        release.set()
    assert second.streams[0].status == "skipped"
    assert second.exit_code == 0
    assert "another run" in (second.streams[0].error or "")
    assert second_stream.stats.requests == 0
    assert first.result().streams[0].status == "succeeded"
    statuses = await db.fetch("SELECT status FROM etl.stream_runs ORDER BY id")
    assert sorted(r["status"] for r in statuses) == ["skipped", "succeeded"]
    assert await db.fetchval("SELECT count(*) FROM loadtest.shows") == 10


async def test_lock_held_by_another_session_skips(db: asyncpg.Pool) -> None:
    """An advisory lock held by another database session (another host's cron) makes the stream skip."""
    async with db.acquire() as other:
        await other.execute("SELECT pg_advisory_lock($1)", lock_key("fake", loadkit.RESOURCE))
        summary = await sync(db, fake(docs(1)))
        assert summary.streams[0].status == "skipped"
        assert str(other.get_server_pid()) in (summary.streams[0].error or "")
    assert await db.fetchval("SELECT count(*) FROM loadtest.shows") == 0


async def test_complete_scan_soft_deletes_the_unseen_and_revives_the_returning(db: asyncpg.Pool) -> None:
    """A complete scan that saw the expected total deletes unseen rows; a later scan brings them back."""
    await sync(db, fake(docs(2)))
    gone = fake(docs(2, skip=frozenset({3, 7})))
    summary = await sync(db, gone, allow_deletes=True)  # 2 of 10 is past the 5 % guard
    assert gone.looked_up == ["3", "7"]  # verified by id before deleting
    assert summary.streams[0].deleted == 2  # records 3 and 7 (each counted once, not per table)
    assert await shows(db, "deleted_at IS NOT NULL") == ["3", "7"]
    assert await db.fetchval("SELECT count(*) FROM raw.records WHERE deleted_at IS NOT NULL") == 2
    await sync(db, fake(docs(2)))
    assert await shows(db, "deleted_at IS NOT NULL") == []
    assert await db.fetchval("SELECT count(*) FROM raw.records WHERE deleted_at IS NOT NULL") == 0


async def test_partial_or_short_or_differently_authenticated_scans_delete_nothing(db: asyncpg.Pool) -> None:
    """No deletes from a failed scan, a scan that saw fewer than its total, or another auth identity."""
    await sync(db, fake(docs(2), auth_identity="user:alice"))
    await sync(db, fake(docs(2, skip=frozenset({1})), fail_after=1, auth_identity="user:alice"))
    await sync(db, fake(docs(2, skip=frozenset({1}), total=10), auth_identity="user:alice"))
    await sync(db, fake(docs(2, skip=frozenset({1})), auth_identity="anonymous"))
    assert await shows(db, "deleted_at IS NOT NULL") == []
    assert await db.fetchval("SELECT scan_auth FROM etl.checkpoints") == "anonymous"
    await sync(db, fake(docs(2, skip=frozenset({1})), auth_identity="anonymous"), allow_deletes=True)
    assert await shows(db, "deleted_at IS NOT NULL") == ["1"]


async def test_bad_records_are_rejected_until_the_share_is_exceeded(db: asyncpg.Pool) -> None:
    """A few rejects leave the stream succeeded; more than max_reject_share fails it."""
    pages = docs(2)
    pages[0]["data"][1]["title"] = None
    summary = await sync(db, fake(pages), settings=loadkit.settings(max_reject_share=0.2))
    assert (summary.streams[0].status, summary.streams[0].rejected) == ("succeeded", 1)
    assert await db.fetchval("SELECT count(*) FROM etl.rejects") == 1
    assert len(await shows(db)) == 9
    summary = await sync(db, fake(pages), settings=loadkit.settings(max_reject_share=0.05))
    assert summary.streams[0].status == "failed"
    assert "max_reject_share" in (summary.streams[0].error or "")


async def test_one_failing_source_does_not_stop_the_others(db: asyncpg.Pool) -> None:
    """Streams of other sources finish when one source's stream fails; the run is partial."""
    good = FakeStream(loadkit.settings("good").sources["good"], docs(2))
    bad = FakeStream(loadkit.settings("bad").sources["bad"], docs(2), fail_after=0)
    settings = loadkit.settings("good").model_copy(
        update={"sources": {"good": good.source, "bad": bad.source}}
    )
    summary = await run_sync(settings, db, stream_factory=factory({"good": good, "bad": bad}))
    by_source = {r.source: r.status for r in summary.streams}
    assert by_source == {"good": "succeeded", "bad": "failed"}
    assert (summary.status, summary.exit_code) == ("partial", 1)
    assert await db.fetchval("SELECT count(*) FROM loadtest.shows WHERE source = 'good'") == 10


async def test_incremental_cursor_is_capped_at_run_start_minus_lag(db: asyncpg.Pool) -> None:
    """Cursor pages commit max(cursor) capped at the run's start minus the configured lag."""
    future = datetime.now(UTC) + timedelta(days=1)
    early = datetime(2024, 1, 1, tzinfo=UTC)
    await db.execute(
        "INSERT INTO etl.checkpoints (source, resource, cursor, cursor_kind) "
        "VALUES ('fake', $1, $2, 'timestamp')",
        loadkit.RESOURCE,
        early.isoformat(),
    )
    stream = fake(docs(2), incremental=True, cursors=[early + timedelta(hours=1), future])
    summary = await sync(db, stream, settings=loadkit.settings(cursor_lag_seconds=600))
    assert summary.streams[0].mode == "incremental"
    assert stream.started_with[0][:2] == ("incremental", early)
    stored = datetime.fromisoformat(await db.fetchval("SELECT cursor FROM etl.checkpoints"))
    run_start = await db.fetchval("SELECT started_at FROM etl.runs")
    assert stored <= run_start - timedelta(seconds=600) + timedelta(seconds=5)
    assert stored > early + timedelta(hours=1)


async def test_small_batches_commit_often_and_status_reports_them(db: asyncpg.Pool) -> None:
    """batch_rows bounds each transaction; status and runs queries report the stream."""
    stream = fake(docs(5))
    await sync(db, stream, settings=loadkit.settings(batch_rows=5, queue_pages=1))
    async with db.acquire() as conn:
        status = await runs.stream_status(conn)
        history = await runs.recent_runs(conn, last=5)
    assert [(s.source, s.resource, s.last_status, s.rows) for s in status] == [
        ("fake", loadkit.RESOURCE, "succeeded", 25)
    ]
    assert status[0].lag_seconds is not None
    assert status[0].scan_completed_at is not None
    assert history[0].streams[0]["pages"] == 5
    assert history[0].command == "sync"


async def test_status_error_is_the_latest_runs_not_an_old_failures(db: asyncpg.Pool) -> None:
    """A failed run's error is shown while it is the latest; after a success the error column is empty."""
    assert (await sync(db, fake(docs(3), fail_after=1))).streams[0].status == "failed"
    async with db.acquire() as conn:
        [failed] = await runs.stream_status(conn)
    assert (failed.last_status, failed.last_error is not None) == ("failed", True)
    assert (await sync(db, fake(docs(3)))).streams[0].status == "succeeded"
    async with db.acquire() as conn:
        [ok] = await runs.stream_status(conn)
    assert (ok.last_status, ok.last_error) == ("succeeded", None)


async def test_a_recent_full_scan_is_not_repeated_before_min_rescan_minutes(db: asyncpg.Pool) -> None:
    """With min_rescan_minutes, a full-scan stream completed moments ago is skipped (exit 0); --full scans."""
    base = loadkit.settings("fake")
    source = base.sources["fake"].model_copy(update={"min_rescan_minutes": 30})
    settings = base.model_copy(update={"sources": {"fake": source}})
    first = fake(docs(2))
    first.source = source
    assert (await sync(db, first, settings=settings)).streams[0].status == "succeeded"
    again = fake(docs(2))
    again.source = source
    skipped = await sync(db, again, settings=settings)
    assert skipped.exit_code == 0
    assert skipped.streams[0].status == "skipped"
    assert "min_rescan_minutes = 30" in (skipped.streams[0].error or "")
    assert again.stats.requests == 0
    forced = fake(docs(2))
    forced.source = source
    summary = await sync(db, forced, settings=settings, full=True)
    assert summary.streams[0].status == "succeeded"
    assert forced.stats.requests == 2


async def test_a_slow_api_commits_every_page_within_flush_seconds(db: asyncpg.Pool) -> None:
    """Below batch_min_rows a page still commits once it waited flush_seconds, before the next is fetched."""
    loop = asyncio.get_running_loop()

    async def committed_before_next(n: int) -> None:
        deadline = loop.time() + 5.0
        while n and len(await shows(db)) < n * 5:  # every earlier page is in the database
            if loop.time() > deadline:
                raise AssertionError(f"page {n - 1} was not committed before page {n} was fetched")
            await asyncio.sleep(0.01)

    stream = fake(docs(4), on_page=committed_before_next)
    settings = loadkit.settings(batch_min_rows=1000, flush_seconds=0.05)
    summary = await sync(db, stream, settings=settings)
    assert summary.streams[0].status == "succeeded", summary.streams[0].error
    assert summary.streams[0].pages == 4
    assert len(await shows(db)) == 20


async def test_the_next_batch_is_transformed_while_the_previous_one_loads(
    db: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Loading overlaps transforming: page 1 is transformed while page 0's transaction is open."""
    from pipeline.load import Loader

    events: list[str] = []
    transformed_next = asyncio.Event()
    original_load = Loader.load

    async def load(self: Loader, batch: Any, **kw: Any) -> Any:
        first = batch.raw[0].source_id
        events.append(f"load {first}")
        if first == "0":
            await asyncio.wait_for(transformed_next.wait(), 5.0)
        counts = await original_load(self, batch, **kw)
        events.append(f"loaded {first}")
        return counts

    monkeypatch.setattr(Loader, "load", load)
    stream = fake(docs(3))
    original_transform = runner.transform

    def transform(*args: Any) -> Any:
        out = original_transform(*args)
        events.append(f"transform {out.raw[0].source_id}")
        if out.raw[0].source_id == "5":
            transformed_next.set()
        return out

    monkeypatch.setattr(runner, "transform", transform)
    summary = await sync(db, stream, settings=loadkit.settings(batch_rows=5))
    assert summary.streams[0].status == "succeeded", summary.streams[0].error
    assert events.index("transform 5") < events.index("loaded 0")
    assert [e for e in events if e.startswith("loaded")] == ["loaded 0", "loaded 5", "loaded 10"]
    async with db.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM loadtest.shows") == 15
