"""Test tables, specs, a transform and a fake connector that prove the loader and runner are generic."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from pipeline import tables
from pipeline.http import RequestStats
from pipeline.records import Batch, RawRecord, Reject
from pipeline.settings import PipelineSettings, Settings, SourceSettings
from pipeline.streams import Page, StreamState
from pipeline.tables import EntityTable, LinkTable, Ref
from pipeline.transform import ResourceTransform, register

DDL = """
CREATE SCHEMA IF NOT EXISTS loadtest;
CREATE TABLE loadtest.studios (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source text NOT NULL, source_id text NOT NULL, source_updated_at timestamptz, content_hash bytea,
    synced_at timestamptz, deleted_at timestamptz, run_id bigint,
    name text,
    UNIQUE (source, source_id)
);
CREATE TABLE loadtest.shows (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source text NOT NULL, source_id text NOT NULL, source_updated_at timestamptz, content_hash bytea,
    synced_at timestamptz, deleted_at timestamptz, run_id bigint,
    title text, score numeric, start_date date, popularity integer, extra jsonb,
    studio_source_id text, studio_id bigint REFERENCES loadtest.studios (id),
    UNIQUE (source, source_id)
);
CREATE TABLE loadtest.show_tags (
    show_id bigint NOT NULL REFERENCES loadtest.shows (id),
    tag text NOT NULL,
    PRIMARY KEY (show_id, tag)
);
"""

STUDIOS = EntityTable("loadtest.studios", columns=("name",))
SHOWS = EntityTable(
    "loadtest.shows",
    columns=("title", "score", "start_date", "popularity", "extra", "studio_source_id"),
    refs=(Ref("studio_id", "loadtest.studios", "studio_source_id"),),
    volatile=("popularity",),
    json_columns=("extra",),
)
SHOW_TAGS = LinkTable(
    "loadtest.show_tags",
    owner=Ref("show_id", "loadtest.shows", "show_source_id", keep_natural=False),
    columns=("tag",),
)
tables.register(STUDIOS, SHOWS, SHOW_TAGS)

RESOURCE = "shows"


async def create_tables(conn: asyncpg.Connection) -> None:
    await conn.execute(DDL)


def item(n: int, **over: Any) -> dict[str, Any]:
    """One source record as an API would send it."""
    base: dict[str, Any] = {
        "id": str(n),
        "title": f"Show {n}",
        "score": "71.5",
        "start": "2017-07-01",
        "popularity": n * 3,
        "studio": f"st{n % 3}",
        "tags": ["action", f"t{n % 4}"],
        "extra": {"b": 1, "a": [n]},
        "updatedAt": "2024-01-02T03:04:05+00:00",
        "links": {"self": f"https://example.invalid/{n}", "expires": n},
    }
    base.update(over)
    return base


def page_doc(items: Sequence[dict[str, Any]], total: int | None = None) -> dict[str, Any]:
    return {"data": list(items), "meta": {"count": total}}


def transform(doc: dict[str, Any]) -> Batch:
    """Pure: a page document → raw records, shows, studios, tag links; a record without title is rejected."""
    batch = Batch()
    for rec in doc["data"]:
        batch.raw.append(RawRecord(RESOURCE, rec["id"], rec, volatile=("links.expires", "popularity")))
        if not rec.get("title"):
            batch.rejects.append(Reject(RESOURCE, rec["id"], rec, "title missing"))
            continue
        batch.add("loadtest.studios", {"source_id": rec["studio"], "name": rec["studio"].upper()})
        batch.add(
            "loadtest.shows",
            {
                "source_id": rec["id"],
                "source_updated_at": rec["updatedAt"],
                "title": rec["title"],
                "score": float(rec["score"]),
                "start_date": rec["start"],
                "popularity": rec["popularity"],
                "extra": rec["extra"],
                "studio_source_id": rec["studio"],
            },
        )
        for tag in rec["tags"]:
            batch.add("loadtest.show_tags", {"show_source_id": rec["id"], "tag": tag})
    return batch


# The fake source is of kind "nekos" (settings accept the five connector kinds); its resource
# "shows" exists only here, so its transform is registered next to the table specs.
KIND = "nekos"
register(KIND, {RESOURCE: ResourceTransform(transform, wrap=page_doc)})


def settings(name: str = "fake", **pipeline: Any) -> Settings:
    src = SourceSettings(
        name=name,
        kind=KIND,
        base_url="http://127.0.0.1:9",
        resources=(RESOURCE,),
        rate={"requests": 1, "per_seconds": 1.0},
        max_in_flight=1,
        page_size=25,
    )
    return Settings(sources={name: src}, pipeline=PipelineSettings(**pipeline))


@dataclass
class FakeStream:
    """Pages from a list; ``order`` permutes them (parallel fetching); ``on_page`` may crash or wait."""

    source: SourceSettings
    docs: list[dict[str, Any]]
    resource: str = RESOURCE
    incremental: bool = False
    owned_tables: tuple[str, ...] = ("loadtest.shows",)
    auth_identity: str = "anonymous"
    order: Sequence[int] | None = None
    cursors: Sequence[Any] | None = None
    fail_after: int | None = None  # raise after yielding this many pages
    on_page: Callable[[int], Any] | None = None
    stats: RequestStats = field(default_factory=RequestStats)
    started_with: list[tuple[str, Any, list[list[int]]]] = field(default_factory=list)
    looked_up: list[str] = field(default_factory=list)  # ids the runner asked about after a scan

    async def pages(self, state: StreamState) -> AsyncIterator[Page]:
        self.started_with.append((state.mode, state.cursor, state.committed.ranges()))
        yielded = 0
        for n in self.order if self.order is not None else range(len(self.docs)):
            if state.mode != "incremental" and n in state.committed:
                continue
            if self.fail_after is not None and yielded >= self.fail_after:
                raise RuntimeError("connection reset by fake server")
            if self.on_page is not None:
                await _maybe_await(self.on_page(n))
            self.stats.requests += 1
            doc = self.docs[n]
            cursor = self.cursors[n] if self.cursors is not None else None
            yield Page(doc, key=n, cursor=cursor, expected_total=doc["meta"]["count"], nbytes=100)
            yielded += 1

    async def lookup(self, ids: Sequence[str]) -> AsyncIterator[Page]:
        """The records among ``ids`` that the fake source still serves (its docs), as one page."""
        wanted = set(ids)
        self.looked_up.extend(sorted(wanted))
        found = [rec for doc in self.docs for rec in doc["data"] if str(rec.get("id")) in wanted]
        self.stats.requests += 1
        yield Page(page_doc(found), nbytes=100)


async def _maybe_await(value: Any) -> None:
    if hasattr(value, "__await__"):
        await value


def factory(streams: dict[str, FakeStream]) -> Callable[[SourceSettings, str, Any], FakeStream]:
    def build(src: SourceSettings, resource: str, client: Any) -> FakeStream:
        return streams[src.name]

    return build
