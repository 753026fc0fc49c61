"""A sixth API plugs in through its declaration, transform and table spec alone (tests/integration/
toyapi.py; no core module names it): config validation knows it, and it syncs, resumes an
interrupted scan, deletes by the two-scan rule and replays from raw.records without a request."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp import web

from pipeline.errors import ConfigError
from pipeline.replay import replay
from pipeline.runner import run_sync
from pipeline.settings import Settings, parse_settings
from pipeline.sources import build_stream, open_client
from tests.integration import toyapi

pytestmark = pytest.mark.db


@pytest.fixture
def plugged() -> Iterator[None]:
    toyapi.plug_in()
    yield
    toyapi.unplug()


@pytest.fixture
async def api(plugged: None) -> AsyncIterator[tuple[toyapi.ToyApi, str]]:
    server = toyapi.ToyApi({i: {"id": i, "name": f"item {i}", "size": i * 3} for i in range(1, 96)})
    runner = web.AppRunner(server.app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield server, f"http://127.0.0.1:{port}/api"
    finally:
        await runner.cleanup()


def settings_for(url: str, **extra: Any) -> Settings:
    body = {"kind": "toy", "base_url": url, "max_attempts": 1, **extra}
    return parse_settings({"sources": {"box": body}}, Path("toy.toml"), {})


async def sync(settings: Settings, pool: asyncpg.Pool, **kw: Any) -> Any:
    summary = await run_sync(settings, pool, stream_factory=build_stream, client_factory=open_client, **kw)
    return summary.streams[0]


async def rows(pool: asyncpg.Pool) -> dict[str, tuple[Any, ...]]:
    found = await pool.fetch(
        "SELECT source_id, name, size, content_hash, deleted_at IS NOT NULL AS gone FROM toy.items"
    )
    return {r["source_id"]: (r["name"], r["size"], bytes(r["content_hash"]), r["gone"]) for r in found}


def test_config_validation_reads_the_declaration(plugged: None) -> None:
    settings = settings_for("http://127.0.0.1:9/api")
    source = settings.sources["box"]
    assert (source.resources, source.page_size, source.max_in_flight) == (("items",), 10, 2)
    with pytest.raises(ConfigError) as bad:
        settings_for("http://127.0.0.1:9/api", page_size=80, width=0, colour="red", resources=["things"])
    message = str(bad.value)
    assert "page_size = 80: above the API's maximum 50" in message
    assert "width = 0: is below 1" in message
    assert "unknown key 'colour' for kind 'toy'" in message
    assert "unknown resource(s) ['things'] for kind 'toy'; use some of items" in message


def test_an_undeclared_kind_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"kind = 'toy': unknown kind; use one of kitsu, anilist"):
        settings_for("http://127.0.0.1:9/api")


async def test_syncs_resumes_deletes_and_replays(api: tuple[toyapi.ToyApi, str], pool: asyncpg.Pool) -> None:
    server, url = api
    await pool.execute(toyapi.DDL)
    settings = settings_for(url, width=2)

    server.fail_after = 4  # page 0 and three more answer, then the API is unwell
    broken = await sync(settings, pool)
    assert broken.status == "failed"
    committed = await pool.fetchval("SELECT count(*) FROM toy.items")
    assert 0 < committed < 95

    server.fail_after, server.requests = None, 0
    resumed = await sync(settings, pool)
    assert resumed.status == "succeeded"
    pages_done = committed // 10  # every committed page held 10 items
    assert server.requests == 1 + 10 - pages_done  # page 0 again, then only the missing pages
    first = await rows(pool)
    assert set(first) == {str(i) for i in range(1, 96)}
    assert first["7"][:2] == ("item 7", 21)

    again = await sync(settings, pool)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 95)

    del server.items[42]
    server.items[7]["size"] = 700
    missed_once = await sync(settings, pool)
    assert (missed_once.updated, missed_once.deleted) == (1, 0)  # no lookup: one miss proves nothing
    missed_twice = await sync(settings, pool)
    assert missed_twice.deleted == 1
    before = await rows(pool)
    assert before["42"][3] is True
    assert before["7"][1] == 700

    await pool.execute("TRUNCATE toy.items")
    server.requests = 0
    summary = await replay(settings, pool)
    assert summary.status == "succeeded", [(r.resource, r.error) for r in summary.streams]
    assert server.requests == 0
    after = await rows(pool)
    live = {k: v[:3] for k, v in before.items() if not v[3]}
    assert {k: v[:3] for k, v in after.items() if not v[3]} == live
