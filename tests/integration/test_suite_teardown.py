"""The suite stops the embedded server it started, and leaves alone one that was already running."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]


def test_a_suite_that_started_the_embedded_server_stops_it(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["PIPELINE_DATA_DIR"] = str(tmp_path / "data")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "tests/integration/test_migrations.py::test_applies_every_migration_once"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "1 passed" in done.stdout
    assert (tmp_path / "data" / "postgres").is_dir()  # the suite did start its own embedded server
    assert not (tmp_path / "data" / "postgres" / "postmaster.pid").exists()  # … and stopped it
