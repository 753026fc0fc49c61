"""The command line without a live API: database problems, flags, help texts."""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from pipeline.cli import main
from tests.dbutil import with_database

CONFIG = """
[sources.kitsu]
kind = "kitsu"
base_url = "http://127.0.0.1:9/api/edge"
resources = ["anime"]
"""


def run(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipeline", *args],
        capture_output=True, text=True, timeout=120, check=False, cwd=cwd,
        env={**os.environ, **(env or {})},
    )  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "pipeline.toml"
    path.write_text(CONFIG)
    return path


def test_refused_database_is_one_line_exit_2(config: Path) -> None:
    url = f"postgresql://etl:hunter2@127.0.0.1:{free_port()}/warehouse"
    done = run("--config", str(config), "status", env={"DATABASE_URL": url})
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert "hunter2" not in done.stderr
    assert f"127.0.0.1:{url.rsplit(':', 1)[1].split('/')[0]}/warehouse" in lines[0]
    assert "start the server or fix the host/port" in lines[0]


@pytest.mark.db
def test_unknown_database_and_role_name_the_fix(config: Path, database_url: str) -> None:
    done = run(
        "--config",
        str(config),
        "migrate",
        env={"DATABASE_URL": with_database(database_url, "no_such_db_here")},
    )
    assert done.returncode == 2
    assert "database 'no_such_db_here' does not exist; create it" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    parts = urlsplit(database_url)
    netloc = "nobody_here:pw@" + parts.netloc.rsplit("@", 1)[-1]
    other = urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))
    done = run("--config", str(config), "migrate", env={"DATABASE_URL": other})
    assert done.returncode == 2
    assert "nobody_here" in done.stderr
    assert "pw@" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_main_returns_2_for_a_refused_database(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", f"postgresql://u@127.0.0.1:{free_port()}/x")
    assert main(["--config", str(config), "--log-level", "error", "migrate"]) == 2


def no_config_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PIPELINE_CONFIG"}
    return {**env, **extra}


def test_db_url_honours_database_url_without_a_config_file(tmp_path: Path) -> None:
    url = "postgresql://etl:s3cr%40t@db.example:5432/warehouse"
    done = subprocess.run(
        [sys.executable, "-m", "pipeline", "db", "url"],
        capture_output=True, text=True, timeout=60, check=False, cwd=tmp_path,
        env=no_config_env(DATABASE_URL=url),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "postgresql://etl:***@db.example:5432/warehouse"
    done = subprocess.run(
        [sys.executable, "-m", "pipeline", "db", "url", "--show-password"],
        capture_output=True, text=True, timeout=60, check=False, cwd=tmp_path,
        env=no_config_env(DATABASE_URL=url),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == url  # usable as psql "$(pipeline db url --show-password)"


@pytest.mark.db
def test_migrate_from_any_directory_without_a_config(tmp_path: Path, empty_db_url: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pipeline", "migrate"],
        capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path,
        env=no_config_env(DATABASE_URL=empty_db_url),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    expected = sorted(p.name for p in (Path(__file__).resolve().parents[2] / "sql").glob("*.sql"))
    assert done.stdout.strip() == f"applied {len(expected)} migration(s): " + ", ".join(expected)


def test_a_named_config_that_is_missing_is_still_an_error(tmp_path: Path) -> None:
    done = run("--config", str(tmp_path / "nope.toml"), "migrate")
    assert done.returncode == 2
    assert "nope.toml: config file not found" in done.stderr


def subcommands() -> dict[str, Any]:
    from pipeline.cli import build_parser

    action = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


@pytest.mark.parametrize("where", ["before", "after"])
def test_global_flags_work_before_and_after_the_command(config: Path, where: str) -> None:
    flags = ["--config", str(config), "--log-level", "warning", "--log-json"]
    argv = [*flags, "check-config"] if where == "before" else ["check-config", *flags]
    done = run(*argv)
    assert done.returncode == 0, done.stderr
    assert f"{config}: ok" in done.stdout


def test_flags_given_before_are_not_reset_by_the_command() -> None:
    from pipeline.cli import GLOBAL_DEFAULTS, build_parser

    args = build_parser().parse_args(["--config", "a.toml", "--log-json", "sync"])
    assert (args.config, args.log_json) == ("a.toml", True)
    args = build_parser().parse_args(["sync", "--config", "b.toml", "--log-console", "--log-level", "debug"])
    assert (args.config, args.log_json, args.log_level) == ("b.toml", False, "debug")
    args = build_parser().parse_args(["status"])
    assert not any(hasattr(args, name) for name in GLOBAL_DEFAULTS)  # main() fills the defaults in


def test_every_command_has_a_description_and_an_example() -> None:
    for name, parser in subcommands().items():
        text = parser.format_help()
        assert parser.description, name
        assert len(parser.description.splitlines()) == 1, name
        example = text.split("example:\n", 1)
        assert len(example) == 2, f"pipeline {name} --help shows no example"
        assert f"pipeline {name}" in example[1], f"the example of {name} does not run {name}"
        assert "--log-json" in text
        assert "--config" in text


def test_check_config_probes_the_database_unless_offline(config: Path) -> None:
    refused = {"DATABASE_URL": f"postgresql://etl:hunter2@127.0.0.1:{free_port()}/warehouse"}
    done = run("--config", str(config), "check-config", env=refused)
    assert done.returncode == 2
    assert f"{config}: ok" in done.stdout
    assert "cannot connect" in done.stderr
    assert "hunter2" not in done.stderr + done.stdout
    done = run("--config", str(config), "check-config", "--offline", env=refused)
    assert done.returncode == 0, done.stderr
    assert "database" not in done.stdout


@pytest.mark.db
def test_check_config_reports_the_server_and_pending_migrations(config: Path, empty_db_url: str) -> None:
    done = run("--config", str(config), "check-config", env={"DATABASE_URL": empty_db_url})
    assert done.returncode == 0, done.stderr
    count = len(list((Path(__file__).resolve().parents[2] / "sql").glob("*.sql")))
    assert "; PostgreSQL 1" in done.stdout
    assert f"{count} migration(s) pending" in done.stdout


DISABLED = """
[sources.kitsu]
kind = "kitsu"
base_url = "http://127.0.0.1:9/api/edge"
resources = ["categories"]
enabled = false
max_attempts = 1
"""


@pytest.mark.db
def test_a_disabled_source_is_refused_unless_include_disabled(tmp_path: Path, db_url: str) -> None:
    config = tmp_path / "disabled.toml"
    config.write_text(DISABLED)
    env = {"DATABASE_URL": db_url}
    for argv in (["sync", "--source", "kitsu"], ["backfill", "--source", "kitsu", "--full"]):
        done = run("--config", str(config), "--log-level", "error", *argv, env=env)
        assert done.returncode == 2, done.stderr
        assert "kitsu are disabled (enabled = false in" in done.stderr
        assert "--include-disabled" in done.stderr
        assert "run " not in done.stdout  # no run was even opened
    # Asked for explicitly, it runs (and fails here: nothing listens on port 9).
    done = run("--config", str(config), "--log-level", "error", "sync", "--source", "kitsu",
               "--include-disabled", env=env)  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "(sync): failed" in done.stdout
    assert any(line.split()[:2] == ["kitsu", "categories"] for line in done.stdout.splitlines())


WINDOWS = """
[sources.kitsu]
kind = "kitsu"
base_url = "http://127.0.0.1:9/api/edge"
resources = ["anime"]

[sources.nekos]
kind = "nekos"
base_url = "http://127.0.0.1:9/api/v1"
resources = ["images"]

[sources.v1]
kind = "anilist_v1"
base_url = "http://127.0.0.1:9/api"
resources = ["anime"]
auth = { kind = "oauth_client_credentials", client_id = "c", client_secret = "s" }
"""


@pytest.mark.parametrize(("source", "reason"), [
    ("kitsu", "updatedAt is rewritten"), ("nekos", "no update time"), ("v1", "no filter by update time"),
])  # fmt: skip
def test_a_window_on_a_kind_that_cannot_filter_by_time_is_refused(
    tmp_path: Path, db_url: str, source: str, reason: str
) -> None:
    """--since on Kitsu, Nekos or v1 exits 2 with the reason and the --full command; no ledger row."""
    config = tmp_path / "windows.toml"
    config.write_text(WINDOWS)
    done = run("--config", str(config), "backfill", "--source", source, "--since", "2024-01-01",
               env={"DATABASE_URL": db_url})  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert f"source {source} cannot back-fill a --since/--until window" in done.stderr
    assert reason in done.stderr
    assert f"pipeline backfill --source {source} --full" in done.stderr
    assert "run " not in done.stdout
    rows = subprocess.run(
        [sys.executable, "-c", "import asyncio, asyncpg, sys\n"
         "async def m():\n c = await asyncpg.connect(sys.argv[1])\n"
         " print(await c.fetchval('SELECT count(*) FROM etl.backfills'))\nasyncio.run(m())", db_url],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert rows.stdout.strip() == "0"


def test_dry_run_prints_the_plan_and_fetches_nothing(tmp_path: Path, db_url: str) -> None:
    """sync/backfill --dry-run list each stream with what it would do; no run row, no request."""
    config = tmp_path / "windows.toml"
    config.write_text(WINDOWS)
    env = {"DATABASE_URL": db_url}
    done = run("--config", str(config), "--log-level", "error", "sync", "--dry-run", env=env)
    assert done.returncode == 0, done.stderr
    rows = [line.split() for line in done.stdout.splitlines()]
    assert ["kitsu", "anime", "kitsu", "full", "scan", "(first", "run)", "-", "-"] in rows
    assert any(r[:3] == ["nekos", "images", "nekos"] for r in rows)
    assert "dry run: 3 stream(s) planned; nothing was fetched" in done.stdout
    done = run("--config", str(config), "--log-level", "error", "backfill", "--source", "kitsu", "--full",
               "--dry-run", env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "backfill: full re-scan" in done.stdout
    refused = run("--config", str(config), "backfill", "--source", "nekos", "--since", "2024-01-01",
                  "--dry-run", env=env)  # fmt: skip
    assert refused.returncode == 2
    assert "cannot back-fill a --since/--until window" in refused.stderr
    counts = subprocess.run(
        [sys.executable, "-c", "import asyncio, asyncpg, sys\n"
         "async def m():\n c = await asyncpg.connect(sys.argv[1])\n"
         " print(await c.fetchval('SELECT count(*) FROM etl.runs'),"
         " await c.fetchval('SELECT count(*) FROM etl.backfills'))\nasyncio.run(m())", db_url],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert counts.stdout.split() == ["0", "0"]  # nothing ran, no ledger row (and port 9 was never asked)


def test_a_reader_that_goes_away_ends_quietly_not_as_a_database_error() -> None:
    """``pipeline status | head -3``: the closed pipe is not a lost database; exit 141, no message."""
    script = (
        "import sys\n"
        "from pipeline import cli\n"
        "def flood(args):\n"
        "    for _ in range(200_000):\n"
        "        print('row ' * 20)\n"
        "    return 0\n"
        "cli._handler = lambda name: flood\n"
        "sys.exit(cli.main(['status']))\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    assert proc.stderr is not None
    assert proc.stdout.readline().startswith(b"row")
    proc.stdout.close()
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.wait(timeout=60) == 141
    assert err == ""
