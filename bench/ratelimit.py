"""Rate-limit use against a strict local server: share of the allowed rate used, and 429s (target 0).

The server judges like Nekos v1: a fixed window opens at the *arrival* of the first request, every
arrival above the limit inside it gets a 429 (which also restarts the window, as Nekos' Redis
``SET … EX`` does), and 10 violations ban the client for the rest of the run. Scenarios, every one
with the shared budget in PostgreSQL (``pipeline.budget``) as the runner uses it: 1 req/s
(Nekos-like, kind defaults) answering at once, in 20–80 ms, 50 ms and 250 ms; 4 req/s with 150 ms
and 4 in flight (Kitsu-like); two and three processes (``bench.rate_worker`` children: a sync and
a backfill, or separate machines) drawing from one rate group at 50 ms; real ``pipeline sync`` and
``pipeline backfill`` processes (two machines, separate configs, one rate group) against the Nekos
simulator, judged over the 2- and 3-process overlaps of its arrival log. A plain
``aiolimiter.AsyncLimiter`` client runs against the same server as the baseline.
``BENCH_RATELIMIT_SECONDS`` sets each run's length (60). Needs PostgreSQL (``DATABASE_URL`` or the
embedded server).
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiohttp import web
from aiolimiter import AsyncLimiter

from bench.common import ROOT, scratch_database
from pipeline import db
from pipeline.budget import SharedBudget
from pipeline.clock import SystemClock
from pipeline.connectors import connector_spec
from pipeline.http import ServiceClient
from pipeline.log import configure
from pipeline.settings import SourceSettings

TARGET_SHARE = 0.95
TARGET_SHARE_SHARED = 0.90  # several processes on one group (each pays its own scheduling)
BAN_AFTER = 10


@dataclass
class StrictServer:
    """Fixed window from the first arrival; ``limit`` per ``period``; records arrivals and 429s."""

    limit: int
    period: float
    latency: float = 0.0
    latency_max: float | None = None  # answer in uniform [latency, latency_max] when set
    ban_after: int | None = BAN_AFTER
    accepted: list[float] = field(default_factory=list)
    rejected: int = 0
    _window_start: float = -1e18
    _count: int = 0

    async def handle(self, request: web.Request) -> web.Response:
        now = time.monotonic()
        if self.ban_after is not None and self.rejected >= self.ban_after:
            self.rejected += 1
            return web.json_response(
                {"code": 429, "message": "banned"}, status=429, headers={"Retry-After": "3600"}
            )
        if now >= self._window_start + self.period:
            self._window_start, self._count = now, 0
        self._count += 1
        if self._count > self.limit:
            self.rejected += 1
            self._window_start = now  # Nekos re-sets the key's expiry on a violation
            headers = {"Retry-After": str(int(self.period)), "X-RateLimit-Reset": str(int(self.period))}
            return web.json_response({"code": 429, "success": False}, status=429, headers=headers)
        self.accepted.append(now)
        delay = random.uniform(self.latency, self.latency_max) if self.latency_max else self.latency
        if delay:
            await asyncio.sleep(delay)
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


async def run_ours(kind: str, server: StrictServer, in_flight: int, seconds: float) -> dict[str, int]:
    """Our ServiceClient with the kind's defaults and the shared budget; workers fetch until the deadline."""
    counts: dict[str, int] = {}

    async def body(base_url: str) -> None:
        settings = SourceSettings.model_validate(
            {
                **connector_spec(kind).defaults,
                "name": f"bench_{kind}",
                "kind": kind,
                "base_url": base_url,
                "resources": ("images",) if kind == "nekos" else ("anime",),
                "rate": {"requests": server.limit, "per_seconds": server.period},
                "max_in_flight": in_flight,
                "violation_budget": 10_000,  # measure every 429 instead of stopping at the first ones
            }
        )
        async with scratch_database("bench_rate") as url, db.pool_for(url, min_size=1, max_size=4) as pool:
            clock = SystemClock()
            budget = SharedBudget(pool, settings, None, clock)
            deadline = time.monotonic() + seconds
            async with ServiceClient(settings, clock=clock) as client:
                client.share_budget(budget)

                async def worker() -> None:
                    while time.monotonic() < deadline:
                        await client.get_json("items")

                async with asyncio.TaskGroup() as group:
                    for _ in range(in_flight):
                        group.create_task(worker())
            counts.update(requests=client.totals.requests, reservations=budget.round_trips)
            counts.update(releases=budget.releases, given_up=budget.given_up, moved=budget.moved)

    await serve(server, body)
    return counts


async def run_processes(server: StrictServer, processes: int, seconds: float) -> list[dict[str, int]]:
    """``processes`` children (``bench.rate_worker``), Nekos defaults, one rate group, one database."""
    margin = connector_spec("nekos").defaults["safety_margin_seconds"]
    results: list[dict[str, int]] = []

    async def child(url: str, base_url: str, n: int) -> dict[str, int]:
        args = [
            url,
            base_url,
            str(seconds),
            f"proc{n}",
            str(server.limit),
            str(server.period),
            str(margin),
            "1",
        ]
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.rate_worker",
            *args,
            "bench-shared",
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"bench.rate_worker failed: {err.decode()[-2000:]}")
        result: dict[str, int] = orjson.loads(out.splitlines()[-1])
        return result

    async def body(base_url: str) -> None:
        async with scratch_database("bench_rate") as url:
            results.extend(await asyncio.gather(*(child(url, base_url, n) for n in range(processes))))

    await serve(server, body)
    return results


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


@dataclass
class CliRun:
    """What the three ``pipeline`` processes did, as the Nekos simulator saw it."""

    codes: list[int]
    outputs: list[str]
    arrivals: list[Any]  # pipeline.sandbox.nekos.Arrival, in arrival order
    paths: tuple[str, ...]  # the path each process fetched (its resource)

    @property
    def refused(self) -> int:
        return sum(1 for a in self.arrivals if not a.allowed)

    def windows(self) -> tuple[list[float], list[float]]:
        """Admitted arrival times while all three processes ran, and the longest stretch while
        exactly two did.

        A process runs from its first to its last arrival; each admitted arrival is counted with the
        number of processes running at its time, and consecutive arrivals of one count make a stretch.
        """
        spans: dict[str, list[float]] = {}
        for a in self.arrivals:
            spans.setdefault(a.path, [a.at, a.at])[1] = a.at
        if len(spans) < len(self.paths):
            return [], []
        stretches: dict[int, list[list[float]]] = {2: [], 3: []}
        previous = 0
        for t in sorted(a.at for a in self.arrivals if a.allowed):
            running = sum(1 for first, last in spans.values() if first <= t <= last)
            if running in stretches:
                if running != previous:
                    stretches[running].append([])
                stretches[running][-1].append(t)
            previous = running
        return max(stretches[3], key=len, default=[]), max(stretches[2], key=len, default=[])


async def run_cli(db_url: str) -> CliRun:
    """Real ``pipeline`` processes on the Nekos simulator (medium dataset), one rate group.

    Machine A (page_size 8) runs its nightly ``sync`` of artists (10 pages) and a hand-started
    ``backfill --full`` of categories (5 pages); machine B, with its own config (source
    ``nekos_b``, page_size 10), a ``backfill --full`` of characters (12 pages). A's sync and B's
    backfill start together; A's backfill starts once the server has admitted 6 requests since
    both of them had their first (so a stretch of two processes is there whatever order the budget
    serves them in and however fast the third process starts), then three run until the first of
    them ends, then two.
    """
    from pipeline.sandbox import nekos as nekos_sim
    from pipeline.sandbox.server import start_sandbox

    folder = Path(tempfile.mkdtemp(prefix="rate-cli-"))
    try:
        async with await start_sandbox("medium", services=("nekos",)) as sandbox:
            service = sandbox.ctx.state["nekos"]
            assert isinstance(service, nekos_sim.NekosService)
            service.configure(swap_probability=0.0)  # a stable order: every scan is one pass
            configs = {}
            for machine, source, size in (("a", "nekos", 8), ("b", "nekos_b", 10)):
                path = folder / f"machine-{machine}.toml"
                path.write_text(
                    f'[sources.{source}]\nkind = "nekos"\nbase_url = "{sandbox.urls["nekos"]}"\n'
                    f'page_size = {size}\nrate_group = "nekos-office-ip"\n'
                    f'auth = {{ kind = "bearer", token = "{nekos_sim.SANDBOX_TOKEN}" }}\n'
                )
                configs[machine] = path

            async def cli(machine: str, *args: str) -> tuple[int, str]:
                proc = await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "pipeline",
                    "--config",
                    str(configs[machine]),
                    "--log-json",
                    *args,
                    cwd=ROOT,
                    env={**os.environ, "DATABASE_URL": db_url},
                    stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.STDOUT,
                )
                out, _ = await asyncio.wait_for(proc.communicate(), timeout=180)
                return proc.returncode if proc.returncode is not None else -1, out.decode()

            def admitted_with_both(first: str, second: str) -> int:
                """Admitted arrivals since both paths had one (the two-process stretch so far)."""
                # The simulator's arrival log is a plain list it appends to in this event loop.
                allowed = [a for a in service.arrivals if a.allowed]
                paths = [a.path for a in allowed]
                if first not in paths or second not in paths:
                    return 0
                return len(allowed) - max(paths.index(first), paths.index(second))

            async def after_admitted(count: int, *args: str) -> tuple[int, str]:
                while admitted_with_both("/api/artist", "/api/character") < count:  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
                return await cli(*args)

            done = await asyncio.gather(
                cli("a", "sync", "--source", "nekos", "--resource", "artists", "--no-progress"),
                after_admitted(6, "a", "backfill", "--source", "nekos", "--resource", "categories", "--full"),
                cli("b", "backfill", "--source", "nekos_b", "--resource", "characters", "--full"),
            )
            arrivals = list(service.arrivals)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return CliRun(
        codes=[c for c, _ in done],
        outputs=[o for _, o in done],
        arrivals=arrivals,
        paths=("/api/artist", "/api/category", "/api/character"),
    )


async def run_cli_bench() -> CliRun:
    async with scratch_database("bench_rate_cli") as url:
        return await run_cli(url)


def window_share(arrivals: list[float]) -> float:
    """Admitted rate between the first and last arrival of a window, over 1 req/s."""
    if len(arrivals) < 2 or arrivals[-1] <= arrivals[0]:
        return 0.0
    return (len(arrivals) - 1) / (arrivals[-1] - arrivals[0])


def trips(*counts: dict[str, int]) -> str:
    """Database round trips per request: reservations on the request path, releases off it."""
    requests = sum(c["requests"] for c in counts) or 1
    reserve = sum(c["reservations"] for c in counts) / requests
    release = sum(c["releases"] for c in counts) / requests
    missed = sum(c.get("given_up", 0) for c in counts)
    moved = sum(c.get("moved", 0) for c in counts)
    return (
        f"per request {reserve:.2f} reservation + {release:.2f} lease release round trips; "
        f"{missed} slots missed by a late wake, {moved} of them moved to now"
    )


def share_used(server: StrictServer, seconds: float) -> float:
    """Accepted rate over the allowed rate: the lower of the sustained (first→last) and whole-run rates."""
    allowed = server.limit / server.period
    arrivals = server.accepted
    if len(arrivals) < 2 or arrivals[-1] <= arrivals[0]:
        return len(arrivals) / (seconds * allowed)
    sustained = (len(arrivals) - 1) / (arrivals[-1] - arrivals[0])
    return min(sustained, len(arrivals) / seconds) / allowed


def row_of(name: str, metric: str, value: float, target: float, note: str) -> dict[str, Any]:
    return {
        "benchmark": name,
        "metric": metric,
        "value": value,
        "target": f">= {target:.2f}",
        "met": value >= target,
        "note": note,
    }


def rows_for(
    name: str, server: StrictServer, seconds: float, note: str, target: float = TARGET_SHARE
) -> list[dict[str, Any]]:
    share = share_used(server, seconds)
    detail = f"{len(server.accepted)} accepted in {seconds:.0f} s; {note}"
    return [
        {
            "benchmark": name,
            "metric": "share of allowed rate used",
            "value": round(share, 4),
            "target": f">= {target:.2f}",
            "met": share >= target,
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

    margin = connector_spec("nekos").defaults.get("safety_margin_seconds", 0.02)
    for label, low, high in (
        ("", 0.0, None),
        (", 20-80 ms", 0.020, 0.080),
        (", 50 ms", 0.050, None),
        (", 250 ms", 0.250, None),
    ):
        nekos = StrictServer(limit=1, period=1.0, latency=low, latency_max=high)
        counts = asyncio.run(run_ours("nekos", nekos, in_flight=1, seconds=seconds))
        note = f"safety margin {margin} s; {trips(counts)}"
        rows += rows_for(f"ratelimit 1 req/s{label} (nekos)", nekos, seconds, note)

    kitsu = StrictServer(limit=4, period=1.0, latency=0.150)
    counts = asyncio.run(run_ours("kitsu", kitsu, in_flight=4, seconds=seconds))
    note = f"safety margin 0.02 s; {trips(counts)}"
    rows += rows_for("ratelimit 4 req/s, 150 ms, 4 in flight (kitsu)", kitsu, seconds, note)

    for processes in (2, 3):
        shared = StrictServer(limit=1, period=1.0, latency=0.050)
        results = asyncio.run(run_processes(shared, processes, seconds))
        sent = [r["requests"] for r in results]
        note = f"{processes} processes, one rate group, requests per process {sent}; {trips(*results)}"
        name = f"ratelimit 1 req/s, 50 ms, {processes} processes (nekos, shared budget)"
        rows += rows_for(name, shared, seconds, note, TARGET_SHARE_SHARED)

    cli = asyncio.run(run_cli_bench())
    three, two = cli.windows()
    for label, arrivals in (("2", two), ("3", three)):
        share = window_share(arrivals)
        note = (
            f"{len(arrivals)} arrivals in the {label}-process overlap (simulator's arrival log); "
            f"exit codes {cli.codes}; Nekos simulator (fixed window per IP, ban after 10)"
        )
        name = f"ratelimit 1 req/s, real CLI, {label} processes (sync + backfills, two machines)"
        rows.append(row_of(name, "share of allowed rate used", round(share, 4), TARGET_SHARE_SHARED, note))
        rows.append(
            {
                "benchmark": name,
                "metric": "429 responses",
                "value": float(cli.refused),
                "target": "0",
                "met": cli.refused == 0 and cli.codes == [0, 0, 0],
                "note": note,
            }
        )

    baseline = StrictServer(limit=4, period=1.0, latency=0.150)
    asyncio.run(run_baseline(baseline, in_flight=4, seconds=baseline_seconds))
    for row in rows_for("baseline: plain AsyncLimiter(4, 1)", baseline, baseline_seconds, "reference only"):
        rows.append({**row, "target": "reference", "met": True})
    return rows
