"""Replay rebuilds unified rows from raw.records with no fetching at all."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from pipeline.records import Batch
from pipeline.replay import replay
from pipeline.runner import run_sync
from tests.integration import loadkit
from tests.integration.loadkit import FakeStream, factory, item, page_doc

pytestmark = pytest.mark.db


@pytest.fixture
async def db(pool: asyncpg.Pool) -> asyncpg.Pool:
    async with pool.acquire() as conn:
        await loadkit.create_tables(conn)
    return pool


class FixedTransform(FakeStream):
    """The connector after a transformer fix: titles are now upper-case."""

    def transform(self, doc: Any) -> Batch:
        batch = loadkit.transform(doc)
        for row in batch.rows.get("loadtest.shows", []):
            row["title"] = row["title"].upper()
        return batch


async def test_replay_applies_a_transform_fix_without_fetching(db: asyncpg.Pool) -> None:
    """After a transform change, replay rewrites exactly the affected rows and fetches no page."""
    settings = loadkit.settings(batch_rows=7)
    docs = [page_doc([item(n) for n in range(p * 5, p * 5 + 5)], 15) for p in range(3)]
    await run_sync(settings, db, stream_factory=factory({"fake": FakeStream(settings.sources["fake"], docs)}))
    await db.execute("DELETE FROM loadtest.show_tags WHERE tag = 'action'")
    fixed = FixedTransform(settings.sources["fake"], docs)
    summary = await replay(settings, db, stream_factory=factory({"fake": fixed}))
    result = summary.streams[0]
    assert (summary.status, result.mode, result.records, result.updated) == ("succeeded", "replay", 15, 15)
    assert fixed.stats.requests == 0
    assert await db.fetchval("SELECT count(*) FROM loadtest.shows WHERE title = upper(title)") == 15
    assert await db.fetchval("SELECT count(*) FROM loadtest.show_tags WHERE tag = 'action'") == 15
    again = await replay(settings, db, stream_factory=factory({"fake": fixed}))
    assert (again.streams[0].updated, again.streams[0].inserted) == (0, 0)
