"""raw.records landing: staged upsert by payload hash, binary COPY on first landing, etl.scan_seen marks.

Each record is serialised once (``hashing.raw_digest``): the bytes hashed are the bytes stored,
sent as they are in binary COPY to ``raw.records`` (first landing) or its staging table (later
runs, changed records only). ``payload`` is ``json`` (migration 009): the server checks the text
and stores it, with no jsonb conversion.
"""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator, Iterable, Mapping

import asyncpg

from pipeline.load.counts import LoadCounts
from pipeline.load.hashing import raw_digest
from pipeline.load.staging import Staging
from pipeline.log import get_logger
from pipeline.records import RawRecord

log = get_logger(__name__)

RAW_COPY_COLUMNS = ("source", "resource", "source_id", "payload", "content_hash", "run_id")
RAW_COPY_CHUNK = 500  # records per chunk of COPY data: the server ingests one while the next is made
COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
COPY_TRAILER = struct.pack(">h", -1)


RAW_STAGED = [("resource", None), ("source_id", None), ("content_hash", "content_hash"), ("payload", None)]


def raw_copy_data(source: str, run_id: int | None, rows: Iterable[tuple[str, str, bytes, bytes]]) -> bytes:
    """Binary COPY tuples of raw.records rows ``(resource, source_id, content_hash, payload JSON)``.

    Encoded here, not by asyncpg: the payload goes out as the very bytes that were hashed (json's
    binary form is its text), with no str round trip.
    """
    pack = struct.pack
    name = source.encode()
    head = pack(">hi", len(RAW_COPY_COLUMNS), len(name)) + name
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
                    pack(">i", len(payload)),
                    payload,
                    pack(">i", len(digest)),
                    digest,
                    tail,
                )
            )
        )
    return b"".join(out)


def stage_copy_data(rows: Iterable[tuple[str, str, bytes, bytes]]) -> bytes:
    """Binary COPY of ``(resource, source_id, content_hash, payload)`` into the raw staging table."""
    pack = struct.pack
    head = pack(">h", len(RAW_STAGED))
    out = [COPY_HEADER]
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
                    pack(">i", len(digest)),
                    digest,
                    pack(">i", len(payload)),
                    payload,
                )
            )
        )
    out.append(COPY_TRAILER)
    return b"".join(out)


async def upsert_raw(
    st: Staging,
    records: list[RawRecord],
    counts: LoadCounts,
    seen_scan: str | None,
    listed: str | None = None,
) -> None:
    """Land ``records``; mark those of resource ``listed`` (all, when None) seen by ``seen_scan``."""
    plan = await st.plan("raw.records", RAW_STAGED)
    latest: dict[tuple[str, str], RawRecord] = {}
    for record in records:
        latest[record.resource, str(record.source_id)] = record  # the last version wins
    if seen_scan is not None:
        seen = {sid for res, sid in latest if listed is None or res == listed}
        if seen:
            await mark_seen(st, seen_scan, list(seen))
    had = [resource for resource in sorted({res for res, _ in latest}) if await had_raw(st, resource)]
    if not had and await copy_raw(st, latest):
        counts.raw_written += len(latest)
        return
    # One serialisation per record: its digest is compared, its text staged if it changed.
    encoded = [(res, sid, *raw_digest(record)) for (res, sid), record in latest.items()]
    known: dict[tuple[str, str], bytes | None] = {}
    for resource in had:
        for r in await st.conn.fetch(
            "SELECT source_id, CASE WHEN deleted_at IS NULL THEN content_hash END FROM raw.records "
            "WHERE source = $1 AND resource = $2 AND source_id = ANY($3::text[])",
            st.source,
            resource,
            [sid for res, sid in latest if res == resource],
        ):
            known[resource, r[0]] = r[1]
    changed = [row for row in encoded if known.get((row[0], row[1])) != row[2]]
    if not changed:
        return
    st.staged.append(plan.stage)
    await st.conn.copy_to_table(
        plan.stage, source=_once(stage_copy_data(changed)), columns=list(plan.keys), format="binary"
    )
    written = await st.conn.fetchval(
        f"""WITH written AS (
                INSERT INTO raw.records AS t (source, resource, source_id, payload, content_hash, run_id)
                SELECT $1, s.resource, s.source_id, s.payload::json, s.content_hash, $2
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
        st.source,
        st.run_id,
    )
    counts.raw_written += written


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def had_raw(st: Staging, resource: str) -> bool:
    """Whether raw.records had records of this source and ``resource`` when this loader first looked."""
    key = f"raw.records/{resource}"
    had = st.had.get(key)
    if had is None:
        had = bool(
            await st.conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM raw.records WHERE source = $1 AND resource = $2)",
                st.source,
                resource,
            )
        )
        st.had[key] = had
    return had


async def copy_raw(st: Staging, latest: Mapping[tuple[str, str], RawRecord]) -> bool:
    """First landing of a resource: COPY straight into raw.records, hashing as it streams.

    Same savepoint and fallback as ``entities.copy_direct``. Returns whether it wrote.
    """
    items = list(latest.items())

    async def chunks() -> AsyncIterator[bytes]:
        yield COPY_HEADER
        for start in range(0, len(items), RAW_COPY_CHUNK):
            part = items[start : start + RAW_COPY_CHUNK]
            yield raw_copy_data(
                st.source, st.run_id, ((res, sid, *raw_digest(rec)) for (res, sid), rec in part)
            )
        yield COPY_TRAILER

    try:
        async with st.conn.transaction():
            await st.conn.copy_to_table(
                "records",
                schema_name="raw",
                source=chunks(),
                columns=list(RAW_COPY_COLUMNS),
                format="binary",
            )
    except asyncpg.UniqueViolationError:
        for resource, _ in latest:
            st.had[f"raw.records/{resource}"] = True
        log.debug("first_load_copy_conflict", table="raw.records", rows=len(latest))
        return False
    return True


async def mark_seen(st: Staging, scan_id: str, ids: list[str]) -> None:
    """Record ``ids`` in etl.scan_seen: a COPY, or an ON CONFLICT insert once the scan met an id twice."""
    if not st.seen_twice:
        try:
            async with st.conn.transaction():
                await st.conn.copy_records_to_table(
                    "scan_seen", schema_name="etl", records=[(scan_id, i) for i in ids]
                )
        except asyncpg.UniqueViolationError:
            st.seen_twice = True
        else:
            return
    await st.conn.execute(
        "INSERT INTO etl.scan_seen (scan_id, source_id) SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING",
        scan_id,
        ids,
    )
