"""Kitsu connector against the sandbox: parallel pages within the width, resumable out-of-order scans."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import pytest
from structlog.testing import capture_logs

from pipeline.http import ServiceClient
from pipeline.runner import run_sync
from pipeline.sandbox.server import Sandbox, start_sandbox
from pipeline.settings import SourceSettings
from pipeline.sources import build_stream, open_client
from tests.integration.test_catalog_e2e_kit import catalog_settings, kitsu_media, live_media, stream, sync

pytestmark = pytest.mark.db

ONLY_KITSU = {"anilist": {"drop": True}, "anilist_v1": {"drop": True}}


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    async with await start_sandbox("small", services=("kitsu",)) as running:
        yield running


async def test_pages_in_flight_never_exceed_parallel_pages(sandbox: Sandbox, pool: asyncpg.Pool) -> None:
    """With 50 ms of latency per page, exactly ``parallel_pages`` requests overlap, never more."""
    settings = catalog_settings(
        sandbox, kitsu={"resources": ["anime"], "parallel_pages": 2, "max_in_flight": 4}, **ONLY_KITSU
    )
    sandbox.ctx.inject("kitsu", latency_seconds=0.05, path_prefix="/api/edge")
    clients: list[ServiceClient] = []

    @asynccontextmanager
    async def watched(source: SourceSettings) -> AsyncIterator[ServiceClient]:
        async with open_client(source) as client:
            clients.append(client)
            yield client

    summary = await run_sync(settings, pool, stream_factory=build_stream, client_factory=watched)
    assert stream(summary, "kitsu", "anime").status == "succeeded"
    assert clients[0].peak_in_flight == 2
    world = sandbox.ctx.need_world()
    assert await live_media(pool, "kitsu") == {k for k in kitsu_media(world) if k.startswith("anime/")}


async def test_interrupted_parallel_scan_resumes_with_only_the_missing_pages(
    sandbox: Sandbox, pool: asyncpg.Pool
) -> None:
    """A scan failing mid-way keeps its committed pages; the next run fetches page 0 plus the rest only."""
    settings = catalog_settings(
        sandbox, kitsu={"resources": ["anime"], "max_attempts": 1, "parallel_pages": 4}, **ONLY_KITSU
    )
    sandbox.ctx.inject("kitsu", error_every=6, error_status=500, path_prefix="/api/edge/anime")
    broken = await run_sync(settings, pool, stream_factory=build_stream, client_factory=open_client)
    assert stream(broken, "kitsu", "anime").status == "failed"
    scan = await pool.fetchval(
        "SELECT scan FROM etl.checkpoints WHERE source = 'kitsu' AND resource = 'anime'"
    )
    committed = sum(hi - lo + 1 for lo, hi in scan["pages"])
    world = sandbox.ctx.need_world()
    total_pages = -(-sum(1 for w in world.live() if w.kind == "anime" and w.kitsu_id) // 20)
    assert 0 < committed < total_pages

    sandbox.ctx.clear_faults("kitsu")
    resumed = await sync(settings, pool)
    anime = stream(resumed, "kitsu", "anime")
    assert anime.requests == 1 + total_pages - committed
    assert await live_media(pool, "kitsu") == {k for k in kitsu_media(world) if k.startswith("anime/")}
    done = await pool.fetchrow(
        "SELECT scan_completed_at, scan_seen FROM etl.checkpoints "
        "WHERE source = 'kitsu' AND resource = 'anime'"
    )
    assert done["scan_completed_at"] is not None
    assert done["scan_seen"] == len({k for k in kitsu_media(world) if k.startswith("anime/")})


async def test_unknown_subtype_is_stored_as_unknown_and_logged_once(
    sandbox: Sandbox, pool: asyncpg.Pool
) -> None:
    """Two manga on different pages with an unmapped subtype: both stored as unknown, one warning."""
    world = sandbox.ctx.need_world()
    manga = [w for w in world.live() if w.kind == "manga" and w.kitsu_id]
    odd = [manga[0], manga[-1]]  # on the first and the last page: two batches
    for work in odd:
        world.update_work(work, {"format": "webtoon"})
    settings = catalog_settings(sandbox, kitsu={"resources": ["manga"]}, **ONLY_KITSU)
    with capture_logs() as logs:
        await sync(settings, pool)
    warnings = [e for e in logs if e["event"] == "unknown_vocabulary"]
    assert [(e["field"], e["value"]) for e in warnings] == [("kitsu.manga.subtype", "webtoon")]
    stored = await pool.fetch(
        "SELECT source_id FROM catalog.media WHERE source = 'kitsu' AND format = 'unknown'"
    )
    assert {r["source_id"] for r in stored} == {f"manga/{w.kitsu_id}" for w in odd}
