"""AniList v2 nested rows on real PostgreSQL: a re-fetched media replaces them, a deleted one takes
them along; against the sandbox: sync, change, delete and resume with the new tables."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pytest
from structlog.testing import capture_logs

from pipeline.load import Loader
from pipeline.runner import run_sync
from pipeline.sandbox import anilist_render
from pipeline.sandbox.server import Sandbox, start_sandbox
from pipeline.sandbox.world import Work, World
from pipeline.sources import build_stream, open_client
from pipeline.transform.anilist import transform_anime
from tests.integration.test_catalog_e2e_kit import (
    SANDBOX_OPTIONS,
    anilist_media,
    catalog_settings,
    live_media,
    stream,
    sync,
)

pytestmark = pytest.mark.db

REAL = Path(__file__).resolve().parents[1] / "fixtures" / "real" / "anilist-graphql"
QUERIES = Path(__file__).resolve().parents[2] / "sql" / "queries"
NESTED = (
    "catalog.media_characters",
    "catalog.character_voices",
    "catalog.media_staff",
    "catalog.media_companies",
    "catalog.media_relations",
    "catalog.media_tags",
    "catalog.streaming_links",
    "catalog.external_ids",
    "catalog.next_episodes",
)
ONLY_ANILIST = {"kitsu": {"drop": True}, "anilist_v1": {"drop": True}}


def recorded(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = orjson.loads((REAL / f"{name}.json").read_bytes())
    return doc


async def live(conn: asyncpg.Connection | asyncpg.Pool, table: str, source: str = "anilist") -> set[str]:
    rows = await conn.fetch(f"SELECT source_id FROM {table} WHERE source = $1 AND deleted_at IS NULL", source)
    return {r["source_id"] for r in rows}


async def test_edges_gone_from_a_refetched_media_are_soft_deleted(pool: asyncpg.Pool) -> None:
    """FMA:B fetched again without a studio, a credit, a character, a tag, a relation and a link:
    exactly those rows (and the character's two voices) are soft-deleted; a later fetch revives them."""
    full = recorded("media-type-tv")
    media = copy.deepcopy(full)
    m = media["data"]["Media"]
    m["studios"]["edges"] = [e for e in m["studios"]["edges"] if e["node"]["id"] != 17]
    m["staffPreview"]["edges"] = [e for e in m["staffPreview"]["edges"] if e["id"] != 1209]
    m["characterPreview"]["edges"] = [e for e in m["characterPreview"]["edges"] if e["node"]["id"] != 65]
    m["tags"] = [t for t in m["tags"] if t["id"] != 85]
    m["relations"]["edges"] = [e for e in m["relations"]["edges"] if e["node"]["id"] != 121]
    m["externalLinks"] = [link for link in m["externalLinks"] if link["site"] != "Hulu"]
    gone = {
        "catalog.media_companies": {"5114:17"},
        "catalog.media_staff": {"1209"},
        "catalog.media_characters": {"5114:65"},
        "catalog.character_voices": {"5114:65:95571", "5114:65:96542"},
        "catalog.media_tags": {"5114:85"},
        "catalog.media_relations": {"5114:121:alternative"},
        "catalog.streaming_links": {"5114:http://www.hulu.com/fullmetal-alchemist-brotherhood"},
    }
    async with pool.acquire() as conn:
        loader = Loader(conn, "anilist", run_id=None, owned_tables=["catalog.media"])
        await loader.load(transform_anime(full))
        before = {table: await live(conn, table) for table in NESTED}
        for table, ids in gone.items():
            assert ids <= before[table], table
        shared = {
            t: await live(conn, t) for t in ("catalog.companies", "catalog.people", "catalog.characters")
        }

        counts = await loader.load(transform_anime(media))
        assert counts.retired == sum(len(ids) for ids in gone.values())
        after = {table: await live(conn, table) for table in NESTED}
        assert {
            table: before[table] - after[table] for table in NESTED if before[table] != after[table]
        } == gone
        # companies, people and characters are shared by many media: never retired per media
        assert {t: await live(conn, t) for t in shared} == shared

        again = await loader.load(transform_anime(full))
        assert again.retired == 0
        assert {table: await live(conn, table) for table in NESTED} == before


async def test_a_schedule_that_ends_and_a_media_that_goes_retire_their_rows(pool: asyncpg.Pool) -> None:
    """No nextAiringEpisode any more soft-deletes the next episode; a deleted media takes every nested row."""
    doc = recorded("media-status-releasing")
    async with pool.acquire() as conn:
        loader = Loader(conn, "anilist", run_id=None, owned_tables=["catalog.media"])
        await loader.load(transform_anime(doc))
        assert await live(conn, "catalog.next_episodes") == {"118123"}
        ended = copy.deepcopy(doc)
        ended["data"]["Media"]["nextAiringEpisode"] = None
        await loader.load(transform_anime(ended))
        assert await live(conn, "catalog.next_episodes") == set()
        assert await live(conn, "catalog.media_characters")  # the rest stays

        await conn.execute("UPDATE catalog.media SET deleted_at = now() WHERE source = 'anilist'")
        assert {table: await live(conn, table) for table in NESTED} == {table: set() for table in NESTED}


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    async with await start_sandbox("small", services=("anilist",), options=SANDBOX_OPTIONS) as running:
        yield running


def expected_rows(world: World, works: list[Work]) -> dict[str, int]:
    """What the simulator serves for ``works`` at the default nested pages of 12 and 12."""
    studios = sum(len(anilist_render._studio_edges(w)) for w in works)
    characters = sum(min(12, len(w.characters)) for w in works)
    staff = sum(min(12, len(anilist_render._staff_edges(w, world))) for w in works)
    links = sum(len(anilist_render._external_links(w)) for w in works)
    return {
        "catalog.media_companies": studios,
        "catalog.media_characters": characters,
        "catalog.media_staff": staff,
        "catalog.streaming_links": links,
    }


async def test_resume_sync_change_and_delete_keep_nested_rows_true(
    sandbox: Sandbox, pool: asyncpg.Pool
) -> None:
    """An interrupted first scan resumes and fills every nested table as the simulator serves it; a
    re-scan writes nothing; a nightly after an edit retires the dropped character and its voices;
    a deleted work takes its nested rows along."""
    sandbox.ctx.inject("anilist", error_every=4, error_status=500)
    broken = await run_sync(
        catalog_settings(sandbox, anilist={"max_attempts": 1, "resources": ["anime"]}, **ONLY_ANILIST),
        pool,
        stream_factory=build_stream,
        client_factory=open_client,
    )
    assert stream(broken, "anilist", "anime").status == "failed"
    assert await pool.fetchval("SELECT count(*) FROM catalog.media_characters") > 0  # pages committed
    sandbox.ctx.clear_faults("anilist")
    settings = catalog_settings(sandbox, **ONLY_ANILIST)
    first = await sync(settings, pool)
    world = sandbox.ctx.need_world()
    works = [w for w in world.live() if w.anilist_id is not None]
    assert await live_media(pool, "anilist") == anilist_media(world)
    counts = {table: len(await live(pool, table)) for table in expected_rows(world, works)}
    assert counts == expected_rows(world, works)
    for table in NESTED:
        assert await live(pool, table), table
    unresolved = await pool.fetchval(
        "SELECT count(*) FROM catalog.character_voices WHERE source = 'anilist' AND person_id IS NULL"
    )
    assert unresolved == 0
    voiced = await pool.fetch((QUERIES / "14_who_voiced_whom_across_sources.sql").read_text())
    assert voiced
    assert all("anilist: " in row["voiced_by"] for row in voiced)
    studios = await pool.fetch((QUERIES / "15_studio_works_by_year.sql").read_text())
    assert studios
    assert sum(row["as_main_studio"] for row in studios) == sum(row["works"] for row in studios)

    rescan = await sync(settings, pool, full=True)
    resumed, complete = stream(first, "anilist", "anime"), stream(rescan, "anilist", "anime")
    assert resumed.records < complete.records  # the resumed scan read only the missing pages
    assert [(r.updated, r.other_rows) for r in rescan.streams] == [(0, 0), (0, 0)]

    # change: a work loses a character (with its voices); the nightly walk re-fetches it
    work = next(w for w in works if len(w.characters) >= 2 and w.kind == "anime")
    dropped = world.characters[work.characters[-1][0]]
    world.update_work(work, {"characters": work.characters[:-1]})
    appearance = f"{work.anilist_id}:{dropped.anilist_id}"
    voices = {f"{appearance}:{actor['id']}" for actor in anilist_render.voice_actors(dropped)}
    assert voices <= await live(pool, "catalog.character_voices")
    nightly = await sync(settings, pool)
    assert {r.mode for r in nightly.streams} == {"incremental"}
    assert stream(nightly, "anilist", "anime").records >= 1
    assert appearance not in await live(pool, "catalog.media_characters")
    assert not voices & await live(pool, "catalog.character_voices")

    # delete: a full scan marks the work gone, and its nested rows with it
    gone = next(w for w in works if w.kind == "anime" and anilist_render._studio_edges(w) and w is not work)
    world.delete_work(gone)
    deleted = await sync(settings, pool, full=True)
    assert stream(deleted, "anilist", "anime").deleted == 1
    for table in NESTED[2:]:
        if table == "catalog.character_voices":
            continue
        held = await pool.fetchval(
            f"SELECT count(*) FROM {table} WHERE source = 'anilist' AND media_source_id = $1 "
            "AND deleted_at IS NULL",
            str(gone.anilist_id),
        )
        assert held == 0, table


async def test_one_nested_page_is_kept_and_the_truncation_is_counted(
    sandbox: Sandbox, pool: asyncpg.Pool
) -> None:
    """At characters_per_page 2 and staff_per_page 3 each media keeps its first 2 characters (main
    cast first) and 3 credits; the run says how many media had more than one nested page."""
    nested = {"characters_per_page": 2, "staff_per_page": 3, "resources": ["anime"]}
    settings = catalog_settings(sandbox, anilist=nested, **ONLY_ANILIST)
    with capture_logs() as logs:
        await sync(settings, pool)
    world = sandbox.ctx.need_world()
    anime = [w for w in world.live() if w.anilist_id is not None and w.kind == "anime"]
    kept = await pool.fetch(
        "SELECT media_source_id, count(*) AS n FROM catalog.media_characters "
        "WHERE source = 'anilist' AND deleted_at IS NULL GROUP BY media_source_id"
    )
    assert {r["media_source_id"]: r["n"] for r in kept} == {
        str(w.anilist_id): min(2, len(w.characters)) for w in anime if w.characters
    }
    main_first = [w for w in anime if any(role == "MAIN" for _, role in w.characters)]
    roles = await pool.fetch(
        "SELECT DISTINCT media_source_id FROM catalog.media_characters "
        "WHERE source = 'anilist' AND role = 'main' AND deleted_at IS NULL"
    )
    assert {r["media_source_id"] for r in roles} == {str(w.anilist_id) for w in main_first}
    credits = await pool.fetchval("SELECT count(*) FROM catalog.media_staff WHERE source = 'anilist'")
    assert credits == sum(min(3, len(anilist_render._staff_edges(w, world))) for w in anime)
    (event,) = [e for e in logs if e["event"] == "anilist_nested_pages_truncated"]
    assert event["kept"] == {"characters": 2, "staff": 3}
    assert event["media"] == {
        "characters": sum(len(w.characters) > 2 for w in anime),
        "staff": sum(len(anilist_render._staff_edges(w, world)) > 3 for w in anime),
    }
