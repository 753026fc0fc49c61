"""Replay, for every connector kind: the unified tables rebuilt from raw.records alone, row for row."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from pipeline import tables
from pipeline.replay import replay
from pipeline.runner import run_sync
from pipeline.runs import RunSummary, StreamResult
from pipeline.sandbox import nekos as nekos_sim
from pipeline.sandbox import zou as zou_sim
from pipeline.sandbox.server import SERVICES, Sandbox, source_settings, start_sandbox
from pipeline.settings import Settings, parse_settings
from pipeline.sources import build_stream, main_tables, open_client

pytestmark = pytest.mark.db

FAST = {"requests": 500, "per_seconds": 1.0}
NOT_DATA = {"id", "synced_at", "run_id", "deleted_at"}  # surrogate key; when and by which run written


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    options = {"anilist_requests_per_minute": 100_000}
    async with await start_sandbox("small", services=SERVICES, options=options) as running:
        yield running


def all_sources(sandbox: Sandbox) -> Settings:
    sources: dict[str, Any] = {}
    for name, body in source_settings(sandbox).items():
        body = {**body, "rate": FAST, "max_in_flight": 4}
        if name == "nekos":
            body["auth"] = {"kind": "bearer", "token": nekos_sim.UNLIMITED_TOKEN}
        sources[name] = body
    raw = {"sources": sources, "pipeline": {"batch_rows": 2000}}
    return parse_settings(raw, Path("replay-e2e.toml"), {})


async def sync(settings: Settings, pool: asyncpg.Pool) -> RunSummary:
    summary = await run_sync(settings, pool, stream_factory=build_stream, client_factory=open_client)
    failed = [(r.source, r.resource, r.status, r.error) for r in summary.streams if r.status != "succeeded"]
    assert not failed, failed
    assert {r.source for r in summary.streams} == set(SERVICES)
    return summary


async def table_rows(conn: asyncpg.Connection, spec: tables.TableSpec) -> list[tuple[Any, ...]]:
    """Every row of a unified table, surrogate ids replaced by the natural key they point at."""
    schema, name = spec.name.split(".")
    columns = [
        r["column_name"]
        for r in await conn.fetch(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = $1 "
            "AND table_name = $2 ORDER BY ordinal_position",
            schema,
            name,
        )
    ]
    refs = {ref.column: ref for ref in spec.refs}
    if isinstance(spec, tables.LinkTable):
        refs[spec.owner.column] = spec.owner
    select = []
    for column in columns:
        if column in refs:
            ref = refs[column]
            select.append(
                f"(SELECT r.source || '/' || r.source_id FROM {ref.table} r WHERE r.id = t.{column})"
            )
        elif column not in NOT_DATA:
            select.append(f"t.{column}::text")
    if isinstance(spec, tables.LinkTable):  # the links of live owners
        live = f"(SELECT o.deleted_at IS NULL FROM {spec.owner.table} o WHERE o.id = t.{spec.owner.column})"
    else:  # live rows: replay reads the raw records not soft-deleted
        live = "t.deleted_at IS NULL"
    rows = await conn.fetch(f"SELECT {', '.join(select)} FROM {spec.name} t WHERE {live}")
    return sorted((tuple(r.values()) for r in rows), key=repr)


def unified() -> list[tables.TableSpec]:
    """The unified tables of the five kinds (other tests register their own specs)."""
    return [spec for spec in tables.registered() if spec.name.split(".")[0] in ("catalog", "production")]


async def snapshot(pool: asyncpg.Pool) -> dict[str, list[tuple[Any, ...]]]:
    async with pool.acquire() as conn:
        return {spec.name: await table_rows(conn, spec) for spec in unified()}


async def main_table_figures(
    settings: Settings, pool: asyncpg.Pool, streams: list[StreamResult], figure: str
) -> dict[tuple[str, tuple[str, ...]], tuple[int, int]]:
    """(source, main tables) → (the streams' ``figure`` summed, the live rows of those tables)."""
    summed: dict[tuple[str, tuple[str, ...]], int] = {}
    for r in streams:
        key = (r.source, main_tables(settings.sources[r.source].kind, r.resource))
        summed[key] = summed.get(key, 0) + getattr(r, figure)
    out = {}
    for (source, main), n in summed.items():
        rows = 0
        for table in main:
            sql = f"SELECT count(*) FROM {table} WHERE source = $1 AND deleted_at IS NULL"
            rows += await pool.fetchval(sql, source)
        out[(source, main)] = (n, rows)
    return out


async def check_first_counts(settings: Settings, pool: asyncpg.Pool, first: RunSummary) -> None:
    """Into empty tables, a stream's figures are rows of its main tables, all inserted, and they
    agree with the database; what includes and nested objects brought is counted apart."""
    assert [(r.source, r.resource) for r in first.streams if r.updated or r.unchanged] == []
    assert [(r.source, r.resource) for r in first.streams if not 0 < r.inserted <= r.records] == []
    found = await main_table_figures(settings, pool, first.streams, "inserted")
    assert {key: n for key, (n, _) in found.items()} == {key: rows for key, (_, rows) in found.items()}
    others = {(r.source, r.resource): r.other_rows for r in first.streams}
    assert others[("anilist", "anime")] > 0  # studios, tags, characters, links
    assert others[("kitsu", "anime")] > 0  # the categories each page includes


async def check_rescan_counts(settings: Settings, pool: asyncpg.Pool, second: RunSummary) -> None:
    """A re-scan of unchanged sources: nothing inserted or updated, every main-table row unchanged."""
    rescans = [r for r in second.streams if r.mode == "full"]
    assert {r.source for r in rescans} >= {"kitsu", "anilist_v1", "nekos"}
    assert [
        (r.source, r.resource, r.inserted, r.updated, r.unchanged, r.records)
        for r in rescans
        if r.inserted or r.updated
    ] == []
    found = await main_table_figures(settings, pool, rescans, "unchanged")
    assert {key: n for key, (n, _) in found.items()} == {key: rows for key, (_, rows) in found.items()}


async def test_replay_rebuilds_every_kind_row_for_row(sandbox: Sandbox, pool: asyncpg.Pool) -> None:
    """Sync all five sources, empty the unified tables, stop the APIs, replay: the same rows again."""
    settings = all_sources(sandbox)
    first = await sync(settings, pool)
    await check_first_counts(settings, pool, first)
    studio = sandbox.ctx.state["zou"]
    assert isinstance(studio, zou_sim.ZouService)
    task, status = sorted(studio.store.rows("tasks"))[0], sorted(studio.store.rows("task-status"))[-1]
    studio.update("tasks", task, {"task_status_id": status})
    person = sorted(studio.store.rows("persons"))[0]
    studio.add("comments", {"object_id": task, "object_type": "Task", "person_id": person, "text": "ok"})
    second = await sync(settings, pool)  # Zou reads its events log: production.events gets rows
    await check_rescan_counts(settings, pool, second)
    assert {r.mode for r in second.streams if r.source == "zou"} == {"incremental"}
    before = await snapshot(pool)
    unsynced: set[str] = set()  # AniList's media tags were the last (nested in its media)
    assert {name for name, rows in before.items() if not rows} == unsynced
    names = ", ".join(spec.name for spec in unified())
    await pool.execute(f"TRUNCATE {names} CASCADE")
    await sandbox.stop()
    requests = {name: sandbox.ctx.counters_for(name).requests for name in SERVICES}

    summary = await replay(settings, pool, stream_factory=build_stream)

    problems = [(r.source, r.resource, r.status, r.error) for r in summary.streams if r.status != "succeeded"]
    assert not problems, problems
    assert summary.status == "succeeded"
    assert {name: sandbox.ctx.counters_for(name).requests for name in SERVICES} == requests
    after = await snapshot(pool)
    for name, rows in before.items():
        assert after[name] == rows, name
    status = await pool.fetchval("SELECT status FROM etl.runs WHERE id = $1", summary.run_id)
    assert status == "succeeded"
