"""Operator experience: the CLI against a live sandbox: summaries, status/runs JSON, failures, queries."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from pipeline import sources
from pipeline.runner import run_sync
from pipeline.sandbox.server import Sandbox, start_sandbox, write_config
from pipeline.settings import load_settings

pytestmark = [pytest.mark.db, pytest.mark.slow]

QUERIES = sorted((Path(__file__).resolve().parents[2] / "sql" / "queries").glob("*.sql"))


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    async with await start_sandbox("small", options={"anilist_requests_per_minute": 6000}) as sb:
        yield sb


async def cli(db_url: str, config: Path, *args: str) -> tuple[int, str, str]:
    """Run ``pipeline`` in a child process while this loop keeps serving the sandbox."""
    env = {**os.environ, "DATABASE_URL": db_url}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pipeline", "--config", str(config), "--log-json", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), timeout=240)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def keep_sources(config: Path, names: set[str], target: Path) -> Path:
    """A copy of the sandbox config with only the ``[sources.NAME]`` tables in ``names``."""
    lines, current = [], None
    for line in config.read_text().splitlines():
        if line.startswith("[sources."):
            current = line[len("[sources.") : -1]
        if current is None or current in names:
            lines.append(line)
    target.write_text("\n".join(lines) + "\n")
    return target


async def test_sync_status_and_runs_json(sandbox: Sandbox, db_url: str, tmp_path: Path) -> None:
    """A sync prints a per-stream summary and exits 0; status and runs --json describe every stream."""
    config = keep_sources(write_config(sandbox, tmp_path / "all.toml"), {"kitsu"}, tmp_path / "kitsu.toml")
    code, out, err = await cli(db_url, config, "sync", "--resource", "anime", "--resource", "categories")
    assert code == 0, err
    assert "run 1 (sync): succeeded" in out
    summary_rows = [line.split() for line in out.splitlines() if line.startswith("kitsu ")]
    assert sorted(row[1] for row in summary_rows) == ["anime", "categories"]
    finished = [json.loads(line) for line in err.splitlines() if '"stream_finished"' in line]
    assert {(e["source"], e["stream"]) for e in finished} == {("kitsu", "anime"), ("kitsu", "categories")}
    assert all(e["status"] == "succeeded" and e["run_id"] == 1 for e in finished)

    code, out, err = await cli(db_url, config, "status", "--json")
    assert code == 0, err
    status = {(s["source"], s["resource"]): s for s in json.loads(out)}
    anime = status[("kitsu", "anime")]
    assert anime["last_status"] == "succeeded"
    live_anime = [w for w in sandbox.ctx.need_world().live() if w.kind == "anime" and w.kitsu_id is not None]
    assert anime["rows"] >= len(live_anime)  # raw records: every anime (+ included categories)
    assert anime["scan_completed_at"] is not None
    assert anime["last_error"] is None
    assert anime["lag_seconds"] is not None
    assert anime["lag_seconds"] >= 0

    code, out, err = await cli(db_url, config, "runs", "--json", "--last", "5")
    assert code == 0, err
    runs = json.loads(out)
    assert [r["run_id"] for r in runs] == [1]
    assert runs[0]["status"] == "succeeded"
    assert {s["resource"] for s in runs[0]["streams"]} == {"anime", "categories"}
    assert all(s["inserted"] > 0 for s in runs[0]["streams"])
    assert all(s["deleted"] == 0 for s in runs[0]["streams"])

    code, out, err = await cli(db_url, config, "runs", "--last", "5")
    assert code == 0, err
    assert out.splitlines()[0].split()[-2:] == ["deleted", "error"]  # deletes shown per run


async def test_a_failing_stream_exits_1_and_shows_its_error(
    sandbox: Sandbox, db_url: str, tmp_path: Path
) -> None:
    """A stream the API refuses fails with its error in the summary, the logs and status; exit code 1."""
    sandbox.ctx.inject("kitsu", error_burst=1000, error_status=404, path_prefix="/api/edge/manga")
    config = keep_sources(write_config(sandbox, tmp_path / "all.toml"), {"kitsu"}, tmp_path / "kitsu.toml")
    code, out, _err = await cli(db_url, config, "sync", "--resource", "categories", "--resource", "manga")
    assert code == 1
    assert "run 1 (sync): partial" in out
    assert "kitsu/manga failed" in out
    assert "404" in out
    code, out, _ = await cli(db_url, config, "status", "--json")
    status = {(s["source"], s["resource"]): s for s in json.loads(out)}
    assert status[("kitsu", "manga")]["last_status"] == "failed"
    assert "404" in status[("kitsu", "manga")]["last_error"]
    assert status[("kitsu", "categories")]["last_status"] == "succeeded"


async def test_bad_config_exits_2_without_touching_anything(db_url: str, tmp_path: Path) -> None:
    """A config error stops the sync before any request, with exit code 2."""
    bad = tmp_path / "bad.toml"
    bad.write_text('[sources.k]\nkind = "kitsu"\nbase_url = "http://127.0.0.1:9/api/edge"\nrate = 5\n')
    code, _, err = await cli(db_url, bad, "sync")
    assert code == 2
    assert "[sources.k].rate" in err


async def test_every_example_query_returns_rows_on_demo_data(
    sandbox: Sandbox, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    """After a sync of all five sandbox sources, each query in sql/queries/ runs and returns rows."""
    settings = load_settings(write_config(sandbox, tmp_path / "demo.toml"))
    summary = await run_sync(
        settings, pool, stream_factory=sources.build_stream, client_factory=sources.open_client
    )
    assert summary.status == "succeeded", [(r.source, r.resource, r.error) for r in summary.streams]
    assert len(QUERIES) >= 8
    for path in QUERIES:
        rows = await pool.fetch(path.read_text())
        assert rows, f"{path.name} returned no rows on demo data"
