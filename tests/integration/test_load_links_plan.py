"""Link diffs are bounded by the batch: EXPLAIN of every statement they issue shows no scan of a whole table.

The link tables hold many rows of other owners (another source's 4,000 media with four titles and
two genres each); the loader then writes a batch of 20 Kitsu media twice (first load, then with
changed titles and genres). Every SQL statement the loader sends is recorded and explained with
its own arguments: none may read one of the large catalogue tables by a sequential scan.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import asyncpg
import orjson
import pytest

from pipeline.load import Loader
from pipeline.records import Batch

pytestmark = pytest.mark.db

OTHER_MEDIA = 4_000


class Recording:
    """An asyncpg connection that records the SQL (and arguments) of every query sent through it."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn
        self.statements: list[tuple[str, tuple[Any, ...]]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    async def fetch(self, sql: str, *args: Any) -> Any:
        self.statements.append((sql, args))
        return await self._conn.fetch(sql, *args)

    async def fetchval(self, sql: str, *args: Any) -> Any:
        self.statements.append((sql, args))
        return await self._conn.fetchval(sql, *args)

    async def fetchrow(self, sql: str, *args: Any) -> Any:
        self.statements.append((sql, args))
        return await self._conn.fetchrow(sql, *args)

    async def execute(self, sql: str, *args: Any) -> Any:
        self.statements.append((sql, args))
        return await self._conn.execute(sql, *args)


def kitsu_batch(version: int) -> Batch:
    batch = Batch()
    for g in range(3):
        batch.add("catalog.genres", {"source_id": f"g{g}", "name": f"Genre {g}", "slug": f"genre-{g}"})
    for n in range(20):
        sid = f"anime/{n}"
        batch.add("catalog.media", {"source_id": sid, "source_kind": "kitsu", "kind": "anime", "title": sid})
        for t in range(3):
            title = {"media_source_id": sid, "locale": None if t == 0 else f"l{t}", "is_synonym": t == 2}
            batch.add("catalog.media_titles", {**title, "title": f"{sid} title {t} v{version * (t == 1)}"})
        for g in range(2):
            genre = f"g{(n + g + version) % 3}"
            batch.add("catalog.media_genres", {"media_source_id": sid, "genre_source_id": genre})
    return batch


async def seed_other_owners(conn: asyncpg.Connection) -> None:
    await conn.execute(
        f"""INSERT INTO catalog.media (source, source_id, content_hash, source_kind, kind, title)
            SELECT 'anilist', n::text, '\\x00', 'anilist', 'anime', 'm' || n
            FROM generate_series(1, {OTHER_MEDIA}) n;
            INSERT INTO catalog.genres (source, source_id, content_hash, name, slug)
            SELECT 'anilist', 'g' || n, '\\x00', 'G' || n, 'g' || n FROM generate_series(0, 9) n;
            INSERT INTO catalog.media_titles (source, media_id, media_source_id, locale, title, is_synonym)
            SELECT 'anilist', m.id, m.source_id, CASE WHEN t = 0 THEN NULL ELSE 'l' || t END,
                   m.title || ' ' || t, t = 3
            FROM catalog.media m, generate_series(0, 3) t WHERE m.source = 'anilist';
            INSERT INTO catalog.media_genres (source, media_id, media_source_id, genre_id, genre_source_id)
            SELECT 'anilist', m.id, m.source_id, g.id, g.source_id
            FROM catalog.media m JOIN catalog.genres g
              ON g.source = 'anilist' AND g.source_id IN ('g' || (m.id % 10), 'g' || ((m.id + 1) % 10))
            WHERE m.source = 'anilist';
            ANALYZE catalog.media; ANALYZE catalog.genres;
            ANALYZE catalog.media_titles; ANALYZE catalog.media_genres"""
    )


def plan_nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", ()):
        yield from plan_nodes(child)


async def test_every_link_statement_is_bounded_by_the_batch(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as raw_conn:
        await seed_other_owners(raw_conn)
        conn = Recording(raw_conn)
        loader = Loader(conn, "kitsu", run_id=None, owned_tables=("catalog.media",))  # type: ignore[arg-type]
        first = await loader.load(kitsu_batch(0))
        again = await loader.load(kitsu_batch(1))
        unchanged = await loader.load(kitsu_batch(1))
        assert first.links_written == 20 * 3 + 20 * 2
        assert again.links_written == 20 * 2 + 20 * 2  # per media: a title replaced, one genre of two
        assert unchanged.links_written == 0
        titles = await raw_conn.fetchval("SELECT count(*) FROM catalog.media_titles WHERE source = 'kitsu'")
        assert titles == 60
        large = {
            "media",
            "media_titles",
            "media_genres",
        }  # thousands of rows (a seq scan of 10 genres is fine)
        explained = 0
        for sql, args in conn.statements:
            verb = sql.lstrip().split(None, 1)[0].upper()
            if verb not in ("SELECT", "WITH", "DELETE", "UPDATE", "INSERT") or "catalog" not in sql:
                continue
            doc = await raw_conn.fetchval(f"EXPLAIN (FORMAT JSON) {sql}", *args)
            plan = (orjson.loads(doc) if isinstance(doc, str) else doc)[0]["Plan"]
            scans = [
                n["Relation Name"]
                for n in plan_nodes(plan)
                if n["Node Type"] == "Seq Scan" and n["Relation Name"] in large
            ]
            assert not scans, f"sequential scan of {scans} in: {sql}"
            explained += 1
        link_sql = [s for s, _ in conn.statements if "media_titles" in s or "media_genres" in s]
        assert any(s.lstrip().startswith("DELETE") for s in link_sql)  # the changed batch deleted by row
        assert explained >= 6


def rows_read(node: dict[str, Any]) -> int:
    """Rows a plan node took from its relation: those it returned plus those its filters dropped."""
    loops = int(node.get("Actual Loops", 1))
    kept = int(node.get("Actual Rows", 0)) * loops
    dropped = sum(int(node.get(k, 0)) for k in ("Rows Removed by Filter", "Rows Removed by Index Recheck"))
    return kept + dropped


async def test_lookups_read_only_the_batch_s_rows_when_statistics_are_stale(pool: asyncpg.Pool) -> None:
    """A first scan fills catalog.media faster than autovacuum analyzes it. Statistics taken while the
    source had a few rows made ``source_id = ANY($2)`` read every row of the source per batch
    (measured on PostgreSQL 15: 0.3 ms → 560 ms a lookup by 20k rows, O(N²) per scan). The lookups
    probe the unique index per key instead: executed with their own arguments on a table with
    stale statistics, no node reads more than a few rows per key."""
    async with pool.acquire() as raw_conn:
        await raw_conn.execute(
            f"""INSERT INTO catalog.media (source, source_id, content_hash, source_kind, kind, title)
               SELECT 'kitsu', 'anime/' || n, '\\x00', 'kitsu', 'anime', 'm' || n
               FROM generate_series(1000, 1019) n;
               ANALYZE catalog.media;
               INSERT INTO catalog.media (source, source_id, content_hash, source_kind, kind, title)
               SELECT 'kitsu', 'anime/' || n, '\\x00', 'kitsu', 'anime', 'm' || n
               FROM generate_series(2000, 2000 + {OTHER_MEDIA}) n"""
        )
        conn = Recording(raw_conn)
        loader = Loader(conn, "kitsu", run_id=None, owned_tables=("catalog.media",))  # type: ignore[arg-type]
        await loader.load(kitsu_batch(0))
        await loader.load(kitsu_batch(1))
        lookups = [
            (sql, args)
            for sql, args in conn.statements
            if sql.lstrip().upper().startswith("SELECT") and '"catalog"."media"' in sql
        ]
        assert lookups, "no lookup of catalog.media was sent"
        for sql, args in lookups:
            async with raw_conn.transaction():
                doc = await raw_conn.fetchval(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", *args)
            plan = (orjson.loads(doc) if isinstance(doc, str) else doc)[0]["Plan"]
            keys = max((len(a) for a in args if isinstance(a, list | tuple)), default=1)
            for node in plan_nodes(plan):
                if node.get("Relation Name") == "media":
                    assert rows_read(node) <= 2 * keys, (
                        f"{node['Node Type']} read {rows_read(node)} rows: {sql}"
                    )


async def test_statistics_are_refreshed_each_time_a_table_doubles(
    pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The loader ANALYZEs a table it wrote ANALYZE_MIN_ROWS rows into, then again each time its rows
    double: the planner's row counts follow a first scan instead of lagging behind autovacuum."""
    from pipeline.load import loader as loader_module

    monkeypatch.setattr(loader_module, "ANALYZE_MIN_ROWS", 50)
    async with pool.acquire() as conn:
        loader = Loader(conn, "kitsu", run_id=None, owned_tables=("catalog.media",))

        async def reltuples(table: str) -> float:
            return float(
                await conn.fetchval("SELECT reltuples FROM pg_class WHERE oid = $1::regclass", table)
            )

        await loader.load(kitsu_batch(0))  # 20 media, 60 titles, 40 genre links
        assert loader.analyzed == 1  # titles only: 60 >= 50
        assert await reltuples("catalog.media_titles") == 60
        # Only the indexed columns get statistics (what the loader's plans filter and join on): a
        # full ANALYZE of a wide table costs several times more, four times per first scan.
        analyzed = {
            r[0]
            for r in await conn.fetch(
                "SELECT attname FROM pg_stats WHERE schemaname = 'catalog' AND tablename = 'media_titles'"
            )
        }
        assert {"media_id", "media_source_id", "source", "locale", "title"} <= analyzed
        assert not analyzed & {"synced_at", "run_id"}
        assert await reltuples("catalog.media") < 20  # not analyzed yet
        await loader.load(kitsu_batch(1))  # titles: 40 rewritten (< 60 since), genres 40 + 40 >= 50
        assert loader.analyzed == 2
        assert await reltuples("catalog.media_genres") == 40
        await loader.load(kitsu_batch(2))  # media untouched (same content); titles 80 since >= 60
        assert loader.analyzed == 3
        assert await reltuples("catalog.media_titles") == 60
