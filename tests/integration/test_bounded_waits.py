"""Bounded waits, deadlines and stuck runs, end to end: Nekos sandbox, the real runner, PostgreSQL.

A server asking for a day (Retry-After: 86400), an epoch reset, or a ban ends the run at once with
``deferred`` and exit 1, keeping the committed pages; the shared pause and the ledger make the next
run refuse until the server's moment. A stream held by a hung run past its deadline is reported as
stuck (exit 1, naming the run); one held by a live run is skipped (exit 0).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from pipeline import locks, runs
from pipeline.runner import run_sync
from pipeline.runs import RunSummary
from pipeline.sandbox import nekos as nekos_sim
from pipeline.sandbox.server import Sandbox, source_settings, start_sandbox
from pipeline.settings import Settings, SourceSettings, parse_settings
from pipeline.sources import build_stream, open_client
from pipeline.streams import Page

pytestmark = pytest.mark.db
FAST = {"rate": {"requests": 50, "per_seconds": 1.0}, "max_in_flight": 1}


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    async with await start_sandbox("small", services=("nekos",)) as running:
        yield running


def service(sandbox: Sandbox) -> nekos_sim.NekosService:
    found = sandbox.ctx.state["nekos"]
    assert isinstance(found, nekos_sim.NekosService)
    return found


def settings_for(
    sandbox: Sandbox, *, unlimited: bool = True, pipeline: dict[str, Any] | None = None, **overrides: Any
) -> Settings:
    body = source_settings(sandbox)["nekos"]
    if unlimited:
        body = {**body, **FAST, "auth": {"kind": "bearer", "token": nekos_sim.UNLIMITED_TOKEN}}
    body = {**body, "max_wait_seconds": 30, **overrides}
    raw = {"sources": {"nekos": body}, "pipeline": {"batch_rows": 2000, **(pipeline or {})}}
    return parse_settings(raw, Path("bounded-waits.toml"), {})


async def sync(settings: Settings, pool: asyncpg.Pool, factory: Any = build_stream) -> RunSummary:
    return await run_sync(
        settings, pool, resources=["images"], stream_factory=factory, client_factory=open_client
    )


class After:
    """Runs ``action`` once the stream's second page is fetched (so some pages are committed)."""

    def __init__(self, inner: Any, action: Any) -> None:
        self.inner, self.action = inner, action

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def pages(self, state: Any) -> AsyncIterator[Page]:
        count = 0
        async for page in self.inner.pages(state):
            count += 1
            if count == 2:
                await self.action()
            yield page


def after(action: Any) -> Any:
    def factory(source: SourceSettings, resource: str, client: Any) -> Any:
        return After(build_stream(source, resource, client), action)

    return factory


async def committed_pages(pool: asyncpg.Pool) -> int:
    scan = await pool.fetchval(
        "SELECT scan FROM etl.checkpoints WHERE source = 'nekos' AND resource = 'images'"
    )
    return sum(hi - lo + 1 for lo, hi in (scan or {}).get("pages", ()))


async def test_retry_after_a_day_defers_at_once_and_the_next_run_refuses(
    sandbox: Sandbox, pool: asyncpg.Pool
) -> None:
    """Retry-After: 86400 ends the run within max_wait + 30 s (at once), deferred, exit 1, pages kept;
    the whole rate group stays paused, so the next run refuses without a request."""

    async def day_storm() -> None:
        service(sandbox).storm(5, retry_after=86400)

    started = time.monotonic()
    summary = await sync(settings_for(sandbox), pool, after(day_storm))
    assert time.monotonic() - started < 30 + 30
    images = summary.streams[0]
    assert images.status == "deferred"
    assert summary.exit_code == 1
    assert "86,400 s" in (images.error or "")
    assert "may resume after" in (images.error or "")
    assert images.rate_limited == 1
    assert await committed_pages(pool) >= 1
    ledger = await pool.fetch("SELECT run_id, source, retry_after FROM etl.rate_violations")
    assert [(r["run_id"], r["source"], r["retry_after"]) for r in ledger] == [
        (summary.run_id, "nekos", 86400.0)
    ]

    sandbox.ctx.clear_faults("nekos")
    sandbox.ctx.reset()
    again = await sync(settings_for(sandbox), pool)
    assert again.streams[0].status == "deferred"
    assert again.streams[0].requests == 0
    assert "paused until" in (again.streams[0].error or "")
    assert sandbox.ctx.counters_for("nekos").requests == 0

    # The server's moment passed: the next run resumes from the committed pages and completes.
    await pool.execute("UPDATE etl.rate_groups SET paused_until = 0, hold_until = 0")
    resumed = await sync(settings_for(sandbox), pool)
    assert resumed.streams[0].status == "succeeded"
    assert resumed.exit_code == 0


async def test_a_ban_defers_and_is_shared_with_the_next_run(sandbox: Sandbox, pool: asyncpg.Pool) -> None:
    """The simulator's hour-long ban (10 violations) answers with Retry-After 3600: deferred, exit 1."""
    limiter = service(sandbox).limiter
    for _ in range(12):  # this client already broke the limit ten times: it is banned for an hour
        limiter.check("127.0.0.1")
    assert limiter.is_banned("127.0.0.1")
    settings = settings_for(sandbox, unlimited=False, violation_budget=5)
    banned_at = time.monotonic()
    summary = await sync(settings, pool)
    elapsed = time.monotonic() - banned_at
    images = summary.streams[0]
    assert (images.status, summary.exit_code, images.requests) == ("deferred", 1, 1)
    asked = re.search(r"a wait of ([\d,]+) s", images.error or "")
    assert asked, images.error
    wait = int(asked.group(1).replace(",", ""))
    assert 3600 - elapsed - 1 <= wait <= 3600  # the ban's hour, less what passed since it began
    again = await sync(settings, pool)
    assert (again.streams[0].status, again.streams[0].requests) == ("deferred", 0)


async def test_a_reset_epoch_is_not_read_as_seconds(pool: asyncpg.Pool) -> None:
    """A 429 whose X-RateLimit-Reset is an epoch a day away, under the default `seconds` reading:
    deferred with the right moment (not 1.8e9 s of sleep)."""
    from aiohttp import web

    moment = int(time.time()) + 86400
    hits = 0

    async def handle(_: web.Request) -> web.Response:
        nonlocal hits
        hits += 1
        return web.json_response({"code": 429}, status=429, headers={"X-RateLimit-Reset": str(moment)})

    app = web.Application()
    app.router.add_get("/api/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        body = {
            "kind": "nekos",
            "base_url": f"http://127.0.0.1:{port}/api",
            "resources": ["images"],
            "max_wait_seconds": 30,
        }
        settings = parse_settings({"sources": {"nekos": body}}, Path("epoch.toml"), {})
        started = time.monotonic()
        summary = await sync(settings, pool)
    finally:
        await runner.cleanup()
    assert time.monotonic() - started < 30 + 30
    assert (summary.streams[0].status, summary.exit_code, hits) == ("deferred", 1, 1)
    stamp = time.strftime("%Y-%m-%d %H:%M", time.gmtime(moment))
    assert stamp in (summary.streams[0].error or "")


async def fake_holder(pool: asyncpg.Pool, *, heartbeat: str, deadline: str) -> tuple[asyncpg.Connection, int]:
    """Another run (its own connection) holding nekos/images, with the given heartbeat and deadline."""
    conn = await pool.acquire()
    assert await locks.try_lock_stream(conn, "nekos", "images")
    run_id = await conn.fetchval(
        "INSERT INTO etl.runs (command, host, pid, started_at, heartbeat_at, deadline_at) "
        f"VALUES ('sync', 'nightly-box', 4242, now() - interval '13 hours', {heartbeat}, {deadline}) "
        "RETURNING id"
    )
    await runs.hold_run_lock(conn, run_id)  # its connection is alive, as a hung process's is
    await conn.execute(
        "INSERT INTO etl.stream_runs (run_id, source, resource, mode) VALUES ($1, 'nekos', 'images', 'full')",
        run_id,
    )
    return conn, run_id


async def test_a_hung_holder_past_its_deadline_is_a_stuck_run(sandbox: Sandbox, pool: asyncpg.Pool) -> None:
    """Held by a run whose heartbeat is fresh but whose deadline passed: exit 1, the run named."""
    conn, holder = await fake_holder(pool, heartbeat="now()", deadline="now() - interval '1 hour'")
    try:
        summary = await sync(settings_for(sandbox), pool)
    finally:
        await pool.release(conn)
    images = summary.streams[0]
    assert (images.status, summary.exit_code) == ("stuck", 1)
    error = images.error or ""
    assert f"run {holder} (sync) on host nightly-box pid 4242" in error
    assert "age 13:00:0" in error
    assert "past its deadline" in error
    assert sandbox.ctx.counters_for("nekos").requests == 0
    async with pool.acquire() as other:
        shown = await runs.stuck_runs(other)  # what `pipeline status` prints above its table
    assert [r.run_id for r in shown] == [holder]
    assert "past its deadline" in shown[0].describe()


async def test_a_frozen_holder_is_stuck_and_a_live_one_is_skipped(
    sandbox: Sandbox, pool: asyncpg.Pool
) -> None:
    """No heartbeat for 10 minutes: stuck (exit 1). A fresh heartbeat within its deadline: skipped, exit 0."""
    conn, _ = await fake_holder(pool, heartbeat="now() - interval '10 minutes'", deadline="NULL")
    try:
        frozen = await sync(settings_for(sandbox), pool)
    finally:
        await locks.unlock_stream(conn, "nekos", "images")
        await pool.release(conn)
    assert (frozen.streams[0].status, frozen.exit_code) == ("stuck", 1)
    assert "no heartbeat for 0:10:0" in (frozen.streams[0].error or "")

    conn, holder = await fake_holder(pool, heartbeat="now()", deadline="now() + interval '1 hour'")
    try:
        live = await sync(settings_for(sandbox), pool)
    finally:
        await pool.release(conn)
    assert (live.streams[0].status, live.exit_code) == ("skipped", 0)
    assert f"run {holder} on host nightly-box pid 4242" in (live.streams[0].error or "")


async def test_max_stream_minutes_stops_fetching_and_keeps_pages(
    sandbox: Sandbox, pool: asyncpg.Pool
) -> None:
    """A stream past max_stream_minutes stops like a deferral: pages fetched so far are committed."""
    never = asyncio.Event()

    async def hang() -> None:  # the API stops answering after the second page
        await never.wait()

    settings = settings_for(sandbox, pipeline={"max_stream_minutes": 0.01})  # 0.6 s
    summary = await sync(settings, pool, after(hang))
    images = summary.streams[0]
    assert (images.status, summary.exit_code) == ("deferred", 1)
    assert "max_stream_minutes=0.01" in (images.error or "")
    assert await committed_pages(pool) >= 1
    assert images.pages >= 1
