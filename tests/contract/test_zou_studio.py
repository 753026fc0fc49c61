"""Zou's studio models (departments … milestones): the simulator serves zou 1.0.97's columns, and
seed-shaped and model-shaped documents transform into the rows the unified tables expect."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from pipeline.errors import ContractError
from pipeline.sandbox import zou
from pipeline.sandbox.core import SandboxClock, SandboxContext
from pipeline.sandbox.zou_data import ADMIN_EMAIL, ADMIN_PASSWORD
from pipeline.sandbox.zou_models import MODELS
from pipeline.transform import transform

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "zou"
SEED_003 = Path(__file__).resolve().parents[1] / "fixtures" / "seeds" / "003_9e1efefef1fe253f.txt"
ZOU_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$")
BASE = {"id", "created_at", "updated_at", "type"}
# The columns of zou 1.0.97's models (zou/app/models/*.py) as /data/<model> serialises them.
COLUMNS = {
    "departments": {"name", "color", "archived"},
    "project-status": {"name", "color"},
    "metadata-descriptors": {
        "project_id",
        "entity_type",
        "task_type_id",
        "name",
        "data_type",
        "field_name",
        "choices",
        "for_client",
        "position",
    },
    "entity-links": {"entity_in_id", "entity_out_id", "nb_occurences", "label", "data"},
    "preview-files": {
        "name",
        "original_name",
        "revision",
        "position",
        "extension",
        "description",
        "path",
        "source",
        "file_size",
        "status",
        "validation_status",
        "annotations",
        "width",
        "height",
        "duration",
        "task_id",
        "person_id",
        "source_file_id",
        "shotgun_id",
        "is_movie",
        "url",
        "uploaded_movie_url",
        "uploaded_movie_name",
        "data",
        "token_in",
        "token_out",
    },
    "playlists": {
        "name",
        "shots",
        "project_id",
        "episode_id",
        "task_type_id",
        "for_client",
        "for_entity",
        "is_for_all",
        "created_by",
    },
    "schedule-items": {"start_date", "end_date", "man_days", "project_id", "task_type_id", "object_id"},
    "milestones": {"date", "name", "project_id", "task_type_id"},
}
# METADATA_DESCRIPTOR_TYPES of zou/app/models/metadata_descriptor.py (zou 1.0.97)
DESCRIPTOR_TYPES = {
    "string",
    "number",
    "list",
    "taglist",
    "boolean",
    "checklist",
    "date",
    "url",
    "textarea",
    "person",
}
RELATIONS = {"metadata-descriptors": {"departments"}, "playlists": {"build_jobs"}}
TYPE_NAMES = {
    "departments": "Department",
    "project-status": "ProjectStatus",
    "metadata-descriptors": "MetadataDescriptor",
    "entity-links": "EntityLink",
    "preview-files": "PreviewFile",
    "playlists": "Playlist",
    "schedule-items": "ScheduleItem",
    "milestones": "Milestone",
}


def load(name: str) -> Any:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def rows(kind_resource: str, doc: Any) -> dict[str, dict[str, Any]]:
    batch = transform("zou", kind_resource, doc)
    assert not batch.rejects, batch.rejects
    (table,) = batch.rows
    return {r["source_id"]: r for r in batch.rows[table]}


async def _zou_get(client: TestClient[Any, Any], path: str, **params: str) -> Any:
    login = await (
        await client.post("/api/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    ).json()
    response = await client.get(
        path, params=params, headers={"Authorization": f"Bearer {login['access_token']}"}
    )
    assert response.status == 200, await response.text()
    return await response.json()


@pytest.mark.parametrize("route", sorted(COLUMNS))
async def test_the_sandbox_serves_each_model_with_its_zou_columns(route: str) -> None:
    """Every row of /data/<route> (relations=true) has exactly the model's columns and class name."""
    ctx = SandboxContext(clock=SandboxClock(real=lambda: 1_750_000_000.0))
    async with TestClient(TestServer(zou.create_app(ctx), host="127.0.0.1")) as client:
        page = await _zou_get(client, f"/api/data/{route}", page="1", limit="500", relations="true")
        plain = await _zou_get(client, f"/api/data/{route}")
    assert page["data"], route
    assert page["total"] == len(plain) == len(page["data"])
    for row in page["data"]:
        assert set(row) == BASE | COLUMNS[route] | RELATIONS.get(route, set()), route
        assert row["type"] == TYPE_NAMES[route]
        assert ZOU_TIME.match(row["created_at"])
        assert ZOU_TIME.match(row["updated_at"])
    assert all(set(row) == BASE | COLUMNS[route] for row in plain)  # no relations without the flag


async def test_sandbox_values_follow_the_zou_vocabularies() -> None:
    """Preview statuses, descriptor types, casting, its events and playlist entries use zou's own values."""
    ctx = SandboxContext(clock=SandboxClock(real=lambda: 1_750_000_000.0))
    async with TestClient(TestServer(zou.create_app(ctx), host="127.0.0.1")) as client:
        previews = await _zou_get(client, "/api/data/preview-files")
        descriptors = await _zou_get(client, "/api/data/metadata-descriptors")
        links = await _zou_get(client, "/api/data/entity-links")
        playlists = await _zou_get(client, "/api/data/playlists")
        entities = {e["id"]: e for e in await _zou_get(client, "/api/data/entities")}
        statuses = await _zou_get(client, "/api/data/project-status")
        projects = await _zou_get(client, "/api/data/projects")
    assert {p["status"] for p in previews} <= {"processing", "ready", "broken"}
    assert {p["validation_status"] for p in previews} <= {"validated", "rejected", "neutral"}
    assert {d["data_type"] for d in descriptors} <= DESCRIPTOR_TYPES
    for descriptor in descriptors:  # the custom field's values are in entity.data under field_name
        carriers = [e for e in entities.values() if e["project_id"] == descriptor["project_id"]]
        assert any(descriptor["field_name"] in (e["data"] or {}) for e in carriers), descriptor["name"]
    for link in links:
        assert entities[link["entity_in_id"]]["nb_entities_out"] >= 1
        assert link["entity_out_id"] in entities
    for playlist in playlists:
        assert playlist["shots"]
        assert all(set(s) == {"entity_id", "preview_file_id"} for s in playlist["shots"])
    assert {s["name"] for s in statuses} == {"Open", "Closed"}
    assert {p["project_status_id"] for p in projects} <= {s["id"] for s in statuses}


async def test_sandbox_tasks_carry_realistic_dates() -> None:
    """Done tasks have a done_date after their start, open ones none; some finished after the due date."""
    ctx = SandboxContext(clock=SandboxClock(real=lambda: 1_750_000_000.0))
    async with TestClient(TestServer(zou.create_app(ctx), host="127.0.0.1")) as client:
        tasks = await _zou_get(client, "/api/data/tasks")
        done = {s["id"] for s in await _zou_get(client, "/api/data/task-status") if s["is_done"]}
    closed = [t for t in tasks if t["task_status_id"] in done]
    still_open = [t for t in tasks if t["task_status_id"] not in done]
    assert closed
    assert still_open
    assert all(t["due_date"] and ZOU_TIME.match(t["due_date"]) for t in tasks)
    assert all(t["done_date"] and t["done_date"] > t["start_date"] for t in closed)
    assert not any(t["done_date"] for t in still_open)
    late = [t for t in closed if t["done_date"] > t["due_date"]]
    assert 0 < len(late) < len(closed)
    assert any(t["real_start_date"] for t in tasks)


def test_seed_003_entity_link_transforms_to_a_casting_row() -> None:
    """Seed 003's entity link sample: in/out ids, occurrences, label; its Z-suffixed times read as UTC."""
    seed = SEED_003.read_text()
    sample = load("entity_links")[0]
    for key, value in sample.items():
        assert json.dumps(value) in seed, key  # the fixture's first row is the seed's, verbatim
    row = rows("entity_links", load("entity_links"))["a24a6ea4-ce75-4665-a070-57453082c25"]
    assert row["entity_in_source_id"] == "b24a6ea4-ce75-4665-a070-57453082c25"
    assert row["entity_out_source_id"] == "c24a6ea4-ce75-4665-a070-57453082c25"
    assert (row["nb_occurences"], row["label"]) == (1, "fixed")
    assert row["source_updated_at"] == datetime(2024, 1, 15, 10, 30, tzinfo=UTC)


def test_a_casting_page_replaces_the_named_entities_links() -> None:
    """A page fetched by entity_in_id marks those entities' casting complete; a listing page does not."""
    listing = transform("zou", "entity_links", {"data": load("entity_links")})
    assert listing.replaced == {}
    casting = transform("zou", "entity_links", {"data": [], "entity_in_ids": ["shot-1", "shot-2"]})
    assert casting.replaced == {"production.entity_links": {"shot-1", "shot-2"}}
    with pytest.raises(ContractError, match="entity_in_ids"):
        transform("zou", "entity_links", {"data": [], "entity_in_ids": "shot-1"})


def test_seed_003_playlist_and_a_model_row_transform() -> None:
    """Both playlist shapes keep their shots in order; references stay natural keys until loaded."""
    found = rows("playlists", load("playlists"))
    seed = found["a24a6ea4-ce75-4665-a070-57453082c25"]
    assert (seed["name"], seed["project_source_id"]) == (
        "Review Playlist",
        "b35b7fb5-df86-5776-b181-68564193d36",
    )
    assert seed["shots"] == [{"id": "uuid", "preview_file_id": "uuid"}]
    dailies = found["7a7a7a7a-0000-4000-8000-000000000002"]
    assert dailies["shots"][0]["preview_file_id"] == "9f9f9f9f-0000-4000-8000-000000000002"
    assert (dailies["for_entity"], dailies["for_client"], dailies["created_by_source_id"]) == (
        "shot",
        False,
        "c46c8ac6-0000-4000-8000-000000000001",
    )


def test_preview_files_keep_metadata_and_never_the_files() -> None:
    """Preview rows keep size, format and review state; zou's `source` becomes `origin`; no URL or path."""
    found = rows("preview_files", load("preview_files_page"))
    movie = found["9f9f9f9f-0000-4000-8000-000000000002"]
    assert (movie["revision"], movie["extension"], movie["file_size"], movie["width"]) == (
        2,
        "mp4",
        48213344,
        1920,
    )
    assert (movie["status"], movie["validation_status"], movie["origin"]) == ("ready", "rejected", "webgui")
    assert movie["duration"] == pytest.approx(4.48)
    assert movie["task_source_id"] == "0a1b2c3d-0000-4000-8000-000000000001"
    assert not {"path", "url", "uploaded_movie_url", "source"} & set(movie)
    picture = found["9f9f9f9f-0000-4000-8000-000000000003"]
    assert (picture["description"], picture["origin"], picture["annotations"]) == (None, None, None)


def test_departments_statuses_descriptors_schedule_and_milestones() -> None:
    """The remaining models map column for column, dates as dates and id lists sorted."""
    departments = rows("departments", load("departments"))
    assert departments["d3d3d3d3-0000-4000-8000-000000000002"]["archived"] is True
    statuses = rows("project_statuses", load("project_statuses"))
    assert {r["name"] for r in statuses.values()} == {"Open", "Closed"}
    descriptors = rows("metadata_descriptors", load("metadata_descriptors"))
    complexity = descriptors["4d4d4d4d-0000-4000-8000-000000000001"]
    assert (complexity["entity_type"], complexity["field_name"], complexity["data_type"]) == (
        "Asset",
        "complexity",
        "list",
    )
    assert complexity["choices"] == ["simple", "medium", "complex"]
    assert complexity["department_source_ids"] == ["d3d3d3d3-0000-4000-8000-000000000002"]
    assert descriptors["4d4d4d4d-0000-4000-8000-000000000002"]["position"] is None
    items = rows("schedule_items", load("schedule_items"))
    first = items["5c5c5c5c-0000-4000-8000-000000000001"]
    assert (first["start_date"], first["end_date"], first["man_days"]) == (
        date(2024, 2, 1),
        date(2024, 5, 31),
        60,
    )
    assert items["5c5c5c5c-0000-4000-8000-000000000002"]["object_source_id"] is not None
    milestones = rows("milestones", load("milestones"))
    lock = milestones["3e3e3e3e-0000-4000-8000-000000000001"]
    assert (lock["name"], lock["date"]) == ("Picture lock", date(2024, 6, 28))
    assert milestones["3e3e3e3e-0000-4000-8000-000000000002"]["task_type_source_id"] is None


def test_a_bad_record_is_rejected_with_the_field_named() -> None:
    """A link without entity_in_id or a milestone dated 'soon' is a reject naming the field; the rest load."""
    bad_link = {"id": "x", "entity_out_id": "y", "created_at": "2024-01-01T00:00:00"}
    batch = transform("zou", "entity_links", [bad_link, *load("entity_links")])
    assert [r.source_id for r in batch.rejects] == ["x"]
    assert "entity_in_id" in batch.rejects[0].error
    assert len(batch.rows["production.entity_links"]) == 2
    milestone = {"id": "m", "name": "Lock", "date": "soon", "created_at": "2024-01-01T00:00:00"}
    rejected = transform("zou", "milestones", [milestone]).rejects
    assert len(rejected) == 1
    assert "date" in rejected[0].error


def test_a_recast_shot_emits_zous_casting_update() -> None:
    """Re-casting re-makes the links with new ids and emits zou 1.0.97's shot:casting-update diff."""
    ctx = SandboxContext(clock=SandboxClock(real=lambda: 1_750_000_000.0))
    zou.create_app(ctx)
    service = ctx.state["zou"]
    assert isinstance(service, zou.ZouService)
    store = service.store
    links = store.rows("entity-links")
    entities = store.rows("entities")
    cast = {r.fields["entity_in_id"] for r in links.values()}
    shot = sorted(i for i in cast if store._kind(MODELS["entities"], entities[i]) == "shot")[0]
    before = {r.fields["entity_out_id"] for r in links.values() if r.fields["entity_in_id"] == shot}
    old_ids = {i for i, r in links.items() if r.fields["entity_in_id"] == shot}
    kept = sorted(before)[0]
    made = store.set_casting(shot, [{"asset_id": kept, "nb_occurences": 2, "label": "animate"}])
    assert {m["id"] for m in made}.isdisjoint(old_ids)
    assert set(made[0]) == BASE | COLUMNS["entity-links"]
    event = store.data.events[-1]
    assert event.name == "shot:casting-update"
    assert event.data == {
        "shot_id": shot,
        "nb_entities_out": 1,
        "added_asset_ids": [],
        "removed_asset_ids": sorted(before - {kept}),
    }
    assert store.rows("entities")[shot].fields["nb_entities_out"] == 1
