"""Real ``pipeline sync`` and ``pipeline backfill`` processes share one rate budget (real time, ~30 s).

The Nekos simulator (1 request per second per client IP, a fixed window opened by an arrival,
every refusal a violation, a ban after 10) runs in this test's event loop on 127.0.0.1; every
process below is a separate ``python -m pipeline`` with nothing in common but the database and the
rate group. Two "machines" are two processes with separate config files (different source names,
one ``rate_group``). Timeline:

* from the start: machine A's nightly ``sync`` (characters, 8 pages) and machine B's
  ``backfill --full`` (artists, 12 pages): two processes;
* after the server's 8th request (about 9 s): machine A's hand-started ``backfill --full``
  (categories, 7 pages) joins: three processes, until the sync ends;
* then the two backfills finish.

Judged from the server's own arrival log (each process owns a resource, so its path names it):
no 429 at all, never two admitted arrivals inside one window (combined rate within the limit),
and the combined use over each overlap window (2 and 3 processes) at least 0.90 of the limit.
This is a real-time test of a rate limit, hence the ``slow`` mark; it still runs in ``make test``.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pipeline.sandbox import nekos as nekos_sim
from pipeline.sandbox.server import Sandbox, start_sandbox

pytestmark = [pytest.mark.db, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
GROUP = "nekos-office-ip"
MIN_USE = 0.90
# Page sizes sized so that each phase lasts about 9-10 s at 1 req/s (small dataset: 12 artists,
# 16 characters, 14 categories).
PAGE_SIZE_A, PAGE_SIZE_B = 2, 1
JOIN_AFTER_ARRIVALS = 8  # the third process starts once the server has seen this many requests


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    async with await start_sandbox("small", services=("nekos",)) as running:
        service = running.ctx.state["nekos"]
        assert isinstance(service, nekos_sim.NekosService)
        service.configure(swap_probability=0.0)  # a stable order: every scan is one pass
        yield running


def machine_config(path: Path, source: str, base_url: str, page_size: int) -> Path:
    """One machine's config: its own source name, the shared rate group, Nekos' defaults otherwise."""
    path.write_text(
        f'[sources.{source}]\nkind = "nekos"\nbase_url = "{base_url}"\npage_size = {page_size}\n'
        f'rate_group = "{GROUP}"\nauth = {{ kind = "bearer", token = "{nekos_sim.SANDBOX_TOKEN}" }}\n'
    )
    return path


async def pipeline(db_url: str, config: Path, *args: str) -> tuple[int, str, str]:
    env = {**os.environ, "DATABASE_URL": db_url, "PIPELINE_CONFIG": str(config)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "pipeline",
        "--config",
        str(config),
        "--log-json",
        *args,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=180)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def use(arrivals: list[float]) -> float:
    """Combined admitted rate between the first and last arrival of a window, over the 1 req/s limit."""
    assert len(arrivals) >= 6, f"too short an overlap to judge: {arrivals}"
    return (len(arrivals) - 1) / (arrivals[-1] - arrivals[0])


async def test_sync_and_backfills_on_two_machines_share_one_budget(
    sandbox: Sandbox, db_url: str, tmp_path: Path
) -> None:
    base_url = sandbox.urls["nekos"]
    service = sandbox.ctx.state["nekos"]
    assert isinstance(service, nekos_sim.NekosService)
    machine_a = machine_config(tmp_path / "machine-a.toml", "nekos", base_url, PAGE_SIZE_A)
    machine_b = machine_config(tmp_path / "machine-b.toml", "nekos_b", base_url, PAGE_SIZE_B)

    joined = asyncio.Event()
    service.on_arrival.append(
        lambda _: joined.set() if len(service.arrivals) >= JOIN_AFTER_ARRIVALS else None
    )

    async def late_backfill() -> tuple[int, str, str]:
        await joined.wait()  # started by hand while the other two run
        return await pipeline(
            db_url, machine_a, "backfill", "--source", "nekos", "--resource", "categories", "--full"
        )

    results = await asyncio.gather(
        pipeline(db_url, machine_a, "sync", "--source", "nekos", "--resource", "characters", "--no-progress"),
        pipeline(db_url, machine_b, "backfill", "--source", "nekos_b", "--resource", "artists", "--full"),
        late_backfill(),
    )
    for code, out, err in results:
        assert code == 0, f"exit {code}\n{out[-2000:]}\n{err[-3000:]}"

    log = list(service.arrivals)
    start = log[0].at if log else 0.0
    timeline = [(round(a.at - start, 2), a.path.rsplit("/", 1)[-1], a.allowed) for a in log]
    by_path: dict[str, list[float]] = {}
    for arrival in log:
        by_path.setdefault(arrival.path, []).append(arrival.at)
    refused = [a for a in log if not a.allowed]
    assert refused == [], f"{len(refused)} × 429: {timeline}"
    assert sandbox.ctx.counters_for("nekos").bans == 0
    times = sorted(a.at for a in log)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= 1.0  # never two arrivals in one window: the combined rate is within the limit
    spans = {path: (ts[0], ts[-1]) for path, ts in by_path.items()}
    assert set(spans) == {"/api/character", "/api/artist", "/api/category"}
    sync, backfill_b, backfill_a = spans["/api/character"], spans["/api/artist"], spans["/api/category"]
    two = (max(sync[0], backfill_b[0]), backfill_a[0])
    three = (backfill_a[0], min(sync[1], backfill_b[1], backfill_a[1]))
    in_two = [t for t in times if two[0] <= t < two[1]]
    in_three = [t for t in times if three[0] <= t <= three[1]]
    report = (
        f"2 processes: {len(in_two)} arrivals, use {use(in_two):.3f}; "
        f"3 processes: {len(in_three)} arrivals, use {use(in_three):.3f}; "
        f"min gap {min(gaps):.3f} s; per path {[(p, len(t)) for p, t in by_path.items()]}; "
        f"timeline {timeline}"
    )
    print(report)
    assert use(in_two) >= MIN_USE, report
    assert use(in_three) >= MIN_USE, report
    assert use(times) <= 1.0
    assert [len(by_path[p]) for p in ("/api/character", "/api/artist", "/api/category")] == [8, 12, 7]
