"""Nested rows replaced per owner: an owner's live rows a batch no longer holds are soft-deleted.

Link tables are replaced per owner (``load.links``). Some entity tables hang off an owner too, and
a source sends them nested in the owner's own document: an AniList media carries its studios,
tags, relations, links and one page of characters and staff. When a batch says it holds an
owner's complete set (``Batch.replaced``), a row of that owner which the batch no longer holds
is gone at the source and must not stay live. The owner is the table's first ``Ref``. Rows that
hang off a row retired here (the voices of a character that left the media) go with it.

One statement per table, bounded by the owner index ``(source, <owner key>)``.
"""

from __future__ import annotations

from pipeline import tables
from pipeline.load.counts import LoadCounts
from pipeline.load.plans import ident
from pipeline.load.staging import Staging
from pipeline.records import Batch
from pipeline.tables import EntityTable


def owner_of(spec: EntityTable) -> str:
    """The key naming a row's owner: the table's first reference."""
    if not spec.refs:
        raise KeyError(f"{spec.name} has no reference to an owner; it cannot be replaced per owner")
    return spec.refs[0].key


async def retire_children(st: Staging, batch: Batch, counts: LoadCounts) -> dict[str, list[str]]:
    """Soft-delete the rows of ``batch.replaced`` owners the batch no longer holds; return them by table."""
    retired: dict[str, list[str]] = {}
    for spec in tables.registered():
        if not isinstance(spec, EntityTable) or not spec.refs:
            continue
        owners = set(batch.replaced.get(spec.name, ()))
        parent = spec.refs[0].table
        owners.update(retired.get(parent, ()))  # children of a row retired above
        if not owners:
            continue
        kept = [str(row["source_id"]) for row in batch.rows.get(spec.name, ())]
        gone = await _retire(st, spec, owners, kept)
        if gone:
            retired[spec.name] = gone
            counts.retired += len(gone)
            counts.tables[spec.name] = counts.tables.get(spec.name, 0) + len(gone)
    return retired


async def _retire(st: Staging, spec: EntityTable, owners: set[str], kept: list[str]) -> list[str]:
    key = ident(owner_of(spec))
    rows = await st.conn.fetch(
        f"UPDATE {ident(spec.name)} SET deleted_at = now(), run_id = $4 "
        f"WHERE source = $1 AND {key} = ANY($2::text[]) AND deleted_at IS NULL "
        "AND NOT (source_id = ANY($3::text[])) RETURNING source_id",
        st.source,
        sorted(owners),
        kept,
        st.run_id,
    )
    return [r["source_id"] for r in rows]
