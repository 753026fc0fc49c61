"""A deterministic Zou studio: projects, people, breakdown, tasks, comments, time spent, events.

One ``(size, seed)`` always yields the same rows, ids and history. The history lies between
``HISTORY_START`` and ``HISTORY_END`` (fixed dates, so content hashes do not change from run to
run); live changes made later are stamped with the sandbox clock. Entities are created in bursts
(a breakdown import makes dozens of shots in one second), so the events log has many events that
share a second, as a real log does.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pipeline.sandbox.zou_models import MODELS, Event, Row, micros_of
from pipeline.sandbox.zou_studio import furnish

HISTORY_START = datetime(2024, 1, 8, 9, 0, tzinfo=UTC)
HISTORY_END = datetime(2025, 6, 30, 18, 0, tzinfo=UTC)
ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "mysecretpassword"  # zou's documented default for `zou create-admin`


@dataclass(frozen=True)
class ZouSize:
    projects: int
    persons: int
    assets_per_project: int
    episodes_per_tvshow: int
    sequences_per_parent: int
    shots_per_sequence: int
    comments_per_task: float
    time_spents_per_task: float


ZOU_SIZES = {
    "small": ZouSize(2, 12, 15, 2, 3, 5, 1.5, 1.0),
    "medium": ZouSize(4, 40, 60, 4, 4, 8, 2.0, 1.5),
    "large": ZouSize(6, 120, 150, 6, 6, 12, 2.5, 2.0),
}

ASSET_TYPES = ("Character", "Environment", "Prop", "FX")
TASK_TYPES = (  # name, short name, colour, entity kind
    ("Concept", "cpt", "#8D6E63", "Asset"),
    ("Modeling", "mod", "#78909C", "Asset"),
    ("Setup", "stp", "#9CCC65", "Asset"),
    ("Texture", "tex", "#26A69A", "Asset"),
    ("Storyboard", "stb", "#43A047", "Shot"),
    ("Layout", "lay", "#7CB342", "Shot"),
    ("Animation", "anim", "#F57C00", "Shot"),
    ("Lighting", "lgt", "#F9A825", "Shot"),
    ("Compositing", "comp", "#FF5722", "Shot"),
    ("Edit", "edit", "#3949AB", "Edit"),
)
TASK_STATUSES = (  # name, short name, colour, is_done, is_retake, is_feedback_request, is_default, is_wip
    ("Todo", "todo", "#f5f5f5", False, False, False, True, False),
    ("Work In Progress", "wip", "#3273dc", False, False, False, False, True),
    ("Waiting For Approval", "wfa", "#ab26ff", False, False, True, False, False),
    ("Retake", "retake", "#ff3860", False, True, False, False, False),
    ("Done", "done", "#22d160", True, False, False, False, False),
)
FIRST_NAMES = (
    "Alice",
    "Bruno",
    "Chloé",
    "Dmitri",
    "Emi",
    "Farid",
    "Greta",
    "Hugo",
    "Ines",
    "Jun",
    "Kofi",
    "Lena",
    "Marco",
    "Noor",
    "Oskar",
    "Priya",
    "Quentin",
    "Rosa",
    "Sven",
    "Tomoko",
)
LAST_NAMES = (
    "Martin",
    "Okafor",
    "Nakamura",
    "Dubois",
    "Larsen",
    "Silva",
    "Kowalski",
    "Haddad",
    "Moreau",
    "Tanaka",
    "Novak",
    "Fischer",
    "Rossi",
    "Yilmaz",
)
PROJECT_NAMES = (
    "Cosmic Ramen",
    "The Paper Fox",
    "Lanterns",
    "Moss & Iron",
    "Tidal Bloom",
    "Night Market",
    "Orbital Garden",
    "Kite Runners",
)
ASSET_NAMES = (
    "Hero",
    "Sidekick",
    "Villain",
    "Robot",
    "Cat",
    "Forest",
    "Harbour",
    "Tower",
    "Lamp",
    "Sword",
    "Boat",
    "Kite",
    "Ramen Bowl",
    "Bike",
    "Smoke",
    "Rain",
    "Sparks",
    "Bridge",
    "Market Stall",
)
COMMENT_TEXTS = (
    "Looks good, ship it.",
    "Please fix the silhouette.",
    "Timing feels slow in the middle.",
    "Great work!",
    "Colours too saturated.",
    "Retake: the hands clip through the table.",
    "Ready for review.",
    "Can we try a wider lens?",
    "Approved by the director.",
    "",
)


@dataclass
class ZouData:
    """Every table of one studio, its events log (oldest first) and the admin account."""

    tables: dict[str, dict[str, Row]] = field(default_factory=lambda: {route: {} for route in MODELS})
    events: list[Event] = field(default_factory=list)
    admin_id: str = ""

    def counts(self) -> dict[str, int]:
        counts = {route: len(rows) for route, rows in self.tables.items()}
        counts["events"] = len(self.events)
        return counts


class _Generator:
    def __init__(self, size: ZouSize, seed: int) -> None:
        self.size = size
        self.rng = random.Random(f"zou:{seed}")
        self.data = ZouData()
        self.t = micros_of(HISTORY_START.timestamp())
        span = HISTORY_END - HISTORY_START
        # Each creation moves time forward; the mean step spreads the whole history over the span.
        expected = size.projects * (size.assets_per_project * 5 + 20 * size.shots_per_sequence * 6) + 50
        self.mean_step = int(span / timedelta(microseconds=1) / max(expected, 1))

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def tick(self, burst: bool = False) -> int:
        """Advance the history clock: a few ms inside a burst, a random gap otherwise."""
        if burst:
            self.t += self.rng.randint(1_000, 150_000)
        else:
            self.t += self.rng.randint(self.mean_step // 4, self.mean_step * 2)
        return self.t

    def add(self, route: str, fields: dict[str, Any], *, burst: bool = False, **relations: list[str]) -> Row:
        at = self.tick(burst)
        row = Row(fields={"id": self.uuid(), **fields}, created_us=at, updated_us=at, relations=relations)
        self.data.tables[route][row.id] = row
        return row

    def event(self, at: int, name: str, project_id: str | None, data: dict[str, Any]) -> None:
        self.data.events.append(Event(self.uuid(), at, name, self.data.admin_id, project_id, data))

    def later(self, after: int) -> int:
        """A moment after ``after`` and before the end of the history."""
        room = micros_of(HISTORY_END.timestamp()) - after
        if room <= 3_600_000_000:
            return after + self.rng.randint(1_000, 60_000_000)
        return after + self.rng.randint(3_600_000_000, min(room, 90 * 86_400_000_000))


def generate_zou(size: str, seed: int) -> ZouData:
    """The whole studio for one dataset size and seed."""
    if size not in ZOU_SIZES:
        raise ValueError(f"zou dataset size {size!r}: use one of {', '.join(ZOU_SIZES)}")
    gen = _Generator(ZOU_SIZES[size], seed)
    persons = _persons(gen)
    types = _entity_types(gen)
    task_types = _task_types(gen)
    statuses = _task_statuses(gen)
    for index in range(gen.size.projects):
        project = _project(gen, index, persons)
        entities = _breakdown(gen, project, types)
        _tasks(gen, project, entities, task_types, statuses, persons)
    furnish(gen.data, seed, micros_of(HISTORY_END.timestamp()))
    _finish(gen)
    return gen.data


def _persons(gen: _Generator) -> list[Row]:
    rows = []
    for index in range(gen.size.persons):
        first = FIRST_NAMES[index % len(FIRST_NAMES)]
        last = LAST_NAMES[(index * 7 + index // len(FIRST_NAMES)) % len(LAST_NAMES)]
        admin = index == 0
        email = ADMIN_EMAIL if admin else f"{first.lower()}.{last.lower()}{index}@studio.example"
        role = "admin" if admin else gen.rng.choice(("user", "user", "user", "supervisor", "manager"))
        row = gen.add(
            "persons",
            {
                "first_name": "Super" if admin else first,
                "last_name": "Admin" if admin else last,
                "email": email,
                "phone": "",
                "contract_type": "open-ended",
                "active": True,
                "archived": False,
                "last_presence": None,
                "desktop_login": "",
                "login_failed_attemps": 0,
                "totp_enabled": False,
                "email_otp_enabled": False,
                "fido_enabled": False,
                "timezone": "Europe/Paris",
                "locale": "en_US",
                "data": None,
                "role": role,
                "position": gen.rng.choice(("artist", "lead", "supervisor")),
                "seniority": gen.rng.choice(("junior", "mid", "senior")),
                "daily_salary": 0,
                "has_avatar": False,
                "notifications_enabled": False,
                "notifications_slack_enabled": False,
                "notifications_slack_userid": "",
                "is_bot": False,
                "expiration_date": None,
                "is_generated_from_ldap": False,
                "ldap_uid": None,
                "studio_id": None,
            },
            departments=[],
        )
        if admin:
            gen.data.admin_id = row.id
        gen.event(row.created_us, "person:new", None, {"person_id": row.id})
        rows.append(row)
    return rows


def _entity_types(gen: _Generator) -> dict[str, Row]:
    types = {}
    for name in (*ASSET_TYPES, "Shot", "Sequence", "Episode", "Edit", "Concept", "Scene"):
        row = gen.add(
            "entity-types",
            {"name": name, "short_name": name[:3].lower(), "description": None, "archived": False},
            burst=True,
            task_types=[],
        )
        gen.event(row.created_us, "entity-type:new", None, {"entity_type_id": row.id})
        types[name] = row
    # zou init-data also creates ConceptFolder; made without drawing from the generator's random
    # stream, so the rest of a seeded studio stays what it was before the type was simulated.
    concept = types["Concept"]
    folder_id = str(uuid.uuid5(uuid.UUID(concept.id), "ConceptFolder"))
    fields = {"name": "ConceptFolder", "short_name": "con", "description": None, "archived": False}
    at = concept.created_us + 1
    row = Row({"id": folder_id, **fields}, at, at, {"task_types": []})
    gen.data.tables["entity-types"][row.id] = row
    event_id = str(uuid.uuid5(uuid.UUID(folder_id), "entity-type:new"))
    gen.data.events.append(
        Event(event_id, at, "entity-type:new", gen.data.admin_id, None, {"entity_type_id": row.id})
    )
    types["ConceptFolder"] = row
    return types


def _task_types(gen: _Generator) -> list[Row]:
    rows = []
    for priority, (name, short, color, for_entity) in enumerate(TASK_TYPES, start=1):
        row = gen.add(
            "task-types",
            {
                "name": name,
                "short_name": short,
                "description": None,
                "color": color,
                "priority": priority,
                "for_entity": for_entity,
                "allow_timelog": True,
                "archived": False,
                "department_id": None,
            },
            burst=True,
        )
        gen.event(row.created_us, "task-type:new", None, {"task_type_id": row.id})
        rows.append(row)
    return rows


def _task_statuses(gen: _Generator) -> list[Row]:
    rows = []
    for priority, (name, short, color, done, retake, feedback, default, wip) in enumerate(TASK_STATUSES, 1):
        row = gen.add(
            "task-status",
            {
                "name": name,
                "short_name": short,
                "description": None,
                "color": color,
                "priority": priority,
                "is_done": done,
                "is_artist_allowed": True,
                "is_client_allowed": False,
                "is_retake": retake,
                "is_feedback_request": feedback,
                "is_default": default,
                "is_wip": wip,
                "archived": False,
                "for_concept": False,
            },
            burst=True,
        )
        gen.event(row.created_us, "task-status:new", None, {"task_status_id": row.id})
        rows.append(row)
    return rows


def _project(gen: _Generator, index: int, persons: list[Row]) -> Row:
    production = ("tvshow", "short", "featurefilm")[index % 3]
    base = PROJECT_NAMES[index % len(PROJECT_NAMES)]
    name = base if index < len(PROJECT_NAMES) else f"{base} {index // len(PROJECT_NAMES) + 1}"
    start = HISTORY_START + timedelta(days=30 * index)
    team = [p.id for p in gen.rng.sample(persons, k=min(len(persons), max(3, len(persons) // 2)))]
    row = gen.add(
        "projects",
        {
            "name": name,
            "code": "".join(word[0] for word in name.split()).upper(),
            "description": None,
            "fps": "25",
            "ratio": "16:9",
            "resolution": "1920x1080",
            "production_type": production,
            "production_style": gen.rng.choice(("2d", "3d", "2d3d")),
            "homepage": "assets",
            "has_avatar": False,
            "is_clients_isolated": False,
            "is_preview_download_allowed": False,
            "is_set_preview_automated": False,
            "man_days": gen.rng.randint(200, 2000),
            "nb_episodes": gen.size.episodes_per_tvshow if production == "tvshow" else 0,
            "episode_span": 0,
            "max_retakes": 0,
            "start_date": start.date().isoformat(),
            "end_date": (start + timedelta(days=540)).date().isoformat(),
            "file_tree": {},
            "data": None,
            "project_status_id": str(uuid.UUID(int=index + 1, version=4)),
        },
        team=team,
        asset_types=[],
        task_statuses=[],
        task_types=[],
    )
    gen.event(row.created_us, "project:new", row.id, {"project_id": row.id})
    return row


def _entity(gen: _Generator, project: Row, etype: Row, name: str, parent: Row | None, **extra: Any) -> Row:
    kind = extra.pop("kind")
    row = gen.add(
        "entities",
        {
            "name": name,
            "code": None,
            "description": extra.pop("description", None),
            "status": "running",
            "canceled": False,
            "is_casting_standby": False,
            "is_shared": False,
            "nb_frames": extra.pop("nb_frames", None),
            "nb_entities_out": 0,
            "project_id": project.id,
            "entity_type_id": etype.id,
            "parent_id": parent.id if parent else None,
            "source_id": None,
            "preview_file_id": None,
            "ready_for": None,
            "created_by": gen.data.admin_id,
            "data": extra.pop("data", {}),
        },
        burst=True,
        entities_out=[],
        instance_casting=[],
    )
    gen.event(row.created_us, f"{kind}:new", project.id, {f"{kind}_id": row.id})
    return row


def _breakdown(gen: _Generator, project: Row, types: dict[str, Row]) -> list[tuple[str, Row]]:
    """Assets, then episodes → sequences → shots (tv shows) or sequences → shots, edits, concepts."""
    made: list[tuple[str, Row]] = []
    gen.tick()
    for n in range(gen.size.assets_per_project):
        etype = types[ASSET_TYPES[n % len(ASSET_TYPES)]]
        label = f"{ASSET_NAMES[n % len(ASSET_NAMES)]} {n // len(ASSET_NAMES) + 1:02d}"
        made.append(
            (
                "Asset",
                _entity(
                    gen,
                    project,
                    etype,
                    label,
                    None,
                    kind="asset",
                    description=f"{etype.fields['name']} asset",
                ),
            )
        )
    gen.tick()
    tv = project.fields["production_type"] == "tvshow"
    parents: list[Row | None] = [None]
    if tv:
        parents = [
            _entity(gen, project, types["Episode"], f"E{e:02d}", None, kind="episode")
            for e in range(1, gen.size.episodes_per_tvshow + 1)
        ]
    for parent in parents:
        gen.tick()
        for s in range(1, gen.size.sequences_per_parent + 1):
            seq = _entity(gen, project, types["Sequence"], f"SQ{s:02d}", parent, kind="sequence")
            for k in range(1, gen.size.shots_per_sequence + 1):
                frames = gen.rng.randint(24, 240)
                shot = _entity(
                    gen,
                    project,
                    types["Shot"],
                    f"SH{k * 10:03d}",
                    seq,
                    kind="shot",
                    nb_frames=frames,
                    data={
                        "frame_in": 1001,
                        "frame_out": 1000 + frames,
                        "fps": "25",
                        "camera": "camA",
                        "cut_in": 1001,
                    },
                )
                made.append(("Shot", shot))
    gen.tick()
    made.append(("Edit", _entity(gen, project, types["Edit"], "Main edit", None, kind="edit")))
    for c in range(1, 3):
        _entity(gen, project, types["Concept"], f"Concept {c}", None, kind="concept")
    return made


def _tasks(
    gen: _Generator,
    project: Row,
    entities: list[tuple[str, Row]],
    task_types: list[Row],
    statuses: list[Row],
    persons: list[Row],
) -> None:
    team = project.relations["team"]
    for for_entity, entity in entities:
        for task_type in (t for t in task_types if t.fields["for_entity"] == for_entity):
            if gen.rng.random() > 0.8:
                continue
            _task(gen, project, entity, task_type, statuses, team)
    del persons


def _task(
    gen: _Generator, project: Row, entity: Row, task_type: Row, statuses: list[Row], team: list[str]
) -> None:
    status = gen.rng.choice(statuses)
    assignees = gen.rng.sample(team, k=gen.rng.choice((0, 1, 1, 1, 2)))
    start = gen.t // 1_000_000
    task = gen.add(
        "tasks",
        {
            "name": "main",
            "description": None,
            "priority": gen.rng.choice((0, 0, 1, 2)),
            "difficulty": 3,
            "duration": 0,
            "estimation": gen.rng.choice((0, 1, 2, 3, 5)) * 480,
            "completion_rate": 0.0,
            "retake_count": 1 if status.fields["is_retake"] else 0,
            "sort_order": 0,
            "start_date": datetime.fromtimestamp(start, UTC).date().isoformat(),
            "due_date": None,
            "real_start_date": None,
            "end_date": None,
            "done_date": None,
            "last_comment_date": None,
            "nb_assets_ready": 0,
            "nb_drawings": 0,
            "data": None,
            "last_preview_file_id": None,
            "project_id": project.id,
            "task_type_id": task_type.id,
            "task_status_id": statuses[0].id,
            "entity_id": entity.id,
            "assigner_id": gen.data.admin_id,
        },
        burst=True,
        assignees=assignees,
    )
    gen.event(task.created_us, "task:new", project.id, {"task_id": task.id})
    for person_id in assignees:
        gen.event(task.created_us, "task:assign", project.id, {"task_id": task.id, "person_id": person_id})
    moment = task.created_us
    for _ in range(_poisson(gen, gen.size.comments_per_task)):
        moment = gen.later(moment)
        _comment(gen, project, task, gen.rng.choice(statuses), moment, team)
    if status is not statuses[0] and task.fields["task_status_id"] == statuses[0].id:
        moment = gen.later(moment)
        _comment(gen, project, task, status, moment, team)
    for _ in range(_poisson(gen, gen.size.time_spents_per_task)):
        _time_spent(gen, project, task, gen.later(task.created_us), assignees or team)


def _comment(gen: _Generator, project: Row, task: Row, status: Row, at: int, team: list[str]) -> None:
    """A comment that may change the task status (how statuses change in Zou)."""
    author = gen.rng.choice(team) if team else gen.data.admin_id
    row = Row(
        fields={
            "id": gen.uuid(),
            "object_id": task.id,
            "object_type": "Task",
            "text": gen.rng.choice(COMMENT_TEXTS),
            "data": None,
            "replies": [],
            "checklist": [],
            "pinned": False,
            "for_client": False,
            "links": [],
            "task_status_id": status.id,
            "person_id": author,
            "editor_id": None,
            "preview_file_id": None,
        },
        created_us=at,
        updated_us=at,
        relations={"mentions": [], "acknowledgements": [], "attachment_files": [], "previews": []},
    )
    gen.data.tables["comments"][row.id] = row
    gen.event(at, "comment:new", project.id, {"comment_id": row.id, "task_id": task.id})
    previous = task.fields["task_status_id"]
    stamp = datetime.fromtimestamp(at // 1_000_000, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    task.fields["last_comment_date"] = stamp
    if status.id != previous:
        task.fields["task_status_id"] = status.id
        _status_dates(task, status, stamp)
        gen.event(
            at,
            "task:status-changed",
            project.id,
            {
                "task_id": task.id,
                "new_task_status_id": status.id,
                "previous_task_status_id": previous,
                "person_id": author,
            },
        )
    task.updated_us = max(task.updated_us, at)


def _status_dates(task: Row, status: Row, stamp: str) -> None:
    """The dates zou 1.0.97 sets on a status change (``tasks_service.update_task``, called by the
    comments service): ``end_date`` when the task goes to a feedback-request status, kept when it
    goes on to done, cleared otherwise; ``done_date`` while it is done; ``real_start_date`` the
    first time it reaches a WIP status."""
    if status.fields["is_feedback_request"]:
        task.fields["end_date"] = stamp
    elif not status.fields["is_done"]:
        task.fields["end_date"] = None
    task.fields["done_date"] = stamp if status.fields["is_done"] else None
    if status.fields["is_wip"] and task.fields["real_start_date"] is None:
        task.fields["real_start_date"] = stamp


def _time_spent(gen: _Generator, project: Row, task: Row, at: int, people: list[str]) -> None:
    day = datetime.fromtimestamp(at // 1_000_000, UTC).date().isoformat()
    row = Row(
        fields={
            "id": gen.uuid(),
            "duration": float(gen.rng.choice((30, 60, 90, 120, 240, 480, 510))),
            "date": day,
            "task_id": task.id,
            "person_id": gen.rng.choice(people),
        },
        created_us=at,
        updated_us=at,
    )
    gen.data.tables["time-spents"][row.id] = row
    gen.event(at, "time-spent:new", project.id, {"time_spent_id": row.id})
    duration = int(task.fields["duration"]) + int(row.fields["duration"])
    task.fields["duration"] = duration
    task.updated_us = max(task.updated_us, at)


def _poisson(gen: _Generator, mean: float) -> int:
    """A small non-negative count with the given mean."""
    return max(0, round(gen.rng.uniform(0, 2 * mean)))


def _finish(gen: _Generator) -> None:
    """Sort the log by time and make every event's instant unique (a database never repeats now())."""
    gen.data.events.sort(key=lambda e: e.created_us)
    last = 0
    for event in gen.data.events:
        event.created_us = max(event.created_us, last + 1)
        last = event.created_us
