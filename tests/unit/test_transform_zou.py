"""Zou rows → production.* rows, and the events log → rows + what to re-fetch or delete."""

from __future__ import annotations

import copy
import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from pipeline.errors import ContractError
from pipeline.records import Batch
from pipeline.transform import zou
from pipeline.transform.zou_events import reduce_events, transform_events

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "zou"
P1 = "b35b7fb5-df86-5776-b181-685641930001"
T1 = "0a1b2c3d-0000-4000-8000-000000000001"
SHOT = "a24a6ea4-ce75-4665-a070-57453082c250"
ASSET = "a24a6ea4-ce75-4665-a070-000000000a01"
ART = "c46c8ac6-0000-4000-8000-000000000001"
SUP = "c46c8ac6-0000-4000-8000-000000000002"


def load(name: str) -> Any:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def rows_by_id(batch: Batch, table: str) -> dict[str, dict[str, Any]]:
    return {row["source_id"]: row for row in batch.rows[table]}


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def test_project_fields_from_a_paginated_page() -> None:
    """A project row carries every mapped field; naive Zou times become aware UTC, "" becomes NULL."""
    batch = zou.transform_projects(load("projects_page"))
    assert not batch.rejects
    row = rows_by_id(batch, "production.projects")[P1]
    assert row == {
        "source_id": P1,
        "name": "My Project",
        "code": "MP",
        "description": None,
        "project_status_source_id": "99999999-0000-4000-8000-000000000001",
        "production_type": "tvshow",
        "production_style": "2d3d",
        "fps": "25",
        "ratio": "16:9",
        "resolution": "1920x1080",
        "start_date": date(2024, 1, 15),
        "end_date": date(2024, 12, 20),
        "man_days": 1200,
        "nb_episodes": 13,
        "episode_span": 0,
        "max_retakes": 2,
        "homepage": "assets",
        "is_clients_isolated": False,
        "data": {"budget_code": "X12"},
        "source_created_at": utc(2024, 1, 15, 10, 30),
        "source_updated_at": utc(2024, 3, 2, 8, 15, 42),
    }
    other = rows_by_id(batch, "production.projects")["b35b7fb5-df86-5776-b181-685641930002"]
    assert other["source_updated_at"] == utc(2024, 1, 15, 11, 0)
    assert [(r.resource, r.source_id) for r in batch.raw] == [
        ("projects", P1),
        ("projects", "b35b7fb5-df86-5776-b181-685641930002"),
    ]
    assert batch.raw[0].payload == load("projects_page")["data"][0]


def test_plain_list_and_paginated_page_give_the_same_rows() -> None:
    """Unpaginated routes return a bare list; it maps exactly like the {data: [...]} page."""
    listed = zou.transform_task_types(load("task_types"))
    paged = zou.transform_task_types({"data": load("task_types"), "total": 2, "nb_pages": 1, "page": 1})
    assert listed.rows == paged.rows
    anim = listed.rows["production.task_types"][0]
    assert (anim["name"], anim["short_name"], anim["color"], anim["priority"]) == (
        "Animation",
        "ANIM",
        "#FF5733",
        3,
    )
    assert (anim["for_entity"], anim["allow_timelog"], anim["department_source_id"]) == (
        "Shot",
        True,
        "dd000000-0000-4000-8000-000000000001",
    )


def test_a_body_that_is_not_a_page_is_a_contract_error() -> None:
    """An error body or HTML instead of a page stops the stream with a message naming the resource."""
    with pytest.raises(ContractError, match="zou tasks"):
        zou.transform_tasks({"message": "Signature has expired"})


def test_person_secrets_never_reach_rows_or_raw() -> None:
    """Password, OTP, FIDO and token fields are dropped before the record is kept anywhere."""
    batch = zou.transform_persons(load("persons"))
    secret_keys = {"password", "totp_secret", "email_otp_secret", "otp_recovery_codes", "fido_devices", "jti"}
    for record in batch.raw:
        assert not secret_keys & record.payload.keys()
    assert "$2b$12$" not in json.dumps([r.payload for r in batch.raw])
    assert batch.raw[0].payload["totp_enabled"] is True  # harmless flags stay
    ada = rows_by_id(batch, "production.persons")[ART]
    assert ada["full_name"] == "Ada Artist"
    assert ada["phone"] is None
    assert ada["daily_salary"] == 350.0
    assert ada["department_source_ids"] == [
        "dd000000-0000-4000-8000-000000000001",
        "dd000000-0000-4000-8000-000000000002",
    ]
    assert (ada["role"], ada["timezone"], ada["locale"], ada["is_bot"]) == (
        "user",
        "Europe/Paris",
        "fr_FR",
        False,
    )
    bot = rows_by_id(batch, "production.persons")["c46c8ac6-0000-4000-8000-000000000003"]
    assert (bot["full_name"], bot["department_source_ids"], bot["is_bot"]) == (None, None, True)


def test_entity_type_kind_comes_from_its_name() -> None:
    """Shot/Sequence/Episode types keep their kind; any other type name is an asset type."""
    batch = zou.transform_entity_types(load("entity_types"))
    kinds = {r["name"]: r["kind"] for r in batch.rows["production.entity_types"]}
    assert kinds == {"Character": "asset", "Shot": "shot", "Sequence": "sequence", "Episode": "episode"}


def test_entities_get_kind_refs_and_data() -> None:
    """Generic /data/entities rows take kind from entity-type names; parent/episode refs are natural keys."""
    names = {t["id"]: t["name"] for t in load("entity_types")}
    batch = zou.transform_entities(load("entities_page"), entity_type_names=names)
    rows = rows_by_id(batch, "production.entities")
    shot = rows[SHOT]
    assert shot["kind"] == "shot"
    assert (shot["name"], shot["description"], shot["status"], shot["nb_frames"]) == (
        "SH010",
        "Opening shot",
        "running",
        120,
    )
    assert shot["project_source_id"] == P1
    assert shot["entity_type_source_id"] == "d57d9bd7-0000-4000-8000-000000000002"
    assert shot["parent_source_id"] == "c24a6ea4-ce75-4665-a070-57453082c250"
    assert shot["episode_source_id"] == "a24a6ea4-ce75-4665-a070-000000000e01"
    assert shot["created_by_source_id"] == SUP
    assert shot["data"] == {"camera": "camA", "cut_in": 1001, "frame_in": 1001, "frame_out": 1120}
    assert {r["kind"] for r in rows.values()} == {"shot", "sequence", "episode", "asset"}
    assert rows[ASSET]["ready_for_source_id"] == "e68e0ce8-0000-4000-8000-000000000001"


def test_entity_kind_from_serialized_type_or_unknown() -> None:
    """Convenience routes say "type": "Shot"; a generic row with an unknown type gets kind NULL."""
    shot = zou.transform_entities(load("shots_route")).rows["production.entities"][0]
    assert shot["kind"] == "shot"
    generic = zou.transform_entities(load("entities_page")).rows["production.entities"]
    assert {r["kind"] for r in generic} == {None}


def test_task_fields_and_assignee_links() -> None:
    """Tasks map every field and emit one task_assignees row per assignee (relations=true)."""
    batch = zou.transform_tasks(load("tasks_page"))
    task = rows_by_id(batch, "production.tasks")[T1]
    assert (task["priority"], task["difficulty"], task["retake_count"], task["nb_assets_ready"]) == (
        2,
        3,
        1,
        2,
    )
    assert (task["duration"], task["estimation"], task["completion_rate"]) == (510.0, 960.0, 0.5)
    assert task["start_date"] == utc(2024, 3, 1)
    assert task["real_start_date"] == utc(2024, 3, 2, 9, 12, 44)
    assert task["end_date"] is None
    assert task["last_comment_date"] == utc(2024, 3, 5, 16, 20, 11)
    assert (task["project_source_id"], task["entity_source_id"], task["assigner_source_id"]) == (
        P1,
        SHOT,
        SUP,
    )
    assert task["task_type_source_id"] == "e68e0ce8-0000-4000-8000-000000000001"
    assert task["task_status_source_id"] == "f79f1df9-0000-4000-8000-000000000002"
    assert "assignees" not in task
    assert batch.rows["production.task_assignees"] == [
        {"task_source_id": T1, "person_source_id": ART},
        {"task_source_id": T1, "person_source_id": SUP},
    ]
    other = rows_by_id(batch, "production.tasks")["0a1b2c3d-0000-4000-8000-000000000002"]
    assert other["start_date"] == utc(2024, 1, 22)  # a bare date is midnight UTC


def test_comment_links_a_task_only_when_it_is_on_a_task() -> None:
    """object_type Task fills task_source_id; comments on other objects keep only object ids."""
    rows = zou.transform_comments(load("comments")).rows["production.comments"]
    on_task, on_asset = rows
    assert on_task["task_source_id"] == T1
    assert (on_task["person_source_id"], on_task["task_status_source_id"]) == (
        SUP,
        "f79f1df9-0000-4000-8000-000000000002",
    )
    assert on_task["text"] == "Please fix the **timing** at frame 1050."
    assert on_task["mentions"] == [ART]
    assert on_task["replies"][0]["text"] == "On it"
    assert on_task["checklist"] == [{"text": "timing", "checked": False}]
    assert on_task["source_created_at"] == utc(2024, 3, 5, 16, 20, 11)
    assert (on_asset["task_source_id"], on_asset["object_type"], on_asset["object_source_id"]) == (
        None,
        "Asset",
        ASSET,
    )
    assert on_asset["pinned"] is True


def test_time_spent_duration_and_day() -> None:
    """The seed's time spent (8.5 on 2022-07-12) keeps its duration, day, task and person."""
    row = zou.transform_time_spents(load("time_spents")).rows["production.time_spents"][0]
    assert row == {
        "source_id": "a24a6ea4-ce75-4665-a070-57453082c259",
        "duration": 8.5,
        "date": date(2022, 7, 12),
        "task_source_id": T1,
        "person_source_id": ART,
        "source_created_at": utc(2022, 7, 12, 18),
        "source_updated_at": utc(2022, 7, 12, 18),
    }


def test_one_bad_record_is_rejected_and_the_rest_of_the_page_loads() -> None:
    """A bad timestamp, a missing name and a missing id each reject one record; the others load."""
    page = load("tasks_page")
    page["data"][0]["updated_at"] = "last tuesday"
    page["data"].append({"name": "no id here"})
    batch = zou.transform_tasks(page)
    assert [r["source_id"] for r in batch.rows["production.tasks"]] == [
        "0a1b2c3d-0000-4000-8000-000000000002"
    ]
    assert "production.task_assignees" not in batch.rows  # the rejected task's links are not kept either
    assert [(r.source_id, r.resource) for r in batch.rejects] == [(T1, "tasks"), (None, "tasks")]
    assert "updated_at" in batch.rejects[0].error
    assert "last tuesday" in batch.rejects[0].error
    assert T1 in [r.source_id for r in batch.raw]  # still landed raw, for replay after a fix

    types = load("entity_types")
    types[1]["name"] = ""
    rejected = zou.transform_entity_types(types).rejects
    assert len(rejected) == 1
    assert "name" in rejected[0].error


def test_an_id_seen_twice_in_one_page_gives_one_row() -> None:
    """Offset pages shift under writes; a duplicated record must not reach the upsert twice."""
    page = load("projects_page")
    page["data"].append(copy.deepcopy(page["data"][0]))
    assert len(zou.transform_projects(page).rows["production.projects"]) == 2


# ---------------------------------------------------------------------------- events


def test_events_become_rows_split_by_name() -> None:
    """Each event is stored with its object type, action, object id, user and project."""
    batch = transform_events(load("events"))
    rows = rows_by_id(batch, "production.events")
    comment = rows["ee000000-0000-4000-8000-000000000009"]
    assert comment == {
        "source_id": "ee000000-0000-4000-8000-000000000009",
        "name": "comment:new",
        "object_type": "comment",
        "action": "new",
        "object_source_id": "c0c0c0c0-0000-4000-8000-000000000001",
        "created_at": utc(2024, 3, 5, 16, 20, 11),
        "user_source_id": SUP,
        "project_source_id": P1,
        "data": load("events")[0]["data"],
        "source_updated_at": utc(2024, 3, 5, 16, 20, 11),
    }
    assert (
        rows["ee000000-0000-4000-8000-000000000003"]["object_source_id"]
        == "e68e0ce8-0000-4000-8000-000000000002"
    )
    assert rows["ee000000-0000-4000-8000-000000000003"]["user_source_id"] is None


def test_overlapping_polls_store_each_event_once() -> None:
    """The same event fetched by two overlapping polls (same second) is one row."""
    events = load("events")
    batch = transform_events(events + events[:2])
    assert len(batch.rows["production.events"]) == len(events)


def test_reduce_events_touched_and_deleted_ids_per_resource() -> None:
    """Events reduce to ids to re-fetch and ids to soft-delete, per synced resource."""
    changes = reduce_events(load("events"))
    assert changes.touched == {
        "comments": frozenset({"c0c0c0c0-0000-4000-8000-000000000001"}),
        "tasks": frozenset({T1}),
        "time_spents": frozenset({"a24a6ea4-ce75-4665-a070-57453082c25a"}),
        "task_types": frozenset({"e68e0ce8-0000-4000-8000-000000000002"}),
        "entities": frozenset({ASSET}),
        "preview_files": frozenset({"9f9f9f9f-0000-4000-8000-000000000002"}),  # preview-file:add-file
    }
    assert changes.deleted == {
        "entities": frozenset({"a24a6ea4-ce75-4665-a070-57453082c251"}),
        "persons": frozenset({"c46c8ac6-0000-4000-8000-0000000000ff"}),
    }
    assert changes.ignored == {}
    assert changes.duplicates == 0
    assert changes.newest_at == utc(2024, 3, 5, 16, 20, 11)


def test_reduce_events_does_not_depend_on_order_and_counts_duplicates() -> None:
    """Newest-first or oldest-first gives the same verdicts; a re-seen event id is counted, not re-applied."""
    events = load("events")
    forward = reduce_events(events)
    backward = reduce_events(list(reversed(events)) + events[:3])
    assert (backward.touched, backward.deleted) == (forward.touched, forward.deleted)
    assert backward.duplicates == 3


def test_same_second_delete_wins_but_a_later_update_revives() -> None:
    """Within one second a delete beats an update; an update a second later means re-fetch it."""
    shot = "a24a6ea4-ce75-4665-a070-57453082c251"

    def event(n: int, at: str, name: str) -> dict[str, Any]:
        return {"id": f"e{n}", "created_at": at, "name": name, "data": {"shot_id": shot}}

    same_second = [
        event(1, "2024-03-05T10:00:00", "shot:delete"),
        event(2, "2024-03-05T10:00:00", "shot:update"),
    ]
    assert reduce_events(same_second).deleted == {"entities": frozenset({shot})}
    assert reduce_events(same_second).touched == {}
    later = [*same_second, event(3, "2024-03-05T10:00:01", "shot:update")]
    assert reduce_events(later).touched == {"entities": frozenset({shot})}
    assert reduce_events(later).deleted == {}


def test_generic_new_events_and_unknown_names() -> None:
    """`<table>:new` with {"<table>_id"} maps to its resource; unknown names and id-less events count."""
    events = [
        {
            "id": "a",
            "created_at": "2024-01-01T00:00:00",
            "name": "task-status:new",
            "data": {"task_status_id": "s1"},
        },
        {
            "id": "b",
            "created_at": "2024-01-01T00:00:00",
            "name": "entity-type:new",
            "data": {"entity_type_id": "t1"},
        },
        {
            "id": "c",
            "created_at": "2024-01-01T00:00:00",
            "name": "asset-type:update",
            "data": {"asset_type_id": "t2"},
        },
        {
            "id": "d",
            "created_at": "2024-01-01T00:00:00",
            "name": "output-file:update",
            "data": {"output_file_id": "o"},
        },
        {"id": "e", "created_at": "2024-01-01T00:00:00", "name": "task:update", "data": {}},
        {"id": "f", "created_at": "2024-01-01T00:00:00", "data": {}},
        {
            "id": "g",
            "created_at": "2024-01-01T00:00:00",
            "name": "playlist:update",
            "data": {"playlist_id": "p"},
        },
    ]
    changes = reduce_events(events)
    assert changes.touched == {
        "task_statuses": frozenset({"s1"}),
        "entity_types": frozenset({"t1", "t2"}),
        "playlists": frozenset({"p"}),
    }
    assert changes.ignored == {"output-file:update": 1, "task:update": 1, "<malformed>": 1}


def test_casting_updates_name_the_recast_entities_and_the_added_assets() -> None:
    """shot/episode:casting-update (zou 1.0.97's diff) → entities to re-fetch casting for, and the
    added assets whose episode links zou made with only an asset:update."""
    events = [
        {
            "id": "a",
            "created_at": "2024-01-01T00:00:00",
            "name": "shot:casting-update",
            "data": {
                "shot_id": "s1",
                "nb_entities_out": 2,
                "added_asset_ids": ["a1"],
                "removed_asset_ids": ["a2"],
            },
        },
        {
            "id": "b",
            "created_at": "2024-01-01T00:00:01",
            "name": "episode:casting-update",
            "data": {
                "episode_id": "e1",
                "nb_entities_out": 0,
                "added_asset_ids": [],
                "removed_asset_ids": ["a2"],
            },
        },
        {"id": "c", "created_at": "2024-01-01T00:00:02", "name": "asset:update", "data": {"asset_id": "a1"}},
    ]
    changes = reduce_events(events)
    assert changes.cast == frozenset({"s1", "e1"})
    assert changes.cast_assets == frozenset({"a1"})
    assert changes.touched == {"entities": frozenset({"s1", "e1", "a1"})}
