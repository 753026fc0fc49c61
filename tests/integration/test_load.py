"""The loader on real PostgreSQL: staged upserts, hashes, refs, links, raw landing, rejects, soft deletes."""

from __future__ import annotations

import hashlib
from typing import Any

import asyncpg
import orjson
import pytest

from pipeline.load import Loader, raw_hash, resolve_refs, row_hash, soft_delete, strip_paths
from pipeline.records import Batch, RawRecord
from tests.integration import loadkit
from tests.integration.loadkit import item, page_doc, transform

pytestmark = pytest.mark.db


@pytest.fixture
async def conn(pool: asyncpg.Pool) -> Any:
    async with pool.acquire() as c:
        await loadkit.create_tables(c)
        yield c


async def snapshot(conn: asyncpg.Connection) -> dict[str, list[dict[str, Any]]]:
    out = {}
    for table, order in (
        ("loadtest.shows", "source_id"),
        ("loadtest.studios", "source_id"),
        ("loadtest.show_tags", "show_id, tag"),
        ("raw.records", "source_id"),
    ):
        out[table] = [dict(r) for r in await conn.fetch(f"SELECT * FROM {table} ORDER BY {order}")]
    return out


async def test_same_pages_twice_change_nothing(conn: asyncpg.Connection) -> None:
    """Loading the same pages again rewrites no row: identical tables, zero inserts and updates."""
    loader = Loader(conn, "fake", run_id=None)
    docs = [page_doc([item(n) for n in range(k, k + 10)]) for k in (0, 10)]
    first = [await loader.load(transform(d)) for d in docs]
    assert sum(c.inserted for c in first) == 23  # 20 shows + 3 studios
    before = await snapshot(conn)
    again = [await loader.load(transform(d)) for d in docs]
    assert [(c.inserted, c.updated, c.raw_written, c.links_written) for c in again] == [(0, 0, 0, 0)] * 2
    assert sum(c.unchanged for c in again) == 26  # studios are seen on both pages
    assert await snapshot(conn) == before


async def test_changes_are_detected_but_volatile_fields_are_not(conn: asyncpg.Connection) -> None:
    """A changed title updates one row; a change only in volatile fields updates nothing."""
    loader = Loader(conn, "fake", run_id=7)
    await loader.load(transform(page_doc([item(1), item(2)])))
    volatile = await loader.load(
        transform(page_doc([item(1, popularity=999, links={**item(1)["links"], "expires": 5}), item(2)]))
    )
    assert (volatile.updated, volatile.raw_written) == (0, 0)
    changed = await loader.load(transform(page_doc([item(1, title="New"), item(2)])))
    assert (changed.updated, changed.unchanged) == (1, 3)
    row = await conn.fetchrow("SELECT title, popularity, run_id FROM loadtest.shows WHERE source_id = '1'")
    assert (row["title"], row["popularity"], row["run_id"]) == ("New", 3, 7)
    payload = await conn.fetchval("SELECT payload FROM raw.records WHERE source_id = '1'")
    assert payload["title"] == "New"


async def test_last_record_of_a_batch_wins(conn: asyncpg.Connection) -> None:
    """Two versions of one record in one batch: the later one is stored, once."""
    loader = Loader(conn, "fake", run_id=None)
    counts = await loader.load(transform(page_doc([item(1, title="Old"), item(1, title="Newer")])))
    assert counts.inserted == 2  # one show, one studio
    assert await conn.fetchval("SELECT title FROM loadtest.shows") == "Newer"
    assert await conn.fetchval("SELECT count(*) FROM raw.records") == 1


async def test_missing_refs_are_null_then_resolved(conn: asyncpg.Connection) -> None:
    """A reference to a row not loaded yet is NULL, and resolve_refs fills it once the target exists."""
    loader = Loader(conn, "fake", run_id=None)
    batch = transform(page_doc([item(1)]))
    studios = batch.rows.pop("loadtest.studios")
    await loader.load(batch)
    assert await conn.fetchval("SELECT studio_id FROM loadtest.shows") is None
    await loader.load(Batch(rows={"loadtest.studios": studios}))
    assert await resolve_refs(conn, "fake") == 1
    resolved = await conn.fetchval(
        "SELECT s.source_id FROM loadtest.shows sh JOIN loadtest.studios s ON s.id = sh.studio_id"
    )
    assert resolved == "st1"


async def test_links_are_replaced_by_difference(conn: asyncpg.Connection) -> None:
    """An owner's links become the batch's set; only the removed and added links are written."""
    loader = Loader(conn, "fake", run_id=None)
    await loader.load(transform(page_doc([item(1, tags=["a", "b"]), item(2, tags=["x"])])))
    counts = await loader.load(transform(page_doc([item(1, tags=["b", "c"])])))
    assert counts.links_written == 2  # a removed, c added
    tags = await conn.fetch(
        "SELECT s.source_id, t.tag FROM loadtest.show_tags t "
        "JOIN loadtest.shows s ON s.id = t.show_id ORDER BY 1, 2"
    )
    assert [tuple(r) for r in tags] == [("1", "b"), ("1", "c"), ("2", "x")]
    emptied = await loader.load(transform(page_doc([item(2, tags=[])])))
    assert emptied.links_written == 1
    assert await conn.fetchval("SELECT count(*) FROM loadtest.show_tags") == 2


async def test_owner_rows_of_another_stream_keep_their_links(conn: asyncpg.Connection) -> None:
    """A show met in another stream's page (an included resource) does not wipe the links it lacks."""
    await Loader(conn, "fake", run_id=None).load(transform(page_doc([item(1, tags=["a", "b"])])))
    other_stream = Loader(conn, "fake", run_id=None, owned_tables=("loadtest.studios",))
    batch = transform(page_doc([item(1, tags=[])]))
    counts = await other_stream.load(batch)
    assert counts.links_written == 0
    tags = await conn.fetch("SELECT tag FROM loadtest.show_tags ORDER BY tag")
    assert [r["tag"] for r in tags] == ["a", "b"]
    own_stream = Loader(conn, "fake", run_id=None, owned_tables=("loadtest.shows",))
    assert (await own_stream.load(batch)).links_written == 2
    assert await conn.fetchval("SELECT count(*) FROM loadtest.show_tags") == 0


async def test_rejects_land_and_the_rest_of_the_page_loads(conn: asyncpg.Connection) -> None:
    """A record that fails to transform goes to etl.rejects; its raw payload and the other rows still load."""
    loader = Loader(conn, "fake", run_id=None)
    counts = await loader.load(transform(page_doc([item(1), item(2, title=None), item(3)])))
    assert counts.rejected == 1
    assert await conn.fetchval("SELECT count(*) FROM loadtest.shows") == 2
    reject = await conn.fetchrow("SELECT source, resource, source_id, payload, error FROM etl.rejects")
    assert (reject["source"], reject["source_id"], reject["error"]) == ("fake", "2", "title missing")
    assert reject["payload"]["id"] == "2"
    assert await conn.fetchval("SELECT count(*) FROM raw.records") == 3


async def test_soft_deleted_rows_come_back_when_seen(conn: asyncpg.Connection) -> None:
    """soft_delete marks rows gone; seeing the same unchanged record again clears deleted_at."""
    loader = Loader(conn, "fake", run_id=None)
    await loader.load(transform(page_doc([item(1), item(2)])))
    assert await soft_delete(conn, "loadtest.shows", "fake", ["1"]) == 1
    assert await soft_delete(conn, loadkit.RESOURCE, "fake", ["1"]) == 1
    assert await conn.fetchval("SELECT count(*) FROM loadtest.shows WHERE deleted_at IS NOT NULL") == 1
    counts = await loader.load(transform(page_doc([item(1)])))
    assert counts.updated == 1
    assert await conn.fetchval("SELECT count(*) FROM loadtest.shows WHERE deleted_at IS NOT NULL") == 0
    assert await conn.fetchval("SELECT count(*) FROM raw.records WHERE deleted_at IS NOT NULL") == 0


async def test_a_failed_batch_leaves_nothing_behind(conn: asyncpg.Connection) -> None:
    """When the after-hook fails, the batch's rows roll back with it (one transaction per batch)."""
    loader = Loader(conn, "fake", run_id=None)

    async def broken(_: asyncpg.Connection) -> None:
        raise RuntimeError("checkpoint write failed")

    with pytest.raises(RuntimeError, match="checkpoint write failed"):
        await loader.load(transform(page_doc([item(1)])), after=broken)
    assert await conn.fetchval("SELECT count(*) FROM loadtest.shows") == 0
    assert await conn.fetchval("SELECT count(*) FROM raw.records") == 0


def test_hashes_ignore_key_order_and_volatile_paths() -> None:
    """Content hashes do not depend on key order; raw hashes skip the dotted volatile paths."""
    assert row_hash([{"a": 1, "b": 2}]) == row_hash([{"b": 2, "a": 1}])
    assert row_hash(["x", None]) != row_hash([None, "x"])
    one = RawRecord("r", "1", {"id": 1, "meta": {"expires": 1, "k": 2}}, volatile=("meta.expires",))
    two = RawRecord("r", "1", {"meta": {"k": 2, "expires": 9}, "id": 1}, volatile=("meta.expires",))
    assert raw_hash(one)[0] == raw_hash(two)[0]
    assert strip_paths({"a": {"b": 1, "c": 2}, "d": 3}, ("a.b", "x.y", "d")) == {"a": {"c": 2}}


async def test_raw_payload_is_the_hashed_text(conn: asyncpg.Connection) -> None:
    """raw.records keeps, as json, exactly the bytes its content_hash was computed from: on the first
    landing (COPY) and on a changed re-landing (staged upsert). Volatile keys stay out of the hash."""

    def plain(n: int, title: str) -> Batch:
        batch = Batch()
        batch.raw.append(RawRecord("notes", str(n), {"id": n, "title": title, "tags": ["a", None, 1.5]}))
        return batch

    loader = Loader(conn, "fake", run_id=None)
    await loader.load(plain(1, 'ショー "q"\n'))  # first landing: COPY
    await loader.load(transform(page_doc([item(1), item(2)])))  # volatile-keyed records
    await loader.load(plain(1, "Changed"))  # staged upsert of a changed record
    await loader.load(transform(page_doc([item(1, title="New"), item(2)])))
    assert (
        await conn.fetchval(
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
            "WHERE attrelid = 'raw.records'::regclass AND attname = 'payload'"
        )
        == "json"
    )
    rows = await conn.fetch(
        "SELECT resource, source_id, payload::text AS text, content_hash FROM raw.records ORDER BY 1, 2"
    )
    assert [(r["resource"], r["source_id"]) for r in rows] == [("notes", "1"), ("shows", "1"), ("shows", "2")]
    for r in rows:
        stored = r["text"].encode()
        volatile = ("links.expires", "popularity") if r["resource"] == "shows" else ()
        digest, text = raw_hash(RawRecord(r["resource"], r["source_id"], orjson.loads(stored), volatile))
        assert text.encode() == stored  # what the loader serialises is what PostgreSQL keeps
        assert r["content_hash"] == digest
    note = rows[0]
    assert note["content_hash"] == hashlib.blake2b(note["text"].encode(), digest_size=16).digest()
    assert orjson.loads(note["text"])["title"] == "Changed"
    assert (
        await conn.fetchval(
            "SELECT payload->>'title' FROM raw.records WHERE resource = 'shows' AND source_id = '1'"
        )
        == "New"
    )
