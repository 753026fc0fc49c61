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
what is gone, insert what is new); entity rows a batch holds completely per owner
(``Batch.replaced``: an AniList media's nested studios, tags, characters, ...) soft-delete that
owner's rows the batch no longer holds (``children``). ``raw.records`` takes the same staged path keyed by the
payload's hash minus ``RawRecord.volatile`` paths. Rejects are inserted as they are. The caller's
``after`` hook (checkpoint advance) runs last, inside the same transaction.

Files: ``loader`` (the transaction), ``entities``, ``links``, ``children``, ``raw`` (what it
writes), ``deletes`` (late references, soft deletes), ``staging`` (one connection's staging tables
and first-load flags), ``plans`` (staging layouts, quoting, merge SQL), ``hashing``, ``counts``.
"""

from pipeline.load.counts import LoadCounts
from pipeline.load.deletes import delete_ids, resolve_refs, soft_delete
from pipeline.load.hashing import raw_hash, row_hash, strip_paths
from pipeline.load.loader import AfterHook, Loader

__all__ = [
    "AfterHook",
    "LoadCounts",
    "Loader",
    "delete_ids",
    "raw_hash",
    "resolve_refs",
    "row_hash",
    "soft_delete",
    "strip_paths",
]
