"""Schema drift: the field paths each stream's records carry, remembered in ``etl.field_paths``.

A transform keeps the fields it knows; everything else survives only in ``raw.records``. So that
a field an API starts sending (or stops sending) is noticed, every stream tallies the field paths
of the raw records it fetched (``attributes.titles.en_jp``, ``relationships.genres.data[].id``: a
dotted path per key, ``[]`` for list items, at most ``MAX_DEPTH`` keys deep) and, when it ends,
compares them with what earlier runs saw:

* a path never seen before is **new** (unless this is the stream's first tally: that is the
  baseline);
* a path that earlier runs saw in at least ``VANISHED_SHARE`` of their records, missing from every
  one of this run's records (and this run saw at least ``MIN_RECORDS_FOR_VANISHED`` records), has
  **vanished**; it is reported once, and again only after it came back.

Each source's ``on_drift`` says what drift does: ``warn`` (default) logs it, ``fail`` fails the
stream (its data is loaded; the run exits 1 until the config or the transform follows).
``pipeline status`` lists the paths that are new since the baseline.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from pipeline.records import RawRecord

MAX_DEPTH = 4  # keys deep; deeper structure is one leaf (e.g. Zou's free-form ``data`` fields)
LIST_ITEMS = 3  # items of a list looked into (lists of objects are alike)
VANISHED_SHARE = 0.5  # a path carried by fewer records than this is optional, not expected
MIN_RECORDS_FOR_VANISHED = 20  # a small incremental run proves nothing about absence


_LEAVES = frozenset({str, int, float, bool, type(None)})  # JSON's scalars: nothing below them
MEMO_LIMIT = 20_000  # path strings remembered; free-form maps keyed by ids clear them, no more


class _Shapes:
    """The path strings already built: ``prefix → {key: "prefix.key"}`` and ``prefix → "prefix[]"``.

    A record's walk then builds no string it built before and calls itself only for dict and list
    values, never for a scalar (tests hold it to the plain recursive walk).
    """

    __slots__ = ("lists", "names", "size")

    def __init__(self) -> None:
        self.names: dict[str, dict[Any, str]] = {}
        self.lists: dict[str, str] = {}
        self.size = 0

    def _full(self) -> None:
        self.names.clear()
        self.lists.clear()
        self.size = 0

    def walk(self, value: dict[Any, Any], prefix: str, depth: int, out: set[str]) -> None:
        names = self.names.get(prefix)
        if names is None:
            names = self.names[prefix] = {}
        add = out.add
        for key, item in value.items():
            path = names.get(key)
            if path is None:
                path = f"{prefix}.{key}" if prefix else str(key)
                names[key] = path
                self.size += 1
                if self.size > MEMO_LIMIT:
                    self._full()
                    names = self.names[prefix] = {}
            add(path)
            if type(item) in _LEAVES:
                continue
            if isinstance(item, dict):
                if depth + 1 < MAX_DEPTH:
                    self.walk(item, path, depth + 1, out)
            elif isinstance(item, list):
                self.walk_list(item, path, depth + 1, out)

    def walk_list(self, value: list[Any], prefix: str, depth: int, out: set[str]) -> None:
        inner = self.lists.get(prefix)
        if inner is None:
            inner = self.lists[prefix] = f"{prefix}[]"
            self.size += 1
            if self.size > MEMO_LIMIT:
                self._full()
        for item in value[:LIST_ITEMS]:
            if isinstance(item, dict):
                if depth < MAX_DEPTH:
                    self.walk(item, inner, depth, out)
            elif isinstance(item, list):
                self.walk_list(item, inner, depth, out)


_SHAPES = _Shapes()


def field_paths(payload: Any, shapes: _Shapes | None = None) -> set[str]:
    """Every field path of one record (``a.b``, ``a.list[].c``), up to ``MAX_DEPTH`` keys deep."""
    out: set[str] = set()
    shapes = shapes or _SHAPES
    if isinstance(payload, dict):
        shapes.walk(payload, "", 0, out)
    elif isinstance(payload, list):
        shapes.walk_list(payload, "", 0, out)
    return out


SHAPES_KEPT = 256  # distinct path sets counted as sets per resource before they are folded


@dataclass(slots=True)
class FieldTally:
    """How many of a stream's records carried each field path, per resource.

    Records of a resource mostly carry one of a few path sets: each record's set is counted as a
    whole (one hash of the set), and the sets are spread into per-path counts when read (or when a
    resource has more than ``SHAPES_KEPT`` distinct ones, which keeps memory bounded).
    """

    records: Counter[str] = field(default_factory=Counter)
    _sets: dict[str, dict[frozenset[str], int]] = field(default_factory=dict)
    _folded: dict[str, Counter[str]] = field(default_factory=dict)
    shapes: _Shapes = field(default_factory=_Shapes, repr=False)

    def absorb(self, raw: Iterable[RawRecord]) -> None:
        shapes = self.shapes
        for record in raw:
            resource = record.resource
            self.records[resource] += 1
            sets = self._sets.get(resource)
            if sets is None:
                sets = self._sets[resource] = {}
            seen = frozenset(field_paths(record.payload, shapes))
            sets[seen] = sets.get(seen, 0) + 1
            if len(sets) > SHAPES_KEPT:
                self._fold(resource)

    def _fold(self, resource: str) -> None:
        counts = self._folded.setdefault(resource, Counter())
        for seen, n in self._sets.pop(resource, {}).items():
            for path in seen:
                counts[path] += n

    @property
    def paths(self) -> dict[str, Counter[str]]:
        """Per resource, how many records carried each path."""
        for resource in list(self._sets):
            self._fold(resource)
        return self._folded


@dataclass(frozen=True, slots=True)
class DriftReport:
    """What one stream's tally changed: paths new since the baseline and paths that vanished."""

    new: tuple[tuple[str, str], ...] = ()  # (resource, path)
    vanished: tuple[tuple[str, str], ...] = ()

    def __bool__(self) -> bool:
        return bool(self.new or self.vanished)

    def describe(self, limit: int = 10) -> str:
        parts = []
        for label, items in (("new", self.new), ("vanished", self.vanished)):
            if items:
                shown = ", ".join(f"{r}:{p}" for r, p in items[:limit])
                more = f" (+{len(items) - limit} more)" if len(items) > limit else ""
                parts.append(f"{len(items)} {label} field(s): {shown}{more}")
        return "; ".join(parts)


async def record(conn: asyncpg.Connection, source: str, tally: FieldTally, run_id: int | None) -> DriftReport:
    """Store this run's tally in ``etl.field_paths`` and return what changed since earlier runs."""
    new: list[tuple[str, str]] = []
    vanished: list[tuple[str, str]] = []
    async with conn.transaction():
        for resource, counts in sorted(tally.paths.items()):
            records = tally.records[resource]
            known = {
                r["path"]: r
                for r in await conn.fetch(
                    "SELECT path, last_share, vanished_at FROM etl.field_paths "
                    "WHERE source = $1 AND resource = $2 FOR UPDATE",
                    source,
                    resource,
                )
            }
            baseline = not known
            if not baseline:
                new += [(resource, p) for p in sorted(counts) if p not in known]
                if records >= MIN_RECORDS_FOR_VANISHED:
                    gone = [
                        p
                        for p, r in known.items()
                        if p not in counts and r["vanished_at"] is None and r["last_share"] >= VANISHED_SHARE
                    ]
                    vanished += [(resource, p) for p in sorted(gone)]
                    await conn.execute(
                        "UPDATE etl.field_paths SET vanished_at = now() "
                        "WHERE source = $1 AND resource = $2 AND path = ANY($3::text[])",
                        source,
                        resource,
                        gone,
                    )
            paths = sorted(counts)
            await conn.execute(
                """
                INSERT INTO etl.field_paths AS f
                       (source, resource, path, baseline, first_run_id, last_run_id, seen_records, last_share)
                SELECT $1, $2, p.path, $3, $4, $4, p.n, p.n::real / $5
                  FROM unnest($6::text[], $7::bigint[]) AS p(path, n)
                ON CONFLICT (source, resource, path) DO UPDATE
                   SET last_seen_at = now(), last_run_id = EXCLUDED.last_run_id,
                       seen_records = f.seen_records + EXCLUDED.seen_records,
                       last_share = EXCLUDED.last_share, vanished_at = NULL
                """,
                source,
                resource,
                baseline,
                run_id,
                records,
                paths,
                [counts[p] for p in paths],
            )
    return DriftReport(tuple(new), tuple(vanished))


@dataclass(frozen=True, slots=True)
class NewField:
    source: str
    resource: str
    path: str
    first_seen_at: Any
    seen_records: int


async def new_fields(conn: asyncpg.Connection, limit: int = 50) -> list[NewField]:
    """Paths that appeared after a stream's baseline tally, newest first (for ``pipeline status``)."""
    rows = await conn.fetch(
        "SELECT source, resource, path, first_seen_at, seen_records FROM etl.field_paths "
        "WHERE NOT baseline ORDER BY first_seen_at DESC, source, resource, path LIMIT $1",
        limit,
    )
    return [NewField(**dict(r)) for r in rows]
