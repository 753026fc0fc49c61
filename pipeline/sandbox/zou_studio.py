"""What a studio holds around its breakdown: departments, project statuses, metadata descriptors,
casting, preview files, playlists, the schedule (items and milestones) and the tasks' planned dates.

``furnish`` runs once the breakdown, tasks and comments exist. It draws from its own random stream
(``zou-studio:<seed>``), so the rows made before it stay what they were; ids come from that stream
too, so one ``(size, seed)`` still yields the same studio. Shapes follow zou 1.0.97's models
(``zou/app/models/department.py``, ``project_status.py``, ``metadata_descriptor.py``, ``entity.py``
``EntityLink``, ``preview_file.py``, ``playlist.py``, ``schedule_item.py``, ``milestone.py``), and
each creation appends the event zou emits for it: ``<table>:new`` from the generic routes, and for
a shot's casting what ``breakdown_service.update_casting`` emits: ``entity-link:new`` per link, the
episode's own link to a newly cast asset (``data.auto``) announced only by ``asset:update``, then
``shot:casting-update`` (``{"shot_id", "nb_entities_out", "added_asset_ids", "removed_asset_ids"}``).
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from pipeline.sandbox.zou_models import NON_ASSET_TYPES, Event, Row

if TYPE_CHECKING:
    from pipeline.sandbox.zou_data import ZouData

DEPARTMENTS = (  # name, colour, the task types it runs
    ("Production", "#E81123", ()),
    ("Concept", "#8D6E63", ("Concept",)),
    ("Modeling", "#78909C", ("Modeling", "Setup", "Texture")),
    ("Storyboard", "#43A047", ("Storyboard", "Layout")),
    ("Animation", "#F57C00", ("Animation",)),
    ("Lighting", "#F9A825", ("Lighting", "Compositing")),
    ("Editing", "#3949AB", ("Edit",)),
)
PROJECT_STATUSES = (("Open", "#000000"), ("Closed", "#000000"))  # zou init-data
# entity type, name, field_name, data_type, choices, departments
DESCRIPTORS: tuple[tuple[str, str, str, str, list[str], tuple[str, ...]], ...] = (
    ("Asset", "Complexity", "complexity", "list", ["simple", "medium", "complex"], ("Modeling",)),
    ("Asset", "Polycount", "polycount", "number", [], ("Modeling",)),
    ("Shot", "Camera", "camera", "string", [], ("Storyboard", "Animation")),
    ("Shot", "Cut in", "cut_in", "number", [], ("Editing",)),
)
MILESTONES = (
    ("Animatic lock", "Storyboard", 0.3),
    ("Picture lock", "Animation", 0.75),
    ("Delivery", None, 1.0),
)
HOUR_US = 3_600_000_000
DAY_US = 24 * HOUR_US


def _iso(micros: int) -> str:
    return datetime.fromtimestamp(micros // 1_000_000, UTC).strftime("%Y-%m-%dT%H:%M:%S")


class _Furnisher:
    def __init__(self, data: ZouData, seed: int, end_us: int) -> None:
        self.data = data
        self.rng = random.Random(f"zou-studio:{seed}")
        self.end_us = end_us
        self.tables = data.tables

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def add(self, route: str, at: int, fields: dict[str, Any], **relations: list[str]) -> Row:
        row = Row(fields={"id": self.uuid(), **fields}, created_us=at, updated_us=at, relations=relations)
        self.tables[route][row.id] = row
        return row

    def event(self, at: int, name: str, project_id: str | None, data: dict[str, Any]) -> None:
        self.data.events.append(Event(self.uuid(), at, name, self.data.admin_id, project_id, data))

    def new(self, route: str, prefix: str, at: int, fields: dict[str, Any], **relations: list[str]) -> Row:
        """A row made through the generic CRUD route, with its ``<prefix>:new`` event."""
        row = self.add(route, at, fields, **relations)
        key = prefix.replace("-", "_") + "_id"
        self.event(at, f"{prefix}:new", fields.get("project_id"), {key: row.id})
        return row


def furnish(data: ZouData, seed: int, end_us: int) -> None:
    """Add the studio's departments … milestones and the tasks' dates to a generated studio."""
    f = _Furnisher(data, seed, end_us)
    first = min((r.created_us for r in data.tables["persons"].values()), default=end_us)
    departments = _departments(f, first - DAY_US)
    statuses = _project_statuses(f, first - DAY_US + 1000)
    types = {r.id: r.fields["name"] for r in data.tables["entity-types"].values()}
    task_types = {r.fields["name"]: r for r in data.tables["task-types"].values()}
    projects = sorted(data.tables["projects"].values(), key=lambda r: r.created_us)
    for index, project in enumerate(projects):
        project.fields["project_status_id"] = statuses["Closed" if index % 4 == 3 else "Open"]
        _descriptors(f, project, types, departments)
        _casting(f, project, types)
        _schedule(f, project, task_types)
    _due_dates(f)
    _previews(f)
    for project in projects:
        _playlists(f, project, types)


def _departments(f: _Furnisher, at: int) -> dict[str, str]:
    ids: dict[str, str] = {}
    for n, (name, color, task_types) in enumerate(DEPARTMENTS):
        row = f.new("departments", "department", at + n, {"name": name, "color": color, "archived": False})
        ids[name] = row.id
        for task_type in f.tables["task-types"].values():
            if task_type.fields["name"] in task_types:
                task_type.fields["department_id"] = row.id
    artists = [p for p in f.tables["persons"].values() if p.fields["role"] != "admin"]
    for person in artists:
        person.relations["departments"] = [ids[f.rng.choice(DEPARTMENTS[1:])[0]]]
    return ids


def _project_statuses(f: _Furnisher, at: int) -> dict[str, str]:
    return {
        name: f.new("project-status", "project-status", at + n, {"name": name, "color": color}).id
        for n, (name, color) in enumerate(PROJECT_STATUSES)
    }


def _descriptors(f: _Furnisher, project: Row, types: dict[str, str], departments: dict[str, str]) -> None:
    """The custom fields of a project's assets and shots, and their values in ``entity.data``."""
    at = project.created_us + 1000
    for position, (for_type, name, field_name, data_type, choices, owners) in enumerate(DESCRIPTORS, 1):
        f.new(
            "metadata-descriptors",
            "metadata-descriptor",
            at + position,
            {
                "project_id": project.id,
                "entity_type": for_type,
                "task_type_id": None,
                "name": name,
                "data_type": data_type,
                "field_name": field_name,
                "choices": list(choices),
                "for_client": False,
                "position": position,
            },
            departments=[departments[d] for d in owners],
        )
    for entity in f.tables["entities"].values():
        if (
            entity.fields["project_id"] != project.id
            or types[entity.fields["entity_type_id"]] in NON_ASSET_TYPES
        ):
            continue
        entity.fields["data"] = {
            **(entity.fields["data"] or {}),
            "complexity": f.rng.choice(("simple", "medium", "complex")),
            "polycount": f.rng.randrange(2_000, 200_000, 500),
        }


def _casting(f: _Furnisher, project: Row, types: dict[str, str]) -> None:
    """Each shot casts a few of the project's assets (``entity_link``: shot in, asset out), as
    ``update_casting`` does it: an ``entity-link:new`` per link, the asset also cast in the shot's
    episode (``data.auto``, announced by ``asset:update``), then ``shot:casting-update``."""
    entities = {e.id: e for e in f.tables["entities"].values() if e.fields["project_id"] == project.id}
    assets = [e for e in entities.values() if types[e.fields["entity_type_id"]] not in NON_ASSET_TYPES]
    shots = [e for e in entities.values() if types[e.fields["entity_type_id"]] == "Shot"]
    episode_cast: dict[str, set[str]] = {}
    for shot in shots:
        cast = f.rng.sample(assets, k=min(len(assets), f.rng.choice((0, 1, 2, 3, 4))))
        if not cast:
            continue
        at = shot.created_us + f.rng.randint(HOUR_US, 10 * DAY_US)
        sequence = entities.get(str(shot.fields["parent_id"]))
        episode = entities.get(str(sequence.fields["parent_id"])) if sequence else None
        for n, asset in enumerate(cast):
            link = f.add(
                "entity-links",
                at + n,
                {
                    "entity_in_id": shot.id,
                    "entity_out_id": asset.id,
                    "nb_occurences": f.rng.choice((1, 1, 1, 2, 3)),
                    "label": f.rng.choice(("", "fixed", "animate")),
                    "data": None,
                },
            )
            if episode is not None and asset.id not in episode_cast.setdefault(episode.id, set()):
                episode_cast[episode.id].add(asset.id)
                fields = {"entity_in_id": episode.id, "entity_out_id": asset.id, "nb_occurences": 1}
                f.add("entity-links", at + n, {**fields, "label": "", "data": {"auto": True}})
                episode.fields["nb_entities_out"] = len(episode_cast[episode.id])
                episode.relations["entities_out"] = sorted(episode_cast[episode.id])
                episode.updated_us = max(episode.updated_us, at + n)
                f.event(at + n, "asset:update", project.id, {"asset_id": asset.id})
            data = {"entity_link_id": link.id, "entity_in_id": shot.id, "entity_out_id": asset.id}
            f.event(
                at + n, "entity-link:new", project.id, {**data, "nb_occurences": link.fields["nb_occurences"]}
            )
        shot.fields["nb_entities_out"] = len(cast)
        shot.relations["entities_out"] = [a.id for a in cast]
        shot.updated_us = max(shot.updated_us, at + len(cast))
        diff = {
            "nb_entities_out": len(cast),
            "added_asset_ids": sorted(a.id for a in cast),
            "removed_asset_ids": [],
        }
        f.event(at + len(cast), "shot:casting-update", project.id, {"shot_id": shot.id, **diff})


def _schedule(f: _Furnisher, project: Row, task_types: dict[str, Row]) -> None:
    """One schedule item per task type of the project's run, and its milestones."""
    start = date.fromisoformat(project.fields["start_date"])
    end = date.fromisoformat(project.fields["end_date"])
    span = (end - start).days
    at = project.created_us + 5000
    ordered = sorted(task_types.values(), key=lambda r: r.fields["priority"])
    for n, task_type in enumerate(ordered):
        begin = start + timedelta(days=span * n // (len(ordered) + 2))
        finish = min(end, begin + timedelta(days=span // 3 + f.rng.randint(0, 30)))
        f.new(
            "schedule-items",
            "schedule-item",
            at + n,
            {
                "project_id": project.id,
                "task_type_id": task_type.id,
                "object_id": None,
                "start_date": begin.isoformat(),
                "end_date": finish.isoformat(),
                "man_days": f.rng.randint(10, 120),
            },
        )
    for n, (name, task_type_name, share) in enumerate(MILESTONES):
        day = start + timedelta(days=round(span * share))
        f.new(
            "milestones",
            "milestone",
            at + 100 + n,
            {
                "project_id": project.id,
                "task_type_id": task_types[task_type_name].id if task_type_name else None,
                "name": name,
                "date": day.isoformat(),
            },
        )


def _due_dates(f: _Furnisher) -> None:
    """Each task is due some working weeks after its planned start (so some finish late)."""
    for task in f.tables["tasks"].values():
        start = datetime.fromisoformat(str(task.fields["start_date"])).replace(tzinfo=UTC)
        weeks = max(1, int(task.fields["estimation"] or 0) // 480) + f.rng.choice((1, 2, 4, 8, 12))
        due = start + timedelta(weeks=weeks)
        task.fields["start_date"] = start.strftime("%Y-%m-%dT%H:%M:%S")
        task.fields["due_date"] = due.strftime("%Y-%m-%dT%H:%M:%S")


def _previews(f: _Furnisher) -> None:
    """A preview revision for every comment that asks for feedback (how artists submit work)."""
    statuses = f.tables["task-status"]
    tasks, entities = f.tables["tasks"], f.tables["entities"]
    revisions: dict[str, int] = {}
    for comment in sorted(f.tables["comments"].values(), key=lambda r: (r.created_us, r.id)):
        status = statuses.get(comment.fields["task_status_id"])
        task = tasks.get(comment.fields["object_id"])
        if status is None or task is None or not status.fields["is_feedback_request"]:
            continue
        revision = revisions[task.id] = revisions.get(task.id, 0) + 1
        movie = f.rng.random() < 0.6
        extension = "mp4" if movie else "png"
        width, height = (1920, 1080) if movie else (2048, 858)
        row = f.add(
            "preview-files",
            comment.created_us,
            {
                "name": f"v{revision:03d}",
                "original_name": f"{task.fields['name']}_v{revision:03d}.{extension}",
                "revision": revision,
                "position": 1,
                "extension": extension,
                "description": None,
                "path": None,
                "source": "webgui",
                "file_size": f.rng.randint(200_000, 90_000_000),
                "status": "ready",
                "validation_status": "neutral",
                "annotations": [],
                "data": None,
                "token_in": None,
                "token_out": None,
                "width": width,
                "height": height,
                "duration": round(f.rng.uniform(1, 12), 2) if movie else 0.0,
                "task_id": task.id,
                "person_id": comment.fields["person_id"],
                "source_file_id": None,
                "shotgun_id": None,
                "is_movie": movie,
                "url": None,
                "uploaded_movie_url": None,
                "uploaded_movie_name": None,
            },
        )
        project = task.fields["project_id"]
        f.event(
            row.created_us, "preview-file:new", project, {"preview_file_id": row.id, "comment_id": comment.id}
        )
        comment.fields["preview_file_id"] = row.id
        comment.relations["previews"] = [row.id]
        task.fields["last_preview_file_id"] = row.id
        task.updated_us = max(task.updated_us, row.created_us)
        entity = entities.get(task.fields["entity_id"])
        if entity is not None:
            entity.fields["preview_file_id"] = row.id
            entity.updated_us = max(entity.updated_us, row.created_us)


def _playlists(f: _Furnisher, project: Row, types: dict[str, str]) -> None:
    """Review playlists of the project's shots, each shot with its latest preview."""
    latest: dict[str, tuple[int, str]] = {}
    tasks = f.tables["tasks"]
    for preview in f.tables["preview-files"].values():
        task = tasks[preview.fields["task_id"]]
        if task.fields["project_id"] != project.id:
            continue
        entity_id = task.fields["entity_id"]
        if latest.get(entity_id, (-1, ""))[0] < preview.created_us:
            latest[entity_id] = (preview.created_us, preview.id)
    shots = sorted(
        (entity_id, found)
        for entity_id, found in latest.items()
        if types[f.tables["entities"][entity_id].fields["entity_type_id"]] == "Shot"
    )
    for n in range(1, 3):
        picked = f.rng.sample(shots, k=min(len(shots), 6))
        at = max([found[0] for _, found in picked] or [project.created_us]) + HOUR_US * n
        at = min(at, f.end_us - n)
        f.new(
            "playlists",
            "playlist",
            at,
            {
                "name": f"Dailies {n:02d}",
                "shots": [{"entity_id": e, "preview_file_id": found[1]} for e, found in picked],
                "project_id": project.id,
                "episode_id": None,
                "task_type_id": None,
                "for_client": n == 2,
                "for_entity": "shot",
                "is_for_all": False,
                "created_by": f.data.admin_id,
            },
            build_jobs=[],
        )
