"""Records deleted, added and moved while a scan runs (sandbox + real PostgreSQL): deletes are verified.

Each scan is wrapped so the sandbox changes under it after a given page: no live record may ever
get ``deleted_at``, the records really deleted are deleted once verified, and the stream's status
says whether the scan saw everything.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import pytest

from pipeline.runner import run_sync
from pipeline.runs import RunSummary
from pipeline.sandbox.server import Sandbox, start_sandbox
from pipeline.settings import Settings, SourceSettings
from pipeline.sources import build_stream, open_client
from pipeline.streams import Page, StreamState
from tests.integration.test_catalog_e2e_kit import catalog_settings, kitsu_key, kitsu_media, live_media
from tests.integration.test_nekos_e2e import nekos_settings, service

pytestmark = pytest.mark.db


class Churned:
    """A real stream whose ``pages()`` calls ``churn`` once, after ``after`` pages were yielded."""

    def __init__(self, inner: Any, after: int, churn: Callable[[], None]) -> None:
        self._inner, self._after, self._churn = inner, after, churn

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def pages(self, state: StreamState) -> AsyncIterator[Page]:
        count = 0
        async for page in self._inner.pages(state):
            yield page
            count += 1
            if count == self._after:
                self._churn()


def churning(after: int, churn: Callable[[], None], resource: str) -> Any:
    def build(src: SourceSettings, res: str, client: Any) -> Any:
        stream = build_stream(src, res, client)
        return Churned(stream, after, churn) if res == resource else stream

    return build


async def sync(settings: Settings, pool: asyncpg.Pool, factory: Any = build_stream, **kw: Any) -> RunSummary:
    return await run_sync(settings, pool, stream_factory=factory, client_factory=open_client, **kw)


async def deleted_media(pool: asyncpg.Pool, source: str) -> set[str]:
    rows = await pool.fetch(
        "SELECT source_id FROM catalog.media WHERE source = $1 AND deleted_at IS NOT NULL", source
    )
    return {r["source_id"] for r in rows}


# -- Kitsu --------------------------------------------------------------------------------------


@pytest.fixture
async def catalog() -> AsyncIterator[Sandbox]:
    options = {"anilist_requests_per_minute": 100_000}
    async with await start_sandbox("small", services=("kitsu", "anilist_v1"), options=options) as running:
        yield running


def kitsu_only(sandbox: Sandbox, **kitsu: Any) -> Settings:
    return catalog_settings(
        sandbox,
        anilist={"drop": True},
        anilist_v1={"drop": True},
        kitsu={"resources": ["anime"], "page_size": 5, "max_in_flight": 1, "parallel_pages": 1, **kitsu},
    )


@pytest.mark.parametrize("added", [1, 0], ids=["count-stable", "count-changing"])
async def test_kitsu_churn_never_deletes_a_live_record(
    catalog: Sandbox, pool: asyncpg.Pool, added: int
) -> None:
    """A delete below the offset (plus an insert: count stable, or not) mid-scan: nothing live is lost."""
    settings = kitsu_only(catalog)
    world = catalog.ctx.need_world()
    await sync(settings, pool)
    anime = sorted(
        (w for w in world.live() if w.kind == "anime" and w.kitsu_id), key=lambda w: w.kitsu_id or 0
    )
    victims = anime[1:3]  # on page 0, already read when they vanish: everything after shifts left

    def churn() -> None:
        for work in victims:
            world.delete_work(work)
        for _ in range(added * len(victims)):
            world.add_work("anime", {})

    summary = await sync(settings, pool, churning(3, churn, "anime"), full=True)
    result = summary.streams[0]
    assert result.status == "succeeded", result.error
    assert not (await deleted_media(pool, "kitsu")) & kitsu_media(world)  # no live record deleted
    again = await sync(settings, pool, full=True)
    assert again.streams[0].status == "succeeded"
    assert await live_media(pool, "kitsu") == {k for k in kitsu_media(world) if k.startswith("anime/")}
    assert {kitsu_key(w) for w in victims} <= await deleted_media(pool, "kitsu")  # verified, then deleted


async def test_kitsu_scan_that_never_settles_is_incomplete(catalog: Sandbox, pool: asyncpg.Pool) -> None:
    """A count that changes on every pass: the stream ends incomplete, exit 1, nothing deleted, rescanned."""
    settings = kitsu_only(catalog, min_rescan_minutes=600)
    world = catalog.ctx.need_world()
    await sync(settings, pool)
    before = await live_media(pool, "kitsu")

    class Restless:
        def __init__(self, inner: Any) -> None:
            self._inner = inner

        def __getattr__(self, name: str) -> Any:
            return getattr(self._inner, name)

        async def pages(self, state: StreamState) -> AsyncIterator[Page]:
            async for page in self._inner.pages(state):
                world.add_work("anime", {})  # membership moves after every page
                yield page

    def build(src: SourceSettings, res: str, client: Any) -> Any:
        return Restless(build_stream(src, res, client))

    summary = await sync(settings, pool, build, full=True)
    assert (summary.streams[0].status, summary.exit_code) == ("incomplete", 1)
    assert "nothing deleted" in (summary.streams[0].error or "")
    assert await deleted_media(pool, "kitsu") == set()
    assert before <= await live_media(pool, "kitsu")
    checkpoint = await pool.fetchrow("SELECT * FROM etl.checkpoints WHERE source = 'kitsu'")
    assert checkpoint["scan_incomplete_at"] is not None
    rerun = await sync(settings, pool)  # no --full, min_rescan_minutes = 600: scans anyway
    assert rerun.streams[0].status == "succeeded"
    assert await live_media(pool, "kitsu") == {k for k in kitsu_media(world) if k.startswith("anime/")}


async def test_mass_delete_guard_refuses_then_allows(catalog: Sandbox, pool: asyncpg.Pool) -> None:
    """Deletes past max_delete_share apply none and say how to allow them; --allow-deletes applies them."""
    settings = kitsu_only(catalog)
    world = catalog.ctx.need_world()
    await sync(settings, pool)
    anime = [w for w in world.live() if w.kind == "anime" and w.kitsu_id]
    gone = anime[: len(anime) // 4]
    for work in gone:
        world.delete_work(work)
    refused = await sync(settings, pool, full=True)
    result = refused.streams[0]
    assert (result.status, result.deleted, refused.exit_code) == ("failed", 0, 1)
    assert f"would delete {len(gone)} of {len(anime)}" in (result.error or "")
    assert "--allow-deletes" in (result.error or "")
    assert "max_delete_share" in (result.error or "")
    assert await deleted_media(pool, "kitsu") == set()
    allowed = await sync(settings, pool, full=True, allow_deletes=True)
    assert (allowed.streams[0].status, allowed.streams[0].deleted) == ("succeeded", len(gone))
    assert await deleted_media(pool, "kitsu") == {kitsu_key(w) for w in gone}
    row = await pool.fetchrow("SELECT deleted, status FROM etl.stream_runs ORDER BY id DESC LIMIT 1")
    assert (row["deleted"], row["status"]) == (len(gone), "succeeded")


# -- AniList v1 ---------------------------------------------------------------------------------


def v1_only(sandbox: Sandbox) -> Settings:
    return catalog_settings(
        sandbox, kitsu={"drop": True}, anilist={"drop": True}, anilist_v1={"resources": ["anime"]}
    )


def v1_anime(sandbox: Sandbox) -> set[str]:
    world = sandbox.ctx.need_world()
    return {str(w.anilist_id) for w in world.live() if w.anilist_id and w.kind == "anime"}


@pytest.mark.parametrize("added", [1, 0], ids=["count-stable", "count-changing"])
async def test_v1_churn_never_deletes_a_live_record(catalog: Sandbox, pool: asyncpg.Pool, added: int) -> None:
    """v1 pages by number over sort=id: a delete on a read page shifts a record past the walk."""
    settings = v1_only(catalog)
    world = catalog.ctx.need_world()
    await sync(settings, pool)
    anime = sorted(
        (w for w in world.live() if w.kind == "anime" and w.anilist_id), key=lambda w: w.anilist_id or 0
    )
    victim = anime[0]

    def churn() -> None:
        world.delete_work(victim)
        for _ in range(added):
            world.add_work("anime", {})

    summary = await sync(settings, pool, churning(1, churn, "anime"), full=True)
    assert summary.streams[0].status == "succeeded", summary.streams[0].error
    assert not (await deleted_media(pool, "anilist_v1")) & v1_anime(catalog)
    await sync(settings, pool, full=True)
    assert await live_media(pool, "anilist_v1") == v1_anime(catalog)
    assert str(victim.anilist_id) in await deleted_media(pool, "anilist_v1")


# -- Nekos --------------------------------------------------------------------------------------


@pytest.fixture
async def nekos() -> AsyncIterator[Sandbox]:
    async with await start_sandbox("small", services=("nekos",)) as running:
        yield running


@pytest.mark.parametrize("added", [1, 0], ids=["count-stable", "count-changing"])
async def test_nekos_churn_never_deletes_a_live_record(
    nekos: Sandbox, pool: asyncpg.Pool, added: int
) -> None:
    """Images deleted and added while the unordered listing is read: only the gone ones are deleted."""
    settings = nekos_settings(nekos, unlimited=True)
    data = service(nekos).data
    await sync(settings, pool, resources=["images"])
    template = next(iter(data.images.values()))
    victim = sorted(data.images)[0]

    def churn() -> None:
        nekos.ctx.delete_record("nekos", "images", victim)
        for _ in range(added):
            nekos.ctx.add_record("nekos", "images", {"artist_id": template["artist_id"]})

    summary = await sync(settings, pool, churning(2, churn, "images"), resources=["images"])
    assert summary.streams[0].status in ("succeeded", "incomplete")
    live = await pool.fetch("SELECT source_id FROM catalog.images WHERE deleted_at IS NOT NULL")
    assert not {r["source_id"] for r in live} & set(data.images)  # nothing live deleted
    final = await sync(settings, pool, resources=["images"])
    assert final.streams[0].status == "succeeded"
    rows = await pool.fetch("SELECT source_id FROM catalog.images WHERE deleted_at IS NULL")
    assert {r["source_id"] for r in rows} == set(data.images)
    assert await pool.fetchval(
        "SELECT deleted_at IS NOT NULL FROM catalog.images WHERE source_id = $1", victim
    )
