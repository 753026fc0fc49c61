"""The Zou change feed (``/data/events/last``): stored as fetched, and reduced to what to re-fetch.

Events are ``{id, created_at, name, user_id, project_id, data}`` with ``name = <object>:<action>``
and ``data`` holding only ids (``{"task_id": …}``; generic creates emit ``<table>:new`` with
``{"<table>_id": id}``). ``reduce_events`` turns a run of them into the ids the connector must
re-fetch per resource and the ids it must soft-delete. Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

from pipeline.errors import SkippableRecordError
from pipeline.records import Batch
from pipeline.transform import zou, zou_studio
from pipeline.transform.common import text as _text
from pipeline.transform.common import timestamp as _at
from pipeline.transform.resources import Lookup, ResourceTransform, as_list
from pipeline.transform.zou import Row, page_records, required_text, transform_page

# Event name prefix (``<object>:<action>``) → the synced resource whose rows it changes. Entity
# events are named after the entity type (``EntityEventMixin``: ConceptFolder → ``concept-folder``
# with ``concept_folder_id``); generic CRUD events after the table (``entity:new``).
EVENT_RESOURCES: dict[str, str] = {
    **dict.fromkeys(
        ("asset", "shot", "sequence", "episode", "edit", "concept", "concept-folder", "scene", "entity"),
        "entities",
    ),
    "task": "tasks",
    "comment": "comments",
    "time-spent": "time_spents",
    "person": "persons",
    "project": "projects",
    "task-type": "task_types",
    "task-status": "task_statuses",
    "entity-type": "entity_types",
    "asset-type": "entity_types",
    "department": "departments",
    "project-status": "project_statuses",
    "metadata-descriptor": "metadata_descriptors",
    "entity-link": "entity_links",
    "preview-file": "preview_files",
    "playlist": "playlists",
    "schedule-item": "schedule_items",
    "milestone": "milestones",
}
# ``<kind>:casting-update`` (``breakdown_service.update_casting``) re-makes an entity's casting links
# (new ids, no entity-link events): the event names only the entity.
CASTING_ACTION = "casting-update"
# Objects zou 1.0.97 emits events about that the pipeline does not sync (its tables, dashed, and the
# literal names of its services): counted as ignored, silently. Any other prefix is *unknown*: counted
# and logged once per run, since it may be a model a newer server added.
UNSYNCED_EVENT_OBJECTS = frozenset(
    (
        "api-event",
        "asset-instance",
        "asset-instance-link",
        "attachment-file",
        "budget",
        "budget-entry",
        "build-job",
        "chat",
        "chat-message",
        "chat-participant",
        "comment-acknoledgments",
        "comment-department-mentions",
        "comment-mentions",
        "comment-preview-link",
        "custom-action",
        "data-import-error",
        "day-off",
        "department-link",
        "department-metadata-descriptor-link",
        "desktop-login-log",
        "entity-concept-link",
        "entity-version",
        "file-status",
        "hardware-item",
        "hardware-item-department-link",
        "login-log",
        "main",
        "news",
        "notification",
        "organisation",
        "output-file",
        "output-type",
        "playlist-share-link",
        "plugin",
        "preview-background-file",
        "preview-file-storage-state",
        "production-schedule-version",
        "production-schedule-version-task-link",
        "production-schedule-version-task-link-person-link",
        "project-asset-type-link",
        "project-person-link",
        "project-preview-background-file-link",
        "project-status-automation-link",
        "project-task-status-link",
        "project-task-type-link",
        "project-task-type-software-link",
        "project-template",
        "project-template-asset-type-link",
        "project-template-preview-background-file-link",
        "project-template-status-automation-link",
        "project-template-task-status-link",
        "project-template-task-type-link",
        "salary-scale",
        "search-filter",
        "search-filter-group",
        "software",
        "software-department-link",
        "status-automation",
        "stored-file",
        "studio",
        "subscription",
        "task-person-link",
        "task-type-asset-type-link",
        "working-file",
    )
)
# Events on these objects also change a related row named in ``data`` (a new comment moves its task).
_ALSO_TOUCHES: dict[str, tuple[tuple[str, str], ...]] = {"comment": (("task_id", "tasks"),)}


def split_event_name(name: str) -> tuple[str, str]:
    """``task:status-changed`` → ``("task", "status-changed")``; no colon → action ``""``."""
    object_type, _, action = name.partition(":")
    return object_type, action


def event_object_id(object_type: str, data: Any) -> str | None:
    """The id the event is about: ``data["<object>_id"]`` (dashes as underscores), as Zou emits it."""
    if not isinstance(data, Mapping):
        return None
    value = data.get(object_type.replace("-", "_") + "_id")
    return value if isinstance(value, str) and value else None


def _event(rec: Mapping[str, Any]) -> Row:
    name = required_text(rec.get("name"), "name")
    created = _at(rec.get("created_at"), "created_at")
    if created is None:
        raise SkippableRecordError("created_at is missing")
    data = rec.get("data")
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise SkippableRecordError(f"data {data!r} is not a JSON object")
    object_type, action = split_event_name(name)
    return {
        "name": name,
        "object_type": object_type,
        "action": action,
        "object_source_id": event_object_id(object_type, data),
        "created_at": created,
        "user_source_id": _text(rec.get("user_id"), "user_id"),
        "project_source_id": _text(rec.get("project_id"), "project_id"),
        "data": dict(data),
        "source_updated_at": created,
    }


def transform_events(payload: Any) -> Batch:
    """Events as fetched → ``production.events`` rows (the same event id twice is kept once)."""
    return transform_page(payload, "events", "production.events", _event)


EVENTS_PAGE = "events"  # a model stream's page of the events it stores: ``{"events": [...]}``


def model_page(function: Callable[..., Batch], payload: Any, **context: Any) -> Batch:
    """A page of a Zou model stream: its model's rows, or (``{"events": [...]}``) the events it stores."""
    if isinstance(payload, Mapping) and EVENTS_PAGE in payload:
        return transform_events(payload[EVENTS_PAGE])
    return function(payload, **context)


@dataclass(frozen=True, slots=True)
class EventChanges:
    """What a run of events means for the synced tables.

    ``touched``: resource → ids to re-fetch (created or changed, not deleted afterwards).
    ``deleted``: resource → ids whose last word was ``<object>:delete`` (soft-delete them).
    ``ignored``: event name → how many events named an object the pipeline does not sync (or no id).
    ``unknown``: event name → how many events named an object zou 1.0.97 does not emit (logged).
    ``duplicates``: events seen again (same event id), e.g. from the overlap of two polls.
    ``newest_at``: the latest ``created_at`` among the events (for the checkpoint), if any.
    ``cast``: entity ids whose casting was re-made (``<kind>:casting-update``): their entity links
    are re-fetched by ``entity_in_id``. ``cast_assets``: the assets those events say were added
    (``added_asset_ids``): zou also casts them in the shot's episode (a link with
    ``data.auto``, announced only by ``asset:update``), so their links are re-fetched by
    ``entity_out_id``.
    """

    touched: dict[str, frozenset[str]]
    deleted: dict[str, frozenset[str]]
    ignored: dict[str, int]
    unknown: dict[str, int]
    duplicates: int
    newest_at: datetime | None
    cast: frozenset[str] = frozenset()
    cast_assets: frozenset[str] = frozenset()


def reduce_events(events: Any) -> EventChanges:
    """Reduce events (any order) to the latest verdict per object: re-fetch it, or it is deleted.

    The later event wins; within the same second (Zou drops microseconds) a delete wins, since a
    deleted Zou id never comes back. An unparseable ``created_at`` sorts as oldest.
    """
    verdicts: dict[tuple[str, str], tuple[datetime, bool]] = {}
    ignored: dict[str, int] = {}
    unknown: dict[str, int] = {}
    seen: set[str] = set()
    cast: set[str] = set()
    cast_assets: set[str] = set()
    duplicates = 0
    newest: datetime | None = None
    oldest = datetime.min.replace(tzinfo=UTC)

    def note(resource: str, object_id: str, at: datetime, is_delete: bool) -> None:
        key = (resource, object_id)
        previous = verdicts.get(key)
        if previous is None or (at, is_delete) > previous:
            verdicts[key] = (at, is_delete)

    for event in page_records(events, "events"):
        name = event.get("name") if isinstance(event, Mapping) else None
        if not isinstance(name, str):
            ignored["<malformed>"] = ignored.get("<malformed>", 0) + 1
            continue
        event_id = event.get("id")
        if isinstance(event_id, str):
            if event_id in seen:
                duplicates += 1
                continue
            seen.add(event_id)
        try:
            at = _at(event.get("created_at"), "created_at") or oldest
        except SkippableRecordError:
            at = oldest
        if at != oldest and (newest is None or at > newest):
            newest = at
        object_type, action = split_event_name(name)
        resource = EVENT_RESOURCES.get(object_type)
        object_id = event_object_id(object_type, event.get("data"))
        if resource is None and object_type not in UNSYNCED_EVENT_OBJECTS:
            unknown[name] = unknown.get(name, 0) + 1
            continue
        if resource is None or object_id is None:
            ignored[name] = ignored.get(name, 0) + 1
            continue
        note(resource, object_id, at, action == "delete")
        if action == CASTING_ACTION and resource == "entities":
            cast.add(object_id)
            added = event["data"].get("added_asset_ids")
            if isinstance(added, list):
                cast_assets.update(a for a in added if isinstance(a, str) and a)
        data = event.get("data")
        for data_key, related in _ALSO_TOUCHES.get(object_type, ()):
            related_id = data.get(data_key) if isinstance(data, Mapping) else None
            if isinstance(related_id, str) and related_id:
                note(related, related_id, at, False)

    touched: dict[str, set[str]] = {}
    deleted: dict[str, set[str]] = {}
    for (resource, object_id), (_, is_delete) in verdicts.items():
        (deleted if is_delete else touched).setdefault(resource, set()).add(object_id)
    return EventChanges(
        touched={r: frozenset(ids) for r, ids in touched.items()},
        deleted={r: frozenset(ids) for r, ids in deleted.items()},
        ignored=ignored,
        unknown=unknown,
        duplicates=duplicates,
        newest_at=newest,
        cast=frozenset(cast),
        cast_assets=frozenset(cast_assets),
    )


# ------------------------------------------------------------------------------ the resources


def _model(function: Callable[..., Batch], **context: Lookup) -> ResourceTransform:
    return ResourceTransform(partial(model_page, function), context=context)


# Every Zou model stream lands the events about its model with its pages.
TRANSFORMS: dict[str, ResourceTransform] = {
    "projects": _model(zou.transform_projects),
    "persons": _model(zou.transform_persons),
    "entity_types": _model(zou.transform_entity_types),
    "task_types": _model(zou.transform_task_types),
    "task_statuses": _model(zou.transform_task_statuses),
    "entities": _model(zou.transform_entities, entity_type_names=Lookup("entity_types", "name")),
    "tasks": _model(zou.transform_tasks),
    "comments": _model(zou.transform_comments),
    "time_spents": _model(zou.transform_time_spents),
    "departments": _model(zou_studio.transform_departments),
    "project_statuses": _model(zou_studio.transform_project_statuses),
    "metadata_descriptors": _model(zou_studio.transform_metadata_descriptors),
    "entity_links": _model(zou_studio.transform_entity_links),
    "preview_files": _model(zou_studio.transform_preview_files),
    "playlists": _model(zou_studio.transform_playlists),
    "schedule_items": _model(zou_studio.transform_schedule_items),
    "milestones": _model(zou_studio.transform_milestones),
    "events": ResourceTransform(transform_events, as_list),
}
SHARED_RAW = ("events",)  # raw resources any stream of the kind lands: replay rebuilds them once
