"""One loader's state on its connection: staging tables made once, filled per batch, first-load flags."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import asyncpg

from pipeline.load.hashing import json_text
from pipeline.load.plans import (
    JSON_TYPES,
    EntityPlan,
    Plan,
    Staged,
    build_entity_plan,
    coercer,
    ident,
    stage_name,
)
from pipeline.tables import EntityTable


@dataclass(slots=True)
class Staging:
    """One source's staging plans (created once per connection), staged tables and first-load flags."""

    conn: asyncpg.Connection
    source: str
    run_id: int | None
    plans: dict[str, Plan] = field(default_factory=dict)
    entity_plans: dict[str, EntityPlan] = field(default_factory=dict)
    had: dict[str, bool] = field(default_factory=dict)
    staged: list[str] = field(default_factory=list)  # staging tables filled by the batch in flight
    seen_twice: bool = False  # the scan met an id it had already recorded in etl.scan_seen

    async def stage(self, plan: Plan, records: list[tuple[Any, ...]]) -> None:
        """COPY ``records`` into the plan's staging table (emptied at COMMIT)."""
        self.staged.append(plan.stage)
        await self.conn.copy_records_to_table(plan.stage, records=records, columns=list(plan.keys))

    async def plan(self, name: str, staged: Staged) -> Plan:
        """Create the staging table (typed like the target) once; ``staged`` = (key, column or None=text)."""
        plan = self.plans.get(name)
        if plan is not None:
            return plan
        rows = await self.conn.fetch(
            "SELECT attname, format_type(atttypid, atttypmod) AS type FROM pg_attribute "
            "WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped",
            name,
        )
        types = {r["attname"]: r["type"] for r in rows}
        cols, fixes, json_keys = [], [], set()
        for i, (key, column) in enumerate(staged):
            pg_type = types.get(column, "text") if column else "text"
            if column and column not in types:
                raise KeyError(
                    f"{name} has no column {column!r} named by its table spec; fix the spec or the SQL"
                )
            fix = coercer(pg_type)
            if pg_type in JSON_TYPES:
                json_keys.add(key)
                pg_type, fix = "text", json_text  # staged as JSON text, cast on insert (changed rows only)
            cols.append(f"{ident(key)} {pg_type}")
            if fix is not None:
                fixes.append((i, fix))
        stage = stage_name(name)
        await self.conn.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {stage} ({', '.join(cols)}) ON COMMIT DELETE ROWS"
        )
        plan = Plan(stage, tuple(k for k, _ in staged), tuple(fixes), frozenset(json_keys), types)
        self.plans[name] = plan
        return plan

    async def entity_plan(self, spec: EntityTable) -> EntityPlan:
        """Staging layout, value pickers and SQL of one entity table (built once per loader)."""
        cached = self.entity_plans.get(spec.name)
        if cached is not None:
            return cached
        entity = await build_entity_plan(spec, self.plan)
        self.entity_plans[spec.name] = entity
        return entity

    async def had_rows(self, table: str) -> bool:
        """Whether ``table`` had rows of this source when this loader first wrote to it.

        An initial load skips the Python-side hash lookup (nothing to compare with); the SQL
        anti-join still catches ids repeated across its batches.
        """
        had = self.had.get(table)
        if had is None:
            had = await self.conn.fetchval(
                f"SELECT EXISTS (SELECT 1 FROM {ident(table)} WHERE source = $1)", self.source
            )
            self.had[table] = bool(had)
        return bool(had)
