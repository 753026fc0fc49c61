"""The Zou events watermark: overlap, dedupe by id, encoding, version detection."""

from __future__ import annotations

import pytest

from pipeline.errors import ContractError
from pipeline.sources.zou_log import EventCursor, event_time, parse_version, shift


def ev(event_id: str, at: str, name: str = "task:update") -> dict[str, object]:
    return {"id": event_id, "created_at": at, "name": name, "data": {"task_id": "t" + event_id}}


def test_advance_keeps_the_newest_event_and_the_ids_inside_the_overlap() -> None:
    """The watermark is the newest event; ids within the overlap window before it are remembered."""
    cursor = EventCursor().advance(
        [ev("a", "2025-06-15T10:00:00"), ev("b", "2025-06-15T10:00:50"), ev("c", "2025-06-15T10:01:00")], 30
    )
    assert (cursor.at, cursor.event_id) == ("2025-06-15T10:01:00", "c")
    assert cursor.recent == {"b", "c"}
    assert cursor.after(30) == "2025-06-15T10:00:30"


def test_unseen_drops_events_already_applied_in_the_overlap() -> None:
    """A poll that re-reads the overlap applies only events whose ids were not applied yet."""
    cursor = EventCursor().advance([ev("a", "2025-06-15T10:00:00"), ev("b", "2025-06-15T10:00:00")], 10)
    polled = [
        ev("b", "2025-06-15T10:00:00"),
        ev("late", "2025-06-15T09:59:58"),
        ev("new", "2025-06-15T10:00:00"),
    ]
    assert [e["id"] for e in cursor.unseen(polled)] == ["late", "new"]


def test_advance_without_events_keeps_the_cursor_and_older_ids_survive_a_same_second_advance() -> None:
    """No events: the watermark stays; new events in the same second keep the ids seen before."""
    cursor = EventCursor().advance([ev("a", "2025-06-15T10:00:00")], 5)
    assert cursor.advance([], 5) is cursor
    later = cursor.advance([ev("b", "2025-06-15T10:00:00")], 5)
    assert later.recent == {"a", "b"}


def test_cursor_round_trips_as_text_and_rejects_foreign_values() -> None:
    """The cursor is stored as JSON text; a timestamp cursor from elsewhere is refused with a fix."""
    cursor = EventCursor("2025-06-15T10:00:00", "x", frozenset({"x", "y"}))
    assert EventCursor.decode(cursor.encode()) == cursor
    with pytest.raises(ContractError, match="--full"):
        EventCursor.decode("2025-06-15T10:00:00")


def test_times_are_cut_to_seconds_and_shifted() -> None:
    """Zou times compare at second precision; shifting crosses day boundaries."""
    assert event_time({"created_at": "2025-06-15 10:00:00.123456"}) == "2025-06-15T10:00:00"
    assert shift("2025-06-15T00:00:10", -60) == "2025-06-14T23:59:10"
    with pytest.raises(ContractError):
        event_time({"id": "e", "created_at": None})


def test_versions_parse_for_the_cursor_paging_decision() -> None:
    """Server versions parse to tuples; junk is None (treated as a new server)."""
    assert parse_version("1.0.67") == (1, 0, 67)
    assert parse_version("v0.20.52") == (0, 20, 52)
    assert parse_version(None) is None
    assert parse_version("dev") is None


def test_studio_model_streams_load_after_the_rows_they_point_at() -> None:
    """With the default resources, casting waits for entities, previews for tasks and persons, the
    schedule and playlists for projects and task types, descriptors for their departments too."""
    from pathlib import Path

    from pipeline.orchestrate import stream_deps
    from pipeline.settings import parse_settings

    settings = parse_settings(
        {"sources": {"z": {"kind": "zou", "base_url": "http://z/api"}}}, Path("t.toml"), {}
    )
    zou = settings.sources["z"]
    assert stream_deps(zou, "entity_links") == ("entities",)
    assert stream_deps(zou, "preview_files") == ("tasks", "persons")
    assert stream_deps(zou, "metadata_descriptors") == ("projects", "task_types", "departments")
    assert stream_deps(zou, "playlists") == ("projects", "entities", "task_types")
    assert stream_deps(zou, "milestones") == stream_deps(zou, "schedule_items") == ("projects", "task_types")
    assert stream_deps(zou, "departments") == ()
