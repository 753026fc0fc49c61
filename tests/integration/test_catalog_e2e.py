"""Catalogue end to end: Kitsu, AniList and AniList v1 sandboxes, the real runner and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from pipeline.replay import replay
from pipeline.sandbox.kitsu_views import build_view
from pipeline.sandbox.server import Sandbox, start_sandbox
from pipeline.sandbox.world import World
from pipeline.sources import build_stream
from tests.integration.test_catalog_e2e_kit import (
    SANDBOX_OPTIONS,
    anilist_media,
    catalog_settings,
    kitsu_media,
    live_media,
    shared_works,
    stream,
    sync,
)

pytestmark = pytest.mark.db

SOURCES = ("kitsu", "anilist", "anilist_v1")
EXAMPLE_QUERY = Path(__file__).parents[2] / "sql/queries/01_works_in_kitsu_and_anilist.sql"


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    async with await start_sandbox("small", services=SOURCES, options=SANDBOX_OPTIONS) as running:
        yield running


def world_of(sandbox: Sandbox) -> World:
    return sandbox.ctx.need_world()


async def test_sync_loads_exactly_the_sandbox_and_a_resync_writes_nothing(
    sandbox: Sandbox, pool: asyncpg.Pool
) -> None:
    """Every source lands exactly the sandbox's records; an immediate second run updates no row."""
    world = world_of(sandbox)
    first = await sync(catalog_settings(sandbox), pool)
    assert await live_media(pool, "kitsu") == kitsu_media(world)
    assert await live_media(pool, "anilist") == anilist_media(world)
    assert await live_media(pool, "anilist_v1") == anilist_media(world)
    view = build_view(world)
    counts = await pool.fetchrow(
        """SELECT (SELECT count(*) FROM catalog.episodes WHERE source = 'kitsu') AS episodes,
                  (SELECT count(*) FROM catalog.genres WHERE source = 'kitsu') AS genres,
                  (SELECT count(*) FROM catalog.external_ids WHERE source = 'kitsu') AS mappings,
                  (SELECT count(*) FROM catalog.media_characters WHERE source = 'kitsu') AS roles,
                  (SELECT count(*) FROM catalog.media_genres g JOIN catalog.media m ON m.id = g.media_id
                    WHERE m.source = 'kitsu' AND g.genre_id IS NOT NULL) AS media_genres"""
    )
    assert counts["episodes"] == view.episode_total
    assert counts["genres"] == len(world.categories)
    assert counts["mappings"] == len(view.mappings)
    assert counts["roles"] == len(view.media_characters)
    assert counts["media_genres"] == sum(len(w.categories) for w in world.live() if w.kitsu_id)
    assert stream(first, "kitsu", "anime").requests > 1
    assert all(r.rejected == 0 for r in first.streams)

    second = await sync(catalog_settings(sandbox), pool)
    assert [(r.source, r.resource, r.inserted, r.updated, r.deleted) for r in second.streams] == [
        (r.source, r.resource, 0, 0, 0) for r in second.streams
    ]
    assert {stream(second, "anilist", k).mode for k in ("anime", "manga")} == {"incremental"}


async def test_changed_records_update_exactly_those_rows(sandbox: Sandbox, pool: asyncpg.Pool) -> None:
    """After the sandbox changes N works, the next run updates exactly N media rows per source."""
    settings = catalog_settings(sandbox, kitsu={"resources": ["anime", "manga"]})
    await sync(settings, pool)
    world = world_of(sandbox)
    changed = shared_works(world, 5)
    for n, work in enumerate(changed):
        world.update_work(work, {"score": 11.0 + n})
    summary = await sync(settings, pool)
    per_source = {source: sum(r.updated for r in summary.streams if r.source == source) for source in SOURCES}
    assert per_source == {source: len(changed) for source in SOURCES}
    assert stream(summary, "anilist", "anime").requests <= 2  # the nightly walk stops at the checkpoint
    scores = await pool.fetch(
        "SELECT source, source_id, average_score FROM catalog.media WHERE average_score < 20"
    )
    assert {(r["source"], float(r["average_score"])) for r in scores} == {
        (source, 11.0 + n) for source in SOURCES for n in range(len(changed))
    }


async def test_deleted_work_is_marked_by_a_full_scan_and_revived(
    sandbox: Sandbox, pool: asyncpg.Pool
) -> None:
    """A work gone from the sandbox is soft-deleted by a complete full scan and revived when it returns."""
    settings = catalog_settings(sandbox, kitsu={"resources": ["anime", "manga"]})
    await sync(settings, pool)
    world = world_of(sandbox)
    work = shared_works(world, 1)[0]
    keys = {"kitsu": f"{work.kind}/{work.kitsu_id}", "anilist": str(work.anilist_id)}
    keys["anilist_v1"] = keys["anilist"]
    world.delete_work(work)
    summary = await sync(settings, pool, full=True)
    assert sum(r.deleted for r in summary.streams if r.source == "kitsu") >= 1
    query = "SELECT deleted_at IS NOT NULL FROM catalog.media WHERE source = $1 AND source_id = $2"
    assert [await pool.fetchval(query, s, keys[s]) for s in SOURCES] == [True, True, True]
    assert await live_media(pool, "kitsu") == kitsu_media(world)
    raw = await pool.fetchval(
        "SELECT deleted_at IS NOT NULL FROM raw.records WHERE source = 'kitsu' AND source_id = $1",
        keys["kitsu"],
    )
    assert raw is True

    work.deleted = False
    world.touch()
    await sync(settings, pool, full=True)
    assert [await pool.fetchval(query, s, keys[s]) for s in SOURCES] == [False, False, False]


async def test_r18_titles_only_with_kitsu_auth(sandbox: Sandbox, pool: asyncpg.Pool) -> None:
    """Anonymous scans see no R18 work and never soft-delete the ones an authenticated scan loaded."""
    world = world_of(sandbox)
    only_kitsu = {"anilist": {"drop": True}, "anilist_v1": {"drop": True}}
    anonymous = catalog_settings(sandbox, kitsu={"auth": None, "resources": ["anime", "manga"]}, **only_kitsu)
    authed = catalog_settings(sandbox, kitsu={"resources": ["anime", "manga"]}, **only_kitsu)
    adult = kitsu_media(world) - kitsu_media(world, authed=False)
    assert adult

    await sync(anonymous, pool)
    assert await live_media(pool, "kitsu") == kitsu_media(world, authed=False)
    await sync(authed, pool)
    assert await live_media(pool, "kitsu") == kitsu_media(world)
    again = await sync(anonymous, pool, full=True)
    assert sum(r.deleted for r in again.streams) == 0
    assert await live_media(pool, "kitsu") == kitsu_media(world)
    identity = await pool.fetch("SELECT DISTINCT scan_auth FROM etl.checkpoints WHERE source = 'kitsu'")
    assert {r["scan_auth"] for r in identity} == {"anonymous"}


async def test_anilist_429_storm_is_waited_out_without_losing_a_page(
    sandbox: Sandbox, pool: asyncpg.Pool
) -> None:
    """Three 429s in a row pause the service, then the scan completes with every media."""
    settings = catalog_settings(sandbox, kitsu={"drop": True}, anilist_v1={"drop": True})
    sandbox.ctx.inject("anilist", throttle_next=3, throttle_retry_after=1.0)
    summary = await sync(settings, pool, resources=["anime"])
    anime = stream(summary, "anilist", "anime")
    assert anime.rate_limited == 3
    assert anime.retries >= 3
    world = world_of(sandbox)
    expected = {str(w.anilist_id) for w in world.live() if w.anilist_id and w.kind == "anime"}
    assert await live_media(pool, "anilist") == expected


async def test_works_view_groups_mapped_works_without_false_merges(
    sandbox: Sandbox, pool: asyncpg.Pool
) -> None:
    """catalog.works joins ≥ 95 % of the mapped works and never merges the sandbox's namesakes."""
    settings = catalog_settings(sandbox, kitsu={"resources": ["anime", "manga", "mappings"]})
    await sync(settings, pool)
    world = world_of(sandbox)
    rows = await pool.fetch("SELECT work_id, source, source_id FROM catalog.works")
    group = {(r["source"], r["source_id"]): r["work_id"] for r in rows}
    owner: dict[tuple[str, str], int] = {}
    for w in world.live():
        if w.kitsu_id:
            owner[("kitsu", f"{w.kind}/{w.kitsu_id}")] = w.index
        if w.anilist_id:
            owner[("anilist", str(w.anilist_id))] = owner[("anilist_v1", str(w.anilist_id))] = w.index
    members: dict[str, set[int]] = {}
    for key, work_id in group.items():
        members.setdefault(work_id, set()).add(owner[key])
    merged = {work_id: works for work_id, works in members.items() if len(works) > 1}
    assert merged == {}

    mapped = [
        w
        for w in world.live()
        if w.kitsu_id and w.anilist_id and (w.map_anilist or (w.map_mal and w.mal_id is not None))
    ]
    joined = [
        w
        for w in mapped
        if group[("kitsu", f"{w.kind}/{w.kitsu_id}")] == group[("anilist", str(w.anilist_id))]
    ]
    assert len(joined) / len(mapped) >= 0.95

    titles: dict[tuple[str, str], list[int]] = {}
    for w in world.live():
        titles.setdefault((w.kind, w.romaji), []).append(w.index)
    namesakes = [ids for ids in titles.values() if len(ids) > 1]
    assert namesakes
    by_index = {index: work_id for key, work_id in group.items() for index in [owner[key]]}
    for ids in namesakes:
        present = [by_index[i] for i in ids if i in by_index]
        assert len(set(present)) == len(present)

    side_by_side = await pool.fetch(EXAMPLE_QUERY.read_text(encoding="utf-8"))
    assert side_by_side
    assert all(r["kitsu_title"] and r["anilist_title"] for r in side_by_side)


async def test_replay_rebuilds_media_from_raw_without_the_apis(sandbox: Sandbox, pool: asyncpg.Pool) -> None:
    """With the media rows gone and the sandbox stopped, replay rebuilds them from raw.records."""
    settings = catalog_settings(sandbox, kitsu={"resources": ["anime", "manga", "categories"]})
    await sync(settings, pool)
    before = {source: await live_media(pool, source) for source in SOURCES}
    linked = "SELECT count(*) FROM catalog.media_genres WHERE genre_id IS NOT NULL"
    genres = await pool.fetchval(linked)
    assert genres > 0
    await pool.execute("DELETE FROM catalog.media")
    await sandbox.stop()
    summary = await replay(settings, pool, stream_factory=build_stream)
    assert all(r.status == "succeeded" for r in summary.streams)
    assert {source: await live_media(pool, source) for source in SOURCES} == before
    assert (
        await pool.fetchval("SELECT count(*) FROM catalog.media_genres WHERE genre_id IS NOT NULL") == genres
    )
