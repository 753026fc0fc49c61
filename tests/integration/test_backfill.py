"""Backfills: ledger rows, resumable progress, and the nightly checkpoint left untouched."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

from pipeline.backfill import run_backfill
from pipeline.errors import ConfigError
from pipeline.runner import run_sync
from tests.integration import loadkit
from tests.integration.loadkit import FakeStream, factory, item, page_doc

pytestmark = pytest.mark.db

SINCE = datetime(2020, 1, 1, tzinfo=UTC)


@pytest.fixture
async def db(pool: asyncpg.Pool) -> asyncpg.Pool:
    async with pool.acquire() as conn:
        await loadkit.create_tables(conn)
    return pool


def fake(pages: int, **kw: Any) -> FakeStream:
    docs = [page_doc([item(n) for n in range(p * 4, p * 4 + 4)], pages * 4) for p in range(pages)]
    return FakeStream(loadkit.settings().sources["fake"], docs, **kw)


async def backfill(pool: asyncpg.Pool, stream: FakeStream, **kw: Any) -> Any:
    return await run_backfill(loadkit.settings(), pool, stream_factory=factory({"fake": stream}), **kw)


async def test_backfill_never_moves_the_nightly_checkpoint(db: asyncpg.Pool) -> None:
    """A window backfill loads its pages but leaves etl.checkpoints exactly as the nightly run left it."""
    await db.execute(
        "INSERT INTO etl.checkpoints (source, resource, cursor, cursor_kind) "
        "VALUES ('fake', $1, '42', 'epoch')",
        loadkit.RESOURCE,
    )
    before = dict(await db.fetchrow("SELECT * FROM etl.checkpoints"))
    stream = fake(3, incremental=True, cursors=[100, 200, 300])
    summary = await backfill(db, stream, source="fake", since=SINCE)
    assert summary.status == "succeeded"
    assert summary.streams[0].mode == "backfill"
    assert stream.started_with[0][0] == "backfill"
    assert await db.fetchval("SELECT count(*) FROM loadtest.shows") == 12
    assert dict(await db.fetchrow("SELECT * FROM etl.checkpoints")) == before
    ledger = await db.fetchrow("SELECT * FROM etl.backfills")
    assert (ledger["id"], ledger["status"], ledger["since"]) == (summary.backfill_id, "done", SINCE)
    entry = ledger["progress"][loadkit.RESOURCE]
    assert (entry["done"], entry["pages"], entry["cursor"]) == (True, [[0, 2]], "300")


async def test_failed_backfill_resumes_by_id(db: asyncpg.Pool) -> None:
    """A backfill that failed mid-way resumes with --resume ID, fetching only the pages not committed."""
    first = await backfill(db, fake(4, order=[2, 0, 3, 1], fail_after=2), source="fake", full=True)
    assert first.status == "failed"
    ledger = await db.fetchrow("SELECT status, progress FROM etl.backfills")
    assert ledger["status"] == "failed"
    assert ledger["progress"][loadkit.RESOURCE]["pages"] == [[0, 0], [2, 2]]
    again = fake(4, order=[2, 0, 3, 1])
    summary = await backfill(db, again, resume_id=first.backfill_id)
    assert (summary.status, summary.backfill_id, again.stats.requests) == ("succeeded", first.backfill_id, 2)
    assert await db.fetchval("SELECT count(*) FROM loadtest.shows") == 16
    assert await db.fetchval("SELECT count(*) FROM etl.checkpoints") == 0
    with pytest.raises(ConfigError, match="already done"):
        await backfill(db, fake(4), resume_id=first.backfill_id)


async def test_backfill_needs_a_window_or_full(db: asyncpg.Pool) -> None:
    """A backfill without --since or --full is refused before anything runs."""
    with pytest.raises(ConfigError, match="--since"):
        await backfill(db, fake(1), source="fake")
    with pytest.raises(ConfigError, match="no backfill with id 99"):
        await backfill(db, fake(1), resume_id=99)


async def test_nightly_scan_in_flight_survives_a_backfill(db: asyncpg.Pool) -> None:
    """A crashed nightly scan's committed pages are still there to resume after a full backfill."""
    settings = loadkit.settings()
    crashed = fake(4, fail_after=2)
    await run_sync(settings, db, stream_factory=factory({"fake": crashed}))
    scan_before = await db.fetchval("SELECT scan FROM etl.checkpoints")
    await backfill(db, fake(4), source="fake", full=True)
    assert await db.fetchval("SELECT scan FROM etl.checkpoints") == scan_before
    resumed = fake(4)
    await run_sync(settings, db, stream_factory=factory({"fake": resumed}))
    assert resumed.stats.requests == 2
