"""The migrated image and production tables, their SQLModel classes and load specs agree, and load."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy.dialects import postgresql

from pipeline import db, tables
from pipeline.load import Loader, resolve_refs
from pipeline.models import images, production
from pipeline.records import Batch
from pipeline.tables import COMMON_COLUMNS, EntityTable, registered
from pipeline.transform import nekos, zou
from pipeline.transform.zou_events import transform_events

pytestmark = pytest.mark.db

DIALECT = postgresql.dialect()  # type: ignore[no-untyped-call]
MODELS = (*images.MODELS, *production.MODELS)
SPECS = (*images.SPECS, *production.SPECS)
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


@pytest.fixture
def unified_specs_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hide specs other test modules register for their own scratch schemas (absent from this database)."""
    real = {k: v for k, v in tables._REGISTRY.items() if k.split(".")[0] in ("catalog", "production")}
    monkeypatch.setattr(tables, "_REGISTRY", real)


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def full_name(model: Any) -> str:
    return str(model.__table__.fullname)


async def _columns(conn: asyncpg.Connection, table: str) -> dict[str, tuple[str, bool]]:
    rows = await conn.fetch(
        """
        SELECT a.attname, format_type(a.atttypid, a.atttypmod) AS type, NOT a.attnotnull AS nullable
          FROM pg_attribute a
         WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped
        """,
        table,
    )
    return {r["attname"]: (r["type"].lower().replace(", ", ","), r["nullable"]) for r in rows}


async def test_models_match_migrated_tables(db_url: str) -> None:
    """Every image/production table has exactly its model's columns, types, nullability and an identity id."""
    conn = await db.connect(db_url)
    try:
        production_tables = {
            r["t"]
            for r in await conn.fetch(
                "SELECT 'production.' || table_name AS t FROM information_schema.tables "
                "WHERE table_schema = 'production' AND table_type = 'BASE TABLE'"
            )
        }
        assert production_tables == {full_name(m) for m in production.MODELS}
        for model in MODELS:
            table = model.__table__  # type: ignore[attr-defined]
            expected = {
                column.name: (
                    column.type.compile(dialect=DIALECT).lower().replace(", ", ","),
                    bool(column.nullable),
                )
                for column in table.columns
            }
            assert await _columns(conn, table.fullname) == expected, table.fullname
            identity = await conn.fetchval(
                "SELECT attidentity::text FROM pg_attribute WHERE attrelid = $1::regclass AND attname = 'id'",
                table.fullname,
            )
            assert identity == "a", f"{table.fullname}.id must be GENERATED ALWAYS AS IDENTITY"
    finally:
        await conn.close()


async def test_specs_name_existing_columns_parents_first(db_url: str) -> None:
    """Every spec's columns, refs and natural keys exist, and each spec is registered after its targets."""
    conn = await db.connect(db_url)
    try:
        order = [spec.name for spec in registered()]
        for spec in SPECS:
            actual = set(await _columns(conn, spec.name))
            needed = set(spec.columns) | {name for ref in spec.refs for name in (ref.column, ref.key)}
            targets = {ref.table for ref in spec.refs} - {spec.name}
            if isinstance(spec, EntityTable):
                needed |= {*COMMON_COLUMNS, "id"}
            else:
                needed |= {spec.owner.column, spec.owner.key, "source", "run_id"}
                targets.add(spec.owner.table)
            assert needed <= actual, f"{spec.name} lacks {needed - actual}"
            assert set(spec.json_columns) <= set(spec.columns)
            assert all(order.index(t) < order.index(spec.name) for t in targets), spec.name
    finally:
        await conn.close()


async def test_every_table_and_column_is_documented(db_url: str) -> None:
    """COMMENT ON covers every production table and column and every image table and column."""
    conn = await db.connect(db_url)
    try:
        missing = await conn.fetch(
            """
            SELECT n.nspname, c.relname, a.attname
              FROM pg_class c
              JOIN pg_namespace n ON n.oid = c.relnamespace
              JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
             WHERE c.relkind = 'r' AND (n.nspname || '.' || c.relname) = ANY($1::text[])
               AND (col_description(c.oid, a.attnum) IS NULL OR obj_description(c.oid, 'pg_class') IS NULL)
            """,
            [full_name(m) for m in MODELS],
        )
        assert [tuple(r) for r in missing] == []
    finally:
        await conn.close()


def _zou_batches() -> list[Batch]:
    """Children before parents, so references must be resolved afterwards."""
    names = {t["id"]: t["name"] for t in fixture("zou/entity_types")}
    return [
        zou.transform_time_spents(fixture("zou/time_spents")),
        zou.transform_comments(fixture("zou/comments")),
        zou.transform_tasks(fixture("zou/tasks_page")),
        zou.transform_entities(fixture("zou/entities_page"), entity_type_names=names),
        zou.transform_task_statuses(fixture("zou/task_statuses")),
        zou.transform_task_types(fixture("zou/task_types")),
        zou.transform_entity_types(fixture("zou/entity_types")),
        zou.transform_persons(fixture("zou/persons")),
        zou.transform_projects(fixture("zou/projects_page")),
        transform_events(fixture("zou/events")),
    ]


@pytest.mark.usefixtures("unified_specs_only")
async def test_zou_pages_load_resolve_and_reload_as_no_ops(db_url: str) -> None:
    """Transformed Zou pages load in any order, refs resolve, assignees link, and a re-load writes nothing."""
    conn = await db.connect(db_url)
    try:
        loader = Loader(conn, "studio_a", None)
        for batch in _zou_batches():
            await loader.load(batch)
        assert await resolve_refs(conn, "studio_a") > 0
        task = await conn.fetchrow(
            """SELECT p.name AS project, s.short_name AS status, e.name AS entity, e.kind, tt.name AS type
                 FROM production.tasks t
                 JOIN production.projects p ON p.id = t.project_id
                 JOIN production.task_statuses s ON s.id = t.task_status_id
                 JOIN production.entities e ON e.id = t.entity_id
                 JOIN production.task_types tt ON tt.id = t.task_type_id
                WHERE t.source_id = '0a1b2c3d-0000-4000-8000-000000000001'"""
        )
        assert dict(task) == {
            "project": "My Project",
            "status": "wip",
            "entity": "SH010",
            "kind": "shot",
            "type": "Animation",
        }
        assignees = await conn.fetch(
            """SELECT p.full_name FROM production.task_assignees a
                 JOIN production.persons p ON p.id = a.person_id ORDER BY 1"""
        )
        assert [r["full_name"] for r in assignees] == ["Ada Artist", "Sam Super"]
        hierarchy = await conn.fetchrow(
            """SELECT seq.name AS sequence, ep.name AS episode, main.name AS main_episode
                 FROM production.entities shot
                 JOIN production.entities seq ON seq.id = shot.parent_id
                 JOIN production.entities ep ON ep.id = seq.parent_id
                 JOIN production.entities main ON main.id = shot.episode_id
                WHERE shot.name = 'SH010'"""
        )
        assert dict(hierarchy) == {"sequence": "SQ01", "episode": "E01", "main_episode": "E01"}
        hours = await conn.fetch(
            """SELECT p.first_name, ts.date, ts.duration FROM production.time_spents ts
                 JOIN production.persons p ON p.id = ts.person_id ORDER BY ts.date"""
        )
        assert [(r["first_name"], str(r["date"]), float(r["duration"])) for r in hours] == [
            ("Ada", "2022-07-12", 8.5),
            ("Ada", "2024-03-04", 240.0),
        ]
        assert await conn.fetchval("SELECT count(*) FROM production.events WHERE user_id IS NOT NULL") == 8
        stored = json.dumps([dict(r) for r in await conn.fetch("SELECT payload::text FROM raw.records")])
        assert "totp_secret" not in stored
        assert "$2b$12$" not in stored

        again = Loader(conn, "studio_a", None)
        for batch in _zou_batches():
            counts = await again.load(batch)
            assert (counts.inserted, counts.updated, counts.links_written, counts.raw_written) == (0, 0, 0, 0)
    finally:
        await conn.close()


@pytest.mark.usefixtures("unified_specs_only")
async def test_nekos_images_reload_with_new_urls_rewrites_nothing(db_url: str) -> None:
    """Images link to characters, tags and artists; a re-fetch with fresh signed URLs changes no row."""
    conn = await db.connect(db_url)
    try:
        loader = Loader(conn, "nekos", None)
        first = await loader.load(nekos.transform_images(fixture("nekos/images_page")))
        assert first.inserted == 3
        for batch in (
            nekos.transform_artists(fixture("nekos/artists_page")),
            nekos.transform_characters(fixture("nekos/characters_page")),
            nekos.transform_categories(fixture("nekos/categories_page")),
        ):
            await loader.load(batch)
        await resolve_refs(conn, "nekos")
        rows = await conn.fetch(
            """SELECT i.rating, a.name AS artist, array_agg(DISTINCT c.name ORDER BY c.name) AS characters,
                      array_agg(DISTINCT t.slug ORDER BY t.slug) AS tags
                 FROM catalog.images i
                 LEFT JOIN catalog.artists a ON a.id = i.artist_id
                 JOIN catalog.image_characters ic ON ic.image_id = i.id
                 JOIN catalog.characters c ON c.id = ic.character_id
                 JOIN catalog.image_tags it ON it.image_id = i.id
                 JOIN catalog.tags t ON t.id = it.tag_id
                GROUP BY i.id, i.rating, a.name ORDER BY i.rating"""
        )
        assert [tuple(r) for r in rows] == [
            ("nsfw", "Rin Aozora", ["Kaguya Shinomiya", "Megumin"], ["swimsuit"]),
            ("sfw", "Rin Aozora", ["Megumin"], ["catgirl", "night-sky"]),
        ]
        again = await loader.load(nekos.transform_images(fixture("nekos/images_page_refetched")))
        assert (again.inserted, again.updated, again.unchanged, again.raw_written) == (0, 0, 3, 0)
    finally:
        await conn.close()
