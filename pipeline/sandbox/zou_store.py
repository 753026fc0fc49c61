"""One Zou studio's state: the generic ``/data/<model>`` queries, the events log and live writes.

Queries follow ``zou/app/blueprints/crud/base.py``: no query string → every row, unordered; any
query string → equality filters on columns (a JSON list means IN, ``name`` is a case-insensitive
LIKE); ``page`` → ``{data,total,nb_pages,limit,offset,page}`` ordered ``updated_at DESC,
created_at DESC, id``; a page past the end answers ``data: []`` *and* ``total: 0``. Writes stamp
the sandbox clock and append the event the real server emits.
"""

from __future__ import annotations

import bisect
import math
import re
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from pipeline.sandbox.zou_data import ZouData
from pipeline.sandbox.zou_models import MODELS, NON_ASSET_TYPES, Event, Model, Row, micros_of, serialize

RESERVED_PARAMS = frozenset({"page", "limit", "relations", "fields"})
EVENTS_DEFAULT_LIMIT = 100
EVENTS_MAX_LIMIT = 1000
RESOURCE_ALIASES = {
    "task-statuses": "task-status",
    "project-statuses": "project-status",
    "assets": "entities",
    "shots": "entities",
    "sequences": "entities",
    "episodes": "entities",
    "edits": "entities",
    "concepts": "entities",
    "concept-folders": "entities",
    "scenes": "entities",
}


class FilterError(ValueError):
    """A query the real server answers with 400; ``body`` is its JSON."""

    def __init__(self, body: dict[str, Any]) -> None:
        super().__init__(body.get("message", ""))
        self.body = body


def model_for(resource: str) -> Model:
    """The model of a route or a pipeline resource name (``time_spents``, ``task_statuses``, ``shots``)."""
    route = resource.replace("_", "-")
    route = RESOURCE_ALIASES.get(route, route)
    try:
        return MODELS[route]
    except KeyError:
        raise KeyError(f"zou has no model {resource!r}; known: {', '.join(sorted(MODELS))}") from None


class ZouStore:
    """Rows, events and the writes that keep them consistent, for one studio."""

    def __init__(self, data: ZouData, now: Callable[[], float], *, page_size: int = 100) -> None:
        self.data = data
        self.page_size = page_size
        self._now = now
        self._event_index = {event.id: i for i, event in enumerate(data.events)}

    # -- reads -----------------------------------------------------------------------------------
    def rows(self, route: str) -> dict[str, Row]:
        return self.data.tables[route]

    def get(self, route: str, row_id: str, *, relations: bool = True) -> dict[str, Any] | None:
        row = self.data.tables[route].get(row_id)
        return None if row is None else serialize(MODELS[route], row, relations=relations)

    def query(self, route: str, params: Mapping[str, str]) -> list[dict[str, Any]] | dict[str, Any]:
        """``GET /data/<route>`` with the request's query string."""
        model = MODELS[route]
        rows = list(self.data.tables[route].values())
        if not params:
            return [serialize(model, row) for row in rows]
        match = _matcher(model, params)
        rows = [row for row in rows if match(row)]
        relations = params.get("relations", "false") == "true"
        page = _int_param(params, "page", -1)
        if page <= -1:
            return [serialize(model, row, relations=relations) for row in rows]
        limit = _int_param(params, "limit", self.page_size)
        if limit < 1:
            raise FilterError({"error": True, "message": f"limit = {limit}: expected a positive integer"})
        rows.sort(key=lambda r: r.id)
        rows.sort(key=lambda r: (r.updated_us, r.created_us), reverse=True)
        total, offset = len(rows), (page - 1) * limit
        nb_pages = math.ceil(total / limit)
        if total < offset or page < 1:  # zou answers total 0 here, not the real total
            return {
                "data": [],
                "total": 0,
                "nb_pages": nb_pages,
                "limit": limit,
                "offset": offset,
                "page": page,
            }
        data = [serialize(model, row, relations=relations) for row in rows[offset : offset + limit]]
        return {
            "data": data,
            "total": total,
            "nb_pages": nb_pages,
            "limit": limit,
            "offset": offset,
            "page": page,
        }

    def events_last(self, params: Mapping[str, str], *, old_server: bool) -> list[dict[str, Any]]:
        """``GET /data/events/last``: newest first; new servers cap ``limit`` and honour the cursor."""
        events = self.data.events
        hi = len(events)
        lo = 0
        if "after" in params:
            lo = bisect.bisect_right(events, _date_param(params, "after"), key=lambda e: e.created_us)
        if "before" in params:
            hi = min(
                hi, bisect.bisect_left(events, _date_param(params, "before"), key=lambda e: e.created_us)
            )
        cursor = params.get("cursor_event_id")
        if cursor and not old_server:
            index = self._event_index.get(cursor)
            if index is None:
                raise FilterError({"error": True, "message": f"Event {cursor} not found"})
            hi = min(hi, index)
        limit = _int_param(params, "limit", EVENTS_DEFAULT_LIMIT)
        if not old_server:
            limit = min(limit, EVENTS_MAX_LIMIT)
        project_id, name = params.get("project_id"), params.get("name")
        out: list[dict[str, Any]] = []
        for i in range(hi - 1, lo - 1, -1):
            if len(out) >= limit:
                break
            event = events[i]
            if (project_id and event.project_id != project_id) or (name and event.name != name):
                continue
            out.append(event.as_json())
        return out

    # -- writes ----------------------------------------------------------------------------------
    def create(
        self, resource: str, values: Mapping[str, Any], *, user_id: str | None = None
    ) -> dict[str, Any]:
        """Insert a row (defaults filled from a sibling row) and emit ``<kind>:new``."""
        model = model_for(resource)
        values = dict(values)
        relations = {name: list(values.pop(name, [])) for name in model.relations}
        if model.route == "entities":
            values.setdefault("entity_type_id", self._entity_type_for(resource.replace("_", "-"), values))
        unknown = sorted(set(values) - set(model.columns))
        if unknown:
            raise ValueError(f"zou {model.route} has no column(s) {unknown}; known: {sorted(model.columns)}")
        fields = {
            key: _DEFAULTS[kind]
            for key, kind in model.columns.items()
            if key not in ("created_at", "updated_at")
        }
        fields.update(values)
        fields["id"] = str(values.get("id") or self._new_id())
        if fields["id"] in self.data.tables[model.route]:
            raise ValueError(f"zou {model.route} {fields['id']} exists already; update it instead")
        at = self._stamp()
        row = Row(fields=fields, created_us=at, updated_us=at, relations=relations)
        self.data.tables[model.route][row.id] = row
        kind = self._kind(model, row)
        self._emit(at, f"{kind}:new", row, user_id, self._new_event_data(model, kind, row))
        for person_id in relations.get("assignees", []):
            self._emit(at, "task:assign", row, user_id, {"task_id": row.id, "person_id": person_id})
        return serialize(model, row, relations=True)

    def update(
        self, resource: str, row_id: str, changes: Mapping[str, Any], *, user_id: str | None = None
    ) -> dict[str, Any]:
        """Change columns (bumping ``updated_at``) and emit ``<kind>:update`` plus status/assign events."""
        model = model_for(resource)
        row = self._row(model, row_id)
        changes = dict(changes)
        assignees = changes.pop("assignees", None)
        unknown = sorted(
            set(changes) - set(model.columns) | ({"id", "created_at", "updated_at"} & set(changes))
        )
        if unknown:
            raise ValueError(f"zou {model.route} cannot update {unknown}; updatable: {sorted(model.columns)}")
        previous_status = row.fields.get("task_status_id")
        row.fields.update(changes)
        at = self._stamp()
        row.updated_us = at
        kind = self._kind(model, row)
        self._emit(at, f"{kind}:update", row, user_id, {f"{kind.replace('-', '_')}_id": row.id})
        if model.route == "tasks" and row.fields.get("task_status_id") != previous_status:
            self._emit(
                at,
                "task:status-changed",
                row,
                user_id,
                {
                    "task_id": row.id,
                    "new_task_status_id": row.fields["task_status_id"],
                    "previous_task_status_id": previous_status,
                    "person_id": user_id,
                },
            )
        if model.route == "tasks" and assignees is not None:
            before = row.relations.get("assignees", [])
            for person_id in [p for p in assignees if p not in before]:
                self._emit(at, "task:assign", row, user_id, {"task_id": row.id, "person_id": person_id})
            for person_id in [p for p in before if p not in assignees]:
                self._emit(at, "task:unassign", row, user_id, {"task_id": row.id, "person_id": person_id})
            row.relations["assignees"] = list(assignees)
        return serialize(model, row, relations=True)

    def delete(self, resource: str, row_id: str, *, force: bool = False, user_id: str | None = None) -> str:
        """Remove a row and emit ``<kind>:delete``; return ``deleted`` or ``canceled``.

        As in zou's ``remove_asset``/``remove_shot``, an entity that still has tasks is only
        marked ``canceled`` (an ``update`` event) unless ``force``; removing a task silently
        removes its comments and time spent, which get no events of their own.
        """
        model = model_for(resource)
        row = self._row(model, row_id)
        if model.route == "entities" and not force and self._has_tasks(row.id):
            self.update("entities", row.id, {"canceled": True}, user_id=user_id)
            return "canceled"
        if model.route == "entities":
            for task in [t for t in self.data.tables["tasks"].values() if t.fields["entity_id"] == row.id]:
                self.delete("tasks", task.id, user_id=user_id)
            self._drop_children((("entity-links", "entity_in_id"), ("entity-links", "entity_out_id")), row.id)
        if model.route == "tasks":
            previews = {
                i for i, r in self.data.tables["preview-files"].items() if r.fields["task_id"] == row.id
            }
            children = (("comments", "object_id"), ("time-spents", "task_id"), ("preview-files", "task_id"))
            self._drop_children(children, row.id)
            self._restore_main_preview(str(row.fields["entity_id"]), previews, user_id)
        del self.data.tables[model.route][row.id]
        kind = self._kind(model, row)
        self._emit(self._stamp(), f"{kind}:delete", row, user_id, {f"{kind.replace('-', '_')}_id": row.id})
        return "deleted"

    def _restore_main_preview(self, entity_id: str, removed: set[str], user_id: str | None) -> None:
        """zou's ``_restore_entity_main_preview``: an entity whose thumbnail was among the removed
        previews gets the newest preview of its other tasks when the project sets it automatically,
        none otherwise, and the clients are told (``preview-file:set-main``, ``<kind>:update``)."""
        entity = self.data.tables["entities"].get(entity_id)
        if entity is None or entity.fields.get("preview_file_id") not in removed:
            return
        main: Row | None = None
        project = self.data.tables["projects"].get(str(entity.fields["project_id"]))
        if project is not None and project.fields.get("is_set_preview_automated"):
            tasks = {i for i, t in self.data.tables["tasks"].items() if t.fields["entity_id"] == entity_id}
            left = [r for r in self.data.tables["preview-files"].values() if r.fields["task_id"] in tasks]
            main = max(left, key=lambda r: (r.created_us, r.id), default=None)
        at = self._stamp()
        entity.fields["preview_file_id"] = main.id if main else None
        entity.updated_us = at
        data = {"entity_id": entity_id, "preview_file_id": main.id if main else None}
        status = main.fields["status"] if main else None
        self._emit(at, "preview-file:set-main", entity, user_id, {**data, "preview_file_status": status})
        kind = self._kind(MODELS["entities"], entity)
        self._emit(at, f"{kind}:update", entity, user_id, {f"{kind.replace('-', '_')}_id": entity_id})

    def cancel(self, resource: str, row_id: str, *, user_id: str | None = None) -> str:
        """zou's ``cancel_asset`` (the Shotgun import path): ``canceled = true`` and an ``asset:delete``
        event, although the asset stays (``remove_asset`` of an asset with tasks emits ``asset:update``).
        """
        model = model_for(resource)
        row = self._row(model, row_id)
        if model.route != "entities" or self._kind(model, row) != "asset":
            raise ValueError(f"zou cancels assets only; {model.route} {row_id} is not an asset")
        row.fields["canceled"] = True
        at = self._stamp()
        row.updated_us = at
        self._emit(at, "asset:delete", row, user_id, {"asset_id": row.id})
        return "canceled"

    def set_casting(
        self, entity_id: str, casting: list[Mapping[str, Any]], *, user_id: str | None = None
    ) -> list[dict[str, Any]]:
        """zou 1.0.97's ``update_casting``: the entity's links are dropped silently and made again
        (new ids, an ``entity-link:new`` each); a shot's newly cast asset is also cast in its
        episode (``data.auto``, announced by ``asset:update``) and an asset no shot of the episode
        casts any more leaves it (``episode:casting-update``); then ``<kind>:casting-update``."""
        model = MODELS["entities"]
        row = self._row(model, entity_id)
        before = set(row.relations.get("entities_out", []))
        self._drop_children((("entity-links", "entity_in_id"),), row.id)
        at = self._stamp()
        episode = self._episode_of(row)
        made: list[Row] = []
        for cast in casting:
            asset = self._row(model, str(cast["asset_id"]))
            link = self._link(
                row, asset.id, int(cast.get("nb_occurences", 1)), str(cast.get("label", "")), at
            )
            made.append(link)
            if episode is not None and self._find_link(episode.id, asset.id) is None:
                self._link(episode, asset.id, 1, "", at, data={"auto": True})
                self._emit(at, "asset:update", asset, user_id, {"asset_id": asset.id})
            data: dict[str, Any] = {
                "entity_link_id": link.id,
                "entity_in_id": row.id,
                "entity_out_id": asset.id,
            }
            self._emit(
                at, "entity-link:new", row, user_id, {**data, "nb_occurences": link.fields["nb_occurences"]}
            )
        after = {str(link.fields["entity_out_id"]) for link in made}
        row.relations["entities_out"] = sorted(after)
        row.fields["nb_entities_out"] = len(after)
        row.updated_us = at
        if episode is not None:
            for asset_id in sorted(before - after):
                self._detach_from_episode(episode, asset_id, at, user_id)
        kind = self._kind(model, row)
        diff = {"nb_entities_out": len(after), "added_asset_ids": sorted(after - before)}
        data = {f"{kind.replace('-', '_')}_id": row.id, **diff, "removed_asset_ids": sorted(before - after)}
        self._emit(at, f"{kind}:casting-update", row, user_id, data)
        return [serialize(MODELS["entity-links"], link) for link in made]

    def _link(self, owner: Row, asset_id: str, occurrences: int, label: str, at: int, **extra: Any) -> Row:
        fields: dict[str, Any] = {"id": self._new_id(), "entity_in_id": owner.id, "entity_out_id": asset_id}
        fields.update(nb_occurences=occurrences, label=label, data=extra.get("data"))
        link = Row(fields=fields, created_us=at, updated_us=at)
        self.data.tables["entity-links"][link.id] = link
        if owner.fields.get("entity_type_id") and self._kind(MODELS["entities"], owner) == "episode":
            owner.relations["entities_out"] = sorted({*owner.relations.get("entities_out", []), asset_id})
            owner.fields["nb_entities_out"] = len(owner.relations["entities_out"])
            owner.updated_us = at
        return link

    def _find_link(self, entity_in: str, entity_out: str) -> Row | None:
        links = self.data.tables["entity-links"].values()
        return next(
            (
                r
                for r in links
                if (r.fields["entity_in_id"], r.fields["entity_out_id"]) == (entity_in, entity_out)
            ),
            None,
        )

    def _episode_of(self, shot: Row) -> Row | None:
        entities = self.data.tables["entities"]
        if self._kind(MODELS["entities"], shot) != "shot":
            return None
        sequence = entities.get(str(shot.fields.get("parent_id")))
        return entities.get(str(sequence.fields.get("parent_id"))) if sequence else None

    def _detach_from_episode(self, episode: Row, asset_id: str, at: int, user_id: str | None) -> None:
        """zou's ``_detach_asset_from_episode_if_unused``: drop the episode's auto link to an asset
        none of its shots casts any more."""
        entities = self.data.tables["entities"]
        sequences = {i for i, e in entities.items() if e.fields.get("parent_id") == episode.id}
        shots = {i for i, e in entities.items() if e.fields.get("parent_id") in sequences}
        links = self.data.tables["entity-links"]
        if any(
            r.fields["entity_in_id"] in shots and r.fields["entity_out_id"] == asset_id
            for r in links.values()
        ):
            return
        link = self._find_link(episode.id, asset_id)
        if link is None or not (link.fields.get("data") or {}).get("auto"):
            return
        del links[link.id]
        episode.relations["entities_out"] = [
            a for a in episode.relations.get("entities_out", []) if a != asset_id
        ]
        episode.fields["nb_entities_out"] = len(episode.relations["entities_out"])
        episode.updated_us = at
        data = {"episode_id": episode.id, "nb_entities_out": episode.fields["nb_entities_out"]}
        self._emit(
            at,
            "episode:casting-update",
            episode,
            user_id,
            {**data, "added_asset_ids": [], "removed_asset_ids": [asset_id]},
        )

    # -- helpers ---------------------------------------------------------------------------------
    def _drop_children(self, children: tuple[tuple[str, str], ...], parent_id: str) -> None:
        """Rows zou removes with their parent, silently (no events of their own)."""
        for route, key in children:
            table = self.data.tables[route]
            for child in [c for c in table.values() if c.fields[key] == parent_id]:
                del table[child.id]

    def _row(self, model: Model, row_id: str) -> Row:
        try:
            return self.data.tables[model.route][row_id]
        except KeyError:
            raise KeyError(f"zou {model.route} has no row {row_id!r}") from None

    def _has_tasks(self, entity_id: str) -> bool:
        return any(t.fields["entity_id"] == entity_id for t in self.data.tables["tasks"].values())

    def _entity_type_for(self, alias: str, values: Mapping[str, Any]) -> str:
        wanted = {
            "shots": "Shot",
            "sequences": "Sequence",
            "episodes": "Episode",
            "edits": "Edit",
            "concepts": "Concept",
            "concept-folders": "ConceptFolder",
            "scenes": "Scene",
        }.get(alias)
        for row in self.data.tables["entity-types"].values():
            name = row.fields["name"]
            if (wanted and name == wanted) or (wanted is None and name not in NON_ASSET_TYPES):
                return row.id
        raise ValueError(f"zou has no entity type for {alias!r}; pass entity_type_id")

    def _kind(self, model: Model, row: Row) -> str:
        """The event prefix: ``asset``/``shot``/… for entities, the table name otherwise."""
        if model.route != "entities":
            return model.event_prefix
        etype = self.data.tables["entity-types"].get(str(row.fields.get("entity_type_id")))
        return NON_ASSET_TYPES.get(etype.fields["name"], "asset") if etype else "asset"

    @staticmethod
    def _new_event_data(model: Model, kind: str, row: Row) -> dict[str, Any]:
        data: dict[str, Any] = {f"{kind.replace('-', '_')}_id": row.id}
        if model.route == "comments":
            data["task_id"] = row.fields.get("object_id")
        return data

    def _emit(self, at: int, name: str, row: Row, user_id: str | None, data: dict[str, Any]) -> None:
        project_id = row.fields.get("project_id")
        if project_id is None and "task_id" in row.fields:
            task = self.data.tables["tasks"].get(str(row.fields["task_id"]))
            project_id = task.fields["project_id"] if task else None
        if project_id is None and row.fields.get("object_type") == "Task":
            task = self.data.tables["tasks"].get(str(row.fields["object_id"]))
            project_id = task.fields["project_id"] if task else None
        if name.startswith("project:"):
            project_id = row.id
        event = Event(self._new_id(), at, name, user_id or self.data.admin_id, project_id, data)
        self._event_index[event.id] = len(self.data.events)
        self.data.events.append(event)

    def _stamp(self) -> int:
        """Now in microseconds, strictly after the last event (several writes may share a second)."""
        last = self.data.events[-1].created_us if self.data.events else 0
        return max(micros_of(self._now()), last + 1)

    def _new_id(self) -> str:
        return str(uuid.uuid4())


def _int_param(params: Mapping[str, str], name: str, default: int) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise FilterError({"error": True, "message": f"{name} = {raw!r}: expected an integer"}) from None


def _date_param(params: Mapping[str, str], name: str) -> int:
    """``YYYY-MM-DDTHH:MM:SS`` or ``YYYY-MM-DD`` (naive UTC) as microseconds."""
    from datetime import UTC, datetime

    raw = params[name]
    for fmt in ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"):
        try:
            return micros_of(datetime.strptime(raw, fmt).replace(tzinfo=UTC).timestamp())
        except ValueError:
            continue
    raise FilterError({"error": True, "message": f"Wrong date format for {name}: {raw}"})


_UUID = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$")
_DEFAULTS: dict[str, Any] = {
    "uuid": None,
    "str": None,
    "bool": False,
    "int": 0,
    "float": 0.0,
    "date": None,
    "json": None,
}
_BOOLS = {
    "true": True,
    "t": True,
    "1": True,
    "yes": True,
    "false": False,
    "f": False,
    "0": False,
    "no": False,
}


def _bad_value(kind: str, value: Any) -> FilterError:
    return FilterError(
        {
            "error": True,
            "message": "One of the value of the filter has not the proper format: "
            f'(psycopg2.errors.InvalidTextRepresentation) invalid input syntax for type {kind}: "{value}"',
        }
    )


def _coerce(kind: str, value: Any) -> Any:
    """The filter value as the column's type, or the 400 Postgres would cause."""
    text = str(value)
    if kind == "uuid":
        if not _UUID.match(text):
            raise _bad_value("uuid", text)
        return str(uuid.UUID(text))
    if kind == "bool":
        if text.lower() not in _BOOLS:
            raise _bad_value("boolean", text)
        return _BOOLS[text.lower()]
    if kind in ("int", "float"):
        try:
            return int(text) if kind == "int" else float(text)
        except ValueError:
            raise _bad_value("integer" if kind == "int" else "double precision", text) from None
    return text


def _matcher(model: Model, params: Mapping[str, str]) -> Callable[[Row], bool]:
    """Parse the filters once (a JSON list becomes a set), then test rows against them."""
    tests: list[Callable[[Row], bool]] = []
    for key, raw in params.items():
        if key in RESERVED_PARAMS:
            continue
        if key in model.hidden:
            raise FilterError({"error": True, "message": f"Filtering on {key} is not allowed."})
        kind = model.columns.get(key)
        if kind is None:
            continue  # unknown parameters are ignored, as the real server does
        tests.append(_column_test(model, key, kind, raw))
    return lambda row: all(test(row) for test in tests)


def _column_test(model: Model, key: str, kind: str, raw: str) -> Callable[[Row], bool]:
    def value(row: Row) -> Any:
        return serialize(model, row)[key] if key in ("created_at", "updated_at") else row.fields.get(key)

    if key == "name":
        return lambda row: _like(raw, value(row))
    if raw.startswith("["):
        try:
            wanted = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise FilterError({"error": True, "message": f"{key} = {raw}: not a JSON list"}) from None
        if not isinstance(wanted, list):
            return lambda row: False
        allowed = {_coerce(kind, w) for w in wanted}
        return lambda row: value(row) in allowed
    if kind in ("uuid", "bool", "int", "float"):
        expected = _coerce(kind, raw)
        return lambda row: bool(value(row) == expected)
    return lambda row: _equal(kind, value(row), raw)


def _equal(kind: str, value: Any, raw: str) -> bool:
    if kind in ("uuid", "bool", "int", "float"):
        return bool(value == _coerce(kind, raw))
    return value is not None and str(value) == raw


def _like(pattern: str, value: Any) -> bool:
    """SQL ``ILIKE``: ``%`` any run, ``_`` one character, case-insensitive."""
    regex = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    return value is not None and re.fullmatch(regex, str(value), flags=re.IGNORECASE | re.DOTALL) is not None
