"""SIGKILL at five moments of a real Nekos and Kitsu scan, then a re-run: exactly the source's records.

Each child process runs its own seeded simulator (the same records every time) and the real
runner; ``scan_worker`` kills itself right after the N-th committed batch. The re-run must leave
exactly the source's records live (count, distinct ids and raw rows all equal), and the run the
kill left ``running`` must be marked ``aborted`` by the re-run.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from pipeline import db

pytestmark = pytest.mark.db
ROOT = Path(__file__).resolve().parents[2]
TABLES = {"nekos": ("catalog.images", "images"), "kitsu": ("catalog.media", "anime")}


def worker(url: str, service: str, kill_after: int) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "tests.integration.scan_worker", url, service, str(kill_after)]
    return subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=120, env=dict(os.environ)
    )


async def books(url: str, service: str) -> tuple[int, int, int, set[str], list[str]]:
    table, resource = TABLES[service]
    conn = await db.connect(url)
    try:
        live = await conn.fetch(
            f"SELECT source_id FROM {table} WHERE source = $1 AND deleted_at IS NULL", service
        )
        distinct = await conn.fetchval(
            f"SELECT count(DISTINCT source_id) FROM {table} WHERE source = $1 AND deleted_at IS NULL", service
        )
        raw = await conn.fetchval(
            "SELECT count(*) FROM raw.records WHERE source = $1 AND resource = $2 AND deleted_at IS NULL",
            service,
            resource,
        )
        statuses = [r["status"] for r in await conn.fetch("SELECT status FROM etl.runs ORDER BY id")]
        return len(live), distinct, raw, {r["source_id"] for r in live}, statuses
    finally:
        await conn.close()


@pytest.mark.parametrize(
    ("service", "kill_after"),
    [("nekos", n) for n in (1, 2, 3, 5, 7)] + [("kitsu", n) for n in (1, 6, 15, 30, 44)],
)
def test_killed_scan_then_rerun_has_exactly_the_source(db_url: str, service: str, kill_after: int) -> None:
    killed = worker(db_url, service, kill_after)
    assert killed.returncode == -9, killed.stderr[-3000:]
    rerun = worker(db_url, service, 0)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    report = orjson.loads(rerun.stdout.strip().splitlines()[-1])
    assert report["statuses"] == ["succeeded"]
    expected = set(report["expected"])
    count, distinct, raw, ids, statuses = asyncio.run(books(db_url, service))
    assert (count, distinct, raw) == (len(expected), len(expected), len(expected))
    assert ids == expected
    assert statuses == ["aborted", "succeeded"]  # the killed run is in the books as aborted
