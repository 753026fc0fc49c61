"""The Zou tables the simulator serves: rows, events, column types and how each model serialises.

Times are kept as integer microseconds since the epoch (UTC) because ordering and the events
log's strict ``after``/``before`` comparisons use the full precision, while every response shows
them with the microseconds stripped, as ``zou/app/utils/fields.py`` does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

ColumnType = Literal["uuid", "str", "bool", "int", "float", "date", "json"]

ENTITY_KINDS = ("asset", "shot", "sequence", "episode", "edit", "concept", "concept-folder", "scene")
# Entity types that are not asset types, by name; every other entity type is an asset type.
NON_ASSET_TYPES = {
    "Shot": "shot",
    "Sequence": "sequence",
    "Episode": "episode",
    "Edit": "edit",
    "Concept": "concept",
    "ConceptFolder": "concept-folder",  # from zou init-data; events concept-folder:* (concept_folder_id)
    "Scene": "scene",
}


def iso_seconds(micros: int) -> str:
    """``YYYY-MM-DDTHH:MM:SS`` (naive UTC, microseconds stripped) as Zou serialises datetimes."""
    return datetime.fromtimestamp(micros // 1_000_000, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def micros_of(epoch_seconds: float) -> int:
    return round(epoch_seconds * 1_000_000)


@dataclass
class Row:
    """One stored row: column values, timestamps in microseconds, relation id lists."""

    fields: dict[str, Any]
    created_us: int
    updated_us: int
    relations: dict[str, list[str]] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return str(self.fields["id"])


@dataclass
class Event:
    """One entry of the events log (``/data/events/last``)."""

    id: str
    created_us: int
    name: str
    user_id: str | None
    project_id: str | None
    data: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "created_at": iso_seconds(self.created_us),
            "name": self.name,
            "user_id": self.user_id,
            "project_id": self.project_id,
            "data": self.data,
        }


@dataclass(frozen=True)
class Model:
    """A ``/data/<route>`` model: its table, class name, column types and relation lists."""

    route: str
    table: str
    type_name: str
    columns: dict[str, ColumnType]
    relations: tuple[str, ...] = ()
    hidden: tuple[str, ...] = ()  # columns that exist but may not be filtered on

    @property
    def event_prefix(self) -> str:
        return self.table.replace("_", "-")


def _cols(
    uuid: str = "",
    str_: str = "",
    bool_: str = "",
    int_: str = "",
    float_: str = "",
    date: str = "",
    json: str = "",
) -> dict[str, ColumnType]:
    spec: dict[str, ColumnType] = {"id": "uuid", "created_at": "str", "updated_at": "str"}
    for names, kind in (
        (uuid, "uuid"),
        (str_, "str"),
        (bool_, "bool"),
        (int_, "int"),
        (float_, "float"),
        (date, "date"),
        (json, "json"),
    ):
        for name in names.split():
            spec[name] = kind  # type: ignore[assignment]
    return spec


MODELS: dict[str, Model] = {
    model.route: model
    for model in (
        Model(
            "persons",
            "person",
            "Person",
            _cols(
                uuid="studio_id",
                str_="first_name last_name email phone contract_type timezone locale role "
                "position seniority notifications_slack_userid ldap_uid",
                bool_="active archived desktop_login totp_enabled email_otp_enabled fido_enabled is_bot "
                "is_generated_from_ldap has_avatar notifications_enabled notifications_slack_enabled",
                int_="daily_salary login_failed_attemps",
                date="last_presence expiration_date",
                json="data",
            ),
            relations=("departments",),
            hidden=("password", "totp_secret", "jti"),
        ),
        Model(
            "projects",
            "project",
            "Project",
            _cols(
                uuid="project_status_id",
                str_="name code description fps ratio resolution production_type production_style homepage",
                bool_="has_avatar is_clients_isolated is_preview_download_allowed is_set_preview_automated",
                int_="man_days nb_episodes episode_span max_retakes",
                date="start_date end_date",
                json="file_tree data",
            ),
            relations=("team", "asset_types", "task_statuses", "task_types"),
        ),
        Model(
            "entity-types",
            "entity_type",
            "EntityType",
            _cols(str_="name short_name description", bool_="archived"),
            relations=("task_types",),
        ),
        Model(
            "entities",
            "entity",
            "Entity",
            _cols(
                uuid="project_id entity_type_id parent_id source_id preview_file_id ready_for created_by",
                str_="name code description status",
                bool_="canceled is_casting_standby is_shared",
                int_="nb_frames nb_entities_out",
                json="data",
            ),
            relations=("entities_out", "instance_casting"),
        ),
        Model(
            "task-types",
            "task_type",
            "TaskType",
            _cols(
                uuid="department_id",
                str_="name short_name description color for_entity",
                bool_="allow_timelog archived",
                int_="priority",
            ),
        ),
        Model(
            "task-status",
            "task_status",
            "TaskStatus",
            _cols(
                str_="name short_name description color",
                int_="priority",
                bool_="is_done is_artist_allowed "
                "is_client_allowed is_retake is_feedback_request is_default is_wip archived for_concept",
            ),
        ),
        Model(
            "tasks",
            "task",
            "Task",
            _cols(
                uuid="project_id task_type_id task_status_id entity_id assigner_id last_preview_file_id",
                str_="name description",
                int_="priority difficulty duration estimation retake_count sort_order "
                "nb_assets_ready nb_drawings",
                float_="completion_rate",
                date="start_date due_date real_start_date end_date done_date last_comment_date",
                json="data",
            ),
            relations=("assignees",),
        ),
        Model(
            "comments",
            "comment",
            "Comment",
            _cols(
                uuid="object_id task_status_id person_id editor_id preview_file_id",
                str_="object_type text",
                bool_="pinned for_client",
                json="data replies checklist links",
            ),
            relations=("mentions", "acknowledgements", "attachment_files", "previews"),
        ),
        Model(
            "time-spents",
            "time_spent",
            "TimeSpent",
            _cols(uuid="task_id person_id", float_="duration", date="date"),
        ),
        # zou/app/models/department.py, project_status.py, metadata_descriptor.py, entity.py
        # (EntityLink), preview_file.py, playlist.py, schedule_item.py, milestone.py (zou 1.0.97).
        Model("departments", "department", "Department", _cols(str_="color name", bool_="archived")),
        Model("project-status", "project_status", "ProjectStatus", _cols(str_="name color")),
        Model(
            "metadata-descriptors",
            "metadata_descriptor",
            "MetadataDescriptor",
            _cols(
                uuid="project_id task_type_id",
                str_="entity_type name data_type field_name",
                bool_="for_client",
                int_="position",
                json="choices",
            ),
            relations=("departments",),
        ),
        Model(
            "entity-links",
            "entity_link",
            "EntityLink",
            _cols(uuid="entity_in_id entity_out_id", int_="nb_occurences", str_="label", json="data"),
        ),
        Model(
            "preview-files",
            "preview_file",
            "PreviewFile",
            _cols(
                uuid="task_id person_id source_file_id",
                str_="name original_name extension description path source status validation_status "
                "url uploaded_movie_url uploaded_movie_name",
                int_="revision position file_size width height shotgun_id token_in token_out",
                float_="duration",
                bool_="is_movie",
                json="annotations data",
            ),
        ),
        Model(
            "playlists",
            "playlist",
            "Playlist",
            _cols(
                uuid="project_id episode_id task_type_id created_by",
                str_="name for_entity",
                bool_="for_client is_for_all",
                json="shots",
            ),
            relations=("build_jobs",),
        ),
        Model(
            "schedule-items",
            "schedule_item",
            "ScheduleItem",
            _cols(uuid="project_id task_type_id object_id", int_="man_days", date="start_date end_date"),
        ),
        Model(
            "milestones",
            "milestone",
            "Milestone",
            _cols(uuid="project_id task_type_id", str_="name", date="date"),
        ),
    )
}


def serialize(model: Model, row: Row, *, relations: bool = False) -> dict[str, Any]:
    """The JSON of one row as ``/data/<model>`` returns it (``relations=true`` adds id lists)."""
    data = dict(row.fields)
    data["created_at"] = iso_seconds(row.created_us)
    data["updated_at"] = iso_seconds(row.updated_us)
    data["type"] = model.type_name
    if model.route == "persons":
        data["full_name"] = f"{data['first_name']} {data['last_name']}".strip()
    if relations:
        for name in model.relations:
            data[name] = list(row.relations.get(name, []))
    return data
