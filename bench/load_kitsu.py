"""The loader on real-shaped Kitsu records against a plain COPY of the same rows into the same tables.

Pages are fetched once from the sandbox's Kitsu (large world, the query our connector sends:
``bench.e2e.QUERY``) into a file; then each phase runs in its own child process, into its own
fresh migrated database, over the same pages in batches of ``BATCH`` records:

- ``copy``: the baseline. Parse, transform, then plain binary COPY of the rows the transform made
  (with the row hashes the tables require) into ``catalog.media``, ``catalog.media_titles``,
  ``catalog.media_genres`` (owner ids read back by one ``= ANY`` query) and ``raw.records``
  (payload serialised, hashed): no staging, no comparison, no checkpoint.
- ``load``: parse, transform, ``Loader.load``: the same tables through the real path (first-load
  COPY, link diffs, raw landing with content hashes, poison screening), one transaction per batch.
- ``reload``: the same pages again over the loaded tables (nothing changed): the nightly case.

Figures: records/s of each, load / copy (target >= 0.5) and reload / copy, plus WAL per phase.
``BENCH_LOAD_KITSU_RECORDS`` sets the count (default 20000). ``python -m bench.load_kitsu PHASE
PAGES_FILE URL`` is a child.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg
import orjson

from bench.common import BenchServer, emit, require_connector, row, run_child, scratch_database

NAME = "load: real-shaped kitsu anime"
RECORDS = int(os.environ.get("BENCH_LOAD_KITSU_RECORDS", "20000"))
BATCH = 500  # records per transaction on both sides (the runner's batch_min_rows)
PAGE = 20
IN_FLIGHT = 8
TARGET = 0.5
CHILD_TIMEOUT = 900.0
MEDIA_COLUMNS: tuple[str, ...] = ()


# -- pages ------------------------------------------------------------------------------------------
async def fetch_pages(server: BenchServer, path: Path, records: int) -> int:
    """The first ``records`` anime as the connector reads them, one JSON document per line."""
    import aiohttp

    from bench.e2e import QUERY, fetch_token

    config, base, root = server.info["config"], server.info["urls"]["kitsu"], server.info["roots"]["kitsu"]
    token = await fetch_token(root, config)
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/vnd.api+json"}
    todo = list(range(-(-records // PAGE)))
    pages: dict[int, bytes] = {}

    async def worker(session: aiohttp.ClientSession) -> None:
        while todo:
            n = todo.pop()
            params = {"page[limit]": str(PAGE), "page[offset]": str(n * PAGE), **QUERY}
            async with session.get(base + "/anime", params=params, headers=headers) as resp:
                resp.raise_for_status()
                pages[n] = await resp.read()

    async with aiohttp.ClientSession() as session, asyncio.TaskGroup() as tasks:
        for _ in range(IN_FLIGHT):
            tasks.create_task(worker(session))
    count = 0
    with path.open("wb") as out:
        for n in sorted(pages):
            doc = orjson.loads(pages[n])
            count += len(doc["data"])
            out.write(orjson.dumps(doc) + b"\n")
    return count


def batches(path: Path) -> list[list[bytes]]:
    """The page texts grouped ``BATCH`` records at a time (read before the clock starts)."""
    lines = path.read_bytes().splitlines()
    per = max(1, BATCH // PAGE)
    return [lines[i : i + per] for i in range(0, len(lines), per)]


def transformed(texts: list[bytes]) -> Any:
    from pipeline.records import Batch
    from pipeline.transform import transform

    out = Batch()
    for text in texts:
        batch = transform("kitsu", "anime", orjson.loads(text), {})
        out.raw.extend(batch.raw)
        out.rejects.extend(batch.rejects)
        for table, rows in batch.rows.items():
            out.rows.setdefault(table, []).extend(rows)
    return out


# -- children ---------------------------------------------------------------------------------------
async def phase_load(path: Path, url: str, passes: int) -> dict[str, Any]:
    from pipeline import db
    from pipeline.gcpolicy import batch_gc
    from pipeline.load import LoadCounts, Loader
    from pipeline.models import catalog as _catalog  # noqa: F401  (registers the catalog table specs)

    groups = batches(path)
    totals = LoadCounts()
    async with db.pool_for(url, min_size=1, max_size=2) as pool, pool.acquire() as conn:
        for n in range(passes):
            before = await conn.fetchval("SELECT pg_current_wal_lsn()::text")
            loader = Loader(conn, "kitsu", None)
            with batch_gc():
                started, cpu = time.perf_counter(), time.process_time()
                for texts in groups:
                    totals.add(await loader.load(transformed(texts)))
                seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
            wal = await conn.fetchval(
                "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1::text::pg_lsn)", before
            )
            if n == passes - 1:
                raw = await conn.fetchval("SELECT count(*) FROM raw.records")
                titles = await conn.fetchval("SELECT count(*) FROM catalog.media_titles")
                genres = await conn.fetchval("SELECT count(*) FROM catalog.media_genres")
    return {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "wal_bytes": int(wal),
        "records": sum(len(orjson.loads(t)["data"]) for g in groups for t in g),
        "raw": raw,
        "titles": titles,
        "genres": genres,
        "written": totals.inserted + totals.updated,
    }


async def phase_copy(path: Path, url: str) -> dict[str, Any]:
    """Plain binary COPY of the transformed rows (asyncpg's own codecs, no staging, no hashes)."""
    from pipeline.gcpolicy import batch_gc
    from pipeline.load import row_hash
    from pipeline.models import catalog as _catalog  # noqa: F401  (registers the catalog table specs)
    from pipeline.tables import spec

    groups = batches(path)
    media_columns = list(spec("catalog.media").columns)
    title_columns = list(spec("catalog.media_titles").columns)
    conn = await asyncpg.connect(url)
    try:
        before = await conn.fetchval("SELECT pg_current_wal_lsn()::text")
        with batch_gc():
            started, cpu = time.perf_counter(), time.process_time()
            for texts in groups:
                batch = transformed(texts)
                async with conn.transaction():
                    media = batch.rows.get("catalog.media", [])
                    await conn.copy_records_to_table(
                        "media",
                        schema_name="catalog",
                        columns=["source", "source_id", "source_updated_at", "content_hash", *media_columns],
                        records=[
                            ("kitsu", m["source_id"], m.get("source_updated_at"), row_hash(values), *values)
                            for m in media
                            for values in ([m.get(c) for c in media_columns],)
                        ],
                    )
                    ids = dict(
                        await conn.fetch(
                            "SELECT source_id, id FROM catalog.media WHERE source = 'kitsu' "
                            "AND source_id = ANY($1::text[])",
                            [m["source_id"] for m in media],
                        )
                    )
                    await conn.copy_records_to_table(
                        "media_titles",
                        schema_name="catalog",
                        columns=["source", "media_id", "media_source_id", *title_columns],
                        records=[
                            (
                                "kitsu",
                                ids.get(t["media_source_id"]),
                                t["media_source_id"],
                                *(t.get(c) for c in title_columns),
                            )
                            for t in batch.rows.get("catalog.media_titles", [])
                        ],
                    )
                    await conn.copy_records_to_table(
                        "media_genres",
                        schema_name="catalog",
                        columns=["source", "media_id", "media_source_id", "genre_source_id"],
                        records=[
                            (
                                "kitsu",
                                ids.get(g["media_source_id"]),
                                g["media_source_id"],
                                g["genre_source_id"],
                            )
                            for g in batch.rows.get("catalog.media_genres", [])
                        ],
                    )
                    raw = []
                    for r in batch.raw:
                        text = orjson.dumps(r.payload, option=orjson.OPT_SORT_KEYS)
                        raw.append(
                            (
                                "kitsu",
                                r.resource,
                                str(r.source_id),
                                text.decode(),
                                hashlib.blake2b(text, digest_size=16).digest(),
                            )
                        )
                    await conn.copy_records_to_table(
                        "records",
                        schema_name="raw",
                        columns=["source", "resource", "source_id", "payload", "content_hash"],
                        records=raw,
                    )
            seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        wal = await conn.fetchval("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1::text::pg_lsn)", before)
        raw_n = await conn.fetchval("SELECT count(*) FROM raw.records")
        titles = await conn.fetchval("SELECT count(*) FROM catalog.media_titles")
        genres = await conn.fetchval("SELECT count(*) FROM catalog.media_genres")
    finally:
        await conn.close()
    return {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "wal_bytes": int(wal),
        "records": sum(len(orjson.loads(t)["data"]) for g in groups for t in g),
        "raw": raw_n,
        "titles": titles,
        "genres": genres,
    }


def child(argv: list[str]) -> None:
    name, pages, url = argv
    if name == "copy":
        emit(asyncio.run(phase_copy(Path(pages), url)))
    elif name in ("load", "reload"):
        emit(asyncio.run(phase_load(Path(pages), url, 1 if name == "load" else 2)))
    else:
        raise SystemExit(f"unknown phase {name!r}: use copy, load or reload")


# -- parent -----------------------------------------------------------------------------------------
async def measure(pages: Path) -> dict[str, dict[str, Any]]:
    got = {}
    for name in ("copy", "load", "reload"):
        async with scratch_database("bench_loadk") as url:
            got[name] = await asyncio.to_thread(
                run_child, "bench.load_kitsu", [name, str(pages), url], CHILD_TIMEOUT
            )
    return got


def main() -> list[dict[str, Any]]:
    require_connector("kitsu")
    with tempfile.TemporaryDirectory(prefix="bench-loadk-") as work:
        pages = Path(work) / "pages.jsonl"
        config = str(Path(work) / "sandbox.toml")
        with BenchServer("sandbox", ["--size", "large", "--services", "kitsu", "--config", config]) as server:
            fetched = asyncio.run(fetch_pages(server, pages, RECORDS))
        got = asyncio.run(measure(pages))
    copy, load, reload = got["copy"], got["load"], got["reload"]
    for name, side in got.items():
        if (side["raw"], side["titles"], side["genres"]) != (copy["raw"], copy["titles"], copy["genres"]):
            raise RuntimeError(f"{name} stored different rows from the plain COPY: {side} vs {copy}")
    rate = {name: side["records"] / side["seconds"] for name, side in got.items()}
    mb = 2**20
    stored = (
        f"{copy['raw']:,} raw records, {copy['raw']:,} media, {copy['titles']:,} titles, "
        f"{copy['genres']:,} genre links"
    )

    def note(side: dict[str, Any]) -> str:
        return (
            f"{side['records']:,} records in {side['seconds']:.1f} s "
            f"(client CPU {side['cpu_seconds']:.1f} s), WAL {side['wal_bytes'] / mb:.0f} MB"
        )

    ratio, again = rate["load"] / rate["copy"], rate["reload"] / rate["copy"]
    return [
        row(NAME, "plain COPY records/s", round(rate["copy"]), "reference", True, f"{note(copy)}; {stored}"),
        row(NAME, "loader records/s (first load)", round(rate["load"]), "reference", True, note(load)),
        row(
            NAME,
            "loader / plain COPY",
            round(ratio, 3),
            f">= {TARGET}",
            ratio >= TARGET,
            f"{fetched:,} sandbox records (query of bench.e2e), {BATCH} per transaction on both sides, "
            "each phase in its own process and fresh database; the loader also hashes, compares, "
            "screens poison and tracks first loads",
        ),
        row(
            NAME,
            "loader records/s (same pages again)",
            round(rate["reload"]),
            "reference",
            True,
            note(reload),
        ),
        row(
            NAME,
            "reload / plain COPY",
            round(again, 3),
            "reference",
            True,
            f"nothing changed: written {reload['written'] - load['written']:,} rows on the second pass",
        ),
    ]


if __name__ == "__main__":
    child(sys.argv[1:])
