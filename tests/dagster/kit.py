"""Helpers for the Dagster tests: a sandbox served from its own thread, a second database, table digests.

Dagster runs ops in the calling thread and each op runs its own event loop (``asyncio.run``), so
the sandbox cannot share the test's loop: it is served by a loop in a background thread.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import asyncpg

from pipeline import tables as table_specs
from pipeline.sandbox.server import FAST_OPTIONS, Sandbox, _toml, start_sandbox, write_config
from pipeline.settings import Settings, load_settings

T = TypeVar("T")
OPTIONS = {**FAST_OPTIONS, "anilist_requests_per_minute": 6000, "min_rescan_minutes": 0}


class ThreadSandbox:
    """``with ThreadSandbox() as sb:`` the five simulators on free ports, served by another thread."""

    def __init__(self, size: str = "small", options: dict[str, Any] | None = None) -> None:
        self.size, self.options = size, {**OPTIONS, **(options or {})}
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="sandbox", daemon=True)

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 120) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def __enter__(self) -> Sandbox:
        self.thread.start()
        self.sandbox = self.call(start_sandbox(self.size, options=self.options))
        return self.sandbox

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.call(self.sandbox.stop(), timeout=30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def sandbox_settings(sandbox: Sandbox, path: Path, only: set[str] | None = None, **source: Any) -> Settings:
    """The sandbox config, optionally reduced to ``only`` sources and with ``source`` keys overridden."""
    config = write_config(sandbox, path)
    if only is not None or source:
        lines, current = [], None
        for line in config.read_text().splitlines():
            if line.startswith("[sources."):
                current = line[len("[sources.") : -1]
            if only is not None and current is not None and current not in only:
                continue
            if current is not None and line.split("=")[0].strip() in source:
                continue  # replaced below
            lines.append(line)
            if line.startswith("[sources."):
                lines.extend(f"{k} = {_toml(v)}" for k, v in source.items())
        config.write_text("\n".join(lines) + "\n")
    return load_settings(config)


# Columns whose values differ between two correct runs: surrogate ids, run ids and load times.
VOLATILE = {"id", "run_id", "synced_at", "first_seen_at", "last_seen_at", "last_changed_at", "payload"}


async def table_digests(
    url: str, schemas: tuple[str, ...] = ("catalog", "production", "raw")
) -> dict[str, Any]:
    """{table: (rows, md5 of its sorted rows)}, with foreign ids replaced by the referenced natural key.

    ``payload`` (raw.records) is left out: its ``content_hash`` is compared, and volatile keys
    (signed URLs) may legitimately differ; ``deleted_at`` is compared as deleted or not.
    """
    conn = await asyncpg.connect(url)
    try:
        tables = await conn.fetch(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_schema = ANY($1::text[]) AND table_type = 'BASE TABLE' ORDER BY 1, 2",
            list(schemas),
        )
        out: dict[str, Any] = {}
        for t in tables:
            name = f"{t['table_schema']}.{t['table_name']}"
            cols = await conn.fetch(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = $1 "
                "AND table_name = $2 ORDER BY ordinal_position",
                t["table_schema"],
                t["table_name"],
            )
            fks = {
                r["col"]: r["ref"]
                for r in await conn.fetch(
                    """SELECT a.attname AS col, c.confrelid::regclass::text AS ref
                       FROM pg_constraint c JOIN pg_attribute a
                         ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
                       WHERE c.contype = 'f' AND c.conrelid = $1::regclass
                         AND array_length(c.conkey, 1) = 1""",
                    name,
                )
            }
            # Columns the table's spec leaves out of content_hash (signed URLs and their expiry).
            spec_volatile = {
                c
                for spec in table_specs.registered()
                if spec.name == name
                for c in getattr(spec, "volatile", ())
            }
            parts = []
            for c in (r["column_name"] for r in cols):
                if c in VOLATILE or c in spec_volatile:
                    continue
                if c == "deleted_at":
                    parts.append("(t.deleted_at IS NULL)::text")
                elif c in fks:
                    parts.append(
                        f"(SELECT r.source || ':' || r.source_id FROM {fks[c]} r WHERE r.id = t.{c})"
                    )
                else:
                    parts.append(f"t.{c}::text")
            row = "concat_ws('|', " + ", ".join(f"coalesce({p}, '<null>')" for p in parts) + ")"
            count, digest = await conn.fetchrow(
                f"SELECT count(*), md5(coalesce(string_agg(x, E'\\n' ORDER BY x), '')) "
                f"FROM (SELECT {row} AS x FROM {name} t) rows"
            )
            out[name] = (count, digest)
        return out
    finally:
        await conn.close()
