"""The loader: one ``Batch`` → one transaction of staged COPY upserts, guided by ``pipeline.tables``.

Per entity table: rows are deduplicated in Python (last wins), hashed (``content_hash``: BLAKE2b of
the data columns minus ``EntityTable.volatile``) and compared with the stored hashes (one indexed
lookup per batch, skipped while the table has no rows of the source), so only new, changed or
soft-deleted rows are COPY'd into a per-connection temp staging table; one ``INSERT … SELECT … ON
CONFLICT (source, source_id) DO UPDATE … WHERE`` hash-differs-or-deleted then writes them. The
conflict arbiter's index probe is the only SQL-side anti-join: a ``LEFT JOIN`` on the target would
be planned from stale statistics as a hash join over every stored row of the source, a cost that
grows with the table. An unchanged re-run rewrites nothing. References are
natural keys resolved to surrogate ids by ``LEFT JOIN`` (NULL while the target is missing;
``resolve_refs`` fills them later). Link tables are diffed per owner present in the batch (delete
what is gone, insert what is new). ``raw.records`` takes the same staged path keyed by the
payload's hash minus ``RawRecord.volatile`` paths. Rejects are inserted as they are. The caller's
``after`` hook (checkpoint advance) runs last, inside the same transaction.
"""

from __future__ import annotations

import hashlib
import operator
import re
import struct
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import asyncpg
import orjson

from pipeline import tables
from pipeline.log import get_logger
from pipeline.records import Batch, RawRecord
from pipeline.tables import EntityTable, LinkTable, Ref

log = get_logger(__name__)
AfterHook = Callable[[asyncpg.Connection], Awaitable[None]]
_HASH_OPTS = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS
_JSON_TYPES = frozenset({"json", "jsonb"})


@dataclass(slots=True)
class LoadCounts:
    """What one batch (or a whole stream, summed) did to the database."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    raw_written: int = 0
    links_written: int = 0
    rejected: int = 0
    tables: dict[str, int] = field(default_factory=dict)  # rows written per table

    def add(self, other: LoadCounts) -> None:
        self.inserted += other.inserted
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.raw_written += other.raw_written
        self.links_written += other.links_written
        self.rejected += other.rejected
        for name, n in other.tables.items():
            self.tables[name] = self.tables.get(name, 0) + n


def _default(value: Any) -> Any:
    return str(value)  # Decimal, UUID and friends hash by their text form


def _blake(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=16).digest()


def row_hash(values: Sequence[Any]) -> bytes:
    """Stable 16-byte hash of a row's values (key order of nested objects does not matter)."""
    return _blake(orjson.dumps(values, option=_HASH_OPTS, default=_default))


def _picker(keys: Sequence[str]) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    """``row -> (row[k] for k in keys)`` with None for missing keys; itemgetter does the common case."""
    names = tuple(keys)
    if not names:
        return lambda row: ()
    get = operator.itemgetter(*names)
    single = len(names) == 1

    def pick(row: Mapping[str, Any]) -> tuple[Any, ...]:
        try:
            got = get(row)
        except KeyError:
            return tuple(row.get(k) for k in names)
        return (got,) if single else got

    return pick


def strip_paths(payload: Mapping[str, Any], paths: Iterable[str]) -> dict[str, Any]:
    """A copy of ``payload`` without the dotted ``paths``; only the touched dicts are copied."""
    out = dict(payload)
    for path in paths:
        head, _, rest = path.partition(".")
        if head not in out:
            continue
        if not rest:
            del out[head]
        elif isinstance(out[head], Mapping):
            out[head] = strip_paths(out[head], (rest,))
    return out


def raw_hash(record: RawRecord) -> tuple[bytes, str]:
    """(content hash minus volatile paths, payload JSON text to store)."""
    digest, text = _raw_digest(record)
    return digest, text.decode()


def _raw_text(record: RawRecord) -> bytes:
    return orjson.dumps(record.payload, option=_HASH_OPTS, default=_default)


def _raw_digest(record: RawRecord) -> tuple[bytes, bytes]:
    text = _raw_text(record)
    if record.volatile:
        stable = strip_paths(record.payload, record.volatile)
        return _blake(orjson.dumps(stable, option=_HASH_OPTS, default=_default)), text
    return _blake(text), text


def _json_text(value: Any) -> str:
    return orjson.dumps(value, default=_default).decode()


def _ident(name: str) -> str:
    """Quote ``schema.table`` or ``column`` safely."""
    return ".".join('"' + part.replace('"', '""') + '"' for part in name.split("."))


def _stage_name(table: str) -> str:
    return "stg_" + re.sub(r"[^a-z0-9_]", "_", table.lower())


def _fixed(values: Sequence[Any], fixes: Sequence[tuple[int, Callable[[Any], Any]]]) -> tuple[Any, ...]:
    out = list(values)
    for i, fix in fixes:
        if out[i] is not None:
            out[i] = fix(out[i])
    return tuple(out)


_RAW_COPY_COLUMNS = ("source", "resource", "source_id", "payload", "content_hash", "run_id")
_RAW_COPY_CHUNK = 500  # records per chunk of COPY data: the server ingests one while the next is made
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
_COPY_TRAILER = struct.pack(">h", -1)


def _raw_copy_data(source: str, run_id: int | None, rows: Iterable[tuple[str, str, bytes, bytes]]) -> bytes:
    """Binary COPY tuples of raw.records rows ``(resource, source_id, content_hash, payload JSON)``.

    Encoded here, not by asyncpg: pooled connections carry a text codec for jsonb, which asyncpg
    cannot use in a binary COPY. jsonb's binary form is a version byte (1) and the JSON text.
    """
    pack = struct.pack
    name = source.encode()
    head = pack(">hi", len(_RAW_COPY_COLUMNS), len(name)) + name
    tail = pack(">i", -1) if run_id is None else pack(">iq", 8, run_id)
    out = []
    for resource, source_id, digest, payload in rows:
        res, sid = resource.encode(), source_id.encode()
        out.append(
            b"".join(
                (
                    head,
                    pack(">i", len(res)),
                    res,
                    pack(">i", len(sid)),
                    sid,
                    pack(">ib", len(payload) + 1, 1),
                    payload,
                    pack(">i", len(digest)),
                    digest,
                    tail,
                )
            )
        )
    return b"".join(out)


def _coercer(pg_type: str) -> Callable[[Any], Any] | None:
    """Binary COPY needs real dates; transforms may hand ISO strings."""
    if pg_type == "date":
        return lambda v: date.fromisoformat(v) if isinstance(v, str) else v
    if pg_type.startswith("timestamp"):
        return lambda v: datetime.fromisoformat(v) if isinstance(v, str) else v
    return None


@dataclass(frozen=True, slots=True)
class _Plan:
    """How one table is staged and merged on this connection."""

    stage: str
    keys: tuple[str, ...]  # row keys copied into staging, in order
    fixes: tuple[tuple[int, Callable[[Any], Any]], ...]  # (position, converter) where one is needed
    json_keys: frozenset[str]
    target_types: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class _EntityPlan:
    """How one entity table's rows are hashed, staged, merged or copied straight in."""

    plan: _Plan  # staging: source_id, content_hash, then the ``picked`` keys
    hashed: Callable[[Mapping[str, Any]], tuple[Any, ...]]
    picked: Callable[[Mapping[str, Any]], tuple[Any, ...]]  # source_updated_at, data, ref keys
    fixes: tuple[tuple[int, Callable[[Any], Any]], ...]  # converters by position in ``picked``
    merge: str  # INSERT … SELECT … ON CONFLICT from the staging table
    ref_positions: tuple[int, ...]  # where each ref's natural key sits in a staged tuple
    direct_columns: tuple[str, ...] | None  # columns of a direct COPY; None: staged path only
    direct_project: tuple[int, ...] | None  # ``picked`` positions a direct COPY keeps (None: all)


class Loader:
    """Writes batches for one source on one connection (staging tables are created once per connection)."""

    def __init__(
        self,
        conn: asyncpg.Connection,
        source: str,
        run_id: int | None,
        owned_tables: Iterable[str] | None = None,
    ) -> None:
        self.conn = conn
        self.source = source
        self.run_id = run_id
        # Owner rows of these tables carry their complete link sets; other owner rows (a media
        # included in an episodes page) leave the links they do not mention alone.
        self.owned_tables = None if owned_tables is None else frozenset(owned_tables)
        self._plans: dict[str, _Plan] = {}
        self._entity_plans: dict[str, _EntityPlan] = {}
        self._had: dict[str, bool] = {}
        self._staged: list[str] = []  # staging tables filled by the batch in flight
        self._seen_twice = False  # the scan met an id it had already recorded in etl.scan_seen

    async def load(
        self,
        batch: Batch,
        *,
        after: AfterHook | None = None,
        land_raw: bool = True,
        seen_scan: str | None = None,
    ) -> LoadCounts:
        """Write ``batch`` and run ``after`` in one transaction; return what changed."""
        counts = LoadCounts()
        order = [s.name for s in tables.registered()]
        unknown = [name for name in batch.rows if name not in order]
        if unknown:
            raise KeyError(f"batch has rows for unregistered table(s) {unknown}; register their specs")
        # Inside a caller's transaction our COMMIT is a savepoint release: staging tables keep
        # their rows (ON COMMIT DELETE ROWS has not fired) unless emptied here.
        nested = self.conn.is_in_transaction()
        planned = set(self._plans)
        self._staged.clear()
        try:
            async with self.conn.transaction():
                for name in order:
                    spec = tables.spec(name)
                    rows = batch.rows.get(name)
                    if isinstance(spec, EntityTable) and rows:
                        await self._upsert_entities(spec, rows, counts)
                for name in order:
                    spec = tables.spec(name)
                    if isinstance(spec, LinkTable):
                        await self._replace_links(spec, batch, counts)
                if land_raw and batch.raw:
                    await self._upsert_raw(batch.raw, counts, seen_scan)
                if batch.rejects:
                    await self._insert_rejects(batch)
                    counts.rejected = len(batch.rejects)
                if nested and self._staged:
                    await self.conn.execute("; ".join(f"DELETE FROM {stage}" for stage in self._staged))
                if after is not None:
                    await after(self.conn)
        except BaseException:
            for name in set(self._plans) - planned:  # their staging tables rolled back with the batch
                del self._plans[name]
                self._entity_plans.pop(name, None)
            raise
        return counts

    async def _stage(self, plan: _Plan, records: list[tuple[Any, ...]]) -> None:
        """COPY ``records`` into the plan's staging table (emptied at COMMIT)."""
        self._staged.append(plan.stage)
        await self.conn.copy_records_to_table(plan.stage, records=records, columns=list(plan.keys))

    async def _plan(self, name: str, staged: Sequence[tuple[str, str | None]]) -> _Plan:
        """Create the staging table (typed like the target) once; ``staged`` = (key, column or None=text)."""
        plan = self._plans.get(name)
        if plan is not None:
            return plan
        rows = await self.conn.fetch(
            "SELECT attname, format_type(atttypid, atttypmod) AS type FROM pg_attribute "
            "WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped",
            name,
        )
        types = {r["attname"]: r["type"] for r in rows}
        cols, fixes, json_keys = [], [], set()
        for i, (key, column) in enumerate(staged):
            pg_type = types.get(column, "text") if column else "text"
            if column and column not in types:
                raise KeyError(
                    f"{name} has no column {column!r} named by its table spec; fix the spec or the SQL"
                )
            fix = _coercer(pg_type)
            if pg_type in _JSON_TYPES:
                json_keys.add(key)
                pg_type, fix = "text", _json_text  # staged as JSON text, cast on insert (changed rows only)
            cols.append(f"{_ident(key)} {pg_type}")
            if fix is not None:
                fixes.append((i, fix))
        stage = _stage_name(name)
        await self.conn.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {stage} ({', '.join(cols)}) ON COMMIT DELETE ROWS"
        )
        plan = _Plan(stage, tuple(k for k, _ in staged), tuple(fixes), frozenset(json_keys), types)
        self._plans[name] = plan
        return plan

    async def _had_rows(self, table: str) -> bool:
        """Whether ``table`` had rows of this source when this loader first wrote to it.

        An initial load skips the Python-side hash lookup (nothing to compare with); the SQL
        anti-join still catches ids repeated across its batches.
        """
        had = self._had.get(table)
        if had is None:
            had = await self.conn.fetchval(
                f"SELECT EXISTS (SELECT 1 FROM {_ident(table)} WHERE source = $1)", self.source
            )
            self._had[table] = bool(had)
        return bool(had)

    def _tuple(self, plan: _Plan, row: Mapping[str, Any], given: Mapping[str, Any]) -> tuple[Any, ...]:
        values = [row.get(key) for key in plan.keys]
        for i, fix in plan.fixes:
            value = values[i]
            if value is not None:
                values[i] = fix(value)
        for key, value in given.items():
            values[plan.keys.index(key)] = value
        return tuple(values)

    async def _entity_plan(self, spec: EntityTable) -> _EntityPlan:
        """Staging layout, value pickers and SQL of one entity table (built once per loader)."""
        cached = self._entity_plans.get(spec.name)
        if cached is not None:
            return cached
        ref_columns = {r.column for r in spec.refs}
        data = [c for c in spec.columns if c not in ref_columns]
        ref_keys = [r.key for r in spec.refs if r.key not in data]
        # The hash covers these keys in this order: changing it would rewrite every stored row once.
        hashed = [c for c in (*data, *ref_keys) if c not in spec.volatile]
        picked = ("source_updated_at", *data, *ref_keys)
        plan = await self._plan(
            spec.name,
            [
                ("source_id", None),
                ("content_hash", "content_hash"),
                *((k, k) for k in picked[: 1 + len(data)]),
            ]
            + [(k, None) for k in ref_keys],
        )
        kept = [r for r in spec.refs if r.keep_natural and r.key in plan.target_types and r.key not in data]
        insert_cols = [
            "source",
            "source_id",
            "source_updated_at",
            "content_hash",
            "synced_at",
            "deleted_at",
            "run_id",
            *data,
            *(r.key for r in kept),
            *(r.column for r in spec.refs),
        ]
        select = [
            "$1",
            "s.source_id",
            "s.source_updated_at",
            "s.content_hash",
            "now()",
            "NULL",
            "$2",
            *(self._cast(plan, c) for c in data),
            *(f"s.{_ident(r.key)}" for r in kept),
            *(f"r{i}.id" for i in range(len(spec.refs))),
        ]
        joins = "".join(
            f" LEFT JOIN {_ident(r.table)} r{i} ON r{i}.source = $1 AND r{i}.source_id = s.{_ident(r.key)}"
            for i, r in enumerate(spec.refs)
        )
        updates = ", ".join(f"{_ident(c)} = EXCLUDED.{_ident(c)}" for c in insert_cols[2:])
        merge = f"""
            WITH written AS (
                INSERT INTO {_ident(spec.name)} AS t ({", ".join(map(_ident, insert_cols))})
                SELECT {", ".join(select)}
                FROM {plan.stage} s{joins}
                ON CONFLICT (source, source_id) DO UPDATE SET {updates}
                WHERE t.content_hash IS DISTINCT FROM EXCLUDED.content_hash OR t.deleted_at IS NOT NULL
                RETURNING (xmax = 0) AS fresh
            )
            SELECT count(*) FILTER (WHERE fresh) AS inserted, count(*) FILTER (WHERE NOT fresh) AS updated
            FROM written"""
        # A direct COPY sends values through asyncpg's binary codecs: JSON columns (text codecs on
        # pooled connections) and natural keys stored in non-text columns take the staged path.
        direct_ok = not plan.json_keys and all(plan.target_types[r.key] == "text" for r in kept)
        project = (0, *range(1, 1 + len(data)), *(1 + len(data) + ref_keys.index(r.key) for r in kept))
        entity = _EntityPlan(
            plan=plan,
            hashed=_picker(hashed),
            picked=_picker(picked),
            fixes=tuple((i - 2, fix) for i, fix in plan.fixes),
            merge=merge,
            ref_positions=tuple(2 + picked.index(r.key) for r in spec.refs),
            direct_columns=(
                (
                    "source",
                    "synced_at",
                    "run_id",
                    "source_id",
                    "content_hash",
                    *(picked[i] for i in project),
                    *(r.column for r in spec.refs),
                )
                if direct_ok
                else None
            ),
            direct_project=None if project == tuple(range(len(picked))) else project,
        )
        self._entity_plans[spec.name] = entity
        return entity

    @staticmethod
    def _staged_rows(
        entity: _EntityPlan, latest: Mapping[str, Mapping[str, Any]]
    ) -> Iterator[tuple[Any, ...]]:
        """``(source_id, content_hash, *picked values)`` per row: hashed and converted in one tight loop."""
        hashed, picked, fixes = entity.hashed, entity.picked, entity.fixes
        eager = bool(entity.plan.json_keys)  # JSON values are always re-encoded as text
        for sid, row in latest.items():
            digest = _blake(orjson.dumps(hashed(row), option=_HASH_OPTS, default=_default))
            values = picked(row)
            if eager:
                values = _fixed(values, fixes)
            else:
                for i, _ in fixes:
                    if values[i].__class__ is str:  # dates or timestamps given as ISO text
                        values = _fixed(values, fixes)
                        break
            yield (sid, digest, *values)

    async def _upsert_entities(
        self, spec: EntityTable, rows: list[dict[str, Any]], counts: LoadCounts
    ) -> None:
        entity = await self._entity_plan(spec)
        latest: dict[str, dict[str, Any]] = {}
        for row in rows:
            latest[str(row["source_id"])] = row  # the last version of a record wins
        had = await self._had_rows(spec.name)
        direct = None if had else entity.direct_columns
        if direct is not None and await self._copy_direct(spec, entity, direct, latest):
            counts.inserted += len(latest)
            counts.tables[spec.name] = counts.tables.get(spec.name, 0) + len(latest)
            return
        staged = list(self._staged_rows(entity, latest))
        # The anti-join starts in Python: only rows whose stored hash differs are staged at all.
        known = await self._stored_hashes(spec.name, list(latest)) if self._had[spec.name] else {}
        changed = [t for t in staged if known.get(t[0]) != t[1]]
        counts.unchanged += len(staged) - len(changed)
        if not changed:
            return
        plan = entity.plan
        await self._stage(plan, changed)
        result = await self.conn.fetchrow(entity.merge, self.source, self.run_id)
        counts.inserted += result["inserted"]
        counts.updated += result["updated"]
        counts.unchanged += len(changed) - result["inserted"] - result["updated"]
        counts.tables[spec.name] = counts.tables.get(spec.name, 0) + result["inserted"] + result["updated"]

    async def _stored_hashes(self, table: str, ids: list[str]) -> dict[str, bytes | None]:
        """Stored content hashes of ``ids`` (None for soft-deleted rows, so they are rewritten)."""
        rows = await self.conn.fetch(
            f"SELECT source_id, CASE WHEN deleted_at IS NULL THEN content_hash END "
            f"FROM {_ident(table)} WHERE source = $1 AND source_id = ANY($2::text[])",
            self.source,
            ids,
        )
        return {r[0]: r[1] for r in rows}

    async def _copy_direct(
        self,
        spec: EntityTable,
        entity: _EntityPlan,
        columns: Sequence[str],
        latest: Mapping[str, Mapping[str, Any]],
    ) -> bool:
        """First load of a table: COPY straight into it, skipping staging and merge.

        Rows are hashed while the COPY streams (the server ingests one chunk as the next is made).
        Runs under a savepoint; when a row already exists (an id repeated across batches, another
        stream writing the same table) nothing is written, the loader stops taking this path for
        the table and the caller merges the batch the general way. Returns whether it wrote.
        """
        head = (self.source, await self.conn.fetchval("SELECT now()"), self.run_id)
        found = [await self._ref_ids(ref, {row.get(ref.key) for row in latest.values()}) for ref in spec.refs]
        project, positions = entity.direct_project, entity.ref_positions
        staged = self._staged_rows(entity, latest)
        if project is None and not found:
            records: Iterable[tuple[Any, ...]] = (head + t for t in staged)
        else:
            records = (
                head
                + (t if project is None else (t[0], t[1], *(t[2 + i] for i in project)))
                + tuple(ids.get(t[pos]) for ids, pos in zip(found, positions, strict=True))
                for t in staged
            )
        schema, _, table = spec.name.rpartition(".")
        try:
            async with self.conn.transaction():
                await self.conn.copy_records_to_table(
                    table, schema_name=schema or None, records=records, columns=list(columns)
                )
        except asyncpg.UniqueViolationError:
            self._had[spec.name] = True
            log.debug("first_load_copy_conflict", table=spec.name, rows=len(latest))
            return False
        return True

    async def _ref_ids(self, ref: Ref, keys: set[Any]) -> dict[str, int]:
        """Ids of the ``ref.table`` rows whose source_id is in ``keys`` (what the merge's LEFT JOIN finds)."""
        wanted = [k for k in keys if k is not None]
        if not wanted:
            return {}
        rows = await self.conn.fetch(
            f"SELECT source_id, id FROM {_ident(ref.table)} "
            "WHERE source = $1 AND source_id = ANY($2::text[])",
            self.source,
            wanted,
        )
        return {r[0]: r[1] for r in rows}

    def _cast(self, plan: _Plan, column: str) -> str:
        if column in plan.json_keys:
            return f"s.{_ident(column)}::{plan.target_types[column]}"
        return f"s.{_ident(column)}"

    async def _replace_links(self, spec: LinkTable, batch: Batch, counts: LoadCounts) -> None:
        """Make each owner's links in ``spec`` equal the batch's set, touching only the difference."""
        rows = batch.rows.get(spec.name, [])
        owner = spec.owner
        owners = {str(r[owner.key]) for r in rows if r.get(owner.key) is not None}
        if self.owned_tables is None or owner.table in self.owned_tables:
            owners.update(str(r["source_id"]) for r in batch.rows.get(owner.table, ()))
        if not owners:
            return
        ref_columns = {r.column for r in spec.refs} | {owner.column}
        data = [c for c in spec.columns if c not in ref_columns and c != owner.key]
        ref_keys = [r.key for r in spec.refs if r.key not in data]
        staged = [(owner.key, None), *((c, c) for c in data), *((k, None) for k in ref_keys)]
        plan = await self._plan(spec.name, staged)
        if rows:
            records = [self._tuple(plan, r, {owner.key: str(r[owner.key])}) for r in rows if r.get(owner.key)]
            await self._stage(plan, records)
        kept = [
            r
            for r in (owner, *spec.refs)
            if r.keep_natural and r.key in plan.target_types and r.key not in data
        ]
        compare = [owner.column, *(r.key for r in kept), *data, *(r.column for r in spec.refs)]
        select = [
            "o.id",
            *(f"s.{_ident(r.key)}" for r in kept),
            *(self._cast(plan, c) for c in data),
            *(f"r{i}.id" for i in range(len(spec.refs))),
        ]
        joins = "".join(
            f" LEFT JOIN {_ident(r.table)} r{i} ON r{i}.source = $1 AND r{i}.source_id = s.{_ident(r.key)}"
            for i, r in enumerate(spec.refs)
        )
        aliased = ", ".join(f"{e} AS {_ident(c)}" for e, c in zip(select, compare, strict=True))
        want = (
            f"SELECT DISTINCT {aliased} "
            f"FROM {plan.stage} s JOIN {_ident(owner.table)} o ON o.source = $1 "
            f"AND o.source_id = s.{_ident(owner.key)}{joins}"
        )
        same = " AND ".join(f"w.{_ident(c)} IS NOT DISTINCT FROM l.{_ident(c)}" for c in compare)
        owner_col = _ident(owner.column)
        deleted = await self.conn.fetchval(
            f"""WITH want AS MATERIALIZED ({want}), gone AS (
                    DELETE FROM {_ident(spec.name)} l USING {_ident(owner.table)} o
                    WHERE o.source = $1 AND o.source_id = ANY($2::text[]) AND l.{owner_col} = o.id
                      AND NOT EXISTS (SELECT 1 FROM want w WHERE w.{owner_col} = l.{owner_col} AND {same})
                    RETURNING 1)
                SELECT count(*) FROM gone""",
            self.source,
            list(owners),
        )
        extra_cols = [c for c in ("source", "run_id") if c in plan.target_types]
        extra_vals = ["$1" if c == "source" else "$2::bigint" for c in extra_cols]
        args: list[Any] = [self.source] + ([self.run_id] if "run_id" in extra_cols else [])
        inserted = await self.conn.fetchval(
            f"""WITH want AS MATERIALIZED ({want}), added AS (
                    INSERT INTO {_ident(spec.name)} ({", ".join(map(_ident, [*compare, *extra_cols]))})
                    SELECT w.*{"".join(", " + v for v in extra_vals)} FROM want w
                    WHERE NOT EXISTS (SELECT 1 FROM {_ident(spec.name)} l
                                      WHERE l.{owner_col} = w.{owner_col} AND {same})
                    RETURNING 1)
                SELECT count(*) FROM added""",
            *args,
        )
        written = deleted + inserted
        counts.links_written += written
        counts.tables[spec.name] = counts.tables.get(spec.name, 0) + written

    async def _upsert_raw(self, records: list[RawRecord], counts: LoadCounts, seen_scan: str | None) -> None:
        plan = await self._plan(
            "raw.records",
            [("resource", None), ("source_id", None), ("content_hash", "content_hash"), ("payload", None)],
        )
        latest: dict[tuple[str, str], RawRecord] = {}
        for record in records:
            latest[record.resource, str(record.source_id)] = record  # the last version wins
        if seen_scan is not None:
            await self._mark_seen(seen_scan, list({sid for _, sid in latest}))
        had = [resource for resource in sorted({res for res, _ in latest}) if await self._had_raw(resource)]
        if not had and await self._copy_raw(latest):
            counts.raw_written += len(latest)
            return
        # Digests only: orjson's output keeps an 8 KiB buffer, so texts are made again for changed rows.
        hashed = [(res, sid, _raw_digest(record)[0]) for (res, sid), record in latest.items()]
        known: dict[tuple[str, str], bytes | None] = {}
        for resource in had:
            for r in await self.conn.fetch(
                "SELECT source_id, CASE WHEN deleted_at IS NULL THEN content_hash END FROM raw.records "
                "WHERE source = $1 AND resource = $2 AND source_id = ANY($3::text[])",
                self.source,
                resource,
                [sid for res, sid in latest if res == resource],
            ):
                known[resource, r[0]] = r[1]
        changed = [row for row in hashed if known.get((row[0], row[1])) != row[2]]
        if not changed:
            return
        texts = [_raw_text(latest[res, sid]).decode() for res, sid, _ in changed]
        await self._stage(plan, [(*row, text) for row, text in zip(changed, texts, strict=True)])
        written = await self.conn.fetchval(
            f"""WITH written AS (
                INSERT INTO raw.records AS t (source, resource, source_id, payload, content_hash, run_id)
                SELECT $1, s.resource, s.source_id, s.payload::jsonb, s.content_hash, $2
                FROM {plan.stage} s
                ON CONFLICT (source, resource, source_id) DO UPDATE SET
                    payload = EXCLUDED.payload,
                    last_changed_at = CASE WHEN t.content_hash = EXCLUDED.content_hash
                                           THEN t.last_changed_at ELSE now() END,
                    content_hash = EXCLUDED.content_hash,
                    last_seen_at = now(), deleted_at = NULL, run_id = EXCLUDED.run_id
                WHERE t.content_hash <> EXCLUDED.content_hash OR t.deleted_at IS NOT NULL
                RETURNING 1)
            SELECT count(*) FROM written""",
            self.source,
            self.run_id,
        )
        counts.raw_written += written

    async def _had_raw(self, resource: str) -> bool:
        """Whether raw.records had records of this source and ``resource`` when this loader first looked."""
        key = f"raw.records/{resource}"
        had = self._had.get(key)
        if had is None:
            had = bool(
                await self.conn.fetchval(
                    "SELECT EXISTS (SELECT 1 FROM raw.records WHERE source = $1 AND resource = $2)",
                    self.source,
                    resource,
                )
            )
            self._had[key] = had
        return had

    async def _copy_raw(self, latest: Mapping[tuple[str, str], RawRecord]) -> bool:
        """First landing of a resource: COPY straight into raw.records, hashing as it streams.

        Same savepoint and fallback as ``_copy_direct``. Returns whether it wrote.
        """
        items = list(latest.items())

        async def chunks() -> AsyncIterator[bytes]:
            yield _COPY_HEADER
            for start in range(0, len(items), _RAW_COPY_CHUNK):
                part = items[start : start + _RAW_COPY_CHUNK]
                yield _raw_copy_data(
                    self.source, self.run_id, ((res, sid, *_raw_digest(rec)) for (res, sid), rec in part)
                )
            yield _COPY_TRAILER

        try:
            async with self.conn.transaction():
                await self.conn.copy_to_table(
                    "records",
                    schema_name="raw",
                    source=chunks(),
                    columns=list(_RAW_COPY_COLUMNS),
                    format="binary",
                )
        except asyncpg.UniqueViolationError:
            for resource, _ in latest:
                self._had[f"raw.records/{resource}"] = True
            log.debug("first_load_copy_conflict", table="raw.records", rows=len(latest))
            return False
        return True

    async def _mark_seen(self, scan_id: str, ids: list[str]) -> None:
        """Record ``ids`` in etl.scan_seen: a COPY, or an ON CONFLICT insert once the scan met an id twice."""
        if not self._seen_twice:
            try:
                async with self.conn.transaction():
                    await self.conn.copy_records_to_table(
                        "scan_seen", schema_name="etl", records=[(scan_id, i) for i in ids]
                    )
            except asyncpg.UniqueViolationError:
                self._seen_twice = True
            else:
                return
        await self.conn.execute(
            "INSERT INTO etl.scan_seen (scan_id, source_id) SELECT $1, unnest($2::text[]) "
            "ON CONFLICT DO NOTHING",
            scan_id,
            ids,
        )

    async def _insert_rejects(self, batch: Batch) -> None:
        await self.conn.executemany(
            "INSERT INTO etl.rejects (run_id, source, resource, source_id, payload, error) "
            "VALUES ($1, $2, $3, $4, $5::text::jsonb, $6)",
            [
                (
                    self.run_id,
                    self.source,
                    r.resource,
                    r.source_id,
                    orjson.dumps(r.payload, default=_default).decode(),
                    r.error,
                )
                for r in batch.rejects
            ],
        )


async def _columns(conn: asyncpg.Connection, table: str) -> set[str]:
    rows = await conn.fetch(  # a registered table this database does not have has no columns
        "SELECT attname FROM pg_attribute "
        "WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped",
        table,
    )
    return {r["attname"] for r in rows}


async def resolve_refs(
    conn: asyncpg.Connection, source: str | None = None, touched: Iterable[str] | None = None
) -> int:
    """Fill NULL surrogate FKs whose natural key now has a target; return the rows fixed.

    ``touched`` (the tables a stream wrote) limits the work to the references that can have
    changed: those held by a touched table and those pointing at one. ``None`` checks them all.
    """
    wrote = None if touched is None else frozenset(touched)
    fixed = 0
    for spec in tables.registered():
        if not spec.refs:
            continue
        refs = [r for r in spec.refs if wrote is None or spec.name in wrote or r.table in wrote]
        if not refs:
            continue
        present = await _columns(conn, spec.name)
        for ref in refs:
            if ref.key not in present or ref.column not in present:
                continue  # without the natural key stored there is nothing to resolve from
            col, key = _ident(ref.column), _ident(ref.key)
            if isinstance(spec, EntityTable):
                sql = (
                    f"UPDATE {_ident(spec.name)} t SET {col} = r.id FROM {_ident(ref.table)} r "
                    f"WHERE t.{col} IS NULL AND t.{key} IS NOT NULL AND r.source = t.source "
                    f"AND r.source_id = t.{key} AND ($1::text IS NULL OR t.source = $1)"
                )
            else:
                owner = spec.owner
                sql = (
                    f"UPDATE {_ident(spec.name)} t SET {col} = r.id "
                    f"FROM {_ident(owner.table)} o, {_ident(ref.table)} r "
                    f"WHERE t.{col} IS NULL AND t.{key} IS NOT NULL AND o.id = t.{_ident(owner.column)} "
                    f"AND r.source = o.source AND r.source_id = t.{key} "
                    "AND ($1::text IS NULL OR o.source = $1)"
                )
            status = await conn.execute(sql, source)
            fixed += int(status.rsplit(" ", 1)[-1])
    return fixed


async def soft_delete(
    conn: asyncpg.Connection, table_or_resource: str, source: str, ids: Iterable[str]
) -> int:
    """Set ``deleted_at``: rows of an entity table by name (``production.tasks``), else of a raw resource."""
    wanted = [str(i) for i in ids]
    if not wanted:
        return 0
    if "." in table_or_resource:
        status = await conn.execute(
            f"UPDATE {_ident(table_or_resource)} SET deleted_at = now() "
            "WHERE source = $1 AND source_id = ANY($2::text[]) AND deleted_at IS NULL",
            source,
            wanted,
        )
    else:
        status = await conn.execute(
            "UPDATE raw.records SET deleted_at = now() "
            "WHERE source = $1 AND resource = $2 AND source_id = ANY($3::text[]) AND deleted_at IS NULL",
            source,
            table_or_resource,
            wanted,
        )
    return int(status.rsplit(" ", 1)[-1])


async def delete_unseen(
    conn: asyncpg.Connection, source: str, resource: str, scan_id: str, owned: Sequence[str]
) -> int:
    """After a complete scan: soft-delete raw records (and their rows in ``owned`` tables) it did not see."""
    gone = await conn.fetch(
        """UPDATE raw.records r SET deleted_at = now()
           WHERE r.source = $1 AND r.resource = $2 AND r.deleted_at IS NULL
             AND NOT EXISTS (SELECT 1 FROM etl.scan_seen s WHERE s.scan_id = $3 AND s.source_id = r.source_id)
           RETURNING r.source_id""",
        source,
        resource,
        scan_id,
    )
    ids = [r["source_id"] for r in gone]
    for table in owned:
        await soft_delete(conn, table, source, ids)
    return len(ids)  # one per record, however many tables held it
