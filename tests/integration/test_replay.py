"""Replay rebuilds unified rows from raw.records with no fetching at all."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from pipeline.records import Batch
from pipeline.replay import replay
from pipeline.runner import run_sync
from pipeline.transform import TRANSFORMS, ResourceTransform
from tests.integration import loadkit
from tests.integration.loadkit import FakeStream, factory, item, page_doc

pytestmark = pytest.mark.db


@pytest.fixture
async def db(pool: asyncpg.Pool) -> asyncpg.Pool:
    async with pool.acquire() as conn:
        await loadkit.create_tables(conn)
    return pool


def fixed_transform(doc: Any) -> Batch:
    """The transform after a fix: titles are now upper-case."""
    batch = loadkit.transform(doc)
    for row in batch.rows.get("loadtest.shows", []):
        row["title"] = row["title"].upper()
    return batch


async def test_replay_applies_a_transform_fix_without_fetching(
    db: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a transform change, replay rewrites exactly the affected rows and fetches no page."""
    settings = loadkit.settings(batch_rows=7)
    docs = [page_doc([item(n) for n in range(p * 5, p * 5 + 5)], 15) for p in range(3)]
    await run_sync(settings, db, stream_factory=factory({"fake": FakeStream(settings.sources["fake"], docs)}))
    await db.execute("DELETE FROM loadtest.show_tags WHERE tag = 'action'")
    fixed = FakeStream(settings.sources["fake"], docs)
    fix = ResourceTransform(fixed_transform, wrap=loadkit.page_doc)
    monkeypatch.setitem(TRANSFORMS[loadkit.KIND], loadkit.RESOURCE, fix)
    summary = await replay(settings, db, stream_factory=factory({"fake": fixed}))
    result = summary.streams[0]
    assert (summary.status, result.mode, result.records, result.updated) == ("succeeded", "replay", 15, 15)
    assert fixed.stats.requests == 0
    assert await db.fetchval("SELECT count(*) FROM loadtest.shows WHERE title = upper(title)") == 15
    assert await db.fetchval("SELECT count(*) FROM loadtest.show_tags WHERE tag = 'action'") == 15
    again = await replay(settings, db, stream_factory=factory({"fake": fixed}))
    assert (again.streams[0].updated, again.streams[0].inserted) == (0, 0)


async def test_a_failing_stream_is_reported_and_the_run_row_ends(
    db: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A transform that raises fails its stream only; the run is recorded as ended, not 'running'."""
    settings = loadkit.settings()
    docs = [page_doc([item(n) for n in range(5)], 5)]
    await run_sync(settings, db, stream_factory=factory({"fake": FakeStream(settings.sources["fake"], docs)}))

    def broken(doc: Any) -> Batch:
        raise RuntimeError("transform bug")

    monkeypatch.setitem(TRANSFORMS[loadkit.KIND], loadkit.RESOURCE, ResourceTransform(broken))
    summary = await replay(settings, db)
    result = summary.streams[0]
    assert (summary.status, result.status) == ("failed", "failed")
    assert result.error == "RuntimeError: transform bug"
    run = await db.fetchrow("SELECT status, finished_at FROM etl.runs WHERE id = $1", summary.run_id)
    assert run["status"] == "failed"
    assert run["finished_at"] is not None
    stream_run = await db.fetchrow(
        "SELECT status, error FROM etl.stream_runs WHERE run_id = $1", summary.run_id
    )
    assert (stream_run["status"], stream_run["error"]) == ("failed", "RuntimeError: transform bug")
