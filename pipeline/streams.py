"""The connector contract: what a connector yields (``Page``), what it is (``Stream``), what it is told
(``StreamState``: mode, cursor, committed pages, backfill ``Window``).

This module is the seam between the connectors (``pipeline.sources``) and the engine
(``pipeline.runner``, ``pipeline.checkpoints``, ``pipeline.load``). It imports no database driver,
no loader and no runner, so a connector that imports it (with the HTTP client and the transforms)
loads none of them either (tests/unit/test_connector_imports.py checks ``sys.modules``).

The protocol a connector implements (``pipeline.sources.build_stream`` returns one)::

    class KitsuAnime:                                  # satisfies streams.Stream
        source: SourceSettings; resource = "anime"
        incremental = False                            # True: cursor runs once a full scan completed
        owned_tables = ("catalog.media",)              # rows keyed by the raw record's source_id
        auth_identity = "anonymous"                    # or "user:NAME"; deletes need the same one
        stats: RequestStats                            # requests, retries, rate_limited, wait_seconds, bytes

        async def pages(self, state: StreamState) -> AsyncIterator[Page]:
            total = (await first page)["meta"]["count"]
            for n in planned page numbers:
                if n in state.committed: continue      # a crashed scan resumes; order does not matter
                yield Page(doc, key=n, expected_total=total, nbytes=size)

* ``state.mode`` is ``full`` (re-scan: give every page a ``key``; resume skips ``state.committed``),
  ``incremental`` (fetch changes at/after ``state.cursor``, already capped and lagged) or ``backfill``
  (``state.window`` = since/until or full; resume with ``state.committed``/``state.cursor``).
* ``Page.cursor`` is committed with that page in incremental mode, so a walk that goes newest-first
  (AniList ``UPDATED_AT_DESC``, Zou events) sets it only on its last page. In full mode it is held
  until the scan completes (Zou: the newest event id/time when the full sync began).
* ``Page.expected_total`` (``meta.count``, ``total``): a scan that ends having seen that many
  distinct records may delete the records it did not see; without it nothing is deleted. Before
  deleting, the runner calls the connector's optional ``lookup(ids)`` (pages of the records that
  still answer, or ``Page.present`` ids): only the rest are deleted; without ``lookup`` a record
  must be missed by two consecutive complete scans. More deletes than ``max_delete_share`` of the
  live rows fail the stream unless ``--allow-deletes``.
* ``Page.complete = False`` on the last page: the connector knows it missed records (capped,
  churn it could not settle); the stream ends ``incomplete`` (exit 1), deletes nothing, and the
  next run scans again. So does a scan that committed fewer distinct records than its total.
* ``Page.deletes`` = {table or resource: [source_id, …]} for tombstones (Zou ``*:delete`` events),
  applied by the loader in the page's transaction.
* The scan completes when ``pages()`` returns; raising fails the stream (committed pages stay).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

from pipeline.settings import SourceSettings

Mode = Literal["full", "incremental", "backfill"]
Cursor = datetime | int | float | str


class PageSet:
    """Committed page keys as sorted disjoint inclusive ranges: small however many pages commit."""

    def __init__(self, ranges: Iterable[Sequence[int]] = ()) -> None:
        self._ranges: list[list[int]] = []
        for lo, hi in ranges:
            self._merge(int(lo), int(hi))

    def _merge(self, lo: int, hi: int) -> None:
        merged: list[list[int]] = []
        for a, b in sorted([*self._ranges, [lo, hi]]):
            if merged and a <= merged[-1][1] + 1:
                merged[-1][1] = max(merged[-1][1], b)
            else:
                merged.append([a, b])
        self._ranges = merged

    def add(self, key: int) -> None:
        self._merge(key, key)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, int) and any(lo <= key <= hi for lo, hi in self._ranges)

    def __len__(self) -> int:
        return sum(hi - lo + 1 for lo, hi in self._ranges)

    def first_missing(self, start: int = 0) -> int:
        """The lowest key ≥ ``start`` not committed: where a sequential walk resumes."""
        key = start
        for lo, hi in self._ranges:
            if lo <= key <= hi:
                key = hi + 1
        return key

    def ranges(self) -> list[list[int]]:
        return [list(r) for r in self._ranges]

    def __repr__(self) -> str:
        return f"PageSet({self._ranges})"


@dataclass(frozen=True, slots=True)
class Window:
    """A backfill's window; ``full`` means a whole re-scan."""

    since: datetime | None = None
    until: datetime | None = None
    full: bool = False


@dataclass(slots=True)
class StreamState:
    """What a connector needs to know to fetch only what is left to do."""

    source: str
    resource: str
    mode: Mode
    run_started_at: datetime
    auth: str = "anonymous"
    cursor: Cursor | None = None  # capped and lagged; fetch changes at or after it
    committed: PageSet = field(default_factory=PageSet)  # scan pages already committed: skip them
    scan_id: str | None = None
    expected_total: int | None = None
    window: Window | None = None
    backfill_id: int | None = None
    held_cursor: Cursor | None = None  # a full scan's cursor, committed only when the scan completes
    # A resumed scan: the distinct raw ids its committed pages already loaded (etl.scan_seen), so
    # the connector judges completeness over the whole scan, not only the pages it reads now.
    seen_ids: frozenset[str] = frozenset()

    @property
    def scanning(self) -> bool:
        """A whole re-scan (full, or a full backfill): its completion may delete what it did not see."""
        return self.mode == "full" or (self.window is not None and self.window.full)

    def scan_json(self) -> dict[str, Any]:
        held, kind = encode_cursor(self.held_cursor)
        return {
            "scan_id": self.scan_id,
            "auth": self.auth,
            "started_at": self.run_started_at.isoformat(),
            "pages": self.committed.ranges(),
            "expected_total": self.expected_total,
            "held_cursor": held,
            "held_kind": kind,
        }


def encode_cursor(value: Cursor | None) -> tuple[str | None, str | None]:
    if value is None:
        return None, None
    if isinstance(value, datetime):
        return value.isoformat(), "timestamp"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return repr(value), "epoch"
    return str(value), "opaque"


def decode_cursor(text: str | None, kind: str | None) -> Cursor | None:
    if text is None:
        return None
    if kind == "timestamp":
        return datetime.fromisoformat(text)
    if kind == "epoch":
        return float(text) if "." in text or "e" in text else int(text)
    return text


def cap_cursor(value: Cursor, run_started_at: datetime, lag_seconds: float) -> Cursor:
    """min(value, run start) − lag for time-like cursors; other cursors unchanged."""
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return min(moment, run_started_at) - timedelta(seconds=lag_seconds)
    if isinstance(value, int | float) and not isinstance(value, bool):
        capped = min(value, run_started_at.timestamp()) - lag_seconds
        return int(capped) if isinstance(value, int) else capped
    return value


def later(old: Cursor | None, new: Cursor) -> Cursor:
    """Cursors never move backwards (a kind change takes the new value)."""
    if old is None or type(old) is not type(new) or isinstance(new, str):
        return new
    return max(old, new)


@dataclass(slots=True)
class Page:
    """One fetched page: the document as fetched plus what resuming needs to know about it."""

    doc: Any
    key: int | None = None  # scan page number (or offset): the unit of resumable progress
    cursor: Cursor | None = None
    expected_total: int | None = None
    # The API's count of the stream's records as the page reports it (Kitsu meta.count, a
    # pagination total): the progress bar's total and ETA only, never a reason to delete.
    total_hint: int | None = None
    nbytes: int = 0
    deletes: dict[str, list[str]] = field(default_factory=dict)
    # The connector's word on its scan, given with its last page: False = it knows it missed pages
    # or records (capped, churn it could not settle); the stream then ends ``incomplete``.
    complete: bool | None = None
    # A lookup's verdict without content to load: raw ids that still exist (never deleted).
    present: tuple[str, ...] = ()
    url: str | None = None  # where the page came from: named in the rejects of its records


class RequestCounters(Protocol):
    """What the HTTP engine counts per stream (``pipeline.http.RequestStats`` fits)."""

    requests: int
    retries: int
    rate_limited: int
    wait_seconds: float
    bytes: int


class Stream(Protocol):
    """One (source, resource): its identity and its pages. ``lookup(ids)`` and ``stats`` are optional,
    so is ``main_tables`` (the tables its inserted/updated/unchanged count; default ``owned_tables``)."""

    source: SourceSettings
    resource: str
    incremental: bool
    owned_tables: tuple[str, ...]
    auth_identity: str

    def pages(self, state: StreamState) -> AsyncIterator[Page]: ...


__all__ = [
    "Cursor",
    "Mode",
    "Page",
    "PageSet",
    "RequestCounters",
    "Stream",
    "StreamState",
    "Window",
    "cap_cursor",
    "decode_cursor",
    "encode_cursor",
    "later",
]
