"""Two processes, two event loops, one database: their sum stays under the limit of a strict server.

Each child (``python -m bench.rate_worker``) has its own ServiceClient and SharedBudget on one rate
group; they share nothing but PostgreSQL. The server (this test's loop) is strict like Nekos: a fixed
window opens at an arrival and any arrival above the limit inside it is refused with a 429.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import sys
from pathlib import Path

import orjson
import pytest

from bench.ratelimit import StrictServer, serve

pytestmark = pytest.mark.db
ROOT = Path(__file__).resolve().parents[2]
LIMIT, PERIOD, MARGIN, SECONDS = 5, 1.0, 0.1, 3.0


async def child(db_url: str, base_url: str, name: str, in_flight: int) -> dict[str, int]:
    args = [db_url, base_url, str(SECONDS), name, str(LIMIT), str(PERIOD), str(MARGIN), str(in_flight)]
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.rate_worker",
        *args,
        "one-rate-group",  # the rate group every child draws from
        cwd=ROOT,
        env=dict(os.environ),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    assert proc.returncode == 0, err.decode()[-2000:]
    result: dict[str, int] = orjson.loads(out.splitlines()[-1])
    return result


def max_in_window(arrivals: list[float], period: float) -> int:
    """The most arrivals any window of ``period`` opened at an arrival holds (what the server judges)."""
    best = 0
    for i, start in enumerate(arrivals):
        best = max(best, sum(1 for t in arrivals[i:] if t < start + period))
    return best


async def test_two_processes_share_one_budget(db_url: str) -> None:
    """Sync-like and backfill-like children (2 in flight each, one group cap of 2): 0 × 429, never
    above the limit."""
    server = StrictServer(limit=LIMIT, period=PERIOD, latency=0.02)
    results: list[dict[str, int]] = []

    async def body(base_url: str) -> None:
        results.extend(
            await asyncio.gather(
                child(db_url, base_url, "sync_like", 2), child(db_url, base_url, "backfill_like", 2)
            )
        )

    await serve(server, body)
    arrivals = sorted(server.accepted)
    assert server.rejected == 0
    assert sum(r["rate_limited"] for r in results) == 0
    assert max_in_window(arrivals, PERIOD) <= LIMIT
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    spacing = (PERIOD + MARGIN) / LIMIT
    # Each send leaves within half the margin after its slot: closer than that only by server jitter.
    assert min(gaps) >= spacing - MARGIN / 2 - 0.02
    rate = (len(arrivals) - 1) / (arrivals[-1] - arrivals[0])
    assert rate <= LIMIT / PERIOD  # combined rate within the limit
    assert rate >= 0.5 * LIMIT / PERIOD  # and the budget is used, even on a busy 2-core machine
    assert all(r["requests"] >= 2 for r in results)  # both drew from the budget
    print(f"two processes: {len(arrivals)} accepted, {rate:.3f} req/s of {LIMIT / PERIOD:g}, {results}")
    sent = sum(r["requests"] for r in results)
    # One reservation per request, besides refusals on a full cap, slots given back at once (they
    # would have filled the cap long before starting) and slots missed by a late wake.
    assert sum(r["reservations"] - r["cap_waits"] - r["early"] for r in results) <= sent + sum(
        r["given_up"] for r in results
    )
