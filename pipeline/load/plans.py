"""Staging plans: identifier quoting, value pickers and coercers, and the entity merge SQL."""

from __future__ import annotations

import operator
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from pipeline.tables import EntityTable

JSON_TYPES = frozenset({"json", "jsonb"})
Staged = Sequence[tuple[str, str | None]]  # (row key, target column or None = text)


def ident(name: str) -> str:
    """Quote ``schema.table`` or ``column`` safely."""
    return ".".join('"' + part.replace('"', '""') + '"' for part in name.split("."))


def stage_name(table: str) -> str:
    return "stg_" + re.sub(r"[^a-z0-9_]", "_", table.lower())


def fixed(values: Sequence[Any], fixes: Sequence[tuple[int, Callable[[Any], Any]]]) -> tuple[Any, ...]:
    out = list(values)
    for i, fix in fixes:
        if out[i] is not None:
            out[i] = fix(out[i])
    return tuple(out)


def coercer(pg_type: str) -> Callable[[Any], Any] | None:
    """Binary COPY needs real dates; transforms may hand ISO strings."""
    if pg_type == "date":
        return lambda v: date.fromisoformat(v) if isinstance(v, str) else v
    if pg_type.startswith("timestamp"):
        return lambda v: datetime.fromisoformat(v) if isinstance(v, str) else v
    return None


def picker(keys: Sequence[str]) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    """``row -> (row[k] for k in keys)`` with None for missing keys; itemgetter does the common case."""
    names = tuple(keys)
    if not names:
        return lambda row: ()
    get = operator.itemgetter(*names)
    single = len(names) == 1

    def pick(row: Mapping[str, Any]) -> tuple[Any, ...]:
        try:
            got = get(row)
        except KeyError:
            return tuple(row.get(k) for k in names)
        return (got,) if single else got

    return pick


@dataclass(frozen=True, slots=True)
class Plan:
    """How one table is staged and merged on this connection."""

    stage: str
    keys: tuple[str, ...]  # row keys copied into staging, in order
    fixes: tuple[tuple[int, Callable[[Any], Any]], ...]  # (position, converter) where one is needed
    json_keys: frozenset[str]
    target_types: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class EntityPlan:
    """How one entity table's rows are hashed, staged, merged or copied straight in."""

    plan: Plan  # staging: source_id, content_hash, then the ``picked`` keys
    hashed: Callable[[Mapping[str, Any]], tuple[Any, ...]]
    picked: Callable[[Mapping[str, Any]], tuple[Any, ...]]  # source_updated_at, data, ref keys
    fixes: tuple[tuple[int, Callable[[Any], Any]], ...]  # converters by position in ``picked``
    merge: str  # INSERT … SELECT … ON CONFLICT from the staging table
    ref_positions: tuple[int, ...]  # where each ref's natural key sits in a staged tuple
    direct_columns: tuple[str, ...] | None  # columns of a direct COPY; None: staged path only
    direct_project: tuple[int, ...] | None  # ``picked`` positions a direct COPY keeps (None: all)


def row_tuple(plan: Plan, row: Mapping[str, Any], given: Mapping[str, Any]) -> tuple[Any, ...]:
    values = [row.get(key) for key in plan.keys]
    for i, fix in plan.fixes:
        value = values[i]
        if value is not None:
            values[i] = fix(value)
    for key, value in given.items():
        values[plan.keys.index(key)] = value
    return tuple(values)


def cast(plan: Plan, column: str) -> str:
    if column in plan.json_keys:
        return f"s.{ident(column)}::{plan.target_types[column]}"
    return f"s.{ident(column)}"


async def build_entity_plan(
    spec: EntityTable, plan_table: Callable[[str, Staged], Awaitable[Plan]]
) -> EntityPlan:
    """Staging layout, value pickers and SQL of one entity table; ``plan_table`` makes its staging table."""
    ref_columns = {r.column for r in spec.refs}
    data = [c for c in spec.columns if c not in ref_columns]
    ref_keys = [r.key for r in spec.refs if r.key not in data]
    # The hash covers these keys in this order: changing it would rewrite every stored row once.
    hashed = [c for c in (*data, *ref_keys) if c not in spec.volatile]
    picked = ("source_updated_at", *data, *ref_keys)
    plan = await plan_table(
        spec.name,
        [
            ("source_id", None),
            ("content_hash", "content_hash"),
            *((k, k) for k in picked[: 1 + len(data)]),
        ]
        + [(k, None) for k in ref_keys],
    )
    kept = [r for r in spec.refs if r.keep_natural and r.key in plan.target_types and r.key not in data]
    insert_cols = [
        "source",
        "source_id",
        "source_updated_at",
        "content_hash",
        "synced_at",
        "deleted_at",
        "run_id",
        *data,
        *(r.key for r in kept),
        *(r.column for r in spec.refs),
    ]
    select = [
        "$1",
        "s.source_id",
        "s.source_updated_at",
        "s.content_hash",
        "now()",
        "NULL",
        "$2",
        *(cast(plan, c) for c in data),
        *(f"s.{ident(r.key)}" for r in kept),
        *(f"r{i}.id" for i in range(len(spec.refs))),
    ]
    joins = "".join(
        f" LEFT JOIN {ident(r.table)} r{i} ON r{i}.source = $1 AND r{i}.source_id = s.{ident(r.key)}"
        for i, r in enumerate(spec.refs)
    )
    updates = ", ".join(f"{ident(c)} = EXCLUDED.{ident(c)}" for c in insert_cols[2:])
    merge = f"""
            WITH written AS (
                INSERT INTO {ident(spec.name)} AS t ({", ".join(map(ident, insert_cols))})
                SELECT {", ".join(select)}
                FROM {plan.stage} s{joins}
                ON CONFLICT (source, source_id) DO UPDATE SET {updates}
                WHERE t.content_hash IS DISTINCT FROM EXCLUDED.content_hash OR t.deleted_at IS NOT NULL
                RETURNING (xmax = 0) AS fresh
            )
            SELECT count(*) FILTER (WHERE fresh) AS inserted, count(*) FILTER (WHERE NOT fresh) AS updated
            FROM written"""
    # A direct COPY sends values through asyncpg's binary codecs: JSON columns (text codecs on
    # pooled connections) and natural keys stored in non-text columns take the staged path.
    direct_ok = not plan.json_keys and all(plan.target_types[r.key] == "text" for r in kept)
    project = (0, *range(1, 1 + len(data)), *(1 + len(data) + ref_keys.index(r.key) for r in kept))
    return EntityPlan(
        plan=plan,
        hashed=picker(hashed),
        picked=picker(picked),
        fixes=tuple((i - 2, fix) for i, fix in plan.fixes),
        merge=merge,
        ref_positions=tuple(2 + picked.index(r.key) for r in spec.refs),
        direct_columns=(
            (
                "source",
                "synced_at",
                "run_id",
                "source_id",
                "content_hash",
                *(picked[i] for i in project),
                *(r.column for r in spec.refs),
            )
            if direct_ok
            else None
        ),
        direct_project=None if project == tuple(range(len(picked))) else project,
    )
