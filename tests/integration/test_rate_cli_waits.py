"""Bounded waits through the real command line: ``pipeline sync`` processes, exit codes, messages.

Each server below asks for a wait far beyond ``max_wait_seconds = 30``: ``Retry-After: 86400`` (the
Nekos simulator's 429 storm), an ``X-RateLimit-Reset`` epoch a day away (a bare fake server), and
the simulator's hour-long ban. The process must end within max_wait + 30 s (the subprocess is
killed and the test fails otherwise) with exit 1 and the stream ``deferred``, naming the moment it
may resume; the next process refuses without sending a request, because the pause is in the
rate group's row; once the moment has passed (the row's pause cleared, as time would), the next
one resumes and completes. A stream held by a hung run past its deadline makes ``pipeline sync``
exit 1 naming the stuck run, and ``pipeline status`` shows it.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import asyncpg
import pytest
from aiohttp import web

from pipeline.sandbox import nekos as nekos_sim
from pipeline.sandbox.server import Sandbox, start_sandbox
from tests.integration.test_bounded_waits import fake_holder

pytestmark = [pytest.mark.db, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
MAX_WAIT = 30
BOUND = MAX_WAIT + 30


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    async with await start_sandbox("small", services=("nekos",)) as running:
        yield running


def config(tmp_path: Path, base_url: str, token: str = nekos_sim.SANDBOX_TOKEN) -> Path:
    path = tmp_path / "pipeline.toml"
    path.write_text(
        f'[sources.nekos]\nkind = "nekos"\nbase_url = "{base_url}"\nresources = ["images"]\n'
        f"max_wait_seconds = {MAX_WAIT}\n"
        f'auth = {{ kind = "bearer", token = "{token}" }}\n'
    )
    return path


async def pipeline(db_url: str, path: Path, *args: str) -> tuple[int, str, float]:
    """Run ``pipeline --config PATH ARGS``; the exit code, stdout + stderr, and its wall time."""
    env = {**os.environ, "DATABASE_URL": db_url}
    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "pipeline",
        "--config",
        str(path),
        "--log-json",
        *args,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout=BOUND)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        pytest.fail(f"pipeline {' '.join(args)} still running after max_wait_seconds + 30 s = {BOUND} s")
    assert proc.returncode is not None
    return proc.returncode, out.decode(), time.monotonic() - started


def service(sandbox: Sandbox) -> nekos_sim.NekosService:
    found = sandbox.ctx.state["nekos"]
    assert isinstance(found, nekos_sim.NekosService)
    return found


async def deferred_then_refused(db_url: str, path: Path, requests: Callable[[], int], expect: str) -> None:
    """Run 1 is deferred at once (exit 1); run 2 refuses without a request (exit 1)."""
    code, out, took = await pipeline(db_url, path, "sync", "--no-progress")
    assert code == 1, out[-3000:]
    assert "deferred" in out, out[-3000:]
    assert expect in out, out[-3000:]
    assert took < BOUND
    sent = requests()
    code, out, _ = await pipeline(db_url, path, "sync", "--no-progress")
    assert code == 1, out[-3000:]
    assert "deferred" in out, out[-3000:]
    assert "paused until" in out, out[-3000:]
    assert requests() == sent  # refused from the rate group's row: nothing sent


async def resumed(db_url: str, pool: asyncpg.Pool, path: Path) -> None:
    await pool.execute("UPDATE etl.rate_groups SET paused_until = 0, hold_until = 0")  # the moment passed
    code, out, _ = await pipeline(db_url, path, "sync", "--no-progress")
    assert code == 0, out[-3000:]


async def test_retry_after_a_day(sandbox: Sandbox, db_url: str, pool: asyncpg.Pool, tmp_path: Path) -> None:
    path = config(tmp_path, sandbox.urls["nekos"])
    service(sandbox).storm(3, retry_after=86400)
    counters = sandbox.ctx.counters_for("nekos")
    await deferred_then_refused(db_url, path, lambda: counters.requests, "a wait of 86,400 s")
    sandbox.ctx.clear_faults("nekos")
    await resumed(db_url, pool, path)


async def test_a_reset_epoch_a_day_away(db_url: str, pool: asyncpg.Pool, tmp_path: Path) -> None:
    moment = int(time.time()) + 86400
    hits = 0
    healthy = False

    async def handle(request: web.Request) -> web.Response:
        nonlocal hits
        hits += 1
        if not healthy:
            return web.json_response({"code": 429}, status=429, headers={"X-RateLimit-Reset": str(moment)})
        return web.json_response(
            {"success": True, "data": [], "meta": {"pagination": {"total": 0, "limit": 25, "offset": 0}}}
        )

    app = web.Application()
    app.router.add_get("/api/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        path = config(tmp_path, f"http://127.0.0.1:{port}/api")
        stamp = time.strftime("%Y-%m-%d %H:%M", time.gmtime(moment))
        await deferred_then_refused(db_url, path, lambda: hits, stamp)
        healthy = True
        await resumed(db_url, pool, path)
    finally:
        await runner.cleanup()


async def test_a_ban(sandbox: Sandbox, db_url: str, pool: asyncpg.Pool, tmp_path: Path) -> None:
    limiter = service(sandbox).limiter
    for _ in range(12):  # this IP already broke the limit ten times: banned for an hour
        limiter.check("127.0.0.1")
    assert limiter.is_banned("127.0.0.1")
    path = config(tmp_path, sandbox.urls["nekos"])
    counters = sandbox.ctx.counters_for("nekos")
    await deferred_then_refused(db_url, path, lambda: counters.requests, "a wait of 3,")
    service(sandbox).unban()  # the hour is over
    await resumed(db_url, pool, path)


async def test_a_hung_holder_past_its_deadline_is_named(
    sandbox: Sandbox, db_url: str, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    conn, holder = await fake_holder(pool, heartbeat="now()", deadline="now() - interval '1 hour'")
    try:
        path = config(tmp_path, sandbox.urls["nekos"])
        code, out, took = await pipeline(db_url, path, "sync", "--no-progress")
        assert code == 1, out[-3000:]
        assert "stuck" in out
        assert f"run {holder} (sync) on host nightly-box pid 4242" in out, out[-3000:]
        assert took < BOUND
        code, shown, _ = await pipeline(db_url, path, "status")
        assert f"run {holder}" in shown, shown[-3000:]
    finally:
        await pool.release(conn)
