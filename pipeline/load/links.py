"""Link-table diffs: each owner's links become the batch's set, touching only the difference.

Every statement is bounded by the batch: owner ids are looked up by ``(source, source_id) =
ANY($2)`` (the owner's unique index), the stored links of those owners are read by ``owner_column
= ANY($1)`` (the link table's owner index) and compared with the wanted set in Python, the links
that are gone are deleted by their row address (``ctid``, read in this transaction) and the new
ones are COPY'd straight into the table. Nothing scans a link table, whatever rows of other
owners or sources it holds; a first load reads nothing back and deletes nothing. Equality is
Python's, so a NULL locale matches a NULL locale (the table's ``UNIQUE NULLS NOT DISTINCT``)
without ``IS NOT DISTINCT FROM`` in SQL.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from pipeline.load.counts import LoadCounts
from pipeline.load.entities import ref_ids
from pipeline.load.hashing import HASH_OPTS, json_default
from pipeline.load.plans import Plan, ident, row_tuple
from pipeline.load.staging import Staging
from pipeline.records import Batch
from pipeline.tables import LinkTable, Ref


def link_owners(batch: Batch, spec: LinkTable, owned_tables: frozenset[str] | None) -> set[str]:
    """Source ids of the owners whose links this batch sets: those it gives links for, plus the
    owner rows of tables the stream owns (an owner given without links has none left)."""
    owner = spec.owner
    owners = {str(r[owner.key]) for r in batch.rows.get(spec.name, ()) if r.get(owner.key) is not None}
    if owned_tables is None or owner.table in owned_tables:
        owners.update(str(r["source_id"]) for r in batch.rows.get(owner.table, ()))
    return owners


def _comparable(values: Sequence[Any], json_at: Sequence[int]) -> tuple[Any, ...]:
    """A hashable form of a link row: JSON values as their sorted-key text."""
    if not json_at:
        return tuple(values)
    out = list(values)
    for i in json_at:
        if out[i] is not None:
            out[i] = orjson.dumps(out[i], option=HASH_OPTS, default=json_default)
    return tuple(out)


async def replace_links(
    st: Staging,
    spec: LinkTable,
    batch: Batch,
    counts: LoadCounts,
    owned_tables: frozenset[str] | None,
    skip: frozenset[str] = frozenset(),
) -> None:
    """Make each owner's links in ``spec`` equal the batch's set, touching only the difference.

    ``skip``: owner source ids whose links are known to be stored as given (their content did
    not change); they are left out of every statement.
    """
    owner = spec.owner
    owners = link_owners(batch, spec, owned_tables) - skip
    if not owners:
        return
    rows = [r for r in batch.rows.get(spec.name, ()) if r.get(owner.key) and str(r[owner.key]) in owners]
    ref_columns = {r.column for r in spec.refs} | {owner.column}
    data = [c for c in spec.columns if c not in ref_columns and c != owner.key]
    ref_keys = [r.key for r in spec.refs if r.key not in data]
    staged = [(owner.key, None), *((c, c) for c in data), *((k, None) for k in ref_keys)]
    plan = await st.plan(spec.name, staged)
    kept = [
        r for r in (owner, *spec.refs) if r.keep_natural and r.key in plan.target_types and r.key not in data
    ]
    compare = [owner.column, *(r.key for r in kept), *data, *(r.column for r in spec.refs)]
    json_at = [i for i, c in enumerate(compare) if plan.target_types.get(c) in ("json", "jsonb")]

    owner_ids = await ref_ids(st, owner, owners)  # owners not stored (yet) get no links, as before
    if not owner_ids:
        return
    found = [
        await ref_ids(st, ref, {str(v) for r in rows if (v := r.get(ref.key)) is not None})
        for ref in spec.refs
    ]
    want: dict[tuple[Any, ...], tuple[Any, ...]] = {}
    for r in rows:
        oid = owner_ids.get(str(r[owner.key]))
        if oid is None:
            continue
        values = _link_values(plan, r, owner, kept, data, spec.refs, found, oid)
        want.setdefault(_comparable(values, json_at), values)  # the batch's set: duplicates once

    owner_col = ident(owner.column)
    stored = await st.conn.fetch(
        f"SELECT ctid, {', '.join(map(ident, compare))} FROM {ident(spec.name)} "
        f"WHERE {owner_col} = ANY($1::bigint[])",
        list(owner_ids.values()),
    )
    gone: list[Any] = []
    for rec in stored:
        key = _comparable(tuple(rec)[1:], json_at)
        if key in want:
            del want[key]  # stored as wanted: untouched
        else:
            gone.append(rec[0])  # removed, changed, or a duplicate of a kept link
    if gone:
        await st.conn.execute(f"DELETE FROM {ident(spec.name)} WHERE ctid = ANY($1::tid[])", gone)
    if want:
        await _insert_links(st, spec, plan, compare, list(want.values()))
    written = len(gone) + len(want)
    counts.links_written += written
    counts.tables[spec.name] = counts.tables.get(spec.name, 0) + written


def _link_values(
    plan: Plan,
    row: Mapping[str, Any],
    owner: Ref,
    kept: Sequence[Ref],
    data: Sequence[str],
    refs: Sequence[Ref],
    found: Sequence[Mapping[str, int]],
    owner_id: int,
) -> tuple[Any, ...]:
    staged = row_tuple(plan, row, {owner.key: str(row[owner.key])})
    by_key = dict(zip(plan.keys, staged, strict=True))
    return (
        owner_id,
        *(by_key[r.key] for r in kept),
        *(by_key[c] for c in data),
        *(
            None if (key := row.get(ref.key)) is None else ids.get(str(key))
            for ref, ids in zip(refs, found, strict=True)
        ),
    )


async def _insert_links(
    st: Staging, spec: LinkTable, plan: Plan, compare: Sequence[str], rows: list[tuple[Any, ...]]
) -> None:
    """COPY new links straight into the table; JSON columns (text codecs on pooled connections,
    unusable in a binary COPY) go through one ``INSERT … SELECT unnest(…)`` instead."""
    extra = [c for c in ("source", "run_id") if c in plan.target_types]
    head = tuple(st.source if c == "source" else st.run_id for c in extra)
    columns = [*compare, *extra]
    json_cols = [c for c in compare if plan.target_types.get(c) in ("json", "jsonb")]
    if not json_cols:
        schema, _, table = spec.name.rpartition(".")
        await st.conn.copy_records_to_table(
            table, schema_name=schema or None, records=[t + head for t in rows], columns=columns
        )
        return
    types = [plan.target_types[c] for c in compare]
    arrays: list[list[Any]] = [[] for _ in compare]
    for t in rows:
        for i, value in enumerate(t):
            if types[i] in ("json", "jsonb") and value is not None:
                value = orjson.dumps(value, default=json_default).decode()
            arrays[i].append(value)
    selects = [
        f"${i + 1}::text[]" if types[i] in ("json", "jsonb") else f"${i + 1}::{types[i]}[]"
        for i in range(len(compare))
    ]
    casts = [
        f"u.c{i}::{types[i]}" if types[i] in ("json", "jsonb") else f"u.c{i}" for i in range(len(compare))
    ]
    extras = [f"${len(compare) + 1 + j}" for j in range(len(extra))]
    await st.conn.execute(
        f"INSERT INTO {ident(spec.name)} ({', '.join(map(ident, columns))}) "
        f"SELECT {', '.join([*casts, *extras])} "
        f"FROM unnest({', '.join(selects)}) AS u({', '.join(f'c{i}' for i in range(len(compare)))})",
        *arrays,
        *head,
    )
