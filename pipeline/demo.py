"""``make demo``: embedded PostgreSQL + the five sandbox APIs + a real sync + a summary and example queries.

The sandbox runs in a child process with its quotas raised (``pipeline sandbox --fast``; Nekos keeps
its 1 req/s) and is deterministic (seeded), so a second demo run finds the same data: it runs
incrementally where the APIs allow (Zou events log, AniList ``UPDATED_AT_DESC``) and re-scans with
content hashes elsewhere, rewriting nothing that did not change.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import asyncpg

from pipeline import db, sources
from pipeline.api import RunResult, with_pool
from pipeline.commands import render_summary, table
from pipeline.progress import progress
from pipeline.runner import run_sync
from pipeline.runs import RunSummary
from pipeline.settings import load_settings

QUERIES = db.QUERIES_DIR
ROWS_SHOWN = 5
SANDBOX_START_SECONDS = 60.0


def run_demo(size: str = "medium", config_out: Path | None = None) -> int:
    return asyncio.run(_demo(size, config_out or db.DATA_DIR / "demo.toml"))


async def _demo(size: str, config_out: Path) -> int:
    started = time.perf_counter()
    async with sandbox_process(size, config_out) as log_path:
        print(f"sandbox: five simulated APIs ({size} dataset) on 127.0.0.1, log in {log_path}")
        settings = load_settings(config_out)

        async def work(pool: asyncpg.Pool) -> RunSummary:
            names = [s.name for s in settings.enabled_sources()]
            seen = await pool.fetchval(
                "SELECT count(*) FROM etl.checkpoints WHERE source = ANY($1::text[])", names
            )
            print(
                "incremental run: checkpoints exist, so only changes are fetched where the API allows "
                "(Zou events, AniList updated-desc) and unchanged rows are not rewritten"
                if seen
                else "first run: full sync of every source, all five concurrently"
            )
            with progress() as bars:
                summary = await run_sync(
                    settings,
                    pool,
                    stream_factory=sources.build_stream,
                    client_factory=sources.open_client,
                    progress=bars,
                )
            print(render_summary(RunResult.of(summary)))
            await show_queries(pool)
            return summary

        summary = await with_pool(settings, work)
    url = db.display_url(db.resolve_url(settings.database_url()))
    print(f'\ndone in {time.perf_counter() - started:.0f} s. Query the results: psql "{url}"')
    print(f"more example queries: {QUERIES}/ ; config used: {config_out}")
    return summary.exit_code


@asynccontextmanager
async def sandbox_process(size: str, config_out: Path) -> AsyncIterator[Path]:
    """Serve the sandbox from a child process (its own core), until the config it writes appears."""
    log_path = _fresh(config_out)
    with log_path.open("wb") as log_file:
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "pipeline", "sandbox", "--size", size, "--fast",
            "--write-config", str(config_out),
            stdout=log_file, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + SANDBOX_START_SECONDS
            while not _written(config_out):
                if child.returncode is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the sandbox did not start; see {log_path}")
                await asyncio.sleep(0.05)
            yield log_path
        finally:
            if child.returncode is None:
                child.terminate()
                await child.wait()


def _fresh(config_out: Path) -> Path:
    """Remove a config left by an earlier demo (its ports are gone); return the sandbox log path."""
    config_out.parent.mkdir(parents=True, exist_ok=True)
    config_out.unlink(missing_ok=True)
    return config_out.with_suffix(".sandbox.log")


def _written(path: Path) -> bool:
    return path.exists()


def query_title(sql: str, path: Traversable) -> str:
    for line in sql.splitlines():
        if line.startswith("--"):
            return line.lstrip("- ").strip()
    return path.name.removesuffix(".sql")


async def show_queries(pool: asyncpg.Pool) -> None:
    """Run every example query and print its first rows."""
    for path in sorted((p for p in QUERIES.iterdir() if p.name.endswith(".sql")), key=lambda p: p.name):
        sql = path.read_text(encoding="utf-8")
        try:
            rows = await pool.fetch(sql)
        except asyncpg.PostgresError as exc:
            print(f"\n{path.name}: failed: {exc}")
            continue
        print(f"\n-- {path.name}: {query_title(sql, path)} ({len(rows)} rows)")
        if rows:
            headers = list(rows[0].keys())
            print(table(headers, [[_cell(r[h]) for h in headers] for r in rows[:ROWS_SHOWN]]))


def _cell(value: Any) -> Any:
    text = value if isinstance(value, int | float) or value is None else str(value)
    return text[:40] + "…" if isinstance(text, str) and len(text) > 41 else text
