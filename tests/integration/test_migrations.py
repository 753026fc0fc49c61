"""Migrations: applied once, re-applied as no-ops, edited files refused, concurrent runs safe."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from pipeline import db
from pipeline.errors import MigrationError

pytestmark = pytest.mark.db


def _copy_sql(tmp_path: Path) -> Path:
    target = tmp_path / "sql"
    shutil.copytree(db.SQL_DIR, target)
    return target


async def test_applies_every_migration_once(empty_db_url: str) -> None:
    """A fresh database gets every sql/ file, in order, recorded with its checksum."""
    conn = await db.connect(empty_db_url)
    try:
        applied = await db.migrate(conn)
        expected = [m.name for m in db.discover()]
        assert applied == expected
        rows = await conn.fetch("SELECT name, checksum FROM etl.schema_migrations ORDER BY version")
        assert [(r["name"], r["checksum"]) for r in rows] == [(m.name, m.checksum) for m in db.discover()]
        assert await db.migrate(conn) == []
        tables = {
            r["t"]
            for r in await conn.fetch(
                "SELECT table_schema || '.' || table_name AS t FROM information_schema.tables "
                "WHERE table_schema IN ('etl', 'raw')"
            )
        }
        assert {"etl.runs", "etl.stream_runs", "etl.checkpoints", "etl.backfills", "etl.rejects"} <= tables
        assert "raw.records" in tables
    finally:
        await conn.close()


async def test_edited_migration_is_refused_by_name(empty_db_url: str, tmp_path: Path) -> None:
    """Editing an applied file is an error naming the file and the fix."""
    sql_dir = _copy_sql(tmp_path)
    conn = await db.connect(empty_db_url)
    try:
        await db.migrate(conn, sql_dir)
        first = sorted(sql_dir.glob("*.sql"))[0]
        first.write_text(first.read_text() + "\n-- edited\n")
        with pytest.raises(MigrationError, match=first.name) as info:
            await db.migrate(conn, sql_dir)
        assert "new numbered migration" in str(info.value)
    finally:
        await conn.close()


async def test_new_migration_is_applied_after_the_others(empty_db_url: str, tmp_path: Path) -> None:
    """A file added later is applied on the next run, the earlier ones are left alone."""
    sql_dir = _copy_sql(tmp_path)
    conn = await db.connect(empty_db_url)
    try:
        await db.migrate(conn, sql_dir)
        (sql_dir / "999_extra.sql").write_text("CREATE TABLE etl.extra_probe (x int);")
        assert await db.migrate(conn, sql_dir) == ["999_extra.sql"]
        assert await conn.fetchval("SELECT to_regclass('etl.extra_probe') IS NOT NULL")
    finally:
        await conn.close()


async def test_badly_named_file_is_refused(tmp_path: Path) -> None:
    """A file not named NNN_name.sql is an error that says how to name it."""
    (tmp_path / "init.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match=r"NNN_lower_snake\.sql"):
        db.discover(tmp_path)


async def test_concurrent_migrations_apply_each_file_once(empty_db_url: str) -> None:
    """Four processes' worth of concurrent migrate() calls apply every file exactly once."""
    conns = [await db.connect(empty_db_url) for _ in range(4)]
    try:
        results = await asyncio.gather(*(db.migrate(c) for c in conns))
        applied = [name for result in results for name in result]
        assert sorted(applied) == sorted(m.name for m in db.discover())
        count = await conns[0].fetchval("SELECT count(*) FROM etl.schema_migrations")
        assert count == len(db.discover())
    finally:
        for c in conns:
            await c.close()


DOCUMENTED_SCHEMAS = ["catalog", "production", "etl", "raw"]


async def test_every_table_view_and_column_has_a_comment(empty_db_url: str) -> None:
    """README promises a COMMENT on every table and column: after all migrations, name any without."""
    conn = await db.connect(empty_db_url)
    try:
        await db.migrate(conn)
        columns = await conn.fetch(
            """SELECT n.nspname || '.' || c.relname || '.' || a.attname AS name
               FROM pg_attribute a
               JOIN pg_class c ON c.oid = a.attrelid
               JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE n.nspname = ANY($1::text[]) AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
                 AND a.attnum > 0 AND NOT a.attisdropped
                 AND coalesce(col_description(c.oid, a.attnum), '') = ''
               ORDER BY 1""",
            DOCUMENTED_SCHEMAS,
        )
        relations = await conn.fetch(
            """SELECT n.nspname || '.' || c.relname AS name
               FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE n.nspname = ANY($1::text[]) AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
                 AND coalesce(obj_description(c.oid, 'pg_class'), '') = ''
               ORDER BY 1""",
            DOCUMENTED_SCHEMAS,
        )
        counted = await conn.fetchval(
            """SELECT count(*) FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
               JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE n.nspname = ANY($1::text[]) AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
                 AND a.attnum > 0 AND NOT a.attisdropped""",
            DOCUMENTED_SCHEMAS,
        )
    finally:
        await conn.close()
    assert counted > 200  # the query sees the schema (a wrong filter would find nothing to miss)
    missing = [f"table/view {r['name']}" for r in relations] + [f"column {r['name']}" for r in columns]
    assert not missing, "without a COMMENT (add one in a new migration): " + ", ".join(missing)


class _OldServer:
    """A connection to a PostgreSQL 14 server, as far as the version check can tell."""

    async def fetchval(self, query: str) -> str:
        return "140011" if "server_version_num" in query else "14.11"

    async def execute(self, query: str, *args: object) -> str:
        raise AssertionError(f"nothing may run on a server that is too old: {query}")


async def test_a_server_older_than_15_is_refused_with_its_version() -> None:
    from pipeline.errors import DatabaseError

    with pytest.raises(DatabaseError, match=r"PostgreSQL 14\.11 is too old.*15 or newer"):
        await db.migrate(_OldServer())  # type: ignore[arg-type]


async def test_the_server_under_test_is_new_enough(empty_db_url: str) -> None:
    conn = await db.connect(empty_db_url)
    try:
        version = await db.require_server_version(conn)
    finally:
        await conn.close()
    assert int(version.split(".")[0]) >= 15
