"""Small fake servers on 127.0.0.1: poison records in a page, and servers whose paging never ends."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiohttp import web

from pipeline.runner import run_sync
from pipeline.runs import RunSummary
from pipeline.sandbox import nekos as nekos_sim
from pipeline.sandbox.server import source_settings, start_sandbox
from pipeline.settings import Settings, parse_settings
from pipeline.sources import build_stream, open_client

pytestmark = pytest.mark.db

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Fake:
    """One aiohttp app on a free 127.0.0.1 port; ``hits`` counts the requests it answered."""

    def __init__(self, routes: dict[str, Handler]) -> None:
        self.app = web.Application()
        self.hits = 0
        for path, handler in routes.items():
            self.app.router.add_get(path, self._counted(handler))
        self.runner = web.AppRunner(self.app)
        self.url = ""

    def _counted(self, handler: Handler) -> Handler:
        async def wrapped(request: web.Request) -> web.StreamResponse:
            self.hits += 1
            return await handler(request)

        return wrapped

    async def __aenter__(self) -> Fake:
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *_: Any) -> None:
        await self.runner.cleanup()


def settings_for(kind: str, base_url: str, resources: list[str], **extra: Any) -> Settings:
    body = {
        "kind": kind,
        "base_url": base_url,
        "resources": resources,
        "rate": {"requests": 1000, "per_seconds": 1.0},
        "max_in_flight": 1,
        **extra,
    }
    raw = {"sources": {kind: body}, "pipeline": {"max_reject_share": 0.2}}  # 2 poison of 25
    return parse_settings(raw, Path("fake.toml"), {})


async def sync(settings: Settings, pool: asyncpg.Pool) -> RunSummary:
    return await run_sync(settings, pool, stream_factory=build_stream, client_factory=open_client)


# -- poison records ----------------------------------------------------------------------------


@pytest.fixture
async def images() -> list[dict[str, Any]]:
    """25 real-looking Nekos images, fetched once from the simulator."""
    async with await start_sandbox("small", services=("nekos",)) as sandbox:
        base = source_settings(sandbox)["nekos"]["base_url"]
        headers = {"Authorization": f"Bearer {nekos_sim.UNLIMITED_TOKEN}"}
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{base}/image", params={"limit": 25}, headers=headers) as response,
        ):
            body = await response.json()
    data: list[dict[str, Any]] = body["data"]
    return data


def nested(depth: int) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = {"down": value}
    return value


async def test_poison_records_are_rejected_and_the_rest_of_the_page_loads(
    images: list[dict[str, Any]], pool: asyncpg.Pool
) -> None:
    """A NUL in one record and 300-deep JSON in another: both in etl.rejects with id and URL, 23 load."""
    page = [dict(r) for r in images]
    nul_id, deep_id = str(page[3]["id"]), str(page[7]["id"])
    page[3]["source"] = {**page[3]["source"], "name": "evil\u0000name"}
    page[7]["extra"] = nested(300)

    async def listing(request: web.Request) -> web.Response:
        offset = int(request.query.get("offset", "0"))
        chunk = page[offset : offset + int(request.query.get("limit", "25"))]
        meta = {"pagination": {"total": len(page), "count": len(chunk)}}
        return web.json_response({"success": True, "data": chunk, "meta": meta})

    async with Fake({"/api/image": listing}) as fake:
        settings = settings_for("nekos", f"{fake.url}/api", ["images"], page_size=25)
        first = await sync(settings, pool)
        second = await sync(settings, pool)  # the next run is not stuck
    for summary in (first, second):
        assert summary.streams[0].status == "succeeded", summary.streams[0].error
        rows = await pool.fetch("SELECT source_id, resource, left(error, 300) AS e FROM etl.rejects")
        assert summary.streams[0].rejected == 2, [tuple(r) for r in rows]
    loaded = await pool.fetchval("SELECT count(*) FROM catalog.images WHERE deleted_at IS NULL")
    assert loaded == 23
    assert await pool.fetchval("SELECT count(*) FROM raw.records") == 23
    rejects = await pool.fetch("SELECT * FROM etl.rejects WHERE run_id = $1 ORDER BY id", first.run_id)
    by_id = {r["source_id"]: r for r in rejects}
    assert set(by_id) == {nul_id, deep_id}
    for ident, reject in by_id.items():
        assert reject["url"].startswith(f"{fake.url}/api/image?")
        assert ident in reject["error"]
        assert "nekos/images" in reject["error"]
        assert reject["url"] in reject["error"]
        assert reject["payload"] is None  # jsonb cannot hold it ...
        assert ident in reject["payload_text"]  # ... so the payload is kept as text
    assert "NUL" in by_id[nul_id]["error"]
    assert "\\u0000" in by_id[nul_id]["payload_text"]
    assert "254" in by_id[deep_id]["error"]


# -- paging that never ends ----------------------------------------------------------------------


async def test_v1_server_ignoring_page_stops_with_a_clear_error(pool: asyncpg.Pool) -> None:
    """Every ?page answers the same 40 series: the scan stops at the second page, naming the cause."""
    series = [{"id": n, "title_romaji": f"Show {n}", "type": "TV"} for n in range(1, 41)]

    async def browse(_: web.Request) -> web.Response:
        return web.json_response(series)

    async with Fake({"/api/browse/anime": browse}) as fake:
        settings = settings_for("anilist_v1", f"{fake.url}/api", ["anime"])
        summary = await sync(settings, pool)
        hits = fake.hits
    result = summary.streams[0]
    assert (result.status, summary.exit_code) == ("failed", 1)
    assert "ignores the page parameter" in (result.error or "")
    assert hits == 2


async def test_endless_links_next_stops_within_the_page_cap(pool: asyncpg.Pool) -> None:
    """No meta.count and a links.next on every page: the walk stops at max_pages, incomplete, no deletes."""

    async def anime(request: web.Request) -> web.Response:
        offset = int(request.query.get("page[offset]", "0"))
        data = [
            {"id": str(offset + i + 1), "type": "anime", "attributes": {"canonicalTitle": f"A{offset + i}"}}
            for i in range(5)
        ]
        following = f"{fake.url}/api/edge/anime?page[limit]=5&page[offset]={offset + 5}"
        return web.json_response({"data": data, "links": {"next": following}})

    async with Fake({"/api/edge/anime": anime}) as fake:
        settings = settings_for("kitsu", f"{fake.url}/api/edge", ["anime"], page_size=5, max_pages=12)
        summary = await sync(settings, pool)
        hits = fake.hits
    result = summary.streams[0]
    assert (result.status, summary.exit_code) == ("incomplete", 1)
    assert hits == 12
    assert await pool.fetchval("SELECT count(*) FROM raw.records WHERE deleted_at IS NOT NULL") == 0


async def test_endless_links_next_repeating_itself_stops_at_once(pool: asyncpg.Pool) -> None:
    """A links.next that always serves the same records is caught by the page-content guard."""

    async def anime(request: web.Request) -> web.Response:
        offset = int(request.query.get("page[offset]", "0"))
        data = [{"id": str(i), "type": "anime", "attributes": {"canonicalTitle": f"A{i}"}} for i in range(5)]
        following = f"{fake.url}/api/edge/anime?page[limit]=5&page[offset]={offset + 5}"
        return web.json_response({"data": data, "links": {"next": following}})

    async with Fake({"/api/edge/anime": anime}) as fake:
        settings = settings_for("kitsu", f"{fake.url}/api/edge", ["anime"], page_size=5)
        summary = await sync(settings, pool)
        hits = fake.hits
    assert summary.streams[0].status == "failed"
    assert "pagination loop" in (summary.streams[0].error or "")
    assert hits == 2
