"""SQLModel mirror of ``sql/004_production.sql`` (+ ``019_zou_breadth.sql``) and the loader specs of
the production tables.

The migration is the source of truth; ``tests/integration/test_production_schema.py`` proves that
these classes and the migrated database agree column by column.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime
from typing import Any, ClassVar, Literal

from sqlalchemy import BigInteger, Boolean, Date, Integer, Numeric, Text, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from pipeline.models.catalog import EntityRow, LinkRow, TimestampTZ, entity_spec, link_spec
from pipeline.tables import EntityTable, LinkTable, Ref

SCHEMA = "production"
Day = date  # the time_spents.date column would shadow the type inside its class


def _text(*, nullable: bool = True) -> Any:
    return Field(default=None, sa_type=Text, nullable=nullable)


def _at(*, nullable: bool = True) -> Any:
    """A ``timestamptz`` column."""
    return Field(default=None, sa_type=TimestampTZ, nullable=nullable)


def _fk(table: str, ondelete: Literal["CASCADE", "SET NULL"] = "SET NULL") -> Any:
    """A surrogate ``bigint`` foreign key, NULL until the target row is loaded."""
    return Field(default=None, sa_type=BigInteger, foreign_key=f"{SCHEMA}.{table}.id", ondelete=ondelete)


def _args() -> tuple[Any, ...]:
    return (UniqueConstraint("source", "source_id"), {"schema": SCHEMA})


class ProjectStatus(EntityRow, table=True):
    __tablename__: ClassVar[str] = "project_statuses"
    __table_args__ = _args()

    name: str = _text(nullable=False)
    color: str | None = _text()
    source_created_at: datetime | None = _at()


class Department(EntityRow, table=True):
    __tablename__: ClassVar[str] = "departments"
    __table_args__ = _args()

    name: str = _text(nullable=False)
    color: str | None = _text()
    archived: bool | None = Field(default=None, sa_type=Boolean)
    source_created_at: datetime | None = _at()


class Project(EntityRow, table=True):
    __tablename__: ClassVar[str] = "projects"
    __table_args__ = _args()

    name: str = _text(nullable=False)
    code: str | None = _text()
    description: str | None = _text()
    project_status_id: int | None = _fk("project_statuses")
    project_status_source_id: str | None = _text()
    production_type: str | None = _text()
    production_style: str | None = _text()
    fps: str | None = _text()
    ratio: str | None = _text()
    resolution: str | None = _text()
    start_date: date | None = Field(default=None, sa_type=Date)
    end_date: date | None = Field(default=None, sa_type=Date)
    man_days: int | None = Field(default=None, sa_type=Integer)
    nb_episodes: int | None = Field(default=None, sa_type=Integer)
    episode_span: int | None = Field(default=None, sa_type=Integer)
    max_retakes: int | None = Field(default=None, sa_type=Integer)
    homepage: str | None = _text()
    is_clients_isolated: bool | None = Field(default=None, sa_type=Boolean)
    data: dict[str, Any] | None = Field(default=None, sa_type=JSONB)
    source_created_at: datetime | None = _at()


class Person(EntityRow, table=True):
    __tablename__: ClassVar[str] = "persons"
    __table_args__ = _args()

    first_name: str | None = _text()
    last_name: str | None = _text()
    full_name: str | None = _text()
    email: str | None = _text()
    phone: str | None = _text()
    role: str | None = _text()
    position: str | None = _text()
    seniority: str | None = _text()
    daily_salary: float | None = Field(default=None, sa_type=Numeric)
    active: bool | None = Field(default=None, sa_type=Boolean)
    archived: bool | None = Field(default=None, sa_type=Boolean)
    is_bot: bool | None = Field(default=None, sa_type=Boolean)
    is_guest: bool | None = Field(default=None, sa_type=Boolean)
    timezone: str | None = _text()
    locale: str | None = _text()
    studio_source_id: str | None = _text()
    department_source_ids: list[str] | None = Field(default=None, sa_type=JSONB)
    source_created_at: datetime | None = _at()


class EntityType(EntityRow, table=True):
    __tablename__: ClassVar[str] = "entity_types"
    __table_args__ = _args()

    name: str = _text(nullable=False)
    kind: str = _text(nullable=False)
    short_name: str | None = _text()
    description: str | None = _text()
    archived: bool | None = Field(default=None, sa_type=Boolean)
    source_created_at: datetime | None = _at()


class TaskType(EntityRow, table=True):
    __tablename__: ClassVar[str] = "task_types"
    __table_args__ = _args()

    name: str = _text(nullable=False)
    short_name: str | None = _text()
    description: str | None = _text()
    color: str | None = _text()
    priority: int | None = Field(default=None, sa_type=Integer)
    for_entity: str | None = _text()
    allow_timelog: bool | None = Field(default=None, sa_type=Boolean)
    archived: bool | None = Field(default=None, sa_type=Boolean)
    department_id: int | None = _fk("departments")
    department_source_id: str | None = _text()
    source_created_at: datetime | None = _at()


class TaskStatus(EntityRow, table=True):
    __tablename__: ClassVar[str] = "task_statuses"
    __table_args__ = _args()

    name: str = _text(nullable=False)
    short_name: str | None = _text()
    description: str | None = _text()
    color: str | None = _text()
    priority: int | None = Field(default=None, sa_type=Integer)
    is_done: bool | None = Field(default=None, sa_type=Boolean)
    is_wip: bool | None = Field(default=None, sa_type=Boolean)
    is_retake: bool | None = Field(default=None, sa_type=Boolean)
    is_feedback_request: bool | None = Field(default=None, sa_type=Boolean)
    is_default: bool | None = Field(default=None, sa_type=Boolean)
    is_artist_allowed: bool | None = Field(default=None, sa_type=Boolean)
    is_client_allowed: bool | None = Field(default=None, sa_type=Boolean)
    for_concept: bool | None = Field(default=None, sa_type=Boolean)
    archived: bool | None = Field(default=None, sa_type=Boolean)
    source_created_at: datetime | None = _at()


class Entity(EntityRow, table=True):
    __tablename__: ClassVar[str] = "entities"
    __table_args__ = _args()

    kind: str | None = _text()
    name: str = _text(nullable=False)
    code: str | None = _text()
    description: str | None = _text()
    status: str | None = _text()
    canceled: bool | None = Field(default=None, sa_type=Boolean)
    is_shared: bool | None = Field(default=None, sa_type=Boolean)
    is_casting_standby: bool | None = Field(default=None, sa_type=Boolean)
    nb_frames: int | None = Field(default=None, sa_type=Integer)
    nb_entities_out: int | None = Field(default=None, sa_type=Integer)
    project_id: int | None = _fk("projects")
    project_source_id: str | None = _text()
    entity_type_id: int | None = _fk("entity_types")
    entity_type_source_id: str | None = _text()
    parent_id: int | None = _fk("entities")
    parent_source_id: str | None = _text()
    episode_id: int | None = _fk("entities")
    episode_source_id: str | None = _text()
    ready_for_source_id: str | None = _text()
    preview_file_source_id: str | None = _text()
    created_by_source_id: str | None = _text()
    data: dict[str, Any] | None = Field(default=None, sa_type=JSONB)
    source_created_at: datetime | None = _at()


class Task(EntityRow, table=True):
    __tablename__: ClassVar[str] = "tasks"
    __table_args__ = _args()

    name: str | None = _text()
    description: str | None = _text()
    priority: int | None = Field(default=None, sa_type=Integer)
    difficulty: int | None = Field(default=None, sa_type=Integer)
    duration: float | None = Field(default=None, sa_type=Numeric)
    estimation: float | None = Field(default=None, sa_type=Numeric)
    completion_rate: float | None = Field(default=None, sa_type=Numeric)
    retake_count: int | None = Field(default=None, sa_type=Integer)
    sort_order: int | None = Field(default=None, sa_type=Integer)
    nb_assets_ready: int | None = Field(default=None, sa_type=Integer)
    nb_drawings: int | None = Field(default=None, sa_type=Integer)
    start_date: datetime | None = _at()
    due_date: datetime | None = _at()
    real_start_date: datetime | None = _at()
    end_date: datetime | None = _at()
    done_date: datetime | None = _at()
    last_comment_date: datetime | None = _at()
    project_id: int | None = _fk("projects")
    project_source_id: str | None = _text()
    task_type_id: int | None = _fk("task_types")
    task_type_source_id: str | None = _text()
    task_status_id: int | None = _fk("task_statuses")
    task_status_source_id: str | None = _text()
    entity_id: int | None = _fk("entities")
    entity_source_id: str | None = _text()
    assigner_id: int | None = _fk("persons")
    assigner_source_id: str | None = _text()
    last_preview_file_source_id: str | None = _text()
    data: dict[str, Any] | None = Field(default=None, sa_type=JSONB)
    source_created_at: datetime | None = _at()


class TaskAssignee(LinkRow, table=True):
    __tablename__: ClassVar[str] = "task_assignees"
    __table_args__ = (UniqueConstraint("source", "task_source_id", "person_source_id"), {"schema": SCHEMA})

    task_id: int | None = _fk("tasks", "CASCADE")
    task_source_id: str = _text(nullable=False)
    person_id: int | None = _fk("persons", "CASCADE")
    person_source_id: str = _text(nullable=False)


class PreviewFile(EntityRow, table=True):
    __tablename__: ClassVar[str] = "preview_files"
    __table_args__ = _args()

    name: str | None = _text()
    original_name: str | None = _text()
    extension: str | None = _text()
    description: str | None = _text()
    origin: str | None = _text()  # zou's ``source`` (webgui, …): ``source`` is the configured source
    status: str | None = _text()
    validation_status: str | None = _text()
    revision: int | None = Field(default=None, sa_type=Integer)
    position: int | None = Field(default=None, sa_type=Integer)
    file_size: int | None = Field(default=None, sa_type=BigInteger)
    width: int | None = Field(default=None, sa_type=Integer)
    height: int | None = Field(default=None, sa_type=Integer)
    duration: float | None = Field(default=None, sa_type=Numeric)
    annotations: dict[str, Any] | list[Any] | None = Field(default=None, sa_type=JSONB)
    task_id: int | None = _fk("tasks")
    task_source_id: str | None = _text()
    person_id: int | None = _fk("persons")
    person_source_id: str | None = _text()
    source_file_source_id: str | None = _text()
    source_created_at: datetime | None = _at()


class Comment(EntityRow, table=True):
    __tablename__: ClassVar[str] = "comments"
    __table_args__ = _args()

    object_type: str | None = _text()
    object_source_id: str | None = _text()
    task_id: int | None = _fk("tasks")
    task_source_id: str | None = _text()
    person_id: int | None = _fk("persons")
    person_source_id: str | None = _text()
    editor_id: int | None = _fk("persons")
    editor_source_id: str | None = _text()
    task_status_id: int | None = _fk("task_statuses")
    task_status_source_id: str | None = _text()
    text: str | None = _text()
    pinned: bool | None = Field(default=None, sa_type=Boolean)
    for_client: bool | None = Field(default=None, sa_type=Boolean)
    preview_file_id: int | None = _fk("preview_files")
    preview_file_source_id: str | None = _text()
    checklist: dict[str, Any] | list[Any] | None = Field(default=None, sa_type=JSONB)
    replies: dict[str, Any] | list[Any] | None = Field(default=None, sa_type=JSONB)
    links: dict[str, Any] | list[Any] | None = Field(default=None, sa_type=JSONB)
    mentions: list[str] | None = Field(default=None, sa_type=JSONB)
    attachment_file_source_ids: list[str] | None = Field(default=None, sa_type=JSONB)
    data: dict[str, Any] | None = Field(default=None, sa_type=JSONB)
    source_created_at: datetime | None = _at()


class TimeSpent(EntityRow, table=True):
    __tablename__: ClassVar[str] = "time_spents"
    __table_args__ = _args()

    duration: float = Field(sa_type=Numeric, nullable=False)
    date: Day = Field(sa_type=Date, nullable=False)
    task_id: int | None = _fk("tasks")
    task_source_id: str | None = _text()
    person_id: int | None = _fk("persons")
    person_source_id: str | None = _text()
    source_created_at: datetime | None = _at()


class Event(EntityRow, table=True):
    __tablename__: ClassVar[str] = "events"
    __table_args__ = _args()

    name: str = _text(nullable=False)
    object_type: str = _text(nullable=False)
    action: str = _text(nullable=False)
    object_source_id: str | None = _text()
    created_at: datetime = _at(nullable=False)
    user_id: int | None = _fk("persons")
    user_source_id: str | None = _text()
    project_id: int | None = _fk("projects")
    project_source_id: str | None = _text()
    data: dict[str, Any] = Field(default_factory=dict, sa_type=JSONB, nullable=False)


class MetadataDescriptor(EntityRow, table=True):
    __tablename__: ClassVar[str] = "metadata_descriptors"
    __table_args__ = _args()

    project_id: int | None = _fk("projects")
    project_source_id: str | None = _text()
    entity_type: str = _text(nullable=False)
    task_type_id: int | None = _fk("task_types")
    task_type_source_id: str | None = _text()
    name: str = _text(nullable=False)
    field_name: str = _text(nullable=False)
    data_type: str | None = _text()
    choices: dict[str, Any] | list[Any] | None = Field(default=None, sa_type=JSONB)
    for_client: bool | None = Field(default=None, sa_type=Boolean)
    position: int | None = Field(default=None, sa_type=Integer)
    department_source_ids: list[str] | None = Field(default=None, sa_type=JSONB)
    source_created_at: datetime | None = _at()


class EntityLink(EntityRow, table=True):
    __tablename__: ClassVar[str] = "entity_links"
    __table_args__ = _args()

    entity_in_id: int | None = _fk("entities")
    entity_in_source_id: str = _text(nullable=False)
    entity_out_id: int | None = _fk("entities")
    entity_out_source_id: str = _text(nullable=False)
    nb_occurences: int | None = Field(default=None, sa_type=Integer)
    label: str | None = _text()
    data: dict[str, Any] | None = Field(default=None, sa_type=JSONB)
    source_created_at: datetime | None = _at()


class Playlist(EntityRow, table=True):
    __tablename__: ClassVar[str] = "playlists"
    __table_args__ = _args()

    name: str = _text(nullable=False)
    project_id: int | None = _fk("projects")
    project_source_id: str | None = _text()
    episode_id: int | None = _fk("entities")
    episode_source_id: str | None = _text()
    task_type_id: int | None = _fk("task_types")
    task_type_source_id: str | None = _text()
    for_client: bool | None = Field(default=None, sa_type=Boolean)
    for_entity: str | None = _text()
    is_for_all: bool | None = Field(default=None, sa_type=Boolean)
    created_by_source_id: str | None = _text()
    shots: list[dict[str, Any]] | None = Field(default=None, sa_type=JSONB)
    source_created_at: datetime | None = _at()


class ScheduleItem(EntityRow, table=True):
    __tablename__: ClassVar[str] = "schedule_items"
    __table_args__ = _args()

    project_id: int | None = _fk("projects")
    project_source_id: str | None = _text()
    task_type_id: int | None = _fk("task_types")
    task_type_source_id: str | None = _text()
    object_source_id: str | None = _text()
    start_date: date | None = Field(default=None, sa_type=Date)
    end_date: date | None = Field(default=None, sa_type=Date)
    man_days: int | None = Field(default=None, sa_type=Integer)
    source_created_at: datetime | None = _at()


class Milestone(EntityRow, table=True):
    __tablename__: ClassVar[str] = "milestones"
    __table_args__ = _args()

    project_id: int | None = _fk("projects")
    project_source_id: str | None = _text()
    task_type_id: int | None = _fk("task_types")
    task_type_source_id: str | None = _text()
    name: str = _text(nullable=False)
    date: Day | None = Field(default=None, sa_type=Date)
    source_created_at: datetime | None = _at()


# ---------------------------------------------------------------------------- load specs


def _ref(column: str, table: str) -> Ref:
    """``project_id`` → Ref filling it from the row's ``project_source_id``."""
    return Ref(column, f"{SCHEMA}.{table}", column.removesuffix("_id") + "_source_id")


PROJECT_REF = _ref("project_id", "projects")
TASK_REF = _ref("task_id", "tasks")
PERSON_REF = _ref("person_id", "persons")
TASK_STATUS_REF = _ref("task_status_id", "task_statuses")
TASK_TYPE_REF = _ref("task_type_id", "task_types")


def _entity(model: type[SQLModel], *refs: Ref) -> EntityTable:
    """``catalog.entity_spec`` for a model of this schema (it names tables in ``catalog``)."""
    return replace(entity_spec(model, *refs), name=model.__table__.fullname)  # type: ignore[attr-defined]


def _link(model: type[SQLModel], owner: Ref, *refs: Ref) -> LinkTable:
    return replace(link_spec(model, owner, *refs), name=model.__table__.fullname)  # type: ignore[attr-defined]


MODELS = (
    ProjectStatus,
    Department,
    Project,
    Person,
    EntityType,
    TaskType,
    TaskStatus,
    Entity,
    Task,
    TaskAssignee,
    PreviewFile,
    Comment,
    TimeSpent,
    Event,
    MetadataDescriptor,
    EntityLink,
    Playlist,
    ScheduleItem,
    Milestone,
)

SPECS = (
    _entity(ProjectStatus),
    _entity(Department),
    _entity(Project, _ref("project_status_id", "project_statuses")),
    _entity(Person),
    _entity(EntityType),
    _entity(TaskType, _ref("department_id", "departments")),
    _entity(TaskStatus),
    _entity(
        Entity,
        PROJECT_REF,
        _ref("entity_type_id", "entity_types"),
        _ref("parent_id", "entities"),
        _ref("episode_id", "entities"),
    ),
    _entity(
        Task,
        PROJECT_REF,
        TASK_TYPE_REF,
        TASK_STATUS_REF,
        _ref("entity_id", "entities"),
        _ref("assigner_id", "persons"),
    ),
    _link(TaskAssignee, TASK_REF, PERSON_REF),
    _entity(PreviewFile, TASK_REF, PERSON_REF),
    _entity(
        Comment,
        TASK_REF,
        PERSON_REF,
        _ref("editor_id", "persons"),
        TASK_STATUS_REF,
        _ref("preview_file_id", "preview_files"),
    ),
    _entity(TimeSpent, TASK_REF, PERSON_REF),
    _entity(Event, _ref("user_id", "persons"), PROJECT_REF),
    _entity(MetadataDescriptor, PROJECT_REF, TASK_TYPE_REF),
    # The first ref names the owner a casting page replaces the links of (Batch.replaced).
    _entity(EntityLink, _ref("entity_in_id", "entities"), _ref("entity_out_id", "entities")),
    _entity(Playlist, PROJECT_REF, _ref("episode_id", "entities"), TASK_TYPE_REF),
    _entity(ScheduleItem, PROJECT_REF, TASK_TYPE_REF),
    _entity(Milestone, PROJECT_REF, TASK_TYPE_REF),
)
