"""The loader's first-load path (COPY straight into a table with no rows of the source) on real PostgreSQL.

Whatever path a batch takes, the stored rows, hashes, resolved references and counts must be those
of the general staged merge; an id met again (a later batch, another stream) falls back to it.
"""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from pipeline import tables
from pipeline.load import LoadCounts, Loader
from pipeline.records import Batch, RawRecord
from pipeline.tables import EntityTable, Ref

pytestmark = pytest.mark.db

DDL = """
CREATE SCHEMA IF NOT EXISTS firstload;
CREATE TABLE firstload.parents (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source text NOT NULL, source_id text NOT NULL, source_updated_at timestamptz, content_hash bytea,
    synced_at timestamptz, deleted_at timestamptz, run_id bigint,
    name text, born date, rank integer,
    UNIQUE (source, source_id)
);
CREATE TABLE firstload.children (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source text NOT NULL, source_id text NOT NULL, source_updated_at timestamptz, content_hash bytea,
    synced_at timestamptz, deleted_at timestamptz, run_id bigint,
    label text, score numeric(5, 2),
    parent_source_id text, parent_id bigint REFERENCES firstload.parents (id),
    sibling_id bigint REFERENCES firstload.children (id),
    UNIQUE (source, source_id)
);
CREATE TABLE firstload.notes (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source text NOT NULL, source_id text NOT NULL, source_updated_at timestamptz, content_hash bytea,
    synced_at timestamptz, deleted_at timestamptz, run_id bigint,
    body jsonb, parent_source_id text, parent_id bigint,
    UNIQUE (source, source_id)
);
"""

PARENTS = EntityTable("firstload.parents", columns=("name", "born", "rank"), volatile=("rank",))
CHILDREN = EntityTable(
    "firstload.children",
    columns=("label", "score", "parent_source_id"),
    refs=(
        Ref("parent_id", "firstload.parents", "parent_source_id"),
        Ref("sibling_id", "firstload.children", "sibling_source_id", keep_natural=False),
    ),
)
NOTES = EntityTable(
    "firstload.notes",
    columns=("body", "parent_source_id"),
    refs=(Ref("parent_id", "firstload.parents", "parent_source_id"),),
    json_columns=("body",),
)
tables.register(PARENTS, CHILDREN, NOTES)
TABLES = ("firstload.parents", "firstload.children", "firstload.notes")


@pytest.fixture
async def conn(pool: asyncpg.Pool) -> Any:
    async with pool.acquire() as c:
        await c.execute(DDL)
        yield c


def batch(ids: range | list[int], *, label: str = "L", parents: bool = True) -> Batch:
    """One page: a parent, a child and a note per id; child n points at parent n and sibling n-1."""
    out = Batch()
    for n in ids:
        payload = {"id": n, "label": label, "name": 'ショー\n"q"', "meta": {"expires": n, "k": [1.5, None]}}
        out.raw.append(RawRecord("things", str(n), payload, volatile=("meta.expires",)))
        if parents:
            out.add(
                "firstload.parents",
                {
                    "source_id": f"p{n}",
                    "name": f"P{n}",
                    "born": "2001-02-03",
                    "rank": n,
                    "source_updated_at": None,
                },
            )
        out.add(
            "firstload.children",
            {
                "source_id": str(n),
                "source_updated_at": "2024-01-02T03:04:05+00:00",
                "label": f"{label}{n}",
                "score": 71.5,
                "parent_source_id": f"p{n}",
                "sibling_source_id": str(n - 1),
            },
        )
        out.add(
            "firstload.notes",
            {"source_id": str(n), "body": {"n": n, "tags": ["a"]}, "parent_source_id": f"p{n}"},
        )
    return out


async def rows(conn: asyncpg.Connection, source: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every stored row of ``source``, surrogate ids replaced by the natural keys they point at."""
    return {
        "parents": [
            tuple(r)
            for r in await conn.fetch(
                "SELECT source_id, name, born, rank, content_hash, deleted_at, run_id, "
                "source_updated_at FROM firstload.parents WHERE source = $1 ORDER BY source_id",
                source,
            )
        ],
        "children": [
            tuple(r)
            for r in await conn.fetch(
                "SELECT c.source_id, c.label, c.score, c.parent_source_id, p.source_id, s.source_id, "
                "c.content_hash, c.source_updated_at, c.run_id, c.synced_at = now() "
                "FROM firstload.children c LEFT JOIN firstload.parents p ON p.id = c.parent_id "
                "LEFT JOIN firstload.children s ON s.id = c.sibling_id "
                "WHERE c.source = $1 ORDER BY c.source_id",
                source,
            )
        ],
        "raw": [
            tuple(r)
            for r in await conn.fetch(
                "SELECT source_id, resource, payload::text, content_hash, run_id, deleted_at, "
                "first_seen_at = now(), last_seen_at = now(), last_changed_at = now() "
                "FROM raw.records WHERE source = $1 ORDER BY source_id",
                source,
            )
        ],
        "notes": [
            tuple(r)
            for r in await conn.fetch(
                "SELECT n.source_id, n.body::text, p.source_id, n.content_hash FROM firstload.notes n "
                "LEFT JOIN firstload.parents p ON p.id = n.parent_id WHERE n.source = $1 ORDER BY 1",
                source,
            )
        ],
    }


async def load_all(loader: Loader, batches: list[Batch]) -> list[tuple[int, ...]]:
    out = []
    for b in batches:
        c = await loader.load(b)
        out.append((c.inserted, c.updated, c.unchanged, c.raw_written))
    return out


def pages() -> list[Batch]:
    """Four pages: ids repeat across pages (one changed), children of parents not loaded yet."""
    return [batch(range(1, 6)), batch([5, 6, 7], label="M"), batch([8, 9], parents=False), batch(range(1, 4))]


async def general_path_loader(conn: asyncpg.Connection, source: str) -> Loader:
    """A loader that merges every batch: the tables already hold a (different) row of ``source``."""
    seed = Batch()
    seed.add("firstload.parents", {"source_id": "seed", "name": "seed"})
    seed.add("firstload.children", {"source_id": "seed", "label": "seed"})
    seed.add("firstload.notes", {"source_id": "seed"})
    seed.raw.append(RawRecord("things", "seed", {}))
    await Loader(conn, source, run_id=3).load(seed)
    return Loader(conn, source, run_id=3)


def without_seed(stored: dict[str, list[tuple[Any, ...]]]) -> dict[str, list[tuple[Any, ...]]]:
    return {t: [r for r in rs if r[0] != "seed"] for t, rs in stored.items()}


async def test_first_load_stores_what_the_general_merge_stores(conn: asyncpg.Connection) -> None:
    """Rows, hashes, resolved refs and counts of a first load equal those of the staged merge."""
    async with conn.transaction():  # one transaction: synced_at = now() in both paths
        fast = await load_all(Loader(conn, "fast", run_id=3), pages())
        general = await load_all(await general_path_loader(conn, "general"), pages())
        assert fast == general
        fast_rows, general_rows = await rows(conn, "fast"), without_seed(await rows(conn, "general"))
    assert fast_rows == general_rows
    children = {r[0]: r for r in fast_rows["children"]}
    assert children["5"][1] == "M5"  # the later version won
    assert (children["2"][4], children["8"][3], children["8"][4]) == ("p2", "p8", None)  # p8 never came
    assert (children["6"][5], children["7"][5], children["2"][5]) == ("5", None, None)  # siblings of a page
    assert all(r[-1] for r in fast_rows["children"])  # synced_at is the transaction's time
    assert len(fast_rows["raw"]) == 9
    assert all(r[-3:] == (True, True, True) for r in fast_rows["raw"])


async def test_an_id_seen_twice_by_a_scan_is_recorded_once(conn: asyncpg.Connection) -> None:
    """etl.scan_seen takes each id of a scan once, also when a later page repeats an id."""
    loader = Loader(conn, "fast", run_id=None)
    await loader.load(batch([1, 2]), seen_scan="scan-a")
    await loader.load(batch([2, 3]), seen_scan="scan-a")
    await loader.load(batch([4]), seen_scan="scan-a")
    await Loader(conn, "fast", run_id=None).load(batch([1]), seen_scan="scan-b")
    seen = await conn.fetch("SELECT scan_id, source_id FROM etl.scan_seen ORDER BY 1, 2")
    assert [tuple(r) for r in seen] == [
        ("scan-a", "1"),
        ("scan-a", "2"),
        ("scan-a", "3"),
        ("scan-a", "4"),
        ("scan-b", "1"),
    ]


async def test_first_load_counts_every_row_as_inserted(conn: asyncpg.Connection) -> None:
    """Into empty tables every row is an insert; a repeated id falls back to the merge and counts as it."""
    loader = Loader(conn, "fast", run_id=None)
    first = await loader.load(batch(range(1, 4)))
    assert (first.inserted, first.updated, first.unchanged) == (9, 0, 0)
    assert first.tables == {"firstload.parents": 3, "firstload.children": 3, "firstload.notes": 3}
    again = await loader.load(batch([3, 4], label="M"))
    # parent p3 unchanged; child 3 and note 3 … only the child's label changed
    assert (again.inserted, again.updated, again.unchanged) == (3, 1, 2)
    assert await conn.fetchval("SELECT count(*) FROM firstload.children") == 4


async def test_a_rerun_after_a_first_load_changes_nothing(conn: asyncpg.Connection) -> None:
    """Tables filled by first-load COPYs are identical and unwritten when the same pages load again."""
    same = [batch(range(1, 6)), batch([5, 6, 7]), batch([8, 9], parents=False)]
    await load_all(Loader(conn, "fast", run_id=None), same)
    before = await conn.fetch("SELECT xmin::text, * FROM firstload.children ORDER BY id")
    counts = LoadCounts()
    for b in [batch(range(1, 6)), batch([5, 6, 7]), batch([8, 9], parents=False)]:
        counts.add(await Loader(conn, "fast", run_id=None).load(b))
    assert (counts.inserted, counts.updated, counts.raw_written) == (0, 0, 0)
    assert await conn.fetch("SELECT xmin::text, * FROM firstload.children ORDER BY id") == before


async def test_a_failed_first_load_batch_leaves_nothing(conn: asyncpg.Connection) -> None:
    """A first-load COPY rolls back with its batch when the after-hook fails; the retry loads it."""

    async def broken(_: asyncpg.Connection) -> None:
        raise RuntimeError("checkpoint write failed")

    loader = Loader(conn, "fast", run_id=None)
    with pytest.raises(RuntimeError, match="checkpoint write failed"):
        await loader.load(batch(range(1, 4)), after=broken)
    for table in TABLES:
        assert await conn.fetchval(f"SELECT count(*) FROM {table}") == 0
    retried = await loader.load(batch(range(1, 4)))
    assert (retried.inserted, retried.updated) == (9, 0)


async def test_another_writer_in_between_is_merged_not_duplicated(conn: asyncpg.Connection) -> None:
    """Rows another loader wrote after this one's first batch make its next batch merge, not fail."""
    mine = Loader(conn, "fast", run_id=None)
    await mine.load(batch([1]))
    await Loader(conn, "fast", run_id=None).load(batch([2, 3], label="X"))
    counts = await mine.load(batch([3, 4]))
    assert (counts.inserted, counts.updated) == (3, 1)  # p4, child 4, note 4; child 3 relabelled
    labels = await conn.fetch("SELECT source_id, label FROM firstload.children ORDER BY source_id")
    assert [tuple(r) for r in labels] == [("1", "L1"), ("2", "X2"), ("3", "L3"), ("4", "L4")]
