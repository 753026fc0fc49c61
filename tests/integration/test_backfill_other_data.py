"""The reported surprise: "a full backfill against a config with other data soft-deleted 3,611 of
3,840 rows with exit 0 and 'rows changed 0' in runs".

The mechanism: a source name is the key of its rows, not the server behind it. The database held
Kitsu anime loaded from the medium sandbox (3,840 on Kitsu); the config then pointed the same source
name at a server holding other data (the small sandbox: 229 of them, all among the 3,840). A full
backfill is a complete scan of that server, so every stored record it did not see was a delete
candidate. Then (before verified deletes) the scan deleted all 3,611 without asking anything, the
229 it saw were unchanged (rows changed 0), the deletes were not counted in the run, and it exited 0.

Now: the unseen records are looked up by id (Kitsu ``filter[id]``) and 3,611 are confirmed missing
on that server, which is 94 % of the live rows, above ``max_delete_share`` (5 %): nothing is deleted,
the stream fails naming the count and the way out, the run exits 1. Run with ``--allow-deletes``
(the operator says the source really lost them), the deletes are applied and counted: in the
summary, in ``etl.stream_runs.deleted`` and in the ``deleted`` column of ``pipeline runs``.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from pipeline.backfill import run_backfill
from pipeline.sandbox.server import Sandbox, start_sandbox
from pipeline.sandbox.world import generate_world
from pipeline.sources import build_stream, open_client
from tests.integration.test_catalog_e2e_kit import catalog_settings, kitsu_media, live_media, stream, sync

pytestmark = [pytest.mark.db, pytest.mark.slow]


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    async with await start_sandbox("medium", services=("kitsu",)) as running:
        yield running


async def pipeline_runs(db_url: str, tmp_path: Path) -> str:
    """``pipeline runs`` as an operator types it."""
    config = tmp_path / "empty.toml"
    config.write_text("")
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pipeline", "--config", str(config), "runs", "--last", "5",
        env={**os.environ, "DATABASE_URL": db_url},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(child.communicate(), timeout=120)
    assert child.returncode == 0, err.decode()[-2000:]
    return out.decode()


def runs_row(table: str, run_id: int) -> dict[str, str]:
    lines = table.splitlines()
    headers = [h.strip() for h in lines[0].split("  ") if h.strip()]
    row = next(line for line in lines[2:] if line.split()[0] == str(run_id))
    # columns are separated by two or more spaces; the header names the ones we read
    cells = [c.strip() for c in row.split("  ") if c.strip()]
    return dict(zip(headers, cells, strict=False))


async def test_full_backfill_against_other_data_is_refused_then_counted(
    sandbox: Sandbox, pool: asyncpg.Pool, db_url: str, tmp_path: Path
) -> None:
    settings = catalog_settings(
        sandbox, kitsu={"resources": ["anime"], "parallel_pages": 4}, anilist={"drop": True},
        anilist_v1={"drop": True},
    )  # fmt: skip
    await sync(settings, pool)
    medium = {k for k in kitsu_media(sandbox.ctx.need_world()) if k.startswith("anime/")}
    assert await live_media(pool, "kitsu") == medium
    assert len(medium) == 3840  # the reported figure

    # The same source name now answers with other data: the small sandbox's world.
    world = sandbox.ctx.need_world()
    world.replace_with(generate_world("small", sandbox.ctx.seed, sandbox.ctx.clock))
    small = {k for k in kitsu_media(world) if k.startswith("anime/")}
    assert small < medium
    assert (len(small), len(medium - small)) == (229, 3611)  # the reported figures

    refused = await run_backfill(
        settings, pool, "kitsu", ["anime"], full=True, stream_factory=build_stream, client_factory=open_client
    )
    anime = stream(refused, "kitsu", "anime")
    assert (refused.status, refused.exit_code, anime.status, anime.deleted) == ("failed", 1, "failed", 0)
    assert anime.error is not None
    assert "would delete 3611 of 3840 live records" in anime.error
    assert "--allow-deletes" in anime.error
    assert await live_media(pool, "kitsu") == medium  # nothing deleted
    assert await pool.fetchval("SELECT count(*) FROM raw.records WHERE deleted_at IS NOT NULL") == 0
    ledger = await pool.fetchrow("SELECT status, error FROM etl.backfills WHERE id = $1", refused.backfill_id)
    assert ledger["status"] == "failed"
    shown = runs_row(await pipeline_runs(db_url, tmp_path), refused.run_id)
    assert (shown["status"], shown["failed"], shown["deleted"]) == ("failed", "1", "0")

    # The operator confirms the source really lost them: applied, and counted everywhere.
    allowed = await run_backfill(
        settings, pool, "kitsu", ["anime"], full=True, allow_deletes=True,
        stream_factory=build_stream, client_factory=open_client,
    )  # fmt: skip
    anime = stream(allowed, "kitsu", "anime")
    assert (allowed.exit_code, anime.status, anime.deleted) == (0, "succeeded", 3611)
    assert await live_media(pool, "kitsu") == small
    assert await pool.fetchval("SELECT count(*) FROM raw.records WHERE deleted_at IS NOT NULL") == 3611
    recorded = await pool.fetchval("SELECT deleted FROM etl.stream_runs WHERE id = $1", anime.stream_run_id)
    assert recorded == 3611
    shown = runs_row(await pipeline_runs(db_url, tmp_path), allowed.run_id)
    assert (shown["status"], shown["deleted"]) == ("succeeded", "3611")
