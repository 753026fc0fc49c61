"""Zou's studio models around the breakdown → ``production.*`` rows. Pure: no I/O, no clock.

Departments, project statuses, metadata descriptors (the custom ``entity.data`` fields: their
name, ``field_name`` key and type), entity links (casting: a shot *in*, the asset it casts *out*),
preview files (the review file's metadata, never the file), playlists, schedule items and
milestones, each as ``/data/<model>`` serialises it (zou 1.0.97 models). A casting page
(``{"data": [...], "entity_in_ids": [...]}``, fetched by ``?entity_in_id=[…]``) holds the complete
casting of the entities it names, so their other links are retired (``Batch.replaced``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipeline.errors import ContractError, SkippableRecordError
from pipeline.records import Batch
from pipeline.transform.common import integer as _int
from pipeline.transform.common import text as _text
from pipeline.transform.zou import (
    Row,
    _bool,
    _ids,
    _json,
    _number,
    _stamps,
    required_text,
    transform_page,
    zou_date,
)

CASTING_OWNERS = "entity_in_ids"  # a casting page's key: the entities whose links it holds in full
ENTITY_LINKS = "production.entity_links"


def _department(rec: Mapping[str, Any]) -> Row:
    return {
        "name": required_text(rec.get("name"), "name"),
        "color": _text(rec.get("color"), "color"),
        "archived": _bool(rec.get("archived"), "archived"),
        **_stamps(rec),
    }


def _project_status(rec: Mapping[str, Any]) -> Row:
    return {
        "name": required_text(rec.get("name"), "name"),
        "color": _text(rec.get("color"), "color"),
        **_stamps(rec),
    }


def _metadata_descriptor(rec: Mapping[str, Any]) -> Row:
    return {
        "project_source_id": _text(rec.get("project_id"), "project_id"),
        "entity_type": required_text(rec.get("entity_type"), "entity_type"),
        "task_type_source_id": _text(rec.get("task_type_id"), "task_type_id"),
        "name": required_text(rec.get("name"), "name"),
        "field_name": required_text(rec.get("field_name"), "field_name"),
        "data_type": _text(rec.get("data_type"), "data_type"),
        "choices": _json(rec.get("choices"), "choices"),
        "for_client": _bool(rec.get("for_client"), "for_client"),
        "position": _int(rec.get("position"), "position"),
        "department_source_ids": _ids(rec.get("departments"), "departments"),
        **_stamps(rec),
    }


def _entity_link(rec: Mapping[str, Any]) -> Row:
    return {
        "entity_in_source_id": required_text(rec.get("entity_in_id"), "entity_in_id"),
        "entity_out_source_id": required_text(rec.get("entity_out_id"), "entity_out_id"),
        "nb_occurences": _int(rec.get("nb_occurences"), "nb_occurences"),
        "label": _text(rec.get("label"), "label"),
        "data": _json(rec.get("data"), "data"),
        **_stamps(rec),
    }


_PREVIEW_TEXTS = (
    "name",
    "original_name",
    "extension",
    "description",
    "status",
    "validation_status",
)


def _preview_file(rec: Mapping[str, Any]) -> Row:
    return {
        **{key: _text(rec.get(key), key) for key in _PREVIEW_TEXTS},
        "origin": _text(rec.get("source"), "source"),  # where it was uploaded from (webgui, …)
        "revision": _int(rec.get("revision"), "revision"),
        "position": _int(rec.get("position"), "position"),
        "file_size": _int(rec.get("file_size"), "file_size"),
        "width": _int(rec.get("width"), "width"),
        "height": _int(rec.get("height"), "height"),
        "duration": _number(rec.get("duration"), "duration"),
        "annotations": _json(rec.get("annotations"), "annotations"),
        "task_source_id": _text(rec.get("task_id"), "task_id"),
        "person_source_id": _text(rec.get("person_id"), "person_id"),
        "source_file_source_id": _text(rec.get("source_file_id"), "source_file_id"),
        **_stamps(rec),
    }


def _playlist_shots(value: Any) -> list[dict[str, Any]] | None:
    """``shots``: ``[{"entity_id", "preview_file_id"}, …]`` in playlist order."""
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(s, Mapping) for s in value):
        raise SkippableRecordError(f"shots {value!r} is not a list of {{entity_id, preview_file_id}} objects")
    return [dict(s) for s in value]


def _playlist(rec: Mapping[str, Any]) -> Row:
    return {
        "name": required_text(rec.get("name"), "name"),
        "project_source_id": _text(rec.get("project_id"), "project_id"),
        "episode_source_id": _text(rec.get("episode_id"), "episode_id"),
        "task_type_source_id": _text(rec.get("task_type_id"), "task_type_id"),
        "for_client": _bool(rec.get("for_client"), "for_client"),
        "for_entity": _text(rec.get("for_entity"), "for_entity"),
        "is_for_all": _bool(rec.get("is_for_all"), "is_for_all"),
        "created_by_source_id": _text(rec.get("created_by"), "created_by"),
        "shots": _playlist_shots(rec.get("shots")),
        **_stamps(rec),
    }


def _schedule_item(rec: Mapping[str, Any]) -> Row:
    return {
        "project_source_id": _text(rec.get("project_id"), "project_id"),
        "task_type_source_id": _text(rec.get("task_type_id"), "task_type_id"),
        "object_source_id": _text(rec.get("object_id"), "object_id"),
        "start_date": zou_date(rec.get("start_date"), "start_date"),
        "end_date": zou_date(rec.get("end_date"), "end_date"),
        "man_days": _int(rec.get("man_days"), "man_days"),
        **_stamps(rec),
    }


def _milestone(rec: Mapping[str, Any]) -> Row:
    return {
        "project_source_id": _text(rec.get("project_id"), "project_id"),
        "task_type_source_id": _text(rec.get("task_type_id"), "task_type_id"),
        "name": required_text(rec.get("name"), "name"),
        "date": zou_date(rec.get("date"), "date"),
        **_stamps(rec),
    }


def transform_departments(payload: Any) -> Batch:
    return transform_page(payload, "departments", "production.departments", _department)


def transform_project_statuses(payload: Any) -> Batch:
    return transform_page(payload, "project_statuses", "production.project_statuses", _project_status)


def transform_metadata_descriptors(payload: Any) -> Batch:
    return transform_page(
        payload, "metadata_descriptors", "production.metadata_descriptors", _metadata_descriptor
    )


def transform_entity_links(payload: Any) -> Batch:
    """Casting links; a casting page also retires the named entities' links it does not hold."""
    batch = transform_page(payload, "entity_links", ENTITY_LINKS, _entity_link)
    owners = payload.get(CASTING_OWNERS) if isinstance(payload, Mapping) else None
    if owners is not None:
        if not isinstance(owners, list) or not all(isinstance(o, str) for o in owners):
            raise ContractError(
                f"zou entity_links: {CASTING_OWNERS} {owners!r} is not a list of entity ids; "
                "the casting page was not built by pipeline.sources.zou"
            )
        batch.replaced[ENTITY_LINKS] = set(owners)
    return batch


def transform_preview_files(payload: Any) -> Batch:
    return transform_page(payload, "preview_files", "production.preview_files", _preview_file)


def transform_playlists(payload: Any) -> Batch:
    return transform_page(payload, "playlists", "production.playlists", _playlist)


def transform_schedule_items(payload: Any) -> Batch:
    return transform_page(payload, "schedule_items", "production.schedule_items", _schedule_item)


def transform_milestones(payload: Any) -> Batch:
    return transform_page(payload, "milestones", "production.milestones", _milestone)
