"""Checkpoints and scan progress: what a stream has durably done, advanced inside the data's transaction.

Three kinds of progress, all per (source, resource):

* **cursor** (incremental runs): ``etl.checkpoints.cursor`` = max(old, min(page cursor, run start) − lag).
  Datetimes and epoch numbers are capped and lagged; strings (event ids) are stored as given.
* **scan** (full re-scans): ``etl.checkpoints.scan`` = {scan_id, auth, pages: committed page ranges,
  expected_total, cursor held back until completion}. Pages may commit out of order; the set is
  what resumes, never "the last page". Completion records ``scan_completed_at``, clears the scan
  and, when the rules allow (``complete_scan``), soft-deletes what the scan did not see.
* **backfill**: the same scan shape in ``etl.backfills.progress[resource]``, never touching the
  nightly row.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import asyncpg
import orjson

from pipeline.streams import (
    Cursor,
    Mode,
    PageSet,
    StreamState,
    cap_cursor,
    decode_cursor,
    encode_cursor,
    later,
)

AfterHook = Callable[[asyncpg.Connection], Awaitable[None]]
# (conn, source, raw resource, ids, tables) -> records deleted
Deleter = Callable[[asyncpg.Connection, str, str, Sequence[str], Sequence[str]], Awaitable[int]]


async def read_checkpoint(conn: asyncpg.Connection, source: str, resource: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT * FROM etl.checkpoints WHERE source = $1 AND resource = $2", source, resource
    )


def _resume_scan(state: StreamState, scan: dict[str, Any] | None) -> StreamState:
    """Continue the scan in flight when it was made with the same identity, else start a new one."""
    if scan and scan.get("scan_id") and scan.get("auth") == state.auth:
        return replace(
            state,
            scan_id=scan["scan_id"],
            committed=PageSet(scan.get("pages", ())),
            expected_total=scan.get("expected_total"),
            held_cursor=decode_cursor(scan.get("held_cursor"), scan.get("held_kind")),
        )
    return replace(state, scan_id=uuid.uuid4().hex, committed=PageSet())


async def begin_stream(
    conn: asyncpg.Connection,
    source: str,
    resource: str,
    *,
    full: bool,
    incremental_capable: bool,
    auth: str,
    run_started_at: datetime,
) -> StreamState:
    """Decide the mode (incremental only once a cursor exists) and load what resumes it."""
    row = await read_checkpoint(conn, source, resource)
    cursor = decode_cursor(row["cursor"], row["cursor_kind"]) if row else None
    scan = _as_dict(row["scan"]) if row else None
    mode: Mode = "incremental" if incremental_capable and cursor is not None and not full else "full"
    state = StreamState(source, resource, mode, run_started_at, auth=auth, cursor=cursor)
    if mode != "full":
        return state
    return await with_seen_ids(conn, _resume_scan(state, scan))


async def with_seen_ids(conn: asyncpg.Connection, state: StreamState) -> StreamState:
    """A resumed scan knows the ids its committed pages loaded."""
    if not state.committed or state.scan_id is None:
        return state
    rows = await conn.fetch("SELECT source_id FROM etl.scan_seen WHERE scan_id = $1", state.scan_id)
    return replace(state, seen_ids=frozenset(r["source_id"] for r in rows))


def _as_dict(value: Any) -> dict[str, Any]:
    """jsonb arrives decoded on pool connections (codec) and as text on bare ones."""
    if isinstance(value, str):
        loaded: dict[str, Any] = orjson.loads(value)
        return loaded
    return dict(value or {})


@dataclass(slots=True)
class Tracker:
    """Advances one stream's progress; ``hook`` returns the in-transaction write for a batch."""

    state: StreamState
    lag_seconds: float
    run_id: int | None
    owned_tables: tuple[str, ...] = ()  # what a verified delete soft-deletes (the stream's main tables)
    # The raw resource of the records the stream lists (Kitsu ``characters``: media-characters),
    # when not the stream's own name: what the scan counts, and deletes.
    record_resource: str | None = None
    # Applies a completed scan's verified deletes (``pipeline.load.delete_ids``): this module only
    # decides which records are gone and records progress; the data is load/'s.
    deleter: Deleter | None = None

    @property
    def raw_resource(self) -> str:
        return self.record_resource or self.state.resource

    def hook(
        self,
        keys: Iterable[int],
        cursor: Cursor | None,
        expected_total: int | None,
    ) -> AfterHook:
        """Advance the in-memory progress by a batch's pages; the returned write records it in the
        batch's transaction (the loader runs it after the rows and the page's tombstones)."""
        state = self.state
        for key in keys:
            state.committed.add(key)
        if expected_total is not None:
            state.expected_total = expected_total
        if cursor is not None and state.mode == "backfill":
            state.cursor = cursor  # a resume position inside the window, not a nightly watermark
        elif cursor is not None:
            capped = cap_cursor(cursor, state.run_started_at, self.lag_seconds)
            if state.mode == "incremental":
                state.cursor = later(state.cursor, capped)
            else:
                state.held_cursor = later(state.held_cursor, capped)

        async def write(conn: asyncpg.Connection) -> None:
            if state.mode == "backfill":
                await save_backfill_progress(conn, state)
            elif state.mode == "incremental":
                await self._save_cursor(conn, state.cursor)
            else:
                await conn.execute(
                    """INSERT INTO etl.checkpoints (source, resource, scan, run_id)
                       VALUES ($1, $2, $3::text::jsonb, $4)
                       ON CONFLICT (source, resource) DO UPDATE
                       SET scan = EXCLUDED.scan, updated_at = now(), run_id = EXCLUDED.run_id""",
                    state.source,
                    state.resource,
                    _dumps(state.scan_json()),
                    self.run_id,
                )

        return write

    async def _save_cursor(self, conn: asyncpg.Connection, cursor: Cursor | None) -> None:
        text, kind = encode_cursor(cursor)
        await conn.execute(
            """INSERT INTO etl.checkpoints (source, resource, cursor, cursor_kind, run_id)
               VALUES ($1, $2, $3, $4, $5)
               ON CONFLICT (source, resource) DO UPDATE SET cursor = EXCLUDED.cursor,
                   cursor_kind = EXCLUDED.cursor_kind, updated_at = now(), run_id = EXCLUDED.run_id""",
            self.state.source,
            self.state.resource,
            text,
            kind,
            self.run_id,
        )

    async def unseen(self, conn: asyncpg.Connection) -> list[str]:
        """Live raw records of the stream that this scan has not seen (so far): the delete candidates."""
        rows = await conn.fetch(
            """SELECT r.source_id FROM raw.records r
               WHERE r.source = $1 AND r.resource = $2 AND r.deleted_at IS NULL
                 AND NOT EXISTS (SELECT 1 FROM etl.scan_seen s
                                 WHERE s.scan_id = $3 AND s.source_id = r.source_id)
               ORDER BY r.source_id""",
            self.state.source,
            self.raw_resource,
            self.state.scan_id,
        )
        return [r["source_id"] for r in rows]

    async def complete(
        self,
        conn: asyncpg.Connection,
        *,
        complete: bool = True,
        gone: Sequence[str] | None = None,
        allow_deletes: bool = False,
        max_delete_share: float = 1.0,
    ) -> int:
        """The connector ran out of pages: close the scan and apply its verified deletes.

        ``complete`` is the connector's word that it saw every page; the scan is also incomplete
        when it committed fewer distinct records than ``expected_total``. An incomplete scan
        deletes nothing, leaves ``scan_completed_at`` alone, stamps ``scan_incomplete_at`` (the
        next run scans again whatever ``min_rescan_minutes`` says) and raises ``ScanIncomplete``.

        ``gone``: candidates a lookup by id confirmed missing. ``None`` means the API has no
        lookup: a record is deleted when this complete scan and the previous one both missed it
        (``etl.scan_missing``). More deletes than ``max_delete_share`` of the live rows raise
        ``MassDeleteRefused`` (nothing applied) unless ``allow_deletes``.
        """
        state = self.state
        if state.mode == "incremental":
            return 0
        scanning = state.mode == "full" or (state.window is not None and state.window.full)
        async with conn.transaction():
            seen = await conn.fetchval("SELECT count(*) FROM etl.scan_seen WHERE scan_id = $1", state.scan_id)
            short = state.expected_total is not None and seen < state.expected_total
            if scanning and (not complete or short):
                await self._incomplete(conn)
        if scanning and (not complete or short):
            raise ScanIncomplete(
                f"{state.source}/{state.resource}: the scan saw {seen} distinct records"
                + (f" of {state.expected_total} expected" if state.expected_total is not None else "")
                + " and could not re-read the rest; nothing deleted, the next run scans again"
            )
        async with conn.transaction():
            row = await read_checkpoint(conn, state.source, state.resource)
            previous_auth = row["scan_auth"] if row else None
            may_delete = scanning and deletes_allowed(state, seen, previous_auth)
            deleted = 0
            if may_delete:
                deleted = await self._apply_deletes(conn, gone, allow_deletes, max_delete_share)
            if state.mode == "backfill":
                await save_backfill_progress(conn, state, done=True)
            else:
                text, kind = encode_cursor(
                    later(state.cursor, state.held_cursor) if state.held_cursor else None
                )
                await conn.execute(
                    """INSERT INTO etl.checkpoints AS c (source, resource, scan, scan_completed_at, scan_auth,
                                              scan_seen, cursor, cursor_kind, run_id, scan_expected)
                       VALUES ($1, $2, '{}'::jsonb, now(), $3, $4, $5, $6, $7, $8)
                       ON CONFLICT (source, resource) DO UPDATE SET scan = '{}'::jsonb,
                           scan_completed_at = now(), scan_incomplete_at = NULL,
                           scan_auth = EXCLUDED.scan_auth,
                           scan_seen = EXCLUDED.scan_seen, scan_expected = EXCLUDED.scan_expected,
                           updated_at = now(), run_id = EXCLUDED.run_id,
                           cursor = COALESCE(EXCLUDED.cursor, c.cursor),
                           cursor_kind = COALESCE(EXCLUDED.cursor_kind, c.cursor_kind)""",
                    state.source,
                    state.resource,
                    state.auth,
                    seen,
                    text,
                    kind,
                    self.run_id,
                    state.expected_total,
                )
            await conn.execute("DELETE FROM etl.scan_seen WHERE scan_id = $1", state.scan_id)
        return deleted

    async def _incomplete(self, conn: asyncpg.Connection) -> None:
        """Close an incomplete scan: nothing deleted, the next run starts a new one."""
        state = self.state
        if state.mode == "backfill":
            await save_backfill_progress(conn, state, done=False)
        else:
            await conn.execute(
                """INSERT INTO etl.checkpoints (source, resource, scan, scan_incomplete_at, run_id)
                   VALUES ($1, $2, '{}'::jsonb, now(), $3)
                   ON CONFLICT (source, resource) DO UPDATE SET scan = '{}'::jsonb,
                       scan_incomplete_at = now(), updated_at = now(), run_id = EXCLUDED.run_id""",
                state.source,
                state.resource,
                self.run_id,
            )
            await conn.execute("DELETE FROM etl.scan_seen WHERE scan_id = $1", state.scan_id)

    async def _apply_deletes(
        self,
        conn: asyncpg.Connection,
        gone: Sequence[str] | None,
        allow_deletes: bool,
        max_delete_share: float,
    ) -> int:
        state = self.state
        unseen = await self.unseen(conn)
        if gone is None:  # no lookup by id: missing from this complete scan and the previous one
            previous = {
                r["source_id"]
                for r in await conn.fetch(
                    "SELECT source_id FROM etl.scan_missing WHERE source = $1 AND resource = $2",
                    state.source,
                    state.resource,
                )
            }
            doomed = [i for i in unseen if i in previous]
            await conn.execute(
                "DELETE FROM etl.scan_missing WHERE source = $1 AND resource = $2",
                state.source,
                state.resource,
            )
            await conn.executemany(
                "INSERT INTO etl.scan_missing (source, resource, source_id, run_id) VALUES ($1, $2, $3, $4)",
                [(state.source, state.resource, i, self.run_id) for i in unseen if i not in previous],
            )
        else:
            still = set(unseen)
            doomed = [i for i in gone if i in still]
        if not doomed:
            return 0
        live = await conn.fetchval(
            "SELECT count(*) FROM raw.records WHERE source = $1 AND resource = $2 AND deleted_at IS NULL",
            state.source,
            self.raw_resource,
        )
        share = len(doomed) / live if live else 1.0
        if share > max_delete_share and not allow_deletes:
            raise MassDeleteRefused(
                f"{state.source}/{state.resource}: the scan would delete {len(doomed)} of {live} live "
                f"records "
                f"({share:.1%} > max_delete_share {max_delete_share:.1%}); nothing deleted. If the source "
                "really lost them, run again with --allow-deletes (sync or backfill), or raise "
                f"[sources.{state.source}] max_delete_share"
            )
        if self.deleter is None:
            raise RuntimeError(
                f"{state.source}/{state.resource}: the scan found deletes but no deleter was given"
            )
        return await self.deleter(conn, state.source, self.raw_resource, doomed, self.owned_tables)


class ScanIncomplete(Exception):
    """A full scan ended without seeing every record it expected: no deletes, the stream is ``incomplete``."""


class MassDeleteRefused(Exception):
    """A scan's verified deletes exceed ``max_delete_share``: none applied, the stream fails."""


def deletes_allowed(state: StreamState, seen: int, previous_auth: str | None) -> bool:
    """Only a scan that saw the whole expected total, with the identity of the last complete scan."""
    if state.expected_total is None or seen < state.expected_total:
        return False
    return previous_auth is None or previous_auth == state.auth


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


async def save_backfill_progress(conn: asyncpg.Connection, state: StreamState, *, done: bool = False) -> None:
    entry = {**state.scan_json(), "done": done}
    cursor, kind = encode_cursor(state.cursor)
    entry.update(cursor=cursor, cursor_kind=kind)
    await conn.execute(
        "UPDATE etl.backfills SET progress = progress || jsonb_build_object($2::text, $3::text::jsonb) "
        "WHERE id = $1",
        state.backfill_id,
        state.resource,
        _dumps(entry),
    )
