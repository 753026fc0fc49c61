"""Schema drift against the Kitsu sandbox: a new attribute and a dropped one are reported; "fail" fails."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from structlog.testing import capture_logs

from pipeline import drift
from pipeline.runner import run_sync
from pipeline.sandbox.server import Sandbox, start_sandbox, write_config
from pipeline.sources import build_stream, open_client
from tests.integration.test_catalog_e2e_kit import catalog_settings, stream, sync
from tests.integration.test_operator import cli, keep_sources

pytestmark = pytest.mark.db

ONLY_KITSU_ANIME = {"anilist": {"drop": True}, "anilist_v1": {"drop": True}}


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    async with await start_sandbox("small", services=("kitsu",)) as running:
        yield running


async def test_new_and_vanished_attributes_are_reported_once(
    sandbox: Sandbox, pool: asyncpg.Pool, db_url: str, tmp_path: Path
) -> None:
    """The first run is the baseline; the next reports the new and the dropped attribute; then quiet."""
    settings = catalog_settings(sandbox, kitsu={"resources": ["anime"]}, **ONLY_KITSU_ANIME)
    with capture_logs() as first:
        await sync(settings, pool)
    assert not [e for e in first if e["event"] == "schema_drift"]
    assert await pool.fetchval("SELECT bool_and(baseline) FROM etl.field_paths WHERE source = 'kitsu'")

    sandbox.ctx.inject("kitsu", extra_attributes={"airingSchedule": "weekly"}, drop_attributes=["ageRating"])
    with capture_logs() as second:
        await sync(settings, pool)
    changes = {(e["change"], e["path"]) for e in second if e["event"] == "schema_drift"}
    assert changes == {("new_field", "attributes.airingSchedule"), ("vanished_field", "attributes.ageRating")}
    async with pool.acquire() as conn:
        listed = await drift.new_fields(conn)
    assert [(f.source, f.resource, f.path) for f in listed] == [
        ("kitsu", "anime", "attributes.airingSchedule")
    ]
    vanished = await pool.fetchval(
        "SELECT vanished_at FROM etl.field_paths WHERE source = 'kitsu' AND path = 'attributes.ageRating'"
    )
    assert vanished is not None

    config = keep_sources(write_config(sandbox, tmp_path / "all.toml"), {"kitsu"}, tmp_path / "kitsu.toml")
    code, out, err = await cli(db_url, config, "status")
    assert code == 0, err
    assert "fields new since each stream's first run" in out
    assert "attributes.airingSchedule" in out
    code, out, err = await cli(db_url, config, "status", "--json")
    assert code == 0, err
    anime = next(s for s in json.loads(out) if (s["source"], s["resource"]) == ("kitsu", "anime"))
    assert anime["new_fields"] == ["attributes.airingSchedule"]

    with capture_logs() as third:  # same drift again: already reported, nothing new
        await sync(settings, pool)
    assert not [e for e in third if e["event"] == "schema_drift"]


async def test_on_drift_fail_fails_the_stream_with_the_fields_named(
    sandbox: Sandbox, pool: asyncpg.Pool
) -> None:
    settings = catalog_settings(
        sandbox, kitsu={"resources": ["anime"], "on_drift": "fail"}, **ONLY_KITSU_ANIME
    )
    await sync(settings, pool)
    sandbox.ctx.inject("kitsu", extra_attributes={"airingSchedule": "weekly"})
    summary = await run_sync(settings, pool, stream_factory=build_stream, client_factory=open_client)
    anime = stream(summary, "kitsu", "anime")
    assert anime.status == "failed"
    assert anime.error is not None
    assert "schema drift, 1 new field(s): anime:attributes.airingSchedule" in anime.error
    assert 'on_drift = "warn"' in anime.error
    assert summary.exit_code == 1
    loaded = await pool.fetchval(
        "SELECT count(*) FROM raw.records WHERE (payload->'attributes')::jsonb ? 'airingSchedule'"
    )
    assert loaded > 0  # the data is loaded; only the stream's verdict is failed
