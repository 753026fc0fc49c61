"""``--max-pages N``: a smoke test loads at most N pages per stream and marks nothing done.

No scan is completed, nothing is deleted (neither unseen records nor tombstones), no checkpoint
or backfill progress moves, so the next normal run does exactly what it would have done without
the smoke test. Covered for the full-scan family (a fake scan, Kitsu against the sandbox) and the
incremental family (a fake newest-first walk, AniList's nightly walk against the sandbox).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from pipeline import api
from pipeline.backfill import run_backfill
from pipeline.errors import ConfigError
from pipeline.runner import run_sync
from pipeline.sandbox.server import Sandbox, start_sandbox
from tests.integration import loadkit
from tests.integration.loadkit import FakeStream, factory, item, page_doc
from tests.integration.test_catalog_e2e_kit import (
    SANDBOX_OPTIONS,
    catalog_settings,
    kitsu_media,
    live_media,
    stream,
    sync,
)

pytestmark = pytest.mark.db


@pytest.fixture
async def db(pool: asyncpg.Pool) -> asyncpg.Pool:
    async with pool.acquire() as conn:
        await loadkit.create_tables(conn)
    return pool


def fake(pages: int, first: int = 0, total: int | None = None, **kw: Any) -> FakeStream:
    """``pages`` pages of 4 records, ids from ``first``; ``total`` = what the API says it has."""
    n_total = total if total is not None else pages * 4
    docs = [
        page_doc([item(n) for n in range(first + p * 4, first + p * 4 + 4)], n_total) for p in range(pages)
    ]
    return FakeStream(loadkit.settings().sources["fake"], docs, **kw)


async def run(pool: asyncpg.Pool, stream: FakeStream, **kw: Any) -> Any:
    return await run_sync(loadkit.settings(), pool, stream_factory=factory({"fake": stream}), **kw)


async def checkpoint(pool: asyncpg.Pool) -> dict[str, Any] | None:
    row = await pool.fetchrow("SELECT * FROM etl.checkpoints WHERE source = 'fake'")
    return None if row is None else {k: v for k, v in dict(row).items() if k not in ("updated_at",)}


async def live_shows(pool: asyncpg.Pool) -> int:
    n: int = await pool.fetchval("SELECT count(*) FROM loadtest.shows WHERE deleted_at IS NULL")
    return n


async def test_full_scan_sample_loads_n_pages_and_marks_nothing(db: asyncpg.Pool) -> None:
    """A full scan capped at 2 of 5 pages: 8 rows loaded, status sampled, exit 0, no checkpoint at all."""
    stream = fake(5)
    summary = await run(db, stream, max_pages=2)
    r = summary.streams[0]
    assert (summary.status, summary.exit_code, r.status, r.error) == ("succeeded", 0, "sampled", None)
    assert (r.pages, r.records, stream.stats.requests) == (2, 8, 2)
    assert await live_shows(db) == 8
    assert await checkpoint(db) is None  # no scan in flight, none completed, no cursor
    assert await db.fetchval("SELECT count(*) FROM etl.scan_seen") == 0
    row = await db.fetchrow("SELECT status, pages FROM etl.stream_runs")
    assert (row["status"], row["pages"]) == ("sampled", 2)
    assert (await db.fetchrow("SELECT args FROM etl.runs"))["args"]["max_pages"] == 2

    again = fake(5)
    normal = await run(db, again)
    assert normal.streams[0].status == "succeeded"
    assert again.started_with[0] == ("full", None, [])  # the next run scans from the start
    assert again.stats.requests == 5
    done = await checkpoint(db)
    assert done is not None
    assert done["scan_completed_at"] is not None
    assert done["scan_seen"] == 20


async def test_sample_never_deletes_what_it_did_not_see(db: asyncpg.Pool) -> None:
    """After a complete scan of 20, the source serves 8: a sample sees 4 and deletes none (no lookup)."""
    await run(db, fake(5))
    completed = await checkpoint(db)
    shrunk = fake(2, total=8)
    summary = await run(db, shrunk, max_pages=1)
    r = summary.streams[0]
    assert (r.status, r.deleted, shrunk.looked_up) == ("sampled", 0, [])
    assert await live_shows(db) == 20
    assert await db.fetchval("SELECT count(*) FROM raw.records WHERE deleted_at IS NOT NULL") == 0
    assert await checkpoint(db) == {**completed}  # scan_completed_at, scan_seen, run_id: untouched


async def test_sample_resumes_nothing_of_a_scan_in_flight(db: asyncpg.Pool) -> None:
    """A scan that failed after 2 pages: the sample fetches other pages but the committed set stays."""
    broken = await run(db, fake(5, fail_after=2))
    assert broken.streams[0].status == "failed"
    before = await checkpoint(db)
    assert before is not None
    assert before["scan"]["pages"] == [[0, 1]]
    sampled = fake(5)
    await run(db, sampled, max_pages=2)
    assert sampled.stats.requests == 2
    assert await checkpoint(db) == before  # pages 2-3 were loaded but not recorded as committed
    resumed = fake(5)
    summary = await run(db, resumed)
    assert summary.streams[0].status == "succeeded"
    assert resumed.started_with[0][2] == [[0, 1]]
    assert resumed.stats.requests == 3


async def test_incremental_sample_keeps_the_watermark(db: asyncpg.Pool) -> None:
    """A newest-first walk of 4 pages capped at 2: the cursor stays where it was, the next run reads all."""
    await db.execute(
        "INSERT INTO etl.checkpoints (source, resource, cursor, cursor_kind, scan_completed_at) "
        "VALUES ('fake', $1, '50', 'epoch', now())",
        loadkit.RESOURCE,
    )
    before = await checkpoint(db)
    newest_first = [400, 300, 200, 100]  # every page carries its own cursor: the dangerous case
    sampled = fake(4, incremental=True, cursors=newest_first)
    summary = await run(db, sampled, max_pages=2)
    assert (summary.streams[0].mode, summary.streams[0].status) == ("incremental", "sampled")
    assert sampled.stats.requests == 2
    assert await checkpoint(db) == before
    normal = fake(4, incremental=True, cursors=newest_first)
    summary = await run(db, normal)
    assert normal.started_with[0][:2] == ("incremental", 50)
    assert normal.stats.requests == 4
    assert await live_shows(db) == 16
    moved = await checkpoint(db)
    assert moved is not None
    assert int(moved["cursor"]) == 400 - loadkit.settings().pipeline.cursor_lag_seconds


async def test_tombstones_of_a_sample_are_not_applied(db: asyncpg.Pool) -> None:
    """Deletes a page carries (Zou delete events) wait for the normal run that moves the cursor."""
    await run(db, fake(2))

    class Tombstones(FakeStream):
        async def pages(self, state: Any) -> AsyncIterator[Any]:
            async for page in super().pages(state):
                page.deletes = {"loadtest.shows": ["0"], loadkit.RESOURCE: ["0"]}
                yield page

    base = fake(2)
    stream = Tombstones(base.source, base.docs, incremental=True, cursors=[10, 20])
    summary = await run(db, stream, max_pages=1)
    assert (summary.streams[0].status, summary.streams[0].deleted) == ("sampled", 0)
    assert await live_shows(db) == 8


async def test_backfill_sample_saves_no_progress(db: asyncpg.Pool) -> None:
    """A full backfill capped at 1 page: loaded, ledger back to pending, --resume runs it whole."""
    settings = loadkit.settings()
    summary = await run_backfill(
        settings, db, "fake", full=True, stream_factory=factory({"fake": fake(3)}), max_pages=1
    )
    assert (summary.status, summary.streams[0].status, summary.streams[0].pages) == (
        "succeeded",
        "sampled",
        1,
    )
    ledger = await db.fetchrow("SELECT status, progress, error FROM etl.backfills")
    assert ledger["status"] == "pending"
    assert ledger["progress"] == {}
    assert f"pipeline backfill --resume {summary.backfill_id}" in ledger["error"]
    whole = fake(3)
    resumed = await run_backfill(
        settings, db, resume_id=summary.backfill_id, stream_factory=factory({"fake": whole})
    )
    assert (resumed.streams[0].status, whole.stats.requests) == ("succeeded", 3)
    assert await db.fetchval("SELECT status FROM etl.backfills") == "done"
    assert await checkpoint(db) is None  # a backfill never touches the nightly row


@pytest.mark.parametrize("bad", [0, -3])
async def test_max_pages_must_be_positive(db: asyncpg.Pool, bad: int) -> None:
    with pytest.raises(ConfigError, match="--max-pages"):
        await run(db, fake(1), max_pages=bad)
    assert await db.fetchval("SELECT count(*) FROM etl.runs") == 0


def test_cli_refuses_a_bad_max_pages(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    from pipeline.cli import main

    config = tmp_path / "c.toml"
    config.write_text("")
    assert main(["--config", str(config), "sync", "--max-pages", "0", "--log-console"]) == 2
    assert "--max-pages 0" in capsys.readouterr().err
    with pytest.raises(ConfigError):
        api.sync(
            settings=loadkit.settings(),
            max_pages=-1,
            log_level=None,
            database_url="postgresql://x@127.0.0.1:9/none",
        )


# ------------------------------------------------------------------------------ real connectors


@pytest.fixture
async def kitsu_sandbox() -> AsyncIterator[Sandbox]:
    async with await start_sandbox("small", services=("kitsu",)) as running:
        yield running


async def test_kitsu_full_scan_sample(kitsu_sandbox: Sandbox, pool: asyncpg.Pool) -> None:
    """Kitsu (parallel pages): 2 pages of 20 loaded, the scan unmarked; the next sync loads everything."""
    settings = catalog_settings(
        kitsu_sandbox, kitsu={"resources": ["anime"], "parallel_pages": 4}, anilist={"drop": True},
        anilist_v1={"drop": True},
    )  # fmt: skip
    summary = await sync(settings, pool, expect="sampled", max_pages=2)
    anime = stream(summary, "kitsu", "anime")
    assert (anime.pages, anime.records) == (2, 40)
    assert len(await live_media(pool, "kitsu")) == 40
    row = await pool.fetchrow("SELECT scan, scan_completed_at FROM etl.checkpoints WHERE source = 'kitsu'")
    assert row is None
    full = await sync(settings, pool)
    world = kitsu_sandbox.ctx.need_world()
    expected = {k for k in kitsu_media(world) if k.startswith("anime/")}
    assert await live_media(pool, "kitsu") == expected
    assert stream(full, "kitsu", "anime").inserted == len(expected) - 40


@pytest.fixture
async def anilist_sandbox() -> AsyncIterator[Sandbox]:
    async with await start_sandbox("small", services=("anilist",), options=SANDBOX_OPTIONS) as running:
        yield running


async def test_anilist_incremental_sample_keeps_the_cursor(
    anilist_sandbox: Sandbox, pool: asyncpg.Pool
) -> None:
    """AniList walks changes newest first: a 1-page sample must not move the cursor past the rest."""
    settings = catalog_settings(
        anilist_sandbox, kitsu={"drop": True}, anilist_v1={"drop": True},
        anilist={"resources": ["anime"], "page_size": 5},
    )  # fmt: skip
    await sync(settings, pool)
    before = await pool.fetchval("SELECT cursor FROM etl.checkpoints WHERE source = 'anilist'")
    world = anilist_sandbox.ctx.need_world()
    changed = [w for w in world.live() if w.anilist_id and w.kind == "anime"][:12]
    for n, work in enumerate(changed):
        world.update_work(work, {"score": 20.0 + n})
    sampled = await sync(settings, pool, expect="sampled", max_pages=1)
    anime = stream(sampled, "anilist", "anime")
    assert (anime.mode, anime.pages, anime.updated) == ("incremental", 1, 5)
    assert await pool.fetchval("SELECT cursor FROM etl.checkpoints WHERE source = 'anilist'") == before
    normal = await sync(settings, pool)
    assert stream(normal, "anilist", "anime").updated == len(changed) - 5
