"""Field-by-field comparison of ``production.*`` with the rows of Zou's own database.

Columns pair by name, with Zou's spelling of references (``project_source_id`` ↔ ``project_id``,
``source_id`` ↔ ``id``, ``source_created_at`` ↔ ``created_at``) and a few renames (``OVERRIDES``).
Every production column is either compared, derived and checked (``kind``, ``full_name``), a
relation list compared elsewhere or not held by Zou's row (``RELATIONS``), or pipeline bookkeeping.
A column in none of these fails the comparison: a new column must be given a rule here.

Text columns are stored stripped and a blank one NULL (``transform.common.text``);
those pairs are counted (``blank_as_null``), any other difference is a mismatch.

``source_updated_at`` is Zou's ``updated_at`` as of the last change to a column the pipeline keeps
(the content hash decides whether a row is written): it may be older than Zou's when only columns
the pipeline does not keep changed, never newer.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import asyncpg

TABLES = {
    "projects": "project",
    "persons": "person",
    "entity_types": "entity_type",
    "task_types": "task_type",
    "task_statuses": "task_status",
    "entities": "entity",
    "tasks": "task",
    "comments": "comment",
    "time_spents": "time_spent",
    "departments": "department",
    "project_statuses": "project_status",
    "metadata_descriptors": "metadata_descriptor",
    "entity_links": "entity_link",
    "preview_files": "preview_file",
    "playlists": "playlist",
    "schedule_items": "schedule_item",
    "milestones": "milestone",
}
OVERRIDES = {
    ("entities", "episode_source_id"): "source_id",
    ("entities", "ready_for_source_id"): "ready_for",
    ("entities", "created_by_source_id"): "created_by",
    ("comments", "object_source_id"): "object_id",
    ("comments", "task_source_id"): "object_id",
    ("preview_files", "origin"): "source",  # ``source`` is the configured source in every table
    ("playlists", "created_by_source_id"): "created_by",
}
DERIVED = {("entities", "kind"), ("entity_types", "kind"), ("persons", "full_name")}
RELATIONS = {  # link tables in Zou, not columns of its row
    ("persons", "department_source_ids"),
    ("comments", "mentions"),
    ("comments", "attachment_file_source_ids"),
    ("metadata_descriptors", "department_source_ids"),
}
BOOKKEEPING = {"id", "source", "content_hash", "synced_at", "deleted_at", "run_id"}
TEMPORAL = {"shot", "sequence", "episode", "edit", "concept", "scene"}


def kind_of(type_name: str) -> str:
    lowered = type_name.lower()
    if lowered == "conceptfolder":
        return "concept_folder"
    return lowered if lowered in TEMPORAL else "asset"


def norm(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value.replace(microsecond=0)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Decimal | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except ValueError:
            return value
    if isinstance(value, date):
        return value
    return value


@dataclass
class Report:
    rows: Counter[str] = field(default_factory=Counter)
    fields: Counter[str] = field(default_factory=Counter)
    older_updated_at: Counter[str] = field(default_factory=Counter)
    blank_as_null: Counter[str] = field(default_factory=Counter)
    mismatches: list[str] = field(default_factory=list)

    def line(self) -> str:
        tables = ", ".join(f"{t} {n}" for t, n in sorted(self.rows.items()))
        return f"{sum(self.rows.values())} rows, {sum(self.fields.values())} fields compared ({tables})"


async def _columns(conn: asyncpg.Connection, schema: str, table: str) -> dict[str, str]:
    rows = await conn.fetch(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = $1 "
        "AND table_name = $2",
        schema,
        table,
    )
    return {r["column_name"]: r["data_type"] for r in rows}


async def compare(pipeline: asyncpg.Connection, zou: asyncpg.Connection, source: str) -> Report:
    """Compare every live production row of ``source`` with Zou's; mismatches are listed, not raised."""
    report = Report()
    type_names = {str(r["id"]): r["name"] for r in await zou.fetch("SELECT id, name FROM entity_type")}
    for resource, zou_table in TABLES.items():
        ours = await _columns(pipeline, "production", resource)
        theirs = await _columns(zou, "public", zou_table)
        pairs: dict[str, str] = {}
        for column, data_type in ours.items():
            if column in BOOKKEEPING or (data_type == "bigint" and column.endswith("_id")):
                continue
            if (resource, column) in DERIVED or (resource, column) in RELATIONS:
                continue
            if (resource, column) in OVERRIDES:
                pairs[column] = OVERRIDES[(resource, column)]
            elif column == "source_id":
                pairs[column] = "id"
            elif column.startswith("source_") and column[7:] in theirs:
                pairs[column] = column[7:]
            elif column.endswith("_source_id") and column[: -len("_source_id")] + "_id" in theirs:
                pairs[column] = column[: -len("_source_id")] + "_id"
            elif column in theirs:
                pairs[column] = column
            else:
                report.mismatches.append(
                    f"{resource}.{column}: no rule pairs it with a column of {zou_table}"
                )
        mine = {
            r["source_id"]: dict(r)
            for r in await pipeline.fetch(
                f"SELECT * FROM production.{resource} WHERE source = $1 AND deleted_at IS NULL", source
            )
        }
        zou_rows = {str(r["id"]): dict(r) for r in await zou.fetch(f"SELECT * FROM {zou_table}")}
        if resource == "comments":  # only comments on tasks are synced
            zou_rows = {k: v for k, v in zou_rows.items() if v["object_type"] == "Task"}
        if set(mine) != set(zou_rows):
            report.mismatches.append(
                f"{resource}: ids differ: only in the pipeline {sorted(set(mine) - set(zou_rows))[:5]}, "
                f"only in zou {sorted(set(zou_rows) - set(mine))[:5]}"
            )
        for source_id in sorted(set(mine) & set(zou_rows)):
            row, theirs_row = mine[source_id], zou_rows[source_id]
            report.rows[resource] += 1
            for column, zou_column in pairs.items():
                report.fields[resource] += 1
                got, want = norm(row[column]), norm(theirs_row[zou_column])
                if column == "source_updated_at" and got is not None and want is not None and got < want:
                    report.older_updated_at[resource] += 1  # by design: see the module docstring
                    continue
                if isinstance(want, str) and got == (want.strip() or None) and got != want:
                    report.blank_as_null[resource] += 1  # the transform's rule: stripped, blank is NULL
                    continue
                if got != want:
                    report.mismatches.append(f"{resource} {source_id} {column}: {got!r} != zou {want!r}")
            if (resource, "kind") in DERIVED:
                type_id = theirs_row["entity_type_id"] if resource == "entities" else theirs_row["id"]
                report.fields[resource] += 1
                if row["kind"] != kind_of(type_names[str(type_id)]):
                    report.mismatches.append(f"{resource} {source_id} kind {row['kind']!r}")
            if resource == "persons":
                report.fields[resource] += 1
                full = " ".join(p for p in (theirs_row["first_name"], theirs_row["last_name"]) if p)
                if row["full_name"] != full:
                    report.mismatches.append(
                        f"persons {source_id} full_name {row['full_name']!r} != {full!r}"
                    )
    assigned = {
        (str(r["task_id"]), str(r["person_id"]))
        for r in await zou.fetch("SELECT task_id, person_id FROM task_person_link")
    }
    ours_assigned = {
        (r["task_source_id"], r["person_source_id"])
        for r in await pipeline.fetch(
            "SELECT a.task_source_id, a.person_source_id FROM production.task_assignees a "
            "JOIN production.tasks t ON t.id = a.task_id WHERE a.source = $1 AND t.deleted_at IS NULL",
            source,
        )
    }
    report.rows["task_assignees"] = len(assigned)
    report.fields["task_assignees"] = 2 * len(assigned)
    if assigned != ours_assigned:
        report.mismatches.append(
            f"task_assignees differ: missing {sorted(assigned - ours_assigned)[:3]}, "
            f"extra {sorted(ours_assigned - assigned)[:3]}"
        )
    departments: dict[str, list[str]] = {}
    for r in await zou.fetch(
        "SELECT metadata_descriptor_id, department_id FROM department_metadata_descriptor_link"
    ):
        departments.setdefault(str(r["metadata_descriptor_id"]), []).append(str(r["department_id"]))
    ours_departments = {
        r["source_id"]: json.loads(r["ids"]) if r["ids"] else []
        for r in await pipeline.fetch(
            "SELECT source_id, department_source_ids::text AS ids FROM production.metadata_descriptors "
            "WHERE source = $1 AND deleted_at IS NULL",
            source,
        )
    }
    report.rows["descriptor_departments"] = sum(len(v) for v in departments.values())
    report.fields["descriptor_departments"] = len(ours_departments)
    for descriptor, ids in ours_departments.items():
        if sorted(ids) != sorted(departments.get(descriptor, [])):
            report.mismatches.append(
                f"metadata_descriptors {descriptor} departments {ids} != zou {departments.get(descriptor)}"
            )
    return report
