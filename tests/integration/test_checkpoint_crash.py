"""SIGKILL between batches, then a re-run: exactly the expected rows, no duplicates, no gaps."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline import db
from tests.integration import crash_worker, loadkit

pytestmark = pytest.mark.db
ROOT = Path(__file__).resolve().parents[2]
ORDER = [5, 0, 7, 2, 1, 6, 3, 4]


def worker(url: str, kill_after: int) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable,
        "-m",
        "tests.integration.crash_worker",
        url,
        str(kill_after),
        ",".join(map(str, ORDER)),
    ]
    return subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=120, env=dict(os.environ)
    )


async def state(url: str) -> tuple[int, int, int, object]:
    conn = await db.connect(url)
    try:
        shows = await conn.fetchval("SELECT count(*) FROM loadtest.shows")
        distinct = await conn.fetchval("SELECT count(DISTINCT source_id) FROM loadtest.shows")
        raw = await conn.fetchval("SELECT count(*) FROM raw.records")
        scan = await conn.fetchval("SELECT scan FROM etl.checkpoints")
        return shows, distinct, raw, scan
    finally:
        await conn.close()


def test_killed_sync_resumes_exactly(db_url: str) -> None:
    """Two SIGKILLs after out-of-order commits, then a run: 40 rows once each, only missing pages fetched."""
    asyncio.run(_create(db_url))
    first = worker(db_url, 3)
    assert first.returncode == -9, first.stderr[-2000:]
    shows, distinct, raw, scan = asyncio.run(state(db_url))
    assert (shows, distinct, raw) == (15, 15, 15)
    assert isinstance(scan, dict)
    assert scan["pages"] == [[0, 0], [5, 5], [7, 7]]

    second = worker(db_url, 2)
    assert second.returncode == -9, second.stderr[-2000:]
    shows, _, _, scan = asyncio.run(state(db_url))
    assert shows == 25
    assert isinstance(scan, dict)
    assert scan["pages"] == [[0, 2], [5, 5], [7, 7]]  # 2 and 1 came next

    last = worker(db_url, 0)
    assert last.returncode == 0, last.stderr[-2000:]
    assert last.stdout.split() == ["succeeded", "3"]  # pages 6, 3, 4 only
    total = crash_worker.PAGES * crash_worker.PER_PAGE
    shows, distinct, raw, scan = asyncio.run(state(db_url))
    assert (shows, distinct, raw, scan) == (total, total, total, {})


async def _create(url: str) -> None:
    conn = await db.connect(url)
    try:
        await loadkit.create_tables(conn)
    finally:
        await conn.close()
