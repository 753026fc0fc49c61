"""Link-table diffs: each owner's links become the batch's set, touching only the difference."""

from __future__ import annotations

from typing import Any

from pipeline.load.counts import LoadCounts
from pipeline.load.plans import cast, ident, row_tuple
from pipeline.load.staging import Staging
from pipeline.records import Batch
from pipeline.tables import LinkTable


async def replace_links(
    st: Staging, spec: LinkTable, batch: Batch, counts: LoadCounts, owned_tables: frozenset[str] | None
) -> None:
    """Make each owner's links in ``spec`` equal the batch's set, touching only the difference."""
    rows = batch.rows.get(spec.name, [])
    owner = spec.owner
    owners = {str(r[owner.key]) for r in rows if r.get(owner.key) is not None}
    if owned_tables is None or owner.table in owned_tables:
        owners.update(str(r["source_id"]) for r in batch.rows.get(owner.table, ()))
    if not owners:
        return
    ref_columns = {r.column for r in spec.refs} | {owner.column}
    data = [c for c in spec.columns if c not in ref_columns and c != owner.key]
    ref_keys = [r.key for r in spec.refs if r.key not in data]
    staged = [(owner.key, None), *((c, c) for c in data), *((k, None) for k in ref_keys)]
    plan = await st.plan(spec.name, staged)
    if rows:
        records = [row_tuple(plan, r, {owner.key: str(r[owner.key])}) for r in rows if r.get(owner.key)]
        await st.stage(plan, records)
    kept = [
        r for r in (owner, *spec.refs) if r.keep_natural and r.key in plan.target_types and r.key not in data
    ]
    compare = [owner.column, *(r.key for r in kept), *data, *(r.column for r in spec.refs)]
    select = [
        "o.id",
        *(f"s.{ident(r.key)}" for r in kept),
        *(cast(plan, c) for c in data),
        *(f"r{i}.id" for i in range(len(spec.refs))),
    ]
    joins = "".join(
        f" LEFT JOIN {ident(r.table)} r{i} ON r{i}.source = $1 AND r{i}.source_id = s.{ident(r.key)}"
        for i, r in enumerate(spec.refs)
    )
    aliased = ", ".join(f"{e} AS {ident(c)}" for e, c in zip(select, compare, strict=True))
    want = (
        f"SELECT DISTINCT {aliased} "
        f"FROM {plan.stage} s JOIN {ident(owner.table)} o ON o.source = $1 "
        f"AND o.source_id = s.{ident(owner.key)}{joins}"
    )
    same = " AND ".join(f"w.{ident(c)} IS NOT DISTINCT FROM l.{ident(c)}" for c in compare)
    owner_col = ident(owner.column)
    deleted = await st.conn.fetchval(
        f"""WITH want AS MATERIALIZED ({want}), gone AS (
                    DELETE FROM {ident(spec.name)} l USING {ident(owner.table)} o
                    WHERE o.source = $1 AND o.source_id = ANY($2::text[]) AND l.{owner_col} = o.id
                      AND NOT EXISTS (SELECT 1 FROM want w WHERE w.{owner_col} = l.{owner_col} AND {same})
                    RETURNING 1)
                SELECT count(*) FROM gone""",
        st.source,
        list(owners),
    )
    extra_cols = [c for c in ("source", "run_id") if c in plan.target_types]
    extra_vals = ["$1" if c == "source" else "$2::bigint" for c in extra_cols]
    args: list[Any] = [st.source] + ([st.run_id] if "run_id" in extra_cols else [])
    inserted = await st.conn.fetchval(
        f"""WITH want AS MATERIALIZED ({want}), added AS (
                    INSERT INTO {ident(spec.name)} ({", ".join(map(ident, [*compare, *extra_cols]))})
                    SELECT w.*{"".join(", " + v for v in extra_vals)} FROM want w
                    WHERE NOT EXISTS (SELECT 1 FROM {ident(spec.name)} l
                                      WHERE l.{owner_col} = w.{owner_col} AND {same})
                    RETURNING 1)
                SELECT count(*) FROM added""",
        *args,
    )
    written = deleted + inserted
    counts.links_written += written
    counts.tables[spec.name] = counts.tables.get(spec.name, 0) + written
