"""Kitsu episodes at night: ``sort=-updatedAt`` to the watermark after a complete scan, a periodic full
scan for deletes, and a full listing when the server does not honour the sort."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import pytest
from structlog.testing import capture_logs

from pipeline.http import ServiceClient
from pipeline.runner import run_sync
from pipeline.sandbox.kitsu_views import episode_count
from pipeline.sandbox.server import Sandbox, start_sandbox
from pipeline.settings import SourceSettings
from pipeline.sources import build_stream, open_client
from pipeline.sources.kitsu import newest_first
from tests.integration.test_catalog_e2e_kit import catalog_settings, stream, sync

pytestmark = pytest.mark.db

ONLY_KITSU = {"anilist": {"drop": True}, "anilist_v1": {"drop": True}}


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    async with await start_sandbox("small", services=("kitsu",)) as running:
        yield running


def settings_for(sandbox: Sandbox, **options: Any) -> Any:
    return catalog_settings(sandbox, kitsu={"resources": ["episodes"], **options}, **ONLY_KITSU)


def rewriting_sort(new: str) -> Any:
    """A client factory whose requests carry ``sort=new`` instead of ``-updatedAt``: a server that
    ignores the sort (``new = "id"``) or refuses it (an unknown attribute)."""

    @asynccontextmanager
    async def factory(source: SourceSettings) -> AsyncIterator[ServiceClient]:
        async with open_client(source) as client:
            original = client.request

            async def request(method: str, url: str, **kw: Any) -> Any:
                params = kw.get("params")
                if isinstance(params, dict) and params.get("sort") == "-updatedAt":
                    kw["params"] = {**params, "sort": new}
                return await original(method, url, **kw)

            client.request = request  # type: ignore[method-assign]
            yield client

    return factory


def episode_total(sandbox: Sandbox) -> int:
    return sum(episode_count(w) for w in sandbox.ctx.need_world().live() if w.kind == "anime" and w.kitsu_id)


def edit_one_anime(sandbox: Sandbox) -> tuple[int, int]:
    """Rename one anime with episodes through the simulator: its episode rows change and move up."""
    work = next(w for w in sandbox.ctx.need_world().live() if w.kind == "anime" and episode_count(w) >= 2)
    assert work.kitsu_id is not None
    sandbox.ctx.update_record("kitsu", "anime", str(work.kitsu_id), {"romaji": "Renamed At Night"})
    return work.kitsu_id, episode_count(work)


async def test_nightly_walks_newest_first_to_the_watermark(sandbox: Sandbox, pool: asyncpg.Pool) -> None:
    settings = settings_for(sandbox)
    full = stream(await sync(settings, pool), "kitsu", "episodes")
    assert full.mode == "full"
    assert full.records == episode_total(sandbox)
    _, changed = edit_one_anime(sandbox)
    nightly = stream(await sync(settings, pool), "kitsu", "episodes")
    assert nightly.mode == "incremental"
    assert nightly.updated == changed  # the renamed anime's episodes, nothing else rewritten
    assert nightly.requests <= 2 < full.requests / 4
    synopses = await pool.fetch(
        "SELECT synopsis FROM catalog.episodes WHERE source = 'kitsu' AND synopsis LIKE 'Renamed At Night%'"
    )
    assert len(synopses) >= changed - changed // 3 - 1  # every third episode has no synopsis
    again = stream(await sync(settings, pool), "kitsu", "episodes")
    assert (again.mode, again.updated, again.requests) == ("incremental", 0, 1)


async def test_periodic_full_scan_comes_back(sandbox: Sandbox, pool: asyncpg.Pool) -> None:
    """``episodes_full_scan_hours = 0``: every run is a full scan (deletes possible), never the walk."""
    settings = settings_for(sandbox, episodes_full_scan_hours=0)
    await sync(settings, pool)
    second = stream(await sync(settings, pool), "kitsu", "episodes")
    assert second.mode == "full"
    assert second.records == episode_total(sandbox)


@pytest.mark.parametrize(
    ("sort", "event"), [("id", "kitsu_sort_not_honoured"), ("-airdateX", "kitsu_sort_refused")]
)
async def test_sort_not_honoured_falls_back_to_the_whole_listing(
    sandbox: Sandbox, pool: asyncpg.Pool, sort: str, event: str
) -> None:
    settings = settings_for(sandbox)
    await sync(settings, pool)
    edit_one_anime(sandbox)
    with capture_logs() as logs:
        summary = await run_sync(
            settings, pool, stream_factory=build_stream, client_factory=rewriting_sort(sort)
        )
    nightly = stream(summary, "kitsu", "episodes")
    assert (nightly.status, nightly.mode) == ("succeeded", "incremental")
    assert nightly.records == episode_total(sandbox)  # the whole listing was read instead
    assert nightly.deleted == 0
    assert [e for e in logs if e["event"] == event]


def test_newest_first() -> None:
    from datetime import UTC, datetime

    t = [datetime(2024, 1, d, tzinfo=UTC) for d in (1, 2, 3)]
    assert newest_first([t[2], t[1], t[1], t[0]], None)
    assert newest_first([t[1], None, None], t[2])
    assert not newest_first([t[0], t[1]], None)  # ascending: the sort was ignored
    assert not newest_first([t[2]], t[1])  # newer than the last record of the page before
    assert not newest_first([None, t[1]], None)  # a null before a dated record
    assert newest_first([], t[0])
