"""The Zou connector against CGWire's real zou 1.0.97, with data written through gazu 1.3.1.

Each test syncs into a fresh pipeline database and compares ``production.*`` field by field with
Zou's own database (``compare.py``). Requests are counted from gunicorn's access log.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from structlog.testing import capture_logs

from pipeline.connectors import connector_spec
from pipeline.runner import run_sync
from pipeline.runs import RunSummary
from pipeline.settings import Settings, parse_settings
from pipeline.sources import build_stream, open_client
from tests.compat.zou.compare import Report, compare
from tests.compat.zou.server import SHORT_TOKEN_SECONDS, ZouServer

pytestmark = pytest.mark.compat

MODELS = connector_spec("zou").resources
EVENTS_PATH = "/data/events/last"


def settings(server: ZouServer, name: str = "main", **options: Any) -> Settings:
    body = {
        "kind": "zou",
        "base_url": server.servers[name].url,
        "resources": list(MODELS),
        "auth": {"kind": "zou_jwt", "email": server.email, "password": server.password},
        "rate": {"requests": 50, "per_seconds": 1.0},
        **options,
    }
    return parse_settings({"sources": {"zou": body}}, Path("zou-compat.toml"), {})


def with_options(config: Settings, **options: Any) -> Settings:
    """Options the config check refuses (event_limit above 1,000): what a server cap must survive."""
    source = config.sources["zou"]
    changed = source.model_copy(update={"options": {**source.options, **options}})
    return config.model_copy(update={"sources": {"zou": changed}})


async def sync(config: Settings, pool: asyncpg.Pool) -> RunSummary:
    summary = await run_sync(config, pool, stream_factory=build_stream, client_factory=open_client)
    failed = [(r.resource, r.status, r.error) for r in summary.streams if r.status != "succeeded"]
    assert not failed, failed
    return summary


async def compared(server: ZouServer, pool: asyncpg.Pool, *, check: bool = True) -> Report:
    zou = await asyncpg.connect(server.db_url())
    try:
        async with pool.acquire() as conn:
            report = await compare(conn, zou, "zou")
    finally:
        await zou.close()
    if check:
        assert_same(report)
    return report


def assert_same(report: Report) -> None:
    assert not report.mismatches, "\n".join(report.mismatches[:40])


async def test_full_sync_matches_zous_own_rows(
    zou_server: ZouServer, seeded: dict[str, Any], pool: asyncpg.Pool
) -> None:
    """A first run loads every model as Zou's database holds it; the events log is read a handful of times."""
    server = zou_server.servers["main"]
    mark = server.mark()
    started = time.perf_counter()
    await sync(settings(zou_server), pool)
    elapsed = time.perf_counter() - started
    requests = server.requests_since(mark)
    report = await compared(zou_server, pool, check=False)
    log_reads = sum(1 for _, path, _, _ in requests if path == EVENTS_PATH)
    print(
        f"\nzou compat full sync: {report.line()}; {len(requests)} requests "
        f"({log_reads} events-log) in {elapsed:.1f} s"
    )
    assert_same(report)
    assert report.rows["entities"] >= len(seeded["assets"]) + len(seeded["shots"])
    assert report.rows["tasks"] == len(seeded["tasks"])
    for resource in ("departments", "preview_files", "playlists", "milestones"):
        assert report.rows[resource] >= len(seeded[resource]) > 0, resource
    assert report.rows["entity_links"] > 8  # four cast shots (two assets each) and the show's episode links
    assert report.rows["metadata_descriptors"] == 2
    assert report.rows["schedule_items"] >= 2
    assert report.rows["project_statuses"] >= 2  # init-data's Open and Closed
    assert log_reads <= len(MODELS) + 2
    assert all(status < 400 for *_, status in requests)


async def test_incremental_round_of_every_event_kind(
    zou_server: ZouServer, seeded: dict[str, Any], pool: asyncpg.Pool
) -> None:
    """Renames, status change, (un)assignment, comment, time spent, new and deleted shots and tasks,
    cancellations (remove_asset and cancel_asset), concept folders, a department edit, a re-cast
    shot, a new milestone, a deleted playlist and a validated preview, read in events pages of 7."""
    config = settings(zou_server, event_limit=7)
    await sync(config, pool)
    round_ = zou_server.studio("round")
    canceled_by_import = seeded["assets"][-1]
    zou_server.studio("cancel", canceled_by_import)
    server = zou_server.servers["main"]
    mark = server.mark()
    with capture_logs() as logs:
        summary = await sync(config, pool)
    requests = server.requests_since(mark)
    assert {r.mode for r in summary.streams} == {"incremental"}
    report = await compared(zou_server, pool)
    pages = [query for _, path, query, _ in requests if path == EVENTS_PATH]
    print(
        f"\nzou compat incremental: {report.line()}; {len(requests)} requests, {len(pages)} events-log pages"
    )
    assert len(pages) >= 3
    assert any("cursor_event_id=" in q for q in pages)

    async def entity(source_id: str) -> asyncpg.Record:
        row = await pool.fetchrow(
            "SELECT name, kind, canceled, deleted_at FROM production.entities WHERE source_id = $1", source_id
        )
        assert row is not None, source_id
        return row

    assert (await entity(round_["renamed_asset"]))["name"] == "Character 0 renamed"
    for kept in (round_["canceled_asset"], canceled_by_import):
        row = await entity(kept)
        assert (row["canceled"], row["deleted_at"]) == (True, None)
    assert any(e["event"] == "zou_delete_event_row_kept" for e in logs)  # cancel_asset's asset:delete
    assert (await entity(round_["deleted_shot"]))["deleted_at"] is not None
    never_seen = await pool.fetchval(
        "SELECT count(*) FROM production.entities WHERE source_id = $1 AND deleted_at IS NULL",
        round_["short_lived_shot"],
    )
    assert never_seen == 0  # created and deleted between two runs: never live here
    assert (await entity(round_["new_folder"]))["kind"] == "concept_folder"
    assert (await entity(round_["deleted_folder"]))["deleted_at"] is not None
    task_gone = await pool.fetchval(
        "SELECT deleted_at IS NOT NULL FROM production.tasks WHERE source_id = $1", round_["deleted_task"]
    )
    assert task_gone
    status = await pool.fetchval(
        "SELECT s.name FROM production.tasks t JOIN production.task_statuses s ON s.id = t.task_status_id "
        "WHERE t.source_id = $1",
        round_["status_task"],
    )
    assert status == "Done"
    for table, key in (("comments", "comment"), ("time_spents", "time_spent")):
        live = await pool.fetchval(
            f"SELECT deleted_at IS NULL FROM production.{table} WHERE source_id = $1", round_[key]
        )
        assert live, table
    assert not [e for e in logs if e["event"] == "zou_events_unknown"]
    # The studio models: the re-cast show shot holds only its new link; the asset joined the episode.
    cast = await pool.fetch(
        "SELECT entity_out_source_id, nb_occurences FROM production.entity_links "
        "WHERE entity_in_source_id = $1 AND deleted_at IS NULL",
        round_["recast_shot"],
    )
    assert [(r["entity_out_source_id"], r["nb_occurences"]) for r in cast] == [(round_["recast_asset"], 3)]
    episode_links = await pool.fetchval(
        "SELECT count(*) FROM production.entity_links l JOIN production.entities e ON e.id = l.entity_in_id "
        "WHERE l.entity_out_source_id = $1 AND e.kind = 'episode' AND l.deleted_at IS NULL",
        round_["recast_asset"],
    )
    assert episode_links == 1
    for table, key, live in (
        ("milestones", "milestone", True),
        ("playlists", "deleted_playlist", False),
        ("preview_files", "validated_preview", True),
        ("departments", "department", True),
    ):
        found = await pool.fetchval(
            f"SELECT deleted_at IS NULL FROM production.{table} WHERE source_id = $1", round_[key]
        )
        assert found is live, table


async def test_a_server_capped_page_loses_no_event(
    zou_server: ZouServer, seeded: dict[str, Any], pool: asyncpg.Pool
) -> None:
    """1,191 pending events asked for 2,000 a page: zou serves 1,000, the connector reads on."""
    config = settings(zou_server)
    await sync(config, pool)
    zou = await asyncpg.connect(zou_server.db_url())
    try:
        before = {str(r["id"]) for r in await zou.fetch("SELECT id FROM api_event")}
        zou_server.studio("burst", "1191")
        new = {str(r["id"]) for r in await zou.fetch("SELECT id FROM api_event")} - before
    finally:
        await zou.close()
    assert len(new) == 1191
    server = zou_server.servers["main"]
    mark = server.mark()
    with capture_logs() as logs:
        await sync(with_options(config, event_limit=2000), pool)
    pages = [q for _, path, q, _ in server.requests_since(mark) if path == EVENTS_PATH]
    stored = {r["source_id"] for r in await pool.fetch("SELECT source_id FROM production.events")}
    report = await compared(zou_server, pool)
    print(f"\nzou compat capped page: {len(pages)} events-log requests for 1,191 events; {report.line()}")
    assert new <= stored
    assert any(e["event"] == "zou_events_page_capped" and e["served"] == 1000 for e in logs)
    assert len(pages) == 2


async def test_token_expiry_during_a_long_sync(
    zou_server: ZouServer, seeded: dict[str, Any], pool: asyncpg.Pool
) -> None:
    """2-second access tokens on a rate-limited sync: renewed by /auth/refresh-token, one login only."""
    server = zou_server.servers["short"]
    mark = server.mark()
    started = time.perf_counter()
    await sync(settings(zou_server, "short", page_size=5, rate={"requests": 12, "per_seconds": 1.0}), pool)
    elapsed = time.perf_counter() - started
    requests = server.requests_since(mark)
    logins = [s for m, p, _, s in requests if p == "/auth/login"]
    refreshes = [s for m, p, _, s in requests if p == "/auth/refresh-token"]
    report = await compared(zou_server, pool)
    print(
        f"\nzou compat token expiry: {elapsed:.1f} s, {len(requests)} requests, "
        f"{len(logins)} login, {len(refreshes)} refreshes; {report.line()}"
    )
    assert elapsed > 2 * SHORT_TOKEN_SECONDS  # the sync outlived at least two access tokens
    assert logins == [200]
    assert len(refreshes) >= 2
    assert all(s == 200 for s in refreshes)
