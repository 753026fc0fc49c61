"""Work after the batches: late reference resolution, soft deletes and deletes of what a scan did not see."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import asyncpg

from pipeline import tables
from pipeline.load.plans import ident
from pipeline.tables import EntityTable


async def _columns(conn: asyncpg.Connection, table: str) -> set[str]:
    rows = await conn.fetch(  # a registered table this database does not have has no columns
        "SELECT attname FROM pg_attribute "
        "WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped",
        table,
    )
    return {r["attname"] for r in rows}


async def resolve_refs(
    conn: asyncpg.Connection, source: str | None = None, touched: Iterable[str] | None = None
) -> int:
    """Fill NULL surrogate FKs whose natural key now has a target; return the rows fixed.

    ``touched`` (the tables a stream wrote) limits the work to the references that can have
    changed: those held by a touched table and those pointing at one. ``None`` checks them all.
    """
    wrote = None if touched is None else frozenset(touched)
    fixed = 0
    for spec in tables.registered():
        if not spec.refs:
            continue
        refs = [r for r in spec.refs if wrote is None or spec.name in wrote or r.table in wrote]
        if not refs:
            continue
        present = await _columns(conn, spec.name)
        for ref in refs:
            if ref.key not in present or ref.column not in present:
                continue  # without the natural key stored there is nothing to resolve from
            col, key = ident(ref.column), ident(ref.key)
            if isinstance(spec, EntityTable):
                sql = (
                    f"UPDATE {ident(spec.name)} t SET {col} = r.id FROM {ident(ref.table)} r "
                    f"WHERE t.{col} IS NULL AND t.{key} IS NOT NULL AND r.source = t.source "
                    f"AND r.source_id = t.{key} AND ($1::text IS NULL OR t.source = $1)"
                )
            else:
                owner = spec.owner
                sql = (
                    f"UPDATE {ident(spec.name)} t SET {col} = r.id "
                    f"FROM {ident(owner.table)} o, {ident(ref.table)} r "
                    f"WHERE t.{col} IS NULL AND t.{key} IS NOT NULL AND o.id = t.{ident(owner.column)} "
                    f"AND r.source = o.source AND r.source_id = t.{key} "
                    "AND ($1::text IS NULL OR o.source = $1)"
                )
            status = await conn.execute(sql, source)
            fixed += int(status.rsplit(" ", 1)[-1])
    return fixed


async def soft_delete(
    conn: asyncpg.Connection, table_or_resource: str, source: str, ids: Iterable[str]
) -> int:
    """Set ``deleted_at``: rows of an entity table by name (``production.tasks``), else of a raw resource."""
    wanted = [str(i) for i in ids]
    if not wanted:
        return 0
    if "." in table_or_resource:
        status = await conn.execute(
            f"UPDATE {ident(table_or_resource)} SET deleted_at = now() "
            "WHERE source = $1 AND source_id = ANY($2::text[]) AND deleted_at IS NULL",
            source,
            wanted,
        )
    else:
        status = await conn.execute(
            "UPDATE raw.records SET deleted_at = now() "
            "WHERE source = $1 AND resource = $2 AND source_id = ANY($3::text[]) AND deleted_at IS NULL",
            source,
            table_or_resource,
            wanted,
        )
    return int(status.rsplit(" ", 1)[-1])


async def delete_ids(
    conn: asyncpg.Connection, source: str, resource: str, ids: Sequence[str], owned: Sequence[str]
) -> int:
    """Soft-delete raw records of ``resource`` by id (and their rows in ``owned`` tables)."""
    gone = await conn.fetch(
        """UPDATE raw.records r SET deleted_at = now()
           WHERE r.source = $1 AND r.resource = $2 AND r.deleted_at IS NULL
             AND r.source_id = ANY($3::text[])
           RETURNING r.source_id""",
        source,
        resource,
        list(ids),
    )
    done = [r["source_id"] for r in gone]
    for table in owned:
        await soft_delete(conn, table, source, done)
    return len(done)  # one per record, however many tables held it
