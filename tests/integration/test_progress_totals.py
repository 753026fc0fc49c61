"""Progress bars get the API's total from the first pages (Kitsu meta.count, Nekos and Zou totals),
so a long scan shows done/total and an ETA instead of N/?; a resumed scan's bar counts what is left."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from pipeline.runner import run_sync
from pipeline.sandbox import nekos as nekos_sim
from pipeline.sandbox.server import Sandbox, source_settings, start_sandbox
from pipeline.settings import parse_settings
from pipeline.sources import build_stream, open_client

pytestmark = pytest.mark.db

SERVICES = ("kitsu", "nekos", "zou", "anilist")


class Recorder:
    """A Progress that remembers, per bar, the totals it was given and the records advanced."""

    def __init__(self) -> None:
        self.totals: dict[str, list[int | None]] = {}
        self.done: dict[str, int] = {}
        self.first_total_at: dict[str, int] = {}  # records done when the total first arrived

    def start(self, stream: str, total: int | None) -> None:
        self.totals.setdefault(stream, []).append(total)
        self.done.setdefault(stream, 0)

    def advance(self, stream: str, records: int, total: int | None = None) -> None:
        if total is not None:
            self.first_total_at.setdefault(stream, self.done.get(stream, 0))
            self.totals.setdefault(stream, []).append(total)
        self.done[stream] = self.done.get(stream, 0) + records

    def finish(self, stream: str, status: str) -> None:
        return None

    def total(self, stream: str) -> int | None:
        given = [t for t in self.totals.get(stream, []) if t is not None]
        return given[-1] if given else None


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    async with await start_sandbox(
        "small", services=SERVICES, options={"anilist_requests_per_minute": 100_000}
    ) as running:
        yield running


def settings_for(sandbox: Sandbox, **pipeline: Any) -> Any:
    sources: dict[str, Any] = {}
    for name, body in source_settings(sandbox).items():
        body = {**body, "rate": {"requests": 500, "per_seconds": 1.0}, "max_in_flight": 2}
        if name == "nekos":
            body["auth"] = {"kind": "bearer", "token": nekos_sim.UNLIMITED_TOKEN}
        sources[name] = body
    return parse_settings({"sources": sources, "pipeline": pipeline}, Path("progress.toml"), {})


async def test_bars_have_the_apis_totals_before_the_first_batch_commits(
    sandbox: Sandbox, pool: asyncpg.Pool
) -> None:
    settings = settings_for(sandbox, batch_rows=50)
    bars = Recorder()
    summary = await run_sync(
        settings, pool, stream_factory=build_stream, client_factory=open_client, progress=bars
    )
    assert summary.status == "succeeded", [(r.source, r.resource, r.error) for r in summary.streams]
    records = {f"{r.source}/{r.resource}": r.records for r in summary.streams}
    for bar in ("kitsu/anime", "kitsu/manga", "nekos/images", "nekos/artists", "zou/tasks", "zou/comments"):
        # the total is the API's count of exactly the records the scan then loaded, and it is
        # known before anything was committed (an ETA from the start)
        assert bars.total(bar) == records[bar], bar
        assert bars.first_total_at[bar] == 0, bar
        assert bars.done[bar] == records[bar], bar
    # AniList's pageInfo.total is unreliable (api-notes): its bars say N/? rather than guess
    assert bars.total("anilist/anime") is None
    assert bars.done["anilist/anime"] == records["anilist/anime"]


async def test_a_resumed_scan_shows_what_is_left(sandbox: Sandbox, pool: asyncpg.Pool) -> None:
    """Interrupted after some pages, the next run's bar total is the API's count less the records
    the scan already committed, and the bar ends full."""
    settings = settings_for(sandbox, batch_rows=20)
    only = {"sources": ["nekos"], "resources": ["images"]}

    class Stop(Exception):
        """The interruption: the stream fails after its third page, its committed pages kept."""

    seen = 0
    real_factory = build_stream

    def factory(source: Any, resource: str, client: Any) -> Any:
        stream = real_factory(source, resource, client)
        pages = stream.pages

        async def few(state: Any) -> AsyncIterator[Any]:
            nonlocal seen
            async for page in pages(state):
                seen += 1
                if seen > 3:
                    raise Stop("interrupted")
                yield page

        stream.pages = few
        return stream

    first = await run_sync(settings, pool, stream_factory=factory, client_factory=open_client, **only)
    assert first.streams[0].status == "failed"
    committed = await pool.fetchval("SELECT count(*) FROM catalog.images WHERE source = 'nekos'")
    assert committed > 0
    bars = Recorder()
    again = await run_sync(
        settings, pool, stream_factory=build_stream, client_factory=open_client, progress=bars, **only
    )
    assert again.streams[0].status == "succeeded"
    total = await pool.fetchval("SELECT count(*) FROM catalog.images WHERE source = 'nekos'")
    assert bars.total("nekos/images") == total - committed
    assert bars.done["nekos/images"] >= total - committed
