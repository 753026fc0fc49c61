"""Kitsu's staff, productions, relations, streaming links and voices against the sandbox: every record
lands with its references resolved, a re-run writes nothing, an edit updates exactly its row, a work
gone takes its credits with it (verified deletes), and an interrupted scan resumes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from pipeline.runner import run_sync
from pipeline.sandbox.kitsu_views import KitsuView, build_view
from pipeline.sandbox.server import Sandbox, start_sandbox
from pipeline.sources import build_stream, open_client
from tests.integration.test_catalog_e2e_kit import catalog_settings, stream, sync

pytestmark = pytest.mark.db

ONLY_KITSU = {"anilist": {"drop": True}, "anilist_v1": {"drop": True}}
JOINS = ("media-staff", "media-productions", "media-relationships", "streaming-links", "character-voices")
RESOURCES = ["anime", "manga", "characters", *JOINS]
TABLES = {
    "media-staff": "catalog.media_staff",
    "media-productions": "catalog.media_companies",
    "media-relationships": "catalog.media_relations",
    "streaming-links": "catalog.streaming_links",
    "character-voices": "catalog.character_voices",
}


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    async with await start_sandbox("small", services=("kitsu",)) as running:
        yield running


def settings_for(sandbox: Sandbox, **kitsu: Any) -> Any:
    return catalog_settings(sandbox, kitsu={"resources": RESOURCES, **kitsu}, **ONLY_KITSU)


def view_of(sandbox: Sandbox) -> KitsuView:
    return build_view(sandbox.ctx.need_world())


def expected_ids(view: KitsuView) -> dict[str, set[str]]:
    return {
        "catalog.media_staff": {str(s.id) for s in view.staff},
        "catalog.media_companies": {str(p.id) for p in view.productions},
        "catalog.media_relations": {str(r.id) for r in view.relations},
        "catalog.streaming_links": {str(s.id) for s in view.streaming_links},
        "catalog.character_voices": {str(v.id) for v in view.voices},
    }


async def live_ids(pool: asyncpg.Pool, table: str) -> set[str]:
    rows = await pool.fetch(f"SELECT source_id FROM {table} WHERE source = 'kitsu' AND deleted_at IS NULL")
    return {r["source_id"] for r in rows}


async def test_every_credit_lands_resolved_and_a_rerun_writes_nothing(
    sandbox: Sandbox, pool: asyncpg.Pool
) -> None:
    view = view_of(sandbox)
    settings = settings_for(sandbox)
    first = await sync(settings, pool)
    for table, ids in expected_ids(view).items():
        assert ids, f"the sandbox serves no {table}"
        assert await live_ids(pool, table) == ids, table
    # Every reference resolves: both sides of each join were loaded by some stream.
    unresolved = {
        "catalog.media_staff": "media_id IS NULL OR person_id IS NULL",
        "catalog.media_companies": "media_id IS NULL OR company_id IS NULL",
        "catalog.media_relations": "media_id IS NULL OR related_media_id IS NULL",
        "catalog.streaming_links": "media_id IS NULL",
        "catalog.character_voices": "media_character_id IS NULL OR person_id IS NULL",
        "catalog.media_characters": "media_id IS NULL OR character_id IS NULL",
    }
    for table, where in unresolved.items():
        assert await pool.fetchval(f"SELECT count(*) FROM {table} WHERE {where}") == 0, table
    people = {str(s.person.kitsu_id) for s in view.staff} | {str(v.person.kitsu_id) for v in view.voices}
    assert await live_ids(pool, "catalog.people") == people
    companies = {str(p.company.kitsu_id) for p in view.productions}
    assert await live_ids(pool, "catalog.companies") == companies

    # Values as the API shows them, in the unified vocabulary.
    staff = view.staff[0]
    row = await pool.fetchrow(
        "SELECT p.name, s.role, m.source_id AS media FROM catalog.media_staff s "
        "JOIN catalog.people p ON p.id = s.person_id JOIN catalog.media m ON m.id = s.media_id "
        "WHERE s.source_id = $1",
        str(staff.id),
    )
    assert dict(row) == {
        "name": staff.person.name,
        "role": staff.role,
        "media": f"{staff.work.kind}/{staff.work.kitsu_id}",
    }
    roles = {r["role"] for r in await pool.fetch("SELECT DISTINCT role FROM catalog.media_companies")}
    assert roles == {p.role for p in view.productions}
    relations = {
        r["relation"] for r in await pool.fetch("SELECT DISTINCT relation FROM catalog.media_relations")
    }
    assert relations == {"sequel", "prequel", "adaptation"}
    link = view.streaming_links[0]
    got = await pool.fetchrow(
        "SELECT site, url, kind, subtitles, dubs FROM catalog.streaming_links WHERE source_id = $1",
        str(link.id),
    )
    assert (got["site"], got["kind"], got["subtitles"], got["dubs"]) == (
        link.streamer[1],
        "streaming",
        link.subs,
        link.dubs,
    )
    assert got["url"].endswith(link.work.slug)
    languages = {
        r["language"] for r in await pool.fetch("SELECT DISTINCT language FROM catalog.character_voices")
    }
    assert languages == {"ja_jp", "en_us"}

    # Counts are about the listed records; the scan's seen set holds only them (no included person
    # passes for a credit with the same id).
    for resource, table in TABLES.items():
        result = stream(first, "kitsu", resource)
        assert result.inserted == len(expected_ids(view)[table]), resource
        seen = await pool.fetchval(
            "SELECT scan_seen FROM etl.checkpoints WHERE source = 'kitsu' AND resource = $1", resource
        )
        assert seen == len(expected_ids(view)[table]), resource

    again = await sync(settings, pool, full=True)
    for resource in [*JOINS, "characters"]:
        result = stream(again, "kitsu", resource)
        assert (result.inserted, result.updated, result.deleted) == (0, 0, 0), resource
        assert result.other_rows == 0, resource


async def test_an_edit_updates_its_row_and_a_deleted_work_takes_its_credits(
    sandbox: Sandbox, pool: asyncpg.Pool
) -> None:
    settings = settings_for(sandbox)
    await sync(settings, pool)
    world = sandbox.ctx.need_world()
    view = view_of(sandbox)
    credited = next(
        s
        for s in view.staff
        if s.work.kind == "anime" and any(v.appearance.work is s.work for v in view.voices)
    )
    work = credited.work
    # One edit: the work's credits become a single different role for the same person.
    world.update_work(work, {"staff": [[credited.person.index, "Sound Director"]]})
    victim = next(
        r.work
        for r in view.relations
        if r.work is not work
        and any(p.work is r.work for p in view.productions)
        and any(link.work is r.work for link in view.streaming_links)
    )
    doomed = {
        "catalog.media_staff": {str(s.id) for s in view.staff if s.work is victim},
        "catalog.media_companies": {str(p.id) for p in view.productions if p.work is victim},
        "catalog.media_relations": {str(r.id) for r in view.relations if victim in (r.work, r.other)},
        "catalog.streaming_links": {str(s.id) for s in view.streaming_links if s.work is victim},
        "catalog.character_voices": {str(v.id) for v in view.voices if v.appearance.work is victim},
        "catalog.media_characters": {str(m.id) for m in view.media_characters if m.work is victim},
    }
    world.delete_work(victim)

    changed = await sync(settings, pool, full=True)
    after = view_of(sandbox)
    for table, ids in expected_ids(after).items():
        assert await live_ids(pool, table) == ids, table
    for table, ids in doomed.items():
        if not ids:
            continue
        rows = await pool.fetch(
            f"SELECT source_id, deleted_at IS NOT NULL AS gone FROM {table} "
            "WHERE source_id = ANY($1::text[])",
            sorted(ids),
        )
        assert {r["source_id"] for r in rows if r["gone"]} == ids, table
    # The people and companies they named stay: other works credit them, and a join scan never
    # deletes what it only included.
    assert await pool.fetchval("SELECT count(*) FROM catalog.people WHERE deleted_at IS NOT NULL") == 0
    assert await pool.fetchval("SELECT count(*) FROM catalog.companies WHERE deleted_at IS NOT NULL") == 0

    staff = stream(changed, "kitsu", "media-staff")
    old_ids = {str(s.id) for s in view.staff if s.work is work}
    # slot 0 keeps its id with the new role; the work's other slots are gone
    assert staff.updated == (1 if credited.role != "Sound Director" else 0)
    assert staff.deleted == len(doomed["catalog.media_staff"]) + len(old_ids) - 1
    role = await pool.fetchval(
        "SELECT role FROM catalog.media_staff WHERE source_id = $1", str(min(int(i) for i in old_ids))
    )
    assert role == "Sound Director"
    assert stream(changed, "kitsu", "characters").deleted == len(doomed["catalog.media_characters"])


async def test_an_interrupted_credit_scan_resumes_with_the_missing_pages(
    sandbox: Sandbox, pool: asyncpg.Pool
) -> None:
    settings = catalog_settings(
        sandbox, kitsu={"resources": ["media-staff"], "max_attempts": 1, "parallel_pages": 2}, **ONLY_KITSU
    )
    sandbox.ctx.inject("kitsu", error_every=16, error_status=500, path_prefix="/api/edge/media-staff")
    broken = await run_sync(settings, pool, stream_factory=build_stream, client_factory=open_client)
    assert stream(broken, "kitsu", "media-staff").status == "failed"
    scan = await pool.fetchval(
        "SELECT scan FROM etl.checkpoints WHERE source = 'kitsu' AND resource = 'media-staff'"
    )
    committed = sum(hi - lo + 1 for lo, hi in scan["pages"])
    view = view_of(sandbox)
    total_pages = -(-len(view.staff) // 20)
    assert 0 < committed < total_pages

    sandbox.ctx.clear_faults("kitsu")
    resumed = await sync(settings, pool)
    assert stream(resumed, "kitsu", "media-staff").requests == 1 + total_pages - committed
    assert await live_ids(pool, "catalog.media_staff") == {str(s.id) for s in view.staff}
    assert await pool.fetchval(
        "SELECT scan_completed_at IS NOT NULL FROM etl.checkpoints "
        "WHERE source = 'kitsu' AND resource = 'media-staff'"
    )


async def test_nights_walk_the_join_resources_to_their_watermark(
    sandbox: Sandbox, pool: asyncpg.Pool
) -> None:
    """Join rows carry a real ``updatedAt`` (no job rewrites them): after a complete scan a night
    reads ``sort=-updatedAt`` pages until the watermark, so an edit costs a page, not a scan."""
    resources = ["anime", "manga", "mappings", "characters", "media-staff", "media-productions"]
    settings = catalog_settings(sandbox, kitsu={"resources": resources}, **ONLY_KITSU)
    first = await sync(settings, pool)
    view = view_of(sandbox)
    work = next(s.work for s in view.staff if s.work.kind == "anime" and s.work.map_mal)
    person = view.staff[-1].person
    sandbox.ctx.advance_clock(3600)
    sandbox.ctx.update_record("kitsu", "anime", str(work.kitsu_id), {"staff": [[person.index, "Producer"]]})
    sandbox.ctx.update_record("kitsu", "anime", str(work.kitsu_id), {"map_mal": False})

    night = await sync(settings, pool)
    for resource in ("mappings", "characters", "media-staff", "media-productions"):
        result = stream(night, "kitsu", resource)
        assert result.mode == "incremental", resource
        assert result.requests <= 2 < stream(first, "kitsu", resource).requests / 4, resource
    staff = stream(night, "kitsu", "media-staff")
    assert staff.updated + staff.inserted == 1  # slot 0 now credits ``person`` as Producer
    role = await pool.fetchval(
        "SELECT s.role FROM catalog.media_staff s JOIN catalog.people p ON p.id = s.person_id "
        "WHERE s.source_id = $1",
        str(min(s.id for s in view.staff if s.work is work)),
    )
    assert role == "Producer"
    # A removed mapping is not in a walk: the periodic (or a --full) scan verifies it gone.
    assert stream(night, "kitsu", "mappings").deleted == 0
    full = await sync(settings, pool, full=True)
    assert stream(full, "kitsu", "mappings").deleted == 1
    assert stream(full, "kitsu", "media-staff").deleted == len([s for s in view.staff if s.work is work]) - 1
