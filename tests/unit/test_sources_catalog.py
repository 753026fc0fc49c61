"""Catalogue connectors without a network: concurrency helper, Kitsu documents, AniList walks, v1 scans."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from pipeline.auth import NoAuth
from pipeline.errors import FatalError
from pipeline.settings import SourceSettings, parse_settings
from pipeline.sources import anilist, anilist_v1, kitsu
from pipeline.sources.common import auth_identity, completed
from pipeline.streams import Page, StreamState
from pipeline.transform import transform

NOW = datetime(2025, 1, 1, tzinfo=UTC)
PASSWORD_AUTH = {"kind": "oauth_password", "username": "Me@Example.com", "password": "pw"}


def source(kind: str, **extra: Any) -> SourceSettings:
    body = {"kind": kind, "base_url": "http://127.0.0.1:9/api", **extra}
    return parse_settings({"sources": {kind: body}}, Path("unit.toml"), {}).sources[kind]


def state(mode: str = "full", cursor: Any = None) -> StreamState:
    return StreamState("src", "anime", mode, NOW, cursor=cursor)  # type: ignore[arg-type]


@dataclass
class Answer:
    data: Any
    nbytes: int = 10


class FakeClient:
    """Answers each request with ``reply(method, url, params, json)`` and records the requests."""

    def __init__(self, reply: Callable[[str, str, Any, Any], Any]) -> None:
        self.reply = reply
        self.calls: list[tuple[str, str, Any, Any]] = []

    async def request(
        self, method: str, url: str, *, params: Any = None, json: Any = None, stats: Any = None
    ) -> Answer:
        self.calls.append((method, url, params, json))
        return Answer(self.reply(method, url, params, json))


async def collect(pages: Any) -> list[Page]:
    return [page async for page in pages]


# -- completed ------------------------------------------------------------------------------------


async def test_completed_yields_in_completion_order_within_the_width() -> None:
    """Results come as they finish, and never more than ``width`` fetches run at once."""
    gates = {n: asyncio.Event() for n in range(4)}
    running, peak = 0, 0

    async def fetch(n: int) -> int:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await gates[n].wait()
        running -= 1
        return n

    async def release() -> None:
        for n in (1, 0, 3, 2):
            await asyncio.sleep(0)
            gates[n].set()
            for _ in range(5):
                await asyncio.sleep(0)

    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(release())
        order = [n async for n in completed(range(4), fetch, 2)]
    assert order == [1, 0, 3, 2]
    assert peak == 2


async def test_completed_raises_the_first_failure_itself() -> None:
    """A failing fetch surfaces as its own exception, not an exception group."""

    async def fetch(n: int) -> int:
        if n == 2:
            raise FatalError("page 2 broke")
        return n

    with pytest.raises(FatalError, match="page 2 broke"):
        await collect(completed(range(5), fetch, 3))


# -- Kitsu ----------------------------------------------------------------------------------------


def anime(ident: str, subtype: str = "TV", categories: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "id": ident,
        "type": "anime",
        "attributes": {
            "canonicalTitle": f"Title {ident}",
            "titles": {"en_jp": f"Title {ident}"},
            "subtype": subtype,
        },
        "relationships": {"categories": {"data": [{"type": "categories", "id": c} for c in categories]}},
    }


CATEGORY = {"id": "7", "type": "categories", "attributes": {"title": "Mecha", "slug": "mecha"}}


def test_kitsu_anime_pages_keep_linkage_but_not_included_copies() -> None:
    """Anime pages yield media and media_genres; included categories are left to their own stream."""
    batch = transform("kitsu", "anime", {"data": [anime("12", categories=("7",))], "included": [CATEGORY]})
    assert [(r.resource, r.source_id) for r in batch.raw] == [("anime", "anime/12")]
    assert batch.rows["catalog.media_genres"] == [{"media_source_id": "anime/12", "genre_source_id": "7"}]
    assert "catalog.genres" not in batch.rows


def test_kitsu_characters_stream_keeps_included_characters() -> None:
    """media-characters pages land both the roles and the included characters."""
    role = {
        "id": "99",
        "type": "mediaCharacters",
        "attributes": {"role": "main"},
        "relationships": {"character": {"data": {"type": "characters", "id": "5"}}},
    }
    character = {"id": "5", "type": "characters", "attributes": {"canonicalName": "Rei"}}
    batch = transform("kitsu", "characters", {"data": [role], "included": [character]})
    assert sorted((r.resource, r.source_id) for r in batch.raw) == [
        ("characters", "5"),
        ("media-characters", "99"),
    ]
    assert batch.rows["catalog.characters"][0]["name"] == "Rei"


def test_kitsu_reports_unknown_subtypes_for_the_runner_to_log() -> None:
    """An unmapped subtype is stored as unknown and named in Batch.unknown."""
    batch = transform("kitsu", "anime", {"data": [anime("1", subtype="hologram")]})
    assert batch.rows["catalog.media"][0]["format"] == "unknown"
    assert batch.unknown == [("kitsu.anime.subtype", "hologram")]


def test_kitsu_identity_and_client_options_follow_auth() -> None:
    """R18 needs auth: with it the identity is the user; without it (or include_r18 off) anonymous."""
    authed = source("kitsu", auth=PASSWORD_AUTH)
    opted_out = source("kitsu", auth=PASSWORD_AUTH, include_r18=False)
    assert kitsu.KitsuStream(authed, "anime", None).auth_identity == "user:me@example.com"  # type: ignore[arg-type]
    assert kitsu.KitsuStream(opted_out, "anime", None).auth_identity == "anonymous"  # type: ignore[arg-type]
    assert kitsu.client_options(authed) == {"headers": {"Accept": "application/vnd.api+json"}}
    assert isinstance(kitsu.client_options(opted_out)["auth"], NoAuth)
    assert auth_identity(source("kitsu")) == "anonymous"


async def test_kitsu_scan_plans_pages_from_meta_count_and_skips_committed() -> None:
    """Page 0 gives meta.count; the other pages are requested once each; committed ones are skipped."""

    def reply(method: str, url: str, params: Any, json: Any) -> Any:
        offset = int(params["page[offset]"])
        return {
            "data": [anime(str(offset + i + 1)) for i in range(min(20, 65 - offset))],
            "meta": {"count": 65},
        }

    client = FakeClient(reply)
    resumed = state()
    resumed.committed.add(2)
    pages = await collect(kitsu.KitsuStream(source("kitsu"), "anime", client).pages(resumed))  # type: ignore[arg-type]
    assert sorted(int(p[2]["page[offset]"]) for p in client.calls) == [0, 20, 60]
    assert sorted(p.key for p in pages if p.key is not None) == [0, 1, 3]
    assert pages[-1].expected_total == 65
    assert all(c[2]["sort"] == "id" and c[2]["include"] == "categories" for c in client.calls)
    assert all(c[2]["fields[categories]"] == "slug" for c in client.calls)  # included copies: linkage only


async def test_kitsu_empty_catalogue_never_reports_a_total() -> None:
    """meta.count 0 is treated as a glitch: the scan completes without licence to delete."""
    client = FakeClient(lambda *a: {"data": [], "meta": {"count": 0}})
    pages = await collect(kitsu.KitsuStream(source("kitsu"), "manga", client).pages(state()))  # type: ignore[arg-type]
    assert len(client.calls) == 1
    assert pages[-1].expected_total is None


# -- AniList ----------------------------------------------------------------------------------------


def covers(part: anilist.Partition, fuzzy: int) -> bool:
    return part.above < fuzzy < part.below


def test_partitions_put_every_dated_work_in_exactly_one_range() -> None:
    """startDate_greater/lesser ranges tile the fuzzy dates, year-only and month-only ones included."""
    parts = [p for p in anilist.partitions([2000, 2010]) if not p.undated]
    for fuzzy in (19991231, 20000000, 20000100, 20000101, 20091231, 20100000, 20250700, 19650000):
        assert sum(covers(p, fuzzy) for p in parts) == 1, fuzzy
    assert parts[1].variables == {"startDate_greater": 19999999, "startDate_lesser": 20100000}
    assert [p.variables for p in anilist.partitions([2000]) if p.undated] == [
        {"sort": ["START_DATE", "ID"]},
        {"sort": ["START_DATE_DESC", "ID"]},
    ]


def test_partition_splits_at_years_then_months_then_days() -> None:
    """Halves tile their parent exactly; a single day cannot be split."""
    decade = anilist.Partition(20099999, 20200000)
    first, second = decade.split() or pytest.fail("a decade splits")
    assert (first.below, second.above) == (20150000, 20149999)
    month = anilist.Partition(20170699, 20170800)
    early, late = month.split() or pytest.fail("a month splits")
    assert (early.below, late.above) == (20170716, 20170715)
    for fuzzy in (20170700, 20170701, 20170715, 20170716, 20170731):
        assert covers(early, fuzzy) + covers(late, fuzzy) == 1
    assert anilist.Partition(20170714, 20170716).split() is None
    assert anilist.Partition(sort=("START_DATE",)).split() is None


def media_page(items: list[dict[str, Any]], more: bool) -> dict[str, Any]:
    return {"data": {"Page": {"pageInfo": {"hasNextPage": more}, "media": items}}}


async def test_anilist_nightly_walk_stops_at_the_checkpoint_and_sets_the_cursor_last() -> None:
    """UPDATED_AT_DESC pages are read until one crosses the checkpoint; only the last carries the cursor."""
    stamps = [500, 400, 300, 200, 100, 50]

    def reply(method: str, url: str, params: Any, json: Any) -> Any:
        page = json["variables"]["page"]
        chunk = stamps[(page - 1) * 2 : page * 2]
        return media_page([{"id": t, "updatedAt": t} for t in chunk], more=page < 3)

    client = FakeClient(reply)
    stream = anilist.AniListStream(source("anilist", page_size=2), "anime", client)  # type: ignore[arg-type]
    pages = await collect(stream.pages(state("incremental", cursor=250)))
    assert len(client.calls) == 2
    assert client.calls[0][3]["variables"]["sort"] == ["UPDATED_AT_DESC", "ID_DESC"]
    assert [p.cursor for p in pages] == [None, 500]
    assert [m["id"] for p in pages for m in anilist.media_of(p.doc)] == [500, 400, 300]


async def test_anilist_nightly_walk_past_the_depth_cap_asks_for_a_full_scan() -> None:
    """More changes than one query can page through is an error naming the fix."""

    def reply(method: str, url: str, params: Any, body: Any) -> Any:
        base = body["variables"]["page"] * 50  # each page its own records, as AniList serves them
        return media_page([{"id": base + i, "updatedAt": 10**9} for i in range(50)], more=True)

    client = FakeClient(reply)
    stream = anilist.AniListStream(source("anilist"), "anime", client)  # type: ignore[arg-type]
    with pytest.raises(FatalError, match="--full"):
        await collect(stream.pages(state("incremental", cursor=1)))
    assert len(client.calls) == anilist.DEPTH_CAP // 50


class FakeAniList:
    """Media dated ``fuzzy``, filtered and paged like AniList, including the 5,000-item depth cap."""

    def __init__(self, dates: list[int]) -> None:
        self.media = [
            {"id": i + 1, "startDate": {"year": d // 10000}, "fuzzy": d} for i, d in enumerate(dates)
        ]

    def __call__(self, method: str, url: str, params: Any, json: Any) -> Any:
        v = json["variables"]
        found = [
            m
            for m in self.media
            if v.get("startDate_greater", -1) < m["fuzzy"] < v.get("startDate_lesser", 10**9)
        ]
        page, per = v["page"], v["perPage"]
        chunk = [] if page * per > anilist.DEPTH_CAP else found[(page - 1) * per : page * per]
        return media_page(chunk, more=page * per < len(found) and page * per < anilist.DEPTH_CAP)


async def test_anilist_partition_over_the_depth_cap_is_split_until_it_fits() -> None:
    """6,000 works of one year are read by splitting the range, probing instead of paging to the cap."""
    dates = [2030_00_00 + (1 + i % 12) * 100 + 1 + (i // 12) % 28 for i in range(6000)]
    client = FakeClient(FakeAniList(dates))
    stream = anilist.AniListStream(source("anilist", partition_years=[2000]), "anime", client)  # type: ignore[arg-type]
    with capture_logs() as logs:
        pages = await collect(stream.pages(state()))
    ids = {m["id"] for p in pages for m in anilist.media_of(p.doc)}
    assert ids == set(range(1, 6001))
    assert pages[-1].expected_total == 6000
    assert sum(e["event"] == "anilist_partition_capped" for e in logs) >= 1
    assert len(client.calls) < 200  # paging each capped range to its end instead would cost > 1,000


async def test_anilist_unsplittable_partition_makes_the_scan_partial() -> None:
    """More than 5,000 works on one day cannot be reached: logged, and no expected total."""
    client = FakeClient(FakeAniList([2030_01_01] * 5001))
    stream = anilist.AniListStream(source("anilist", partition_years=[2000]), "anime", client)  # type: ignore[arg-type]
    with capture_logs() as logs:
        pages = await collect(stream.pages(state()))
    assert pages[-1].expected_total is None
    assert any(e["event"] == "anilist_partition_capped" and not e["split"] for e in logs)


# -- AniList v1 -------------------------------------------------------------------------------------


async def test_v1_scan_reports_a_total_only_when_it_ends_orderly() -> None:
    """A clean walk reports its distinct ids; a record repeated across pages makes the scan partial."""

    async def walk(ids_by_page: list[list[int]]) -> list[Page]:
        def reply(method: str, url: str, params: Any, json: Any) -> Any:
            page = params["page"]
            return [{"id": i} for i in ids_by_page[page - 1]] if page <= len(ids_by_page) else []

        stream = anilist_v1.AniListV1Stream(source("anilist_v1", page_size=2), "anime", FakeClient(reply))  # type: ignore[arg-type]
        return await collect(stream.pages(state()))

    clean = await walk([[1, 2], [3, 4], [5]])
    assert [p.key for p in clean] == [1, 2, 3, None]
    assert clean[-1].expected_total == 5
    shifted = await walk([[1, 2], [2, 3], [4]])
    assert shifted[-1].expected_total is None


async def test_v1_series_pages_replace_small_models_in_order() -> None:
    """With series_pages each browse model is swapped for its full page model, order kept."""

    def reply(method: str, url: str, params: Any, json: Any) -> Any:
        if url.endswith("/page"):
            ident = int(url.split("/")[1])
            return {"id": ident, "characters": [{"id": ident * 10}]}
        return [{"id": 3}, {"id": 1}] if params["page"] == 1 else []

    client = FakeClient(reply)
    stream = anilist_v1.AniListV1Stream(source("anilist_v1", page_size=2, series_pages=True), "anime", client)  # type: ignore[arg-type]
    pages = await collect(stream.pages(state()))
    assert pages[0].doc == [{"id": 3, "characters": [{"id": 30}]}, {"id": 1, "characters": [{"id": 10}]}]
    assert sorted(c[1] for c in client.calls if c[1].endswith("/page")) == ["anime/1/page", "anime/3/page"]
