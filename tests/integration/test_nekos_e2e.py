"""Nekos end to end: the 1 req/s sandbox, the real runner and PostgreSQL; unstable order, 429 storms."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from pipeline.load import Loader
from pipeline.records import Batch
from pipeline.runner import run_sync
from pipeline.runs import RunSummary
from pipeline.sandbox import nekos as nekos_sim
from pipeline.sandbox.server import Sandbox, source_settings, start_sandbox
from pipeline.settings import Settings, SourceSettings, parse_settings
from pipeline.sources import build_stream, open_client
from pipeline.streams import Page

pytestmark = pytest.mark.db

TABLES = {
    "images": "catalog.images",
    "artists": "catalog.artists",
    "characters": "catalog.characters",
    "categories": "catalog.tags",
}
FAST = {"rate": {"requests": 50, "per_seconds": 1.0}, "max_in_flight": 4}


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    async with await start_sandbox("small", services=("nekos",)) as running:
        yield running


def service(sandbox: Sandbox) -> nekos_sim.NekosService:
    found = sandbox.ctx.state["nekos"]
    assert isinstance(found, nekos_sim.NekosService)
    return found


def nekos_settings(sandbox: Sandbox, *, unlimited: bool = False, **overrides: Any) -> Settings:
    body = source_settings(sandbox)["nekos"]
    if unlimited:
        body = {**body, **FAST, "auth": {"kind": "bearer", "token": nekos_sim.UNLIMITED_TOKEN}}
    body = {**body, **overrides}
    raw = {"sources": {"nekos": body}, "pipeline": {"batch_rows": 2000}}
    return parse_settings(raw, Path("nekos-e2e.toml"), {})


async def sync(settings: Settings, pool: asyncpg.Pool, **kw: Any) -> RunSummary:
    return await run_sync(settings, pool, stream_factory=build_stream, client_factory=open_client, **kw)


async def live_ids(pool: asyncpg.Pool, resource: str) -> set[str]:
    rows = await pool.fetch(
        f"SELECT source_id FROM {TABLES[resource]} WHERE source = 'nekos' AND deleted_at IS NULL"
    )
    return {r["source_id"] for r in rows}


async def assert_mirrors(pool: asyncpg.Pool, sandbox: Sandbox) -> None:
    data = service(sandbox).data
    for resource in TABLES:
        assert await live_ids(pool, resource) == set(data.table(resource)), resource


async def test_full_sync_at_one_request_per_second_sees_no_429(sandbox: Sandbox, pool: asyncpg.Pool) -> None:
    """The real 1 req/s token: every resource loads exactly, the scans complete, the server never says 429."""
    started = time.perf_counter()
    summary = await sync(nekos_settings(sandbox), pool)
    elapsed = time.perf_counter() - started
    assert {r.status for r in summary.streams} == {"succeeded"}
    await assert_mirrors(pool, sandbox)
    counters = sandbox.ctx.counters_for("nekos")
    assert counters.throttled == 0
    assert sum(r.rate_limited for r in summary.streams) == 0
    done = await pool.fetchval(
        "SELECT count(*) FROM etl.checkpoints WHERE source = 'nekos' AND scan_completed_at IS NOT NULL"
    )
    assert done == 4
    links = await pool.fetchval("SELECT count(*) FROM catalog.image_tags")
    assert links == sum(len(i["category_ids"]) for i in service(sandbox).data.images.values())
    print(f"nekos full sync: {counters.requests} requests, {counters.throttled} 429s, {elapsed:.1f} s")


async def test_unstable_order_is_reconciled_by_re_reading(sandbox: Sandbox, pool: asyncpg.Pool) -> None:
    """With rows hopping between pages on every request, re-reads find every id and deletes stay possible."""
    service(sandbox).configure(swap_probability=0.5)
    settings = nekos_settings(sandbox, unlimited=True)
    summary = await sync(settings, pool, resources=["images"])
    assert summary.streams[0].status == "succeeded"
    assert await live_ids(pool, "images") == set(service(sandbox).data.images)
    assert summary.streams[0].requests > 120 // 25 + 1  # some pages were read twice
    gone = sorted(service(sandbox).data.images)[0]
    sandbox.ctx.delete_record("nekos", "images", gone)
    summary = await sync(settings, pool, resources=["images"])
    assert await live_ids(pool, "images") == set(service(sandbox).data.images)
    raw = await pool.fetchval("SELECT deleted_at IS NOT NULL FROM raw.records WHERE source_id = $1", gone)
    assert raw  # raw agrees, so a replay keeps it deleted


async def test_unchanged_images_are_not_rewritten(sandbox: Sandbox, pool: asyncpg.Pool) -> None:
    """Signed urls and expiry change on every call, yet a second scan rewrites no image."""
    settings = nekos_settings(sandbox, unlimited=True)
    await sync(settings, pool, resources=["images"])
    summary = await sync(settings, pool, resources=["images"])
    result = summary.streams[0]
    assert (result.inserted, result.updated, result.unchanged) == (0, 0, 120)


async def test_a_short_429_storm_pauses_and_completes(sandbox: Sandbox, pool: asyncpg.Pool) -> None:
    """One 429 inside the budget pauses the service for Retry-After, then the scan completes."""
    settings = nekos_settings(sandbox, unlimited=True)
    service(sandbox).storm(1, retry_after=1.0)
    summary = await sync(settings, pool, resources=["images", "artists"])
    assert {r.status for r in summary.streams} == {"succeeded"}
    assert sum(r.rate_limited for r in summary.streams) == 1
    assert sandbox.ctx.counters_for("nekos").bans == 0
    assert await live_ids(pool, "images") == set(service(sandbox).data.images)


class StormAfter:
    """A stream that has the sandbox start a long 429 storm once its second page is fetched."""

    def __init__(self, inner: Any, sandbox: Sandbox) -> None:
        self.inner, self.sandbox = inner, sandbox

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def pages(self, state: Any) -> AsyncIterator[Page]:
        count = 0
        async for page in self.inner.pages(state):
            count += 1
            if count == 2:
                service(self.sandbox).storm(20, retry_after=1.0)
            yield page


async def test_a_long_storm_stops_cleanly_and_the_next_run_resumes(
    sandbox: Sandbox, pool: asyncpg.Pool
) -> None:
    """A storm stops the service at the violation budget, far from the ban; the next run is refused
    while the ledger's window holds the violations, and resumes once it has passed."""
    service(sandbox).configure(swap_probability=0)  # a stable order: the resumed run alone is exact
    settings = nekos_settings(sandbox, unlimited=True, max_in_flight=1)

    def factory(source: SourceSettings, resource: str, client: Any) -> Any:
        return StormAfter(build_stream(source, resource, client), sandbox)

    summary = await run_sync(
        settings, pool, resources=["images"], stream_factory=factory, client_factory=open_client
    )
    images = summary.streams[0]
    assert images.status == "stopped"
    assert images.rate_limited == 2  # the violation budget, well under the ban's 10
    assert sandbox.ctx.counters_for("nekos").bans == 0
    scan = await pool.fetchval(
        "SELECT scan FROM etl.checkpoints WHERE source = 'nekos' AND resource = 'images'"
    )
    assert scan["pages"]  # the pages committed before the storm are saved
    kept = len(await live_ids(pool, "images"))
    assert kept >= 25

    sandbox.ctx.clear_faults("nekos")
    sandbox.ctx.reset()
    # The ledger remembers both 429s for the API's rolling hour: the next run refuses the source
    # before any request, saying when it may run again.
    refused = await sync(settings, pool, resources=["images"])
    assert refused.streams[0].status == "stopped"
    assert refused.streams[0].requests == 0
    assert "may run again after" in (refused.streams[0].error or "")
    assert sandbox.ctx.counters_for("nekos").requests == 0
    # An hour later (the ledger's rows aged past the window) it resumes.
    await pool.execute("UPDATE etl.rate_violations SET at = at - interval '3601 seconds'")
    summary = await sync(settings, pool, resources=["images"])
    assert summary.streams[0].status == "succeeded"
    assert await live_ids(pool, "images") == set(service(sandbox).data.images)
    assert sandbox.ctx.counters_for("nekos").requests < 120 // 25 + 1  # committed pages are skipped


async def test_example_queries_images_per_artist_and_shared_characters(
    sandbox: Sandbox, pool: asyncpg.Pool
) -> None:
    """Images per artist match the sandbox; characters known to a catalogue source and Nekos are found."""
    await sync(nekos_settings(sandbox, unlimited=True), pool)
    data = service(sandbox).data
    rows = await pool.fetch(
        """SELECT a.name, count(*) AS images FROM catalog.images i
           JOIN catalog.artists a ON a.id = i.artist_id
           WHERE i.deleted_at IS NULL GROUP BY a.source_id, a.name"""
    )
    expected = Counter(data.artists[i["artist_id"]]["name"] for i in data.images.values() if i["artist_id"])
    assert sorted((r["name"], r["images"]) for r in rows) == sorted(expected.items())

    names = sorted({c["name"] for c in data.characters.values()})[:3]
    catalogue = [{"source_id": f"k{n}", "name": name} for n, name in enumerate(names)]
    async with pool.acquire() as conn:
        await Loader(conn, "kitsu", None).load(Batch(rows={"catalog.characters": catalogue}))
    shared = await pool.fetch(
        """SELECT DISTINCT k.name FROM catalog.characters k
           JOIN catalog.characters n ON lower(n.name) = lower(k.name) AND n.source = 'nekos'
           WHERE k.source <> 'nekos' AND k.deleted_at IS NULL AND n.deleted_at IS NULL"""
    )
    assert sorted(r["name"] for r in shared) == names
