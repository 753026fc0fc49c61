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
from pipeline.checkpoints import StreamState
from pipeline.errors import FatalError
from pipeline.runner import Page
from pipeline.settings import SourceSettings, parse_settings
from pipeline.sources import anilist, anilist_v1, kitsu
from pipeline.sources.common import auth_identity, completed

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
    stream = kitsu.build_stream(source("kitsu"), "anime", FakeClient(lambda *a: None))  # type: ignore[arg-type]
    batch = stream.transform({"data": [anime("12", categories=("7",))], "included": [CATEGORY]})
    assert [(r.resource, r.source_id) for r in batch.raw] == [("anime", "anime/12")]
    assert batch.rows["catalog.media_genres"] == [{"media_source_id": "anime/12", "genre_source_id": "7"}]
    assert "catalog.genres" not in batch.rows


def test_kitsu_characters_stream_keeps_included_characters() -> None:
    """media-characters pages land both the roles and the included characters."""
    stream = kitsu.build_stream(source("kitsu"), "characters", FakeClient(lambda *a: None))  # type: ignore[arg-type]
    role = {
        "id": "99",
        "type": "mediaCharacters",
        "attributes": {"role": "main"},
        "relationships": {"character": {"data": {"type": "characters", "id": "5"}}},
    }
    character = {"id": "5", "type": "characters", "attributes": {"canonicalName": "Rei"}}
    batch = stream.transform({"data": [role], "included": [character]})
    assert sorted((r.resource, r.source_id) for r in batch.raw) == [
        ("characters", "5"),
        ("media-characters", "99"),
    ]
    assert batch.rows["catalog.characters"][0]["name"] == "Rei"


def test_kitsu_reports_unknown_subtypes_for_the_runner_to_log() -> None:
    """An unmapped subtype is stored as unknown and named in Batch.unknown."""
    stream = kitsu.build_stream(source("kitsu"), "anime", FakeClient(lambda *a: None))  # type: ignore[arg-type]
    batch = stream.transform({"data": [anime("1", subtype="hologram")]})
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


def test_partitions_put_every_dated_work_in_exactly_one_range() -> None:
    """startDate_greater/lesser ranges tile the fuzzy dates, year-only and month-only ones included."""
    parts = [p for p in anilist.partitions([2000, 2010]) if not p.undated]

    def matches(part: anilist.Partition, fuzzy: int) -> bool:
        above = part.variables.get("startDate_greater")
        below = part.variables.get("startDate_lesser")
        return (above is None or fuzzy > above) and (below is None or fuzzy < below)

    for fuzzy in (19991231, 20000000, 20000100, 20000101, 20091231, 20100000, 20250700, 19650000):
        assert sum(matches(p, fuzzy) for p in parts) == 1, fuzzy
    assert [p.name for p in anilist.partitions([2000, 2010]) if p.undated] == [
        "undated (ascending)",
        "undated (descending)",
    ]


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
    client = FakeClient(lambda *a: media_page([{"id": 1, "updatedAt": 10**9}] * 50, more=True))
    stream = anilist.AniListStream(source("anilist"), "anime", client)  # type: ignore[arg-type]
    with pytest.raises(FatalError, match="--full"):
        await collect(stream.pages(state("incremental", cursor=1)))
    assert len(client.calls) == anilist.DEPTH_CAP // 50


async def test_anilist_capped_partition_makes_the_scan_partial() -> None:
    """A partition still full at item 5,000 is logged and the scan reports no expected total."""
    counter = iter(range(10**6))

    def reply(method: str, url: str, params: Any, json: Any) -> Any:
        variables = json["variables"]
        if "startDate_greater" in variables and "startDate_lesser" not in variables:
            page = variables["page"]
            items = [{"id": next(counter), "startDate": {"year": 2030}} for _ in range(50)]
            return media_page(items, more=page * 50 < 5000)
        return media_page([], more=False)

    stream = anilist.AniListStream(source("anilist", partition_years=[2000]), "anime", FakeClient(reply))  # type: ignore[arg-type]
    with capture_logs() as logs:
        pages = await collect(stream.pages(state()))
    assert pages[-1].expected_total is None
    assert any(e["event"] == "anilist_partition_capped" for e in logs)
    capped_keys = [p.key for p in pages if p.key is not None and p.key // anilist.KEY_STRIDE == 1]
    assert max(capped_keys) == anilist.KEY_STRIDE + 100


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
