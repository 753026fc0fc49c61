"""Reading a Zou studio's events log: server-version detection, paging, the watermark and its dedupe.

The watermark (``EventCursor``) is the newest event's ``created_at`` (second precision, as Zou
serialises it) and id, plus the ids of every event within ``overlap`` seconds before it. A poll
asks for ``after = at − overlap`` and drops the ids it already applied, so an event committed late
with an earlier timestamp, or sharing the boundary second, is applied once and never skipped. The
cursor is stored as opaque text (``etl.checkpoints.cursor``): the runner neither caps nor lags it.

``EventsLog`` is shared by every stream of one source run (one per ``ServiceClient``): the resource
streams run one after the other, and the second one reuses the events the first one read instead of
walking the log again (it then applies the newer events next run, with the same watermark logic).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from pipeline.errors import ContractError
from pipeline.http import RequestStats, ServiceClient
from pipeline.log import get_logger
from pipeline.pagination import PageRequest, ZouEventsPaginator
from pipeline.sources.common import drive

log = get_logger(__name__)

EVENTS_PATH = "data/events/last"
ZOU_TIME = "%Y-%m-%dT%H:%M:%S"
OLD_SERVER_MAX_LIMIT = 100_000
CURSOR_SINCE_VERSION = (1, 0, 0)  # cursor_event_id paging (zou PR #1002); older servers page with `before`

Event = dict[str, Any]


def event_time(event: Mapping[str, Any]) -> str:
    """``created_at`` cut to whole seconds (``YYYY-MM-DDTHH:MM:SS``), as the server compares it."""
    value = event.get("created_at")
    if not isinstance(value, str) or len(value) < 19:
        raise ContractError(f"zou event {event.get('id')!r} has created_at {value!r}; expected an ISO time")
    return value[:19].replace(" ", "T")


def shift(moment: str, seconds: float) -> str:
    parsed = datetime.strptime(moment, ZOU_TIME).replace(tzinfo=UTC)
    return (parsed + timedelta(seconds=seconds)).strftime(ZOU_TIME)


@dataclass(frozen=True, slots=True)
class EventCursor:
    """The events watermark: newest ``at`` and ``event_id`` seen, and the ids inside the overlap."""

    at: str | None = None  # None: the log was empty, read it from its beginning next time
    event_id: str | None = None
    recent: frozenset[str] = frozenset()

    def encode(self) -> str:
        body = {"at": self.at, "event_id": self.event_id, "recent": sorted(self.recent)}
        return orjson.dumps(body).decode()

    @classmethod
    def decode(cls, text: object) -> EventCursor:
        if not isinstance(text, str) or not text.startswith("{"):
            raise ContractError(
                f"zou checkpoint cursor {text!r} is not an events watermark; run 'pipeline sync --full' "
                "for this source to start over"
            )
        body = orjson.loads(text)
        return cls(body.get("at"), body.get("event_id"), frozenset(body.get("recent") or ()))

    def after(self, overlap: float) -> str | None:
        """The ``after`` parameter of the next poll."""
        return None if self.at is None else shift(self.at, -overlap)

    def advance(self, events: Iterable[Mapping[str, Any]], overlap: float) -> EventCursor:
        """The watermark after applying ``events`` (ids inside the new overlap window are kept)."""
        events = list(events)
        if not events:
            return self
        newest = max(events, key=lambda e: (event_time(e), str(e.get("id"))))
        at = max(event_time(newest), self.at or "")
        floor = shift(at, -overlap)
        recent = {str(e["id"]) for e in events if event_time(e) >= floor}
        if self.at is not None and self.at >= floor:
            recent |= self.recent
        event_id = str(newest["id"]) if event_time(newest) >= at else self.event_id
        return EventCursor(at, event_id, frozenset(recent))

    def unseen(self, events: Iterable[Event]) -> list[Event]:
        return [e for e in events if str(e.get("id")) not in self.recent]


def parse_version(text: object) -> tuple[int, ...] | None:
    if not isinstance(text, str):
        return None
    parts = []
    for piece in text.lstrip("v").split("."):
        digits = "".join(c for c in piece if c.isdigit())
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts) or None


@dataclass
class EventsLog:
    """One studio's log for one run: version detection and the events already read, shared by streams.

    The events read so far are kept with the oldest ``after`` down to which they are complete
    (``_cover``): a stream asking for events after that moment is answered from memory. A *fresh*
    read (a scan reconciling what happened while it paged) only asks the server for the tail: the
    events after the newest one held, minus one second (``after`` is strict on a time stored with
    microseconds but given in seconds). An event committed late with an older ``created_at`` is not
    lost: it is not in the watermark's ``recent`` ids, so the next incremental run applies it.
    ``newest`` is taken once per run: a later stream reconciling from an older watermark re-fetches a
    few rows it already has, never fewer.
    """

    client: ServiceClient
    limit: int = 1000
    forced_old: bool | None = None  # the ``old_server`` option; None = ask the server
    _cursor_paging: bool | None = None
    _known: dict[str, Event] = field(default_factory=dict)
    _cover: str | None = None  # the events after this time are all in _known (when _covered)
    _covered: bool = False
    _start: EventCursor | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    unknown_logged: set[str] = field(default_factory=set)  # unknown event names already warned about
    requests: int = 0  # requests this log sent to /data/events/last

    async def cursor_paging(self, stats: RequestStats | None) -> bool:
        """Whether the server pages with ``cursor_event_id`` (``GET <base_url>/`` → version)."""
        if self.forced_old is not None:
            return not self.forced_old
        if self._cursor_paging is None:
            index = await self.client.get_json("", stats=stats)
            version = parse_version(index.get("version") if isinstance(index, Mapping) else None)
            self._cursor_paging = version is None or version >= CURSOR_SINCE_VERSION
            log.info(
                "zou_server_version",
                source=self.client.source,
                version=version,
                cursor_paging=self._cursor_paging,
            )
        return self._cursor_paging

    async def read(
        self, after: str | None, stats: RequestStats | None, *, before: str | None = None, fresh: bool = False
    ) -> list[Event]:
        """Every event strictly after ``after`` (and before ``before``), deduplicated by id.

        ``fresh``: include what happened since the log was last read (only the tail is asked for).
        """
        async with self._lock:
            if before is not None:
                return await self._walk(after, before, self.limit, stats, floor_window=None)
            if not self._covers(after):
                found = await self._walk(after, None, self.limit, stats, floor_window=None)
                self._remember(found, after, complete=True)
            elif fresh:
                newest = max((event_time(e) for e in self._known.values()), default=None)
                tail_after = shift(newest, -1) if newest is not None else self._cover
                if after is not None and (tail_after is None or tail_after < after):
                    tail_after = after
                tail = await self._walk(tail_after, None, self.limit, stats, floor_window=None)
                self._remember(tail, tail_after, complete=False)
            return [e for e in self._known.values() if after is None or event_time(e) >= after]

    def _covers(self, after: str | None) -> bool:
        return self._covered and (self._cover is None or (after is not None and self._cover <= after))

    def _remember(self, events: Iterable[Event], after: str | None, *, complete: bool) -> None:
        """Keep ``events``; ``complete``: they are every event after ``after`` (the cover grows down)."""
        for event in events:
            self._known.setdefault(str(event["id"]), event)
        if complete and (
            not self._covered or (self._cover is not None and (after is None or after < self._cover))
        ):
            self._cover, self._covered = after, True

    async def _walk(
        self,
        after: str | None,
        before: str | None,
        limit: int,
        stats: RequestStats | None,
        *,
        floor_window: float | None,
    ) -> list[Event]:
        """Page the log newest first; ``floor_window`` stops that many seconds below the newest event.

        An old server pages with ``before`` at second precision, so more than ``limit`` events in
        one second cannot be paged past: the walk starts over with a ten times larger limit
        (old servers have no cap).
        """
        paging = await self.cursor_paging(stats)
        while True:
            try:
                return await self._walk_once(after, before, limit, paging, stats, floor_window)
            except ContractError:
                if paging or limit >= OLD_SERVER_MAX_LIMIT:
                    raise
                limit = min(limit * 10, OLD_SERVER_MAX_LIMIT)
                log.info("zou_events_limit_raised", source=self.client.source, limit=limit)

    async def _walk_once(
        self,
        after: str | None,
        before: str | None,
        limit: int,
        paging: bool,
        stats: RequestStats | None,
        floor_window: float | None,
    ) -> list[Event]:
        params = {"before": before} if before else None
        paginator = ZouEventsPaginator(EVENTS_PATH, after=after, limit=limit, cursor=paging, params=params)
        events: dict[str, Event] = {}
        floor: str | None = None

        async def get(request: PageRequest) -> tuple[Any, int]:
            self.requests += 1
            return await self.client.get_json(request.url, params=request.params, stats=stats), 0

        async for fetched in drive(paginator, get, keyed=False, follow=True):
            fresh = [
                e for e in fetched.items or () if isinstance(e, Mapping) and isinstance(e.get("id"), str)
            ]
            if fresh and floor is None and floor_window is not None:
                floor = shift(event_time(fresh[0]), -floor_window)
            for event in fresh:
                if floor is None or event_time(event) >= floor:
                    events.setdefault(event["id"], dict(event))
            if not paginator.has_next or not fresh or (floor is not None and event_time(fresh[-1]) < floor):
                if paginator.server_cap is not None:
                    log.info(
                        "zou_events_page_capped",
                        source=self.client.source,
                        limit=limit,
                        served=paginator.server_cap,
                        pages=paginator.pages_read,
                    )
                return list(events.values())
        return list(events.values())

    async def newest(self, overlap: float, stats: RequestStats | None) -> EventCursor:
        """The watermark at the start of this run: the newest event and the ids within ``overlap``.

        Taken once per run and shared by every stream (its window also seeds the shared events).
        """
        async with self._lock:
            if self._start is None:
                window = await self._walk(None, None, self.limit, stats, floor_window=overlap)
                self._start = EventCursor().advance(window, overlap)
                self._remember(window, self._start.after(overlap), complete=True)
            return self._start


_LOGS: weakref.WeakKeyDictionary[ServiceClient, EventsLog] = weakref.WeakKeyDictionary()


def events_log(client: ServiceClient, options: Mapping[str, Any]) -> EventsLog:
    """The shared log of this client (one per source run)."""
    found = _LOGS.get(client)
    if found is None:
        old = options.get("old_server")
        found = EventsLog(client, int(options.get("event_limit", 1000)), None if old is None else bool(old))
        _LOGS[client] = found
    return found


def newest_first(events: Sequence[Event]) -> list[Event]:
    return sorted(events, key=lambda e: (event_time(e), str(e.get("id"))), reverse=True)
