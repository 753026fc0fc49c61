"""Rate-limit use against a strict local server: share of the allowed rate used, and 429s (target 0).

The server judges like Nekos v1: a fixed window opens at the *arrival* of the first request, every
arrival above the limit inside it gets a 429 (which also restarts the window, as Nekos' Redis
``SET … EX`` does). Scenarios: 1 req/s (Nekos-like, kind defaults) and 4 req/s with 150 ms of
server latency and 4 in flight (Kitsu-like). A plain ``aiolimiter.AsyncLimiter`` client runs
against the same server as the baseline. ``BENCH_RATELIMIT_SECONDS`` sets each run's length (60).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web
from aiolimiter import AsyncLimiter

from pipeline.http import ServiceClient
from pipeline.log import configure
from pipeline.settings import KIND_DEFAULTS, SourceSettings

TARGET_SHARE = 0.95


@dataclass
class StrictServer:
    """Fixed window from the first arrival; ``limit`` per ``period``; records arrivals and 429s."""

    limit: int
    period: float
    latency: float = 0.0
    accepted: list[float] = field(default_factory=list)
    rejected: int = 0
    _window_start: float = -1e18
    _count: int = 0

    async def handle(self, request: web.Request) -> web.Response:
        now = time.monotonic()
        if now >= self._window_start + self.period:
            self._window_start, self._count = now, 0
        self._count += 1
        if self._count > self.limit:
            self.rejected += 1
            self._window_start = now  # Nekos re-sets the key's expiry on a violation
            headers = {"Retry-After": str(int(self.period)), "X-RateLimit-Reset": str(int(self.period))}
            return web.json_response({"code": 429, "success": False}, status=429, headers=headers)
        self.accepted.append(now)
        if self.latency:
            await asyncio.sleep(self.latency)
        headers = {"X-RateLimit-Limit": str(self.limit), "X-RateLimit-Remaining": "0"}
        return web.json_response({"success": True, "data": [], "meta": {}}, headers=headers)


async def serve(server: StrictServer, body: Callable[[str], Awaitable[None]]) -> None:
    """Run ``body(base_url)`` against the server on an ephemeral 127.0.0.1 port."""
    app = web.Application()
    app.router.add_get("/api/{tail:.*}", server.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        await body(f"http://127.0.0.1:{port}/api")
    finally:
        await runner.cleanup()


async def run_ours(kind: str, server: StrictServer, in_flight: int, seconds: float) -> None:
    """Our ServiceClient with the kind's defaults; workers fetch until the deadline."""

    async def body(base_url: str) -> None:
        settings = SourceSettings.model_validate(
            {
                **KIND_DEFAULTS[kind],
                "name": f"bench_{kind}",
                "kind": kind,
                "base_url": base_url,
                "resources": (),
                "rate": {"requests": server.limit, "per_seconds": server.period},
                "max_in_flight": in_flight,
                "violation_budget": 10_000,  # measure every 429 instead of stopping at the first ones
            }
        )
        deadline = time.monotonic() + seconds
        async with ServiceClient(settings) as client:

            async def worker() -> None:
                while time.monotonic() < deadline:
                    await client.get_json("items")

            async with asyncio.TaskGroup() as group:
                for _ in range(in_flight):
                    group.create_task(worker())

    await serve(server, body)


async def run_baseline(server: StrictServer, in_flight: int, seconds: float) -> None:
    """A plain ``AsyncLimiter(limit, period)`` client with a semaphore: the usual hand-rolled setup."""

    async def body(base_url: str) -> None:
        limiter = AsyncLimiter(server.limit, server.period)
        deadline = time.monotonic() + seconds
        async with aiohttp.ClientSession() as session:

            async def worker() -> None:
                while time.monotonic() < deadline:
                    async with limiter, session.get(base_url + "/items") as resp:
                        await resp.read()
                        if resp.status == 429:
                            continue  # a naive client just carries on at the same pace

            async with asyncio.TaskGroup() as group:
                for _ in range(in_flight):
                    group.create_task(worker())

    await serve(server, body)


def share_used(server: StrictServer, seconds: float) -> float:
    """Accepted rate over the allowed rate: the lower of the sustained (first→last) and whole-run rates."""
    allowed = server.limit / server.period
    arrivals = server.accepted
    if len(arrivals) < 2 or arrivals[-1] <= arrivals[0]:
        return len(arrivals) / (seconds * allowed)
    sustained = (len(arrivals) - 1) / (arrivals[-1] - arrivals[0])
    return min(sustained, len(arrivals) / seconds) / allowed


def rows_for(name: str, server: StrictServer, seconds: float, note: str) -> list[dict[str, Any]]:
    share = share_used(server, seconds)
    detail = f"{len(server.accepted)} accepted in {seconds:.0f} s; {note}"
    return [
        {
            "benchmark": name,
            "metric": "share of allowed rate used",
            "value": round(share, 4),
            "target": f">= {TARGET_SHARE:.2f}",
            "met": share >= TARGET_SHARE,
            "note": detail,
        },
        {
            "benchmark": name,
            "metric": "429 responses",
            "value": float(server.rejected),
            "target": "0",
            "met": server.rejected == 0,
            "note": detail,
        },
    ]


def main() -> list[dict[str, Any]]:
    seconds = float(os.environ.get("BENCH_RATELIMIT_SECONDS", "60"))
    configure("warning")
    baseline_seconds = min(seconds, 15.0)
    rows: list[dict[str, Any]] = []

    nekos = StrictServer(limit=1, period=1.0)
    asyncio.run(run_ours("nekos", nekos, in_flight=1, seconds=seconds))
    margin = KIND_DEFAULTS["nekos"].get("safety_margin_seconds", 0.02)
    rows += rows_for("ratelimit 1 req/s (nekos)", nekos, seconds, f"safety margin {margin} s")

    kitsu = StrictServer(limit=4, period=1.0, latency=0.150)
    asyncio.run(run_ours("kitsu", kitsu, in_flight=4, seconds=seconds))
    rows += rows_for("ratelimit 4 req/s, 150 ms, 4 in flight (kitsu)", kitsu, seconds, "safety margin 0.02 s")

    baseline = StrictServer(limit=4, period=1.0, latency=0.150)
    asyncio.run(run_baseline(baseline, in_flight=4, seconds=baseline_seconds))
    for row in rows_for("baseline: plain AsyncLimiter(4, 1)", baseline, baseline_seconds, "reference only"):
        rows.append({**row, "target": "reference", "met": True})
    return rows
