"""Embedded PostgreSQL: started on demand, reused, safe to start twice at once, unused with DATABASE_URL."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = [pytest.mark.db, pytest.mark.slow]


def run_cli(data_dir: Path, *args: str, database_url: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["PIPELINE_DATA_DIR"] = str(data_dir)
    if database_url:
        env["DATABASE_URL"] = database_url
    return subprocess.run(
        [sys.executable, "-m", "pipeline", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "data"
    yield folder
    run_cli(folder, "db", "stop")


def postmaster_pid(data_dir: Path) -> str:
    return (data_dir / "postgres" / "postmaster.pid").read_text().splitlines()[0]


def test_started_on_demand_and_reused(data_dir: Path) -> None:
    """The first command starts the server; the next one reuses it (same pid); `db stop` stops it."""
    first = run_cli(data_dir, "db", "url")
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("postgresql://")
    assert str(data_dir / "postgres") in first.stdout
    pid = postmaster_pid(data_dir)
    second = run_cli(data_dir, "db", "url")
    assert second.returncode == 0, second.stderr
    assert second.stdout == first.stdout
    assert postmaster_pid(data_dir) == pid
    migrated = run_cli(data_dir, "migrate")
    assert migrated.returncode == 0, migrated.stderr
    assert "applied" in migrated.stdout
    again = run_cli(data_dir, "migrate")
    assert "up to date" in again.stdout
    stopped = run_cli(data_dir, "db", "stop")
    assert stopped.returncode == 0
    assert "stopped" in stopped.stdout
    assert not (data_dir / "postgres" / "postmaster.pid").exists()


def test_two_commands_starting_it_at_once(data_dir: Path) -> None:
    """Two processes starting the embedded server at the same moment both get the one server."""
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["PIPELINE_DATA_DIR"] = str(data_dir)
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "pipeline", "migrate"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert (data_dir / "postgres" / "postmaster.pid").exists()


def test_not_started_when_database_url_is_set(data_dir: Path) -> None:
    """With DATABASE_URL set, no embedded server is created and its URL (password masked) is used."""
    result = run_cli(
        data_dir, "db", "url", database_url="postgresql://etl:s3cret-pw@db.example:5432/warehouse"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "postgresql://etl:***@db.example:5432/warehouse"
    assert "s3cret-pw" not in result.stdout + result.stderr
    assert not (data_dir / "postgres").exists()
