"""Memory: peak RSS of our sync process (runner + Kitsu connector + loader) at growing record counts.

Each size is a full ``kitsu/anime`` sync in a child process of its own, into a fresh scratch
database, from ``bench.servers.kitsu_scaled`` (a Kitsu that serves N anime made on the fly from
the simulator's pages) in a third process. The child's peak RSS is its own ``ru_maxrss`` (the
parent's psutil sample is a cross-check). Flat means the largest size's peak is close to the
smallest's; the target is <= 200 MB at 1M records.

``BENCH_MEMORY_RECORDS`` lists the sizes (``100000,1000000`` is the target's pair). The default,
``DEFAULT_SIZES``, is what fits ``make bench``'s 20-minute budget on a 2-core machine (a sync
runs at ~1.5-2k records/s here, so 1M alone would take over 10 minutes); the note says so
whenever 1M is not run.
``python -m bench.memory child CONFIG URL`` is the measured child.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.common import BenchServer, emit, require_connector, row, run_child, scratch_database
from bench.e2e import fetch_token, sync_ours, warm_up
from pipeline.log import configure

NAME = "memory: peak RSS of a kitsu/anime sync"
TARGET_MB = 200.0
FLAT_RATIO = 1.25  # the largest size may use at most this much more than the smallest
CHILD_TIMEOUT = 900.0
DEFAULT_SIZES = "100000,300000"


def sizes() -> list[int]:
    raw = os.environ.get("BENCH_MEMORY_RECORDS", DEFAULT_SIZES)
    try:
        found = sorted({int(part) for part in raw.split(",") if part.strip()})
    except ValueError:
        raise ValueError(f"BENCH_MEMORY_RECORDS={raw!r}: give record counts separated by commas") from None
    if not found:
        raise ValueError(f"BENCH_MEMORY_RECORDS={raw!r}: give at least one record count")
    return found


async def measure_one(records: int, work: Path) -> dict[str, Any]:
    config = str(work / f"scaled-{records}.toml")
    with BenchServer("kitsu_scaled", ["--records", str(records), "--config", config]) as server:
        root = server.info["root"]
        await warm_up(root + "/api/edge", await fetch_token(root, server.info["config"]))
        async with scratch_database("bench_memory") as url:
            result = await asyncio.to_thread(
                run_child, "bench.memory", ["child", server.info["config"], url], CHILD_TIMEOUT
            )
    if result["status"] != "succeeded" or result["records"] != records:
        raise RuntimeError(
            f"the {records:,}-record sync ended {result['status']} with {result['records']:,} records: "
            f"{result.get('error')}"
        )
    return result


def main() -> list[dict[str, Any]]:
    require_connector("kitsu")
    configure("warning")
    results: dict[int, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as work:
        for records in sizes():
            results[records] = asyncio.run(measure_one(records, Path(work)))
    rows = []
    for records, result in results.items():
        peak = float(result["peak_rss_mb"])
        rows.append(
            row(
                NAME,
                f"peak RSS MB, {records:,} records",
                peak,
                f"<= {TARGET_MB:.0f} MB",
                peak <= TARGET_MB,
                f"{result['seconds']:.0f} s sync ({records / result['seconds']:,.0f} records/s), "
                f"{result['requests']:,} requests; psutil sample {result['sampled_peak_rss_mb']:.0f} MB",
            )
        )
    small, large = min(results), max(results)
    if large != small:
        ratio = results[large]["peak_rss_mb"] / results[small]["peak_rss_mb"]
        note = f"{large:,} / {small:,} records"
        if large < 1_000_000:
            note += "; 1M was not run (BENCH_MEMORY_RECORDS), so the target is judged at the largest size"
        rows.append(
            row(
                NAME,
                "peak RSS ratio largest / smallest",
                round(ratio, 3),
                f"<= {FLAT_RATIO}",
                ratio <= FLAT_RATIO,
                note,
            )
        )
    return rows


def child(argv: list[str]) -> None:
    if len(argv) != 3 or argv[0] != "child":
        raise SystemExit("usage: python -m bench.memory child CONFIG DATABASE_URL")
    emit(asyncio.run(sync_ours(argv[1], argv[2], 0)))


if __name__ == "__main__":
    child(sys.argv[1:])
