"""AniList GraphQL and v1 connectors against the sandbox: partitions, nightly walks, backfills, v1 pages."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from pipeline.auth import TokenAuth
from pipeline.backfill import run_backfill
from pipeline.http import ServiceClient
from pipeline.runner import run_sync
from pipeline.sandbox.server import Sandbox, start_sandbox
from pipeline.settings import SourceSettings
from pipeline.sources import build_stream, open_client
from tests.integration.test_catalog_e2e_kit import (
    SANDBOX_OPTIONS,
    anilist_media,
    catalog_settings,
    live_media,
    shared_works,
    stream,
    sync,
)

pytestmark = pytest.mark.db


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    async with await start_sandbox(
        "small", services=("anilist", "anilist_v1"), options=SANDBOX_OPTIONS
    ) as running:
        yield running


async def test_partitions_cover_undated_and_every_year(sandbox: Sandbox, pool: asyncpg.Pool) -> None:
    """Year partitions plus the undated walks load every media once, undated ones included."""
    settings = catalog_settings(sandbox, anilist_v1={"drop": True}, anilist={"partition_years": [2000, 2020]})
    summary = await sync(settings, pool)
    world = sandbox.ctx.need_world()
    assert await live_media(pool, "anilist") == anilist_media(world)
    undated = {str(w.anilist_id) for w in world.live() if w.anilist_id and w.start is None}
    assert undated
    stored = await pool.fetch(
        "SELECT source_id FROM catalog.media WHERE source = 'anilist' AND start_date IS NULL"
    )
    assert {r["source_id"] for r in stored} == undated
    checkpoint = await pool.fetchrow(
        "SELECT cursor, scan_seen FROM etl.checkpoints WHERE source = 'anilist' AND resource = 'anime'"
    )
    newest = max(int(w.modified_at) for w in world.live() if w.anilist_id and w.kind == "anime")
    assert int(checkpoint["cursor"]) == newest - 300  # the runner's lag
    assert checkpoint["scan_seen"] == stream(summary, "anilist", "anime").records


async def test_backfill_window_reloads_changes_and_leaves_the_nightly_cursor(
    sandbox: Sandbox, pool: asyncpg.Pool
) -> None:
    """A since-window backfill reloads what changed in it; the nightly checkpoint does not move."""
    settings = catalog_settings(sandbox, anilist_v1={"drop": True})
    await sync(settings, pool)
    before = await pool.fetch("SELECT resource, cursor FROM etl.checkpoints WHERE source = 'anilist'")
    world = sandbox.ctx.need_world()
    changed = shared_works(world, 3)
    for work in changed:
        world.update_work(work, {"popularity": 7})
    since = datetime.fromtimestamp(time.time(), UTC) - timedelta(hours=1)
    summary = await run_backfill(
        settings, pool, "anilist", since=since, stream_factory=build_stream, client_factory=open_client
    )
    assert sum(r.updated for r in summary.streams) == len(changed)
    assert sum(r.requests for r in summary.streams) == 2  # one page per kind: the walk stops at `since`
    after = await pool.fetch("SELECT resource, cursor FROM etl.checkpoints WHERE source = 'anilist'")
    assert sorted(map(tuple, after)) == sorted(map(tuple, before))
    nightly = await sync(settings, pool)
    assert sum(r.updated for r in nightly.streams) == 0


async def test_v1_token_expiring_between_streams_is_renewed_once(
    sandbox: Sandbox, pool: asyncpg.Pool
) -> None:
    """A client-credentials token the server expires mid-run is renewed once and the run goes on."""
    settings = catalog_settings(sandbox, anilist={"drop": True})
    clients: list[ServiceClient] = []

    def expiring(source: SourceSettings, resource: str, client: ServiceClient) -> Any:
        if resource == "manga":
            assert sandbox.ctx.expire_tokens("anilist_v1") >= 1
        clients.append(client)
        return build_stream(source, resource, client)

    summary = await run_sync(settings, pool, stream_factory=expiring, client_factory=open_client)
    assert [r.status for r in summary.streams] == ["succeeded", "succeeded"]
    assert isinstance(clients[0].auth, TokenAuth)
    assert clients[0].auth.renewals == 2
    assert await live_media(pool, "anilist_v1") == anilist_media(sandbox.ctx.need_world())


async def test_v1_series_pages_and_partial_scans_never_delete(sandbox: Sandbox, pool: asyncpg.Pool) -> None:
    """v1 full pages bring characters; a scan capped by max_pages deletes nothing."""
    plain = catalog_settings(sandbox, anilist={"drop": True}, anilist_v1={"resources": ["anime"]})
    first = await sync(plain, pool)
    world = sandbox.ctx.need_world()
    anime = {str(w.anilist_id) for w in world.live() if w.anilist_id and w.kind == "anime"}
    assert await live_media(pool, "anilist_v1") == anime
    assert stream(first, "anilist_v1", "anime").requests == len(anime) // 40 + 1

    detailed = catalog_settings(
        sandbox,
        anilist={"drop": True},
        anilist_v1={"resources": ["anime"], "series_pages": True, "max_pages": 1},
    )
    partial = await sync(detailed, pool, full=True, expect="incomplete")  # capped: not everything seen
    assert partial.exit_code == 1
    assert stream(partial, "anilist_v1", "anime").requests == 1 + 40
    assert stream(partial, "anilist_v1", "anime").deleted == 0
    assert await live_media(pool, "anilist_v1") == anime
    roles = await pool.fetchval("SELECT count(*) FROM catalog.media_characters WHERE source = 'anilist_v1'")
    assert roles > 0
