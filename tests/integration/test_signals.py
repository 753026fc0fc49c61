"""SIGTERM / SIGINT during `pipeline sync` (a real child process, the Nekos simulator in this one).

The 1 request a second Nekos simulator makes the scan slow enough to be caught mid-run: once a
first batch is committed the child is signalled. It must roll back the batch in flight, record the
run and its streams ``aborted``, print the summary and exit 143 (SIGTERM) or 130 (SIGINT); a later
run resumes the scan.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import asyncpg
import pytest

from pipeline.sandbox.server import start_sandbox, write_config

pytestmark = pytest.mark.db
ROOT = Path(__file__).resolve().parents[2]


async def committed(pool: asyncpg.Pool) -> int:
    return int(await pool.fetchval("SELECT count(*) FROM raw.records"))


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
async def test_signal_mid_run_aborts_in_the_books(
    db_url: str, pool: asyncpg.Pool, tmp_path: Path, sig: signal.Signals, code: int
) -> None:
    async with await start_sandbox("small", services=("nekos",)) as sandbox:
        config = write_config(sandbox, tmp_path / "nekos.toml")
        command = [sys.executable, "-m", "pipeline", "--config", str(config), "sync", "--no-progress"]
        env = {**os.environ, "DATABASE_URL": db_url}
        child = await asyncio.create_subprocess_exec(
            *command, cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        for _ in range(600):  # at most 60 s for the first commit
            if await committed(pool) > 0 or child.returncode is not None:
                break
            await asyncio.sleep(0.1)
        assert child.returncode is None, "the sync ended before it could be signalled"
        child.send_signal(sig)
        stdout, stderr = await asyncio.wait_for(child.communicate(), timeout=60)
    out = stdout.decode()
    assert child.returncode == code, stderr.decode()[-3000:]
    assert "(sync): aborted" in out
    assert any(" aborted " in line for line in out.splitlines()[3:])  # a stream row of the summary
    run = await pool.fetchrow("SELECT status, error, finished_at FROM etl.runs")
    assert run["status"] == "aborted"
    assert sig.name in run["error"]
    assert run["finished_at"] is not None
    streams = await pool.fetch("SELECT status, error FROM etl.stream_runs")
    assert streams
    assert {s["status"] for s in streams} <= {"aborted", "succeeded"}
    assert "aborted" in {s["status"] for s in streams}
    assert await pool.fetchval("SELECT count(*) FROM etl.runs WHERE status = 'running'") == 0


def test_database_lost_mid_run_is_one_line_and_exit_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The connection dies under a running sync (inside the task groups): one line, exit 1, no traceback."""
    from pipeline import api
    from pipeline.cli import main

    def sync(**_: object) -> None:
        try:
            raise asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation")
        except asyncpg.ConnectionDoesNotExistError as exc:
            raise ExceptionGroup("unhandled errors in a TaskGroup", [RuntimeError("stream")]) from exc

    monkeypatch.setattr(api, "sync", sync)
    config = tmp_path / "p.toml"
    config.write_text(
        '[sources.nekos]\nkind = "nekos"\nbase_url = "http://127.0.0.1:9/api"\nresources = ["images"]\n',
        encoding="utf-8",
    )
    assert main(["--config", str(config), "sync", "--no-progress"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("error: the database is unreachable or the connection was lost")
    assert "ConnectionDoesNotExistError" in err[0]
