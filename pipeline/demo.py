"""``make demo``: embedded PostgreSQL + the five sandbox APIs + a real sync + a summary and example queries.

The sandbox is deterministic (seeded), so a second demo run finds the same data: it runs
incrementally where the APIs allow (Zou events log, AniList ``UPDATED_AT_DESC``) and re-scans with
content hashes elsewhere, rewriting nothing that did not change.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import asyncpg

from pipeline import db, sources
from pipeline.commands import render_summary, table, with_pool
from pipeline.progress import progress
from pipeline.runner import run_sync
from pipeline.runs import RunSummary
from pipeline.settings import load_settings

QUERIES = db.ROOT / "sql" / "queries"
ROWS_SHOWN = 5


def run_demo(size: str = "medium", config_out: Path | None = None) -> int:
    return asyncio.run(_demo(size, config_out or db.DATA_DIR / "demo.toml"))


async def _demo(size: str, config_out: Path) -> int:
    from pipeline.sandbox.server import start_sandbox, write_config

    started = time.perf_counter()
    async with await start_sandbox(size, options=demo_options()) as sandbox:
        print(
            f"sandbox: five simulated APIs ({size} dataset) on 127.0.0.1, "
            f"up in {sandbox.startup_seconds:.1f} s"
        )
        settings = load_settings(write_config(sandbox, config_out))

        async def work(pool: asyncpg.Pool) -> RunSummary:
            names = [s.name for s in settings.enabled_sources()]
            seen = await pool.fetchval(
                "SELECT count(*) FROM etl.checkpoints WHERE source = ANY($1::text[])", names
            )
            print(
                "incremental run: checkpoints exist, so only changes are fetched where the API allows "
                "(Zou events, AniList updated-desc) and unchanged rows are not rewritten"
                if seen
                else "first run: full sync of every source"
            )
            with progress() as bars:
                summary = await run_sync(
                    settings,
                    pool,
                    stream_factory=sources.build_stream,
                    client_factory=sources.open_client,
                    progress=bars,
                )
            print(render_summary(summary))
            await show_queries(pool)
            return summary

        summary = await with_pool(settings, work)
    url = db.display_url(db.resolve_url(settings.database_url()))
    print(f'\ndone in {time.perf_counter() - started:.0f} s. Query the results: psql "{url}"')
    print(f"more example queries: {QUERIES}/ ; config used: {config_out}")
    return summary.exit_code


def demo_options() -> dict[str, Any]:
    """Sandbox options for the demo: the real quirks, with AniList's quota raised so it fits in minutes."""
    return {"anilist_requests_per_minute": 600}


def query_title(sql: str, path: Path) -> str:
    for line in sql.splitlines():
        if line.startswith("--"):
            return line.lstrip("- ").strip()
    return path.stem


async def show_queries(pool: asyncpg.Pool) -> None:
    """Run every example query and print its first rows."""
    for path in sorted(QUERIES.glob("*.sql")):
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
