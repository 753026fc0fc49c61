"""The Python API: frozen summaries from sync/backfill/replay/status/runs, logging as the CLI does,
and the documented example run as written."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from pipeline import api
from pipeline.errors import ConfigError, DatabaseError
from pipeline.settings import load_settings
from tests.sandboxproc import sandbox_process

pytestmark = [pytest.mark.db, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def sandbox_config(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with sandbox_process(tmp_path_factory.mktemp("api") / "sandbox.toml") as config:
        yield config


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """api calls configure structlog onto the captured stderr of their test: undo that after it."""
    yield
    structlog.reset_defaults()


def python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(encoding="utf-8"), re.S)


def test_sync_returns_frozen_summaries_and_logs_json(
    sandbox_config: Path, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    result = api.sync(
        config=sandbox_config, source="kitsu", resource=["categories"], database_url=db_url, log_json=True
    )
    assert isinstance(result, api.RunResult)
    assert (result.command, result.status, result.exit_code, result.ok) == ("sync", "succeeded", 0, True)
    [stream] = result.streams
    assert isinstance(result.streams, tuple)
    assert (stream.source, stream.resource, stream.mode, stream.status) == (
        "kitsu",
        "categories",
        "full",
        "succeeded",
    )
    assert stream.inserted > 0
    assert stream.requests > 0
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.status = "failed"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        stream.inserted = 0  # type: ignore[misc]
    events = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    finished = [e for e in events if e["event"] == "stream_finished"]
    assert [(e["source"], e["stream"], e["run_id"]) for e in finished] == [
        ("kitsu", "categories", result.run_id)
    ]

    # The same database, now through status/runs/replay/backfill with loaded Settings.
    settings = load_settings(sandbox_config)
    rows = api.status(settings=settings, database_url=db_url, log_level=None)
    by_stream = {(r.source, r.resource): r for r in rows}
    assert by_stream[("kitsu", "categories")].last_status == "succeeded"
    assert by_stream[("kitsu", "categories")].rows == stream.inserted
    [run] = api.runs(settings=settings, database_url=db_url, last=5, log_level=None)
    assert (run.run_id, run.status) == (result.run_id, "succeeded")

    replayed = api.replay(
        settings=settings, source="kitsu", resource="categories", database_url=db_url, log_level=None
    )
    assert [(s.mode, s.status, s.inserted, s.unchanged) for s in replayed.streams] == [
        ("replay", "succeeded", 0, stream.inserted)
    ]
    back = api.backfill(
        settings=settings,
        source="kitsu",
        resource="categories",
        full=True,
        database_url=db_url,
        log_level=None,
    )
    assert back.backfill_id is not None
    assert [(s.mode, s.status, s.backfill_id) for s in back.streams] == [
        ("backfill", "succeeded", back.backfill_id)
    ]


def test_bad_calls_raise_clear_errors(sandbox_config: Path) -> None:
    settings = load_settings(sandbox_config)
    with pytest.raises(ConfigError, match="not both"):
        api.sync(config=sandbox_config, settings=settings, log_level=None)
    with pytest.raises(ConfigError, match="needs source=NAME"):
        api.backfill(settings=settings, full=True, log_level=None)
    with pytest.raises(ConfigError, match="unknown source"):
        api.sync(
            settings=settings, source="nope", database_url=os.environ.get("DATABASE_URL"), log_level=None
        )
    with pytest.raises(DatabaseError, match=r"127\.0\.0\.1:9/x.*start the server"):
        api.status(settings=settings, database_url="postgresql://u:hunter2@127.0.0.1:9/x", log_level=None)


def test_documented_example_runs_as_written(sandbox_config: Path, db_url: str, tmp_path: Path) -> None:
    """The ```python blocks of README.md and docs/*.md, run from a folder holding config/sandbox.toml."""
    blocks = [
        b for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))] for b in python_blocks(path)
    ]
    assert blocks, "the Python API example is gone from the docs"
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "sandbox.toml").write_text(sandbox_config.read_text())
    for block in blocks:
        done = subprocess.run(
            [sys.executable, "-c", block],
            cwd=tmp_path,
            env={**os.environ, "DATABASE_URL": db_url, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert "succeeded" in done.stdout, done.stdout
