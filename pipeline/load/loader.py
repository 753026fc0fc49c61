"""The Loader: one ``Batch`` → one transaction over entities, links, raw records, rejects and ``after``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence

import asyncpg

from pipeline import tables
from pipeline.load.children import retire_children
from pipeline.load.counts import LoadCounts
from pipeline.load.deletes import soft_delete
from pipeline.load.entities import upsert_entities
from pipeline.load.links import replace_links
from pipeline.load.plans import ident
from pipeline.load.poison import reject_payload
from pipeline.load.raw import mark_seen, upsert_raw
from pipeline.load.staging import Staging
from pipeline.records import Batch
from pipeline.redact import redact_text
from pipeline.tables import EntityTable, LinkTable

AfterHook = Callable[[asyncpg.Connection], Awaitable[None]]

ANALYZE_MIN_ROWS = 20_000  # a table is analyzed once this loader wrote this many rows into it …
ANALYZE_LOCK_TIMEOUT = "200ms"  # … unless another ANALYZE (autovacuum) holds it: then next time


class Loader:
    """Writes batches for one source on one connection (staging tables are created once per connection)."""

    def __init__(
        self,
        conn: asyncpg.Connection,
        source: str,
        run_id: int | None,
        owned_tables: Iterable[str] | None = None,
        main_tables: Iterable[str] | None = None,
        *,
        record_resource: str | None = None,
    ) -> None:
        self._staging = Staging(conn, source, run_id)
        # A scan marks seen only the records it lists (``None``: every raw record of a batch), so
        # included people or producers neither pass for nor hide a listed record with their id.
        self.record_resource = record_resource
        # Owner rows of these tables carry their complete link sets; other owner rows (a media
        # included in an episodes page) leave the links they do not mention alone.
        self.owned_tables = None if owned_tables is None else frozenset(owned_tables)
        # The tables whose rows the counts' inserted/updated/unchanged are (default: the owned ones).
        self.main_tables = self.owned_tables if main_tables is None else frozenset(main_tables)
        # Rows written per table since this loader last analyzed it, and the rows it had written
        # by then: statistics are refreshed each time a table doubles (see _refresh_statistics).
        self._written: dict[str, int] = {}
        self._analyzed: dict[str, int] = {}
        self.analyzed = 0  # ANALYZE statements run (tests, benchmarks)
        self._index_columns: dict[str, list[str]] = {}  # per table, the columns its indexes cover
        # The unified models (sqlmodel classes) are imported here, before the stream's first
        # request: imported inside the first load they held the event loop for a second or more,
        # and every rate slot that fell due meanwhile was lost.
        tables.registered()

    @property
    def conn(self) -> asyncpg.Connection:
        return self._staging.conn

    @property
    def source(self) -> str:
        return self._staging.source

    @property
    def run_id(self) -> int | None:
        return self._staging.run_id

    async def load(
        self,
        batch: Batch,
        *,
        after: AfterHook | None = None,
        land_raw: bool = True,
        seen_scan: str | None = None,
        tombstones: Mapping[str, Sequence[str]] | None = None,
    ) -> LoadCounts:
        """Write ``batch``, soft-delete its ``tombstones`` ({table or raw resource: source ids}: Zou
        ``*:delete`` events) and run ``after`` (the checkpoint), in one transaction; return what
        changed."""
        st = self._staging
        counts = LoadCounts()
        order = [s.name for s in tables.registered()]
        unknown = [name for name in batch.rows if name not in order]
        if unknown:
            raise KeyError(f"batch has rows for unregistered table(s) {unknown}; register their specs")
        # Inside a caller's transaction our COMMIT is a savepoint release: staging tables keep
        # their rows (ON COMMIT DELETE ROWS has not fired) unless emptied here.
        nested = st.conn.is_in_transaction()
        planned = set(st.plans)
        st.staged.clear()
        try:
            async with st.conn.transaction():
                for name in order:
                    spec = tables.spec(name)
                    rows = batch.rows.get(name)
                    if isinstance(spec, EntityTable) and rows:
                        await upsert_entities(st, spec, rows, counts)
                for name in order:
                    spec = tables.spec(name)
                    if isinstance(spec, LinkTable):
                        await replace_links(st, spec, batch, counts, self.owned_tables)
                if batch.replaced:
                    await retire_children(st, batch, counts)
                if land_raw and batch.raw:
                    await upsert_raw(st, batch.raw, counts, seen_scan, self.record_resource)
                if batch.rejects:
                    await self._insert_rejects(batch)
                    counts.rejected = len(batch.rejects)
                    # A rejected record still exists at the source: the scan saw it, so it is not
                    # deleted (nor a reason to call the scan incomplete).
                    listed = self.record_resource
                    rejected = {
                        str(r.source_id)
                        for r in batch.rejects
                        if r.source_id is not None and listed in (None, r.resource)
                    }
                    loaded = (
                        {str(r.source_id) for r in batch.raw if listed in (None, r.resource)}
                        if land_raw
                        else set()
                    )
                    if seen_scan is not None and rejected - loaded:
                        await mark_seen(st, seen_scan, sorted(rejected - loaded))
                if nested and st.staged:
                    await st.conn.execute("; ".join(f"DELETE FROM {stage}" for stage in st.staged))
                for target, ids in (tombstones or {}).items():
                    await soft_delete(st.conn, target, st.source, ids)
                if after is not None:
                    await after(st.conn)
        except BaseException:
            for name in set(st.plans) - planned:  # their staging tables rolled back with the batch
                del st.plans[name]
                st.entity_plans.pop(name, None)
            raise
        counts.settle(self.main_tables)
        if not nested:
            await self._refresh_statistics(counts)
        return counts

    async def _refresh_statistics(self, counts: LoadCounts) -> None:
        """ANALYZE a table each time the rows this loader wrote into it double (from
        ``ANALYZE_MIN_ROWS``): a first scan fills tables faster than autovacuum looks at them, and a
        plan made on "76 rows" where there are 20,000 reads whole tables per batch. A few
        statements per scan (log2 of its size per table), each reading a sample."""
        for name, n in counts.tables.items():
            if not n:
                continue
            written = self._written.get(name, 0) + n
            before = self._analyzed.get(name, 0)
            if written < max(ANALYZE_MIN_ROWS, before):
                self._written[name] = written
                continue
            try:
                async with self.conn.transaction():
                    await self.conn.execute(f"SET LOCAL lock_timeout = '{ANALYZE_LOCK_TIMEOUT}'")
                    columns = await self._indexed_columns(name)
                    listed = f" ({', '.join(ident(c) for c in columns)})" if columns else ""
                    await self.conn.execute(f"ANALYZE {ident(name)}{listed}")
            except (asyncpg.LockNotAvailableError, asyncpg.InsufficientPrivilegeError):
                self._written[name] = written  # busy or not ours: autovacuum's job, try later
                continue
            self.analyzed += 1
            self._analyzed[name] = before + written
            self._written[name] = 0

    async def _indexed_columns(self, table: str) -> list[str]:
        """The columns ``table``'s indexes cover: what the loader's lookups, joins and conflict
        checks go through, so the statistics that choose its plans' access paths. ANALYZE of these alone
        still refreshes the row and page counts, costs a fraction of a full one (no statistics of
        synopses and other long text: 550-700 ms → 145 ms on the load benchmark's 200k-row table,
        where the four ANALYZEs of a first load took a sixth of its time) and, with a column list,
        leaves the table's change counter alone, so autovacuum still analyzes every column for
        users' queries."""
        columns = self._index_columns.get(table)
        if columns is None:
            columns = [
                r[0]
                for r in await self.conn.fetch(
                    "SELECT DISTINCT a.attname FROM pg_index i JOIN pg_attribute a "
                    "ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey) "
                    "WHERE i.indrelid = $1::regclass ORDER BY 1",
                    ident(table),
                )
            ]
            self._index_columns[table] = columns
        return columns

    async def _insert_rejects(self, batch: Batch) -> None:
        """Rejects with their payload: jsonb when it can hold it, else text (``load.poison``)."""
        rows = []
        for r in batch.rejects:
            as_json, as_text = reject_payload(r.payload)
            error = redact_text(r.error)
            rows.append((self.run_id, self.source, r.resource, r.source_id, as_json, as_text, error, r.url))
        await self.conn.executemany(
            "INSERT INTO etl.rejects "
            "(run_id, source, resource, source_id, payload, payload_text, error, url) "
            "VALUES ($1, $2, $3, $4, $5::text::jsonb, $6, $7, $8)",
            rows,
        )
