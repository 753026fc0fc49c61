"""Zou (CGWire Kitsu production tracker) rows → ``production.*`` rows. Pure: no I/O, no clock.

Each ``transform_<model>`` takes one page as fetched: the paginated ``{data, total, nb_pages, …}``
body or the plain list that unpaginated ``/data/<model>`` routes return. Zou serialises times as
naive UTC strings without microseconds; they become aware datetimes (naive read as UTC). Empty strings become
NULL. Person secrets (passwords, OTP/FIDO material, tokens) are dropped before the record is
kept, even in ``raw``. The change feed (``/data/events/last``) is ``pipeline.transform.zou_events``.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Mapping
from datetime import UTC, date
from typing import Any

from pipeline.errors import ContractError, SkippableRecordError
from pipeline.records import Batch
from pipeline.transform.common import PageBuilder, require_id
from pipeline.transform.common import integer as _int
from pipeline.transform.common import text as _text
from pipeline.transform.common import timestamp as _at

Row = dict[str, Any]
Mapper = Callable[[Mapping[str, Any]], Row]

ENTITY_KINDS = ("asset", "shot", "sequence", "episode", "edit", "concept", "concept_folder", "scene")
_TEMPORAL_KINDS = {"shot", "sequence", "episode", "edit", "concept", "concept_folder", "scene"}
_SECRET_PARTS = ("password", "secret", "token", "recovery", "fido_devices", "otp_code")
_SECRET_KEYS = frozenset({"jti"})


def page_records(payload: Any, resource: str) -> list[Any]:
    """The records of one page: a ``{data: [...]}`` body or a bare list."""
    if isinstance(payload, list):
        return payload
    if isinstance(payload, Mapping) and isinstance(payload.get("data"), list):
        return list(payload["data"])
    raise ContractError(
        f"zou {resource}: expected a list or a {{'data': [...]}} page, got {type(payload).__name__}; "
        "check the server version and the route"
    )


# ---------------------------------------------------------------------------- field readers


def zou_date(value: Any, field: str) -> date | None:
    """A calendar date; a full timestamp is cut to its (UTC) day."""
    if isinstance(value, str) and len(value) == 10:
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise SkippableRecordError(f"{field} {value!r} is not a YYYY-MM-DD date") from None
    moment = _at(value, field)
    return None if moment is None else moment.astimezone(UTC).date()


def required_text(value: Any, field: str) -> str:
    text = _text(value, field)
    if text is None:
        raise SkippableRecordError(f"{field} is missing or empty; Zou requires it")
    return text


def _number(value: Any, field: str) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise SkippableRecordError(f"{field} {value!r} is not a number")
    number: float | None = None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        with contextlib.suppress(ValueError):
            number = float(value)
    if number is None or not math.isfinite(number):
        raise SkippableRecordError(f"{field} {value!r} is not a finite number")
    return number


def _bool(value: Any, field: str) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise SkippableRecordError(f"{field} {value!r} is not a boolean")


def _json(value: Any, field: str) -> Any:
    if value is None or isinstance(value, dict | list):
        return value
    raise SkippableRecordError(f"{field} {value!r} is not a JSON object or array")


def _ids(value: Any, field: str) -> list[str] | None:
    """A relation id list, sorted so that order changes do not count as content changes."""
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise SkippableRecordError(f"{field} {value!r} is not a list of ids")
    return sorted(set(value))


def _stamps(rec: Mapping[str, Any]) -> Row:
    return {
        "source_created_at": _at(rec.get("created_at"), "created_at"),
        "source_updated_at": _at(rec.get("updated_at"), "updated_at"),
    }


def kind_of_type(name: str | None) -> str | None:
    """The entity kind an entity type name stands for: Shot → shot, ConceptFolder → concept_folder, …;
    any other name is an asset type."""
    if not name:
        return None
    lowered = name.strip().lower()
    if lowered.replace(" ", "") == "conceptfolder":
        return "concept_folder"
    return lowered if lowered in _TEMPORAL_KINDS else "asset"


def scrub_person(rec: Mapping[str, Any]) -> dict[str, Any]:
    """The person record without password, OTP/FIDO material or tokens (never stored, even raw)."""
    return {
        key: value
        for key, value in rec.items()
        if key not in _SECRET_KEYS and not any(part in key.lower() for part in _SECRET_PARTS)
    }


# ---------------------------------------------------------------------------- the page loop


def transform_page(
    payload: Any,
    resource: str,
    table: str,
    mapper: Mapper,
    *,
    links: Callable[[Mapping[str, Any]], list[tuple[str, Row]]] | None = None,
    clean: Callable[[Mapping[str, Any]], dict[str, Any]] = dict,
) -> Batch:
    """Map every record of a page; a bad record becomes a Reject and the rest still load."""
    page = PageBuilder()
    for record in page_records(payload, resource):
        if not isinstance(record, Mapping):
            page.reject(resource, None, record, f"zou {resource}: record is not a JSON object")
            continue
        kept = clean(record)
        try:
            source_id = require_id(kept.get("id"), "id")
        except SkippableRecordError as exc:
            page.reject(resource, None, kept, f"zou {resource}: {exc}")
            continue

        def build(rec: Mapping[str, Any] = kept, source_id: str = source_id) -> list[tuple[str, Row]]:
            rows = [(table, {"source_id": source_id, **mapper(rec)})]
            return rows + (links(rec) if links is not None else [])

        page.record(resource, kept, source_id, build)
    return page.batch


# ---------------------------------------------------------------------------- one mapper per model


def _project(rec: Mapping[str, Any]) -> Row:
    return {
        "name": required_text(rec.get("name"), "name"),
        "code": _text(rec.get("code"), "code"),
        "description": _text(rec.get("description"), "description"),
        "project_status_source_id": _text(rec.get("project_status_id"), "project_status_id"),
        "production_type": _text(rec.get("production_type"), "production_type"),
        "production_style": _text(rec.get("production_style"), "production_style"),
        "fps": _text(rec.get("fps"), "fps"),
        "ratio": _text(rec.get("ratio"), "ratio"),
        "resolution": _text(rec.get("resolution"), "resolution"),
        "start_date": zou_date(rec.get("start_date"), "start_date"),
        "end_date": zou_date(rec.get("end_date"), "end_date"),
        "man_days": _int(rec.get("man_days"), "man_days"),
        "nb_episodes": _int(rec.get("nb_episodes"), "nb_episodes"),
        "episode_span": _int(rec.get("episode_span"), "episode_span"),
        "max_retakes": _int(rec.get("max_retakes"), "max_retakes"),
        "homepage": _text(rec.get("homepage"), "homepage"),
        "is_clients_isolated": _bool(rec.get("is_clients_isolated"), "is_clients_isolated"),
        "data": _json(rec.get("data"), "data"),
        **_stamps(rec),
    }


def _person(rec: Mapping[str, Any]) -> Row:
    first = _text(rec.get("first_name"), "first_name")
    last = _text(rec.get("last_name"), "last_name")
    full = " ".join(part for part in (first, last) if part) or None
    return {
        "first_name": first,
        "last_name": last,
        "full_name": full,
        "email": _text(rec.get("email"), "email"),
        "phone": _text(rec.get("phone"), "phone"),
        "role": _text(rec.get("role"), "role"),
        "position": _text(rec.get("position"), "position"),
        "seniority": _text(rec.get("seniority"), "seniority"),
        "daily_salary": _number(rec.get("daily_salary"), "daily_salary"),
        "active": _bool(rec.get("active"), "active"),
        "archived": _bool(rec.get("archived"), "archived"),
        "is_bot": _bool(rec.get("is_bot"), "is_bot"),
        "is_guest": _bool(rec.get("is_guest"), "is_guest"),
        "timezone": _text(rec.get("timezone"), "timezone"),
        "locale": _text(rec.get("locale"), "locale"),
        "studio_source_id": _text(rec.get("studio_id"), "studio_id"),
        "department_source_ids": _ids(rec.get("departments"), "departments"),
        **_stamps(rec),
    }


def _entity_type(rec: Mapping[str, Any]) -> Row:
    name = required_text(rec.get("name"), "name")
    return {
        "name": name,
        "kind": kind_of_type(name),
        "short_name": _text(rec.get("short_name"), "short_name"),
        "description": _text(rec.get("description"), "description"),
        "archived": _bool(rec.get("archived"), "archived"),
        **_stamps(rec),
    }


def _task_type(rec: Mapping[str, Any]) -> Row:
    return {
        "name": required_text(rec.get("name"), "name"),
        "short_name": _text(rec.get("short_name"), "short_name"),
        "description": _text(rec.get("description"), "description"),
        "color": _text(rec.get("color"), "color"),
        "priority": _int(rec.get("priority"), "priority"),
        "for_entity": _text(rec.get("for_entity"), "for_entity"),
        "allow_timelog": _bool(rec.get("allow_timelog"), "allow_timelog"),
        "archived": _bool(rec.get("archived"), "archived"),
        "department_source_id": _text(rec.get("department_id"), "department_id"),
        **_stamps(rec),
    }


_STATUS_FLAGS = (
    "is_done",
    "is_wip",
    "is_retake",
    "is_feedback_request",
    "is_default",
    "is_artist_allowed",
    "is_client_allowed",
    "for_concept",
    "archived",
)


def _task_status(rec: Mapping[str, Any]) -> Row:
    return {
        "name": required_text(rec.get("name"), "name"),
        "short_name": _text(rec.get("short_name"), "short_name"),
        "description": _text(rec.get("description"), "description"),
        "color": _text(rec.get("color"), "color"),
        "priority": _int(rec.get("priority"), "priority"),
        **{flag: _bool(rec.get(flag), flag) for flag in _STATUS_FLAGS},
        **_stamps(rec),
    }


def _entity_mapper(entity_type_names: Mapping[str, str]) -> Mapper:
    def entity(rec: Mapping[str, Any]) -> Row:
        type_id = _text(rec.get("entity_type_id"), "entity_type_id")
        serialized = rec.get("type")  # "Asset"/"Shot"/… on convenience routes, "Entity" on /data/entities
        if isinstance(serialized, str) and serialized.lower() in ENTITY_KINDS:
            kind: str | None = serialized.lower()
        else:
            kind = kind_of_type(entity_type_names.get(type_id)) if type_id else None
        return {
            "kind": kind,
            "name": required_text(rec.get("name"), "name"),
            "code": _text(rec.get("code"), "code"),
            "description": _text(rec.get("description"), "description"),
            "status": _text(rec.get("status"), "status"),
            "canceled": _bool(rec.get("canceled"), "canceled"),
            "is_shared": _bool(rec.get("is_shared"), "is_shared"),
            "is_casting_standby": _bool(rec.get("is_casting_standby"), "is_casting_standby"),
            "nb_frames": _int(rec.get("nb_frames"), "nb_frames"),
            "nb_entities_out": _int(rec.get("nb_entities_out"), "nb_entities_out"),
            "project_source_id": _text(rec.get("project_id"), "project_id"),
            "entity_type_source_id": type_id,
            "parent_source_id": _text(rec.get("parent_id"), "parent_id"),
            "episode_source_id": _text(rec.get("source_id"), "source_id"),
            "ready_for_source_id": _text(rec.get("ready_for"), "ready_for"),
            "preview_file_source_id": _text(rec.get("preview_file_id"), "preview_file_id"),
            "created_by_source_id": _text(rec.get("created_by"), "created_by"),
            "data": _json(rec.get("data"), "data"),
            **_stamps(rec),
        }

    return entity


_TASK_TIMES = ("start_date", "due_date", "real_start_date", "end_date", "done_date", "last_comment_date")
_TASK_INTS = ("priority", "difficulty", "retake_count", "sort_order", "nb_assets_ready", "nb_drawings")


def _task(rec: Mapping[str, Any]) -> Row:
    return {
        "name": _text(rec.get("name"), "name"),
        "description": _text(rec.get("description"), "description"),
        **{key: _int(rec.get(key), key) for key in _TASK_INTS},
        "duration": _number(rec.get("duration"), "duration"),
        "estimation": _number(rec.get("estimation"), "estimation"),
        "completion_rate": _number(rec.get("completion_rate"), "completion_rate"),
        **{key: _at(rec.get(key), key) for key in _TASK_TIMES},
        "project_source_id": _text(rec.get("project_id"), "project_id"),
        "task_type_source_id": _text(rec.get("task_type_id"), "task_type_id"),
        "task_status_source_id": _text(rec.get("task_status_id"), "task_status_id"),
        "entity_source_id": _text(rec.get("entity_id"), "entity_id"),
        "assigner_source_id": _text(rec.get("assigner_id"), "assigner_id"),
        "last_preview_file_source_id": _text(rec.get("last_preview_file_id"), "last_preview_file_id"),
        "data": _json(rec.get("data"), "data"),
        **_stamps(rec),
    }


def _task_assignees(rec: Mapping[str, Any]) -> list[tuple[str, Row]]:
    """Assignee links; none at all when the page was fetched without ``relations=true``."""
    people = _ids(rec.get("assignees"), "assignees") or []
    return [
        ("production.task_assignees", {"task_source_id": rec["id"], "person_source_id": p}) for p in people
    ]


def _comment(rec: Mapping[str, Any]) -> Row:
    object_type = _text(rec.get("object_type"), "object_type")
    object_id = _text(rec.get("object_id"), "object_id")
    return {
        "object_type": object_type,
        "object_source_id": object_id,
        "task_source_id": object_id if object_type == "Task" else None,
        "person_source_id": _text(rec.get("person_id"), "person_id"),
        "editor_source_id": _text(rec.get("editor_id"), "editor_id"),
        "task_status_source_id": _text(rec.get("task_status_id"), "task_status_id"),
        "text": _text(rec.get("text"), "text"),
        "pinned": _bool(rec.get("pinned"), "pinned"),
        "for_client": _bool(rec.get("for_client"), "for_client"),
        "preview_file_source_id": _text(rec.get("preview_file_id"), "preview_file_id"),
        "checklist": _json(rec.get("checklist"), "checklist"),
        "replies": _json(rec.get("replies"), "replies"),
        "links": _json(rec.get("links"), "links"),
        "mentions": _ids(rec.get("mentions"), "mentions"),
        "attachment_file_source_ids": _ids(rec.get("attachment_files"), "attachment_files"),
        "data": _json(rec.get("data"), "data"),
        **_stamps(rec),
    }


def _time_spent(rec: Mapping[str, Any]) -> Row:
    duration = _number(rec.get("duration"), "duration")
    day = zou_date(rec.get("date"), "date")
    if duration is None or day is None:
        raise SkippableRecordError("duration and date are required")
    return {
        "duration": duration,
        "date": day,
        "task_source_id": _text(rec.get("task_id"), "task_id"),
        "person_source_id": _text(rec.get("person_id"), "person_id"),
        **_stamps(rec),
    }


# ---------------------------------------------------------------------------- public transforms


def transform_projects(payload: Any) -> Batch:
    return transform_page(payload, "projects", "production.projects", _project)


def transform_persons(payload: Any) -> Batch:
    return transform_page(payload, "persons", "production.persons", _person, clean=scrub_person)


def transform_entity_types(payload: Any) -> Batch:
    return transform_page(payload, "entity_types", "production.entity_types", _entity_type)


def transform_task_types(payload: Any) -> Batch:
    return transform_page(payload, "task_types", "production.task_types", _task_type)


def transform_task_statuses(payload: Any) -> Batch:
    return transform_page(payload, "task_statuses", "production.task_statuses", _task_status)


def transform_entities(payload: Any, *, entity_type_names: Mapping[str, str] | None = None) -> Batch:
    """Entities; ``entity_type_names`` (entity type id → name) gives ``kind`` on generic-CRUD pages."""
    mapper = _entity_mapper(entity_type_names or {})
    return transform_page(payload, "entities", "production.entities", mapper)


def transform_tasks(payload: Any) -> Batch:
    """Tasks, plus ``production.task_assignees`` rows when fetched with ``relations=true``."""
    return transform_page(payload, "tasks", "production.tasks", _task, links=_task_assignees)


def transform_comments(payload: Any) -> Batch:
    return transform_page(payload, "comments", "production.comments", _comment)


def transform_time_spents(payload: Any) -> Batch:
    return transform_page(payload, "time_spents", "production.time_spents", _time_spent)
