"""Zou (CGWire production tracker) connector: full scans of ``/data/<model>``, then the events log.

One stream per model (``projects``, ``entities``, ``tasks``, …), each with its own checkpoint:

* **full** (first run, ``--full``): remember the events watermark *before* reading anything, page
  ``/data/<route>?page=N&limit=L&relations=true`` (several pages in flight), then reconcile by id.
  The pages are ordered ``updated_at DESC``, so writes during the scan move rows across pages: a row
  updated mid-scan jumps to page 1 (missed), a delete shifts rows up (one missed). Reconciling:
  (1) read the events that happened since the watermark and re-fetch the touched ids of this model
  (``?id=[…]``), (2) ask for the current ``total``, (3) while the distinct live ids seen are fewer,
  re-page (at most ``MAX_EXTRA_PASSES``) keeping only unseen rows. Only a scan that then holds
  ``total`` ids reports ``expected_total``, so only then may the runner soft-delete the unseen,
  and only those ``lookup`` (``?id=[…]``) confirms gone (a row that answers is kept). The
  watermark, advanced past the reconciled events, is committed when the scan completes.
* **incremental**: events after ``watermark − overlap`` minus the ids already applied
  (``pipeline.sources.zou_log``), reduced per object (``reduce_events``); this model's touched ids
  are re-fetched in batches of ``fetch_batch``; ``*:delete`` events (and touched ids the server no
  longer returns) become ``Page.deletes``. The new watermark rides on the last page.
* **backfill**: a full window re-scans without touching the watermark; a since/until window
  re-applies the events of that window.

Generic ``/data/entities`` rows say ``type: "Entity"``: their kind comes from the entity type's
name, which the transform takes as context (``entity_type_names``, read by the runner from the
``entity_types`` raw records, so list ``entity_types`` before ``entities``).

Casting (``entity_links``): the breakdown routes re-make a shot's links with new ids and emit only
``<kind>:casting-update`` naming the entity, so the stream re-fetches those entities' links by
``?entity_in_id=[…]``; such a page holds each named entity's complete casting
(``{"data": [...], "entity_in_ids": [...]}``), and the loader retires the entity's other links
(``Batch.replaced``). The assets an event says were added (``added_asset_ids``) have their links
re-fetched by ``?entity_out_id=[…]`` too: zou casts them in the shot's episode as well, announcing
that link only with ``asset:update`` (its removal comes as ``episode:casting-update``); it also
bumps the episode's ``nb_entities_out`` unannounced, so the entities stream re-fetches the
episodes of shots re-cast with new assets (shot → sequence → episode, by id). Links of a
deleted entity go with it (``sql/019``); generic ``entity-link:new|update|delete`` events apply
like any model's.

Event fan-out: every model stream reads the log, but the streams of one source share one
``EventsLog`` per run, so the log is walked once. Each stream stores (``production.events``) the
events about its own model; events about models the pipeline does not sync are stored by the
source's first configured resource.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import Any

import orjson

from pipeline.connectors import ConnectorSpec
from pipeline.errors import ConfigError
from pipeline.http import ServiceClient
from pipeline.log import get_logger
from pipeline.pagination import PageNumberPaginator, PageRequest
from pipeline.settings import SourceSettings, ZouJWTAuth
from pipeline.sources.common import StreamBase, drive
from pipeline.sources.zou_log import EventCursor, EventsLog, event_time, events_log
from pipeline.streams import Page, StreamState
from pipeline.transform.zou import page_records
from pipeline.transform.zou_events import EVENT_RESOURCES, EVENTS_PAGE, reduce_events, split_event_name
from pipeline.transform.zou_studio import CASTING_OWNERS

log = get_logger(__name__)

# since/until backfills are honoured: the events of the window are re-applied.
NO_TIME_WINDOW = None

ROUTES = {
    "projects": "projects",
    "entity_types": "entity-types",
    "entities": "entities",
    "task_types": "task-types",
    "task_statuses": "task-status",
    "tasks": "tasks",
    "persons": "persons",
    "comments": "comments",
    "time_spents": "time-spents",
    "departments": "departments",
    "project_statuses": "project-status",
    "metadata_descriptors": "metadata-descriptors",
    "entity_links": "entity-links",
    "preview_files": "preview-files",  # the rows only: the files themselves are never fetched
    "playlists": "playlists",
    "schedule_items": "schedule-items",
    "milestones": "milestones",
}
CASTING = "entity_links"
EVENTS = "events"
DEFAULT_OVERLAP_SECONDS = 60
DEFAULT_FETCH_BATCH = 100
MAX_EXTRA_PASSES = 2


def client_options(source: SourceSettings) -> dict[str, Any]:
    """Zou needs nothing beyond the defaults: JWT auth comes from ``[sources.X.auth]``."""
    return {}


def main_tables(resource: str) -> tuple[str, ...]:
    """The tables a ``resource`` stream's inserted/updated/unchanged count (its other rows apart)."""
    return (f"production.{resource}",)


def build_stream(source: SourceSettings, resource: str, client: ServiceClient) -> ZouStream:
    if resource not in ROUTES and resource != EVENTS:
        raise ConfigError(
            f"[sources.{source.name}] resource {resource!r} is not a Zou model; use some of "
            f"{', '.join(ROUTES)}"
        )
    return ZouStream(source, resource, client)


def _parents(page: Page) -> dict[str, str]:
    """Row id → ``parent_id`` (shot → sequence → episode) of the rows of a fetched entities page."""
    rows = page.doc.get("data", page.doc) if isinstance(page.doc, Mapping) else page.doc
    if not isinstance(rows, list):
        return {}
    return {
        str(r["id"]): str(r["parent_id"])
        for r in rows
        if isinstance(r, Mapping) and r.get("id") and isinstance(r.get("parent_id"), str)
    }


def chunks(ids: Sequence[str], size: int) -> Iterable[list[str]]:
    for start in range(0, len(ids), size):
        yield list(ids[start : start + size])


class ZouPages(PageNumberPaginator):
    """``/data/<model>?page=N&limit=L&relations=true``: a ``{data, total, nb_pages}`` page, or a
    bare list (one page: an unpaginated route)."""

    def __init__(self, resource: str, path: str, *, limit: int) -> None:
        super().__init__(path, limit=limit, params={"relations": "true"})
        self.resource = resource

    def items(self, page: Any) -> list[Any]:
        return page_records(page, self.resource)

    def _following(self, page: Any, items: list[Any]) -> PageRequest | None:
        return super()._following(page, items) if isinstance(page, Mapping) else None


class ZouStream(StreamBase):
    """One Zou model of one studio (``streams.Stream``)."""

    incremental = True

    def __init__(self, source: SourceSettings, resource: str, client: ServiceClient) -> None:
        super().__init__(source, resource, client, main_tables(resource))
        auth = source.auth
        self.auth_identity = f"user:{auth.email.lower()}" if isinstance(auth, ZouJWTAuth) else "anonymous"
        options = source.options
        self.overlap = float(options.get("events_overlap_seconds", DEFAULT_OVERLAP_SECONDS))
        self.fetch_batch = int(options.get("fetch_batch", DEFAULT_FETCH_BATCH))
        self.log: EventsLog = events_log(client, options)
        self.route = ROUTES.get(resource, "")
        self._last_deletes: dict[str, list[str]] = {}
        self._last_returned: set[str] = set()
        self._pass_total: int | None = None

    # -- pages -------------------------------------------------------------------------------------
    async def pages(self, state: StreamState) -> AsyncIterator[Page]:
        window = state.window
        if state.mode == "incremental":
            pages = self._incremental(EventCursor.decode(state.cursor))
        elif state.mode == "backfill" and window is not None and not window.full:
            since = window.since.strftime("%Y-%m-%dT%H:%M:%S") if window.since else None
            until = window.until.strftime("%Y-%m-%dT%H:%M:%S") if window.until else None
            pages = self._window(since, until)
        elif self.resource == EVENTS:
            pages = self._events_start(state)
        else:
            pages = self._scan(state)
        async for page in pages:
            yield page

    async def _incremental(self, cursor: EventCursor) -> AsyncIterator[Page]:
        events = cursor.unseen(await self.log.read(cursor.after(self.overlap), self.stats))
        async for page in self._apply(events):
            yield page
        final = cursor.advance(events, self.overlap)
        log.info("zou_events_applied", events=len(events), at=final.at)
        yield Page({"data": []}, cursor=final.encode(), deletes=self._last_deletes)

    async def _window(self, since: str | None, until: str | None) -> AsyncIterator[Page]:
        events = await self.log.read(since, self.stats, before=until)
        async for page in self._apply(events):
            yield page
        yield Page({"data": []}, deletes=self._last_deletes)

    async def _events_start(self, state: StreamState) -> AsyncIterator[Page]:
        """The events stream's first run keeps only the watermark: the log's past is not replayed."""
        start = await self.log.newest(self.overlap, self.stats)
        yield Page({"data": []}, cursor=start.encode() if state.mode == "full" else None)

    async def _apply(self, events: list[dict[str, Any]]) -> AsyncIterator[Page]:
        """Store this model's events, re-fetch what they touched, and note what they deleted."""
        mine = [e for e in events if self._owns(e)]
        if mine:
            yield Page({EVENTS_PAGE: mine})
        self._last_deletes, self._last_returned = {}, set()
        if self.resource == EVENTS:
            return
        changes = reduce_events(events)
        self._note_unknown(changes.unknown)
        touched = sorted(changes.touched.get(self.resource, ()))
        # An entity delete event is checked by id before anything is soft-deleted: zou's cancel_asset
        # (the Shotgun import path) emits asset:delete while the asset stays, canceled = true. Rows
        # still served are upserted, only rows gone are deleted. Other models' delete events are
        # always real deletes in zou 1.0.97, so they cost no request.
        deleted = changes.deleted.get(self.resource, frozenset())
        claimed = sorted(deleted) if self.resource == "entities" else []
        returned: set[str] = set()
        parents: dict[str, str] = {}
        async for page, ids in self._fetch_ids(touched + claimed):
            returned |= ids
            parents.update(_parents(page))
            yield page
        if self.resource == "entities" and changes.cast_assets:
            async for page in self._episodes_of(sorted(changes.cast), parents, returned):
                yield page
        if self.resource == CASTING:
            async for page, ids in self._fetch_casting(sorted(changes.cast)):
                returned |= ids
                yield page
            async for page, ids in self._fetch_ids(sorted(changes.cast_assets), key="entity_out_id"):
                returned |= ids  # the episode links zou made for newly cast assets
                yield page
        kept = set(claimed) & returned
        if kept:
            log.info("zou_delete_event_row_kept", resource=self.resource, ids=len(kept))
        gone = (set(deleted) | set(touched)) - returned
        self._last_deletes, self._last_returned = self._deletes(gone), returned
        log.info(
            "zou_changes",
            touched=len(touched),
            deleted=len(gone),
            kept=len(kept),
            events=len(events),
            unknown=sum(changes.unknown.values()),
        )

    async def _episodes_of(
        self, cast: Sequence[str], parents: Mapping[str, str], returned: set[str]
    ) -> AsyncIterator[Page]:
        """The episodes of re-cast shots: zou counts a newly cast asset in the shot's episode
        (``nb_entities_out``) without an event naming the episode. Shot → sequence → episode, by id."""
        sequences = sorted({parents[i] for i in cast if i in parents} - returned)
        above: dict[str, str] = {}
        async for page, ids in self._fetch_ids(sequences):
            returned |= ids
            above.update(_parents(page))
            yield page
        episodes = sorted(set(above.values()) - returned)
        async for page, ids in self._fetch_ids(episodes):
            returned |= ids
            yield page

    def _note_unknown(self, unknown: Mapping[str, int]) -> None:
        """Unknown event names (no model of zou 1.0.97 emits them): counted, each logged once per run."""
        new = {name: n for name, n in unknown.items() if name not in self.log.unknown_logged}
        if new:
            self.log.unknown_logged.update(new)
            log.warning(
                "zou_events_unknown",
                names=dict(sorted(new.items())),
                fix="a newer Zou emits events about objects this connector does not know; they are "
                "stored in production.events but change no synced table",
            )

    def _owns(self, event: Mapping[str, Any]) -> bool:
        if self.resource == EVENTS:
            return True
        name = event.get("name")
        target = EVENT_RESOURCES.get(split_event_name(name)[0]) if isinstance(name, str) else None
        if target is None or target not in self.source.resources:
            return self.resource == self.source.resources[0]
        return target == self.resource

    def _deletes(self, ids: Iterable[str]) -> dict[str, list[str]]:
        wanted = sorted(ids)
        return {self.owned_tables[0]: wanted, self.resource: wanted} if wanted else {}

    async def _fetch_casting(self, entity_ids: Sequence[str]) -> AsyncIterator[tuple[Page, set[str]]]:
        """``/data/entity-links?entity_in_id=[…]``: every link of those entities, marked complete."""
        for batch in chunks(entity_ids, self.fetch_batch):
            params = {"entity_in_id": orjson.dumps(batch).decode()}
            body, nbytes = await self._get(f"data/{self.route}", params)
            rows = [r for r in page_records(body, self.resource) if isinstance(r, Mapping)]
            found = {str(r.get("id")) for r in rows}
            yield Page({"data": rows, CASTING_OWNERS: batch}, nbytes=nbytes), found

    async def _fetch_ids(self, ids: Sequence[str], key: str = "id") -> AsyncIterator[tuple[Page, set[str]]]:
        """``/data/<route>?<key>=[…]``: the current rows whose ``key`` is one of ``ids`` (by default
        their own id), a batch per request."""
        for batch in chunks(ids, self.fetch_batch):
            params = {key: orjson.dumps(batch).decode(), "relations": "true"}
            body, nbytes = await self._get(f"data/{self.route}", params)
            found = {str(r.get("id")) for r in page_records(body, self.resource) if isinstance(r, Mapping)}
            yield Page(body, nbytes=nbytes), found

    async def lookup(self, ids: Sequence[str]) -> AsyncIterator[Page]:
        """Which of ``ids`` still exist: ``/data/<route>?id=[…]`` in batches of ``fetch_batch``.

        The rows that answer are ordinary pages (loaded, and counted as seen by the scan), so only
        the ids the server no longer returns are deleted: a row a listing missed is never lost.
        Events have no lookup (the log is append-only; its rows are never deleted).
        """
        if self.resource == EVENTS or not self.route:
            raise ConfigError(f"source {self.source.name!r}: {self.resource} rows cannot be looked up by id")
        async for page, _found in self._fetch_ids(ids):
            yield page

    # -- the full scan -----------------------------------------------------------------------------
    async def _scan(self, state: StreamState) -> AsyncIterator[Page]:
        holding = state.mode == "full"
        start: EventCursor | None = None
        if holding:
            held = state.held_cursor
            start = EventCursor.decode(held) if held else await self.log.newest(self.overlap, self.stats)
        cursor = start.encode() if start else None
        resumed = len(state.committed) > 0
        seen: set[str] = set()
        async for page, ids in self._pass(state, seen=None, cursor=cursor):
            seen |= ids
            yield page
        gone: set[str] = set()
        events: list[dict[str, Any]] = []
        if start is not None:
            events = start.unseen(await self.log.read(start.after(self.overlap), self.stats, fresh=True))
            async for page in self._apply(events):
                yield page
            gone = set(self._last_deletes.get(self.resource, ()))
            start = start.advance(events, self.overlap)
            cursor = start.encode()
            seen |= self._last_returned
        quiet = start is not None and not events  # nothing moved while the pages were read
        total = self._pass_total if quiet and self._pass_total is not None else await self._count()
        passes = 0
        while not resumed and len(seen - gone) < total and passes < MAX_EXTRA_PASSES:
            passes += 1
            log.info("zou_repage", missing=total - len(seen - gone), pass_number=passes)
            async for page, ids in self._pass(state, seen=seen, cursor=cursor):
                seen |= ids
                yield page
            total = await self._count()
        # A resumed scan cannot count the ids committed before it; the runner can (it compares the
        # distinct ids the whole scan loaded with expected_total before deleting anything).
        complete = resumed or len(seen - gone) >= total
        if not complete:
            log.warning("zou_scan_incomplete", seen=len(seen - gone), total=total)
        yield Page(
            {"data": []},
            cursor=cursor,
            expected_total=total if complete else None,
            deletes=self._deletes(gone),
        )

    async def _pass(
        self, state: StreamState, *, seen: set[str] | None, cursor: str | None
    ) -> AsyncIterator[tuple[Page, set[str]]]:
        """Page the model once; a re-pass (``seen`` given) keeps only rows not seen yet, unkeyed."""
        self._pass_total = None
        keyed = seen is None
        paginator = ZouPages(self.resource, f"data/{self.route}", limit=self.source.page_size)
        pages = drive(
            paginator,
            self._fetch,
            committed=state.committed if keyed else (),
            width=self.source.max_in_flight,
            start=1,
            keyed=keyed,
        )
        async for fetched in pages:
            body, nbytes = fetched.doc, fetched.nbytes
            rows = [r for r in page_records(body, self.resource) if isinstance(r, Mapping)]
            ids = {str(r.get("id")) for r in rows}
            if rows and isinstance(body, Mapping) and isinstance(body.get("total"), int):
                self._pass_total = body["total"]
            if seen is None:
                yield (
                    Page(body, key=fetched.key, cursor=cursor, nbytes=nbytes, total_hint=self._pass_total),
                    ids,
                )
                continue
            fresh = [r for r in rows if str(r.get("id")) not in seen]
            if fresh:
                yield Page({"data": fresh}, cursor=cursor, nbytes=nbytes), ids

    async def _fetch(self, request: PageRequest) -> tuple[Any, int]:
        return await self._get(request.url, request.params)

    async def _count(self) -> int:
        body, _ = await self._get(f"data/{self.route}", {"page": 1, "limit": 1})
        total = body.get("total") if isinstance(body, Mapping) else None
        return total if isinstance(total, int) else 0

    async def _get(self, path: str, params: Mapping[str, Any]) -> tuple[Any, int]:
        response = await self.client.request("GET", path, params=params, stats=self.stats)
        return response.data, response.nbytes


def _event_limit_problem(value: int) -> str | None:
    if value < 1:
        return "is below 1; use a value of at least 1 and at most 1000"
    if value > ZOU_MAX_EVENT_LIMIT:
        return (
            f"is above {ZOU_MAX_EVENT_LIMIT} (Zou caps an events page at 1,000); use a value of at most 1000"
        )
    return None


ZOU_MAX_EVENT_LIMIT = 1000  # Zou caps an events page at 1,000 rows
SPEC = ConnectorSpec(
    kind="zou",
    resources=tuple(ROUTES),
    defaults={"rate": {"requests": 10, "per_seconds": 1.0}, "max_in_flight": 4, "page_size": 100},
    max_page_size=1000,
    options={"event_limit": int, "events_overlap_seconds": int, "fetch_batch": int, "old_server": bool},
    option_ranges={"events_overlap_seconds": (0, None), "fetch_batch": (1, None)},
    option_checks={"event_limit": _event_limit_problem},
    stream_deps={
        "entity_types": (),
        "entities": ("projects", "entity_types"),
        "tasks": ("entities", "task_types", "task_statuses"),
        "comments": ("tasks", "persons", "task_statuses"),
        "time_spents": ("tasks", "persons"),
        "metadata_descriptors": ("projects", "task_types", "departments"),
        "entity_links": ("entities",),
        "preview_files": ("tasks", "persons"),
        "playlists": ("projects", "entities", "task_types"),
        "schedule_items": ("projects", "task_types"),
        "milestones": ("projects", "task_types"),
    },
    windowed=True,  # backfills select by the events log's time
)


__all__ = ["ROUTES", "ZouStream", "build_stream", "client_options", "event_time", "main_tables"]
