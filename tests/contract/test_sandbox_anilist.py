"""The AniList simulators answer in the real shapes: GraphQL v2 like the recordings, v1 like seed 002."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from pipeline.sandbox import anilist_v1
from pipeline.sandbox.server import Sandbox, start_sandbox
from tests.contract.shapes import json_type, shape_diff

REAL = Path(__file__).resolve().parents[1] / "fixtures" / "real" / "anilist-graphql"
RECORDINGS = sorted(REAL.glob("*.json"))
RECORDED = {p.stem: orjson.loads(p.read_bytes()) for p in RECORDINGS}
# The query that produced the recordings (modb-anilist's anime_download_request.graphql).
MEDIA_FIELDS = (
    "id title{userPreferred romaji english native}coverImage{extraLarge large}bannerImage "
    "startDate{year month day}endDate{year month day}description season seasonYear type format status "
    "episodes duration chapters volumes genres synonyms source(version:2)isAdult isLocked meanScore "
    "averageScore popularity favourites hashtag countryOfOrigin isLicensed isFavourite "
    "isRecommendationBlocked nextAiringEpisode{airingAt timeUntilAiring episode}"
    "relations{edges{id relationType(version:2)node{id "
    "title{userPreferred}format type status bannerImage coverImage{large}}}}characterPreview:characters("
    "perPage:6,sort:[ROLE,ID]){edges{id role voiceActors(language:JAPANESE){id name{full}language "
    "image{large}}node{id name{full}image{large}}}}staffPreview:staff(perPage:8){edges{id role node{id "
    "name{full}language image{large}}}}studios{edges{isMain node{id name}}}reviewPreview:reviews(perPage:2,"
    "sort:[RATING_DESC,ID]){pageInfo{total}nodes{id summary rating ratingAmount user{id name avatar{large}}}}"
    "recommendations(perPage:7,sort:[RATING_DESC,ID]){pageInfo{total}nodes{id rating userRating "
    "mediaRecommendation{id title{userPreferred}format type status bannerImage coverImage{large}}user{id "
    "name avatar{large}}}}externalLinks{site url}streamingEpisodes{site title thumbnail url}trailer{id site}"
    "rankings{id rank type format year season allTime context}tags{id name description rank isMediaSpoiler "
    "isGeneralSpoiler}mediaListEntry{id status score}stats{statusDistribution{status amount}"
    "scoreDistribution{score amount}}"
)
MEDIA_QUERY = (
    "query media($id:Int,$type:MediaType,$isAdult:Boolean){Media(id:$id,type:$type,isAdult:$isAdult){"
    + MEDIA_FIELDS
    + "}}"
)
PAGE_QUERY = (
    "query($page:Int,$perPage:Int){Page(page:$page,perPage:$perPage){pageInfo{hasNextPage total currentPage "
    "lastPage perPage}media(type:ANIME,sort:[ID]){" + MEDIA_FIELDS + "}}}"
)
SMALL_KEYS = {
    "id", "series_type", "title_romaji", "title_english", "title_japanese", "type", "start_date_fuzzy",
    "end_date_fuzzy", "synonyms", "genres", "adult", "average_score", "popularity", "image_url_sml",
    "image_url_med", "image_url_lge", "updated_at",
}  # fmt: skip
FULL_KEYS = SMALL_KEYS | {
    "start_date", "end_date", "season", "description", "favourite", "image_url_banner", "score_distribution",
    "list_stats",
}  # fmt: skip


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    async with await start_sandbox("small", services=("anilist", "anilist_v1")) as running:
        yield running


async def _graphql(url: str, query: str, variables: dict[str, Any]) -> Any:
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, json={"query": query, "variables": variables}) as response,
    ):
        assert response.status == 200, await response.text()
        return orjson.loads(await response.read())


@pytest.mark.parametrize("recording", sorted(RECORDED))
async def test_media_query_has_the_recorded_shape(sandbox: Sandbox, recording: str) -> None:
    """The recordings' own query returns exactly the recorded keys, types and nesting."""
    expected = RECORDED[recording]
    works = [w for w in sandbox.ctx.need_world().works if w.anilist_id and w.kind == "anime" and not w.adult]
    for work in works[:6]:
        variables = {"id": work.anilist_id, "type": "ANIME", "isAdult": False}
        actual = await _graphql(sandbox.urls["anilist"], MEDIA_QUERY, variables)
        assert shape_diff(expected, actual) == [], work.anilist_id


async def test_page_media_items_have_the_recorded_shape(sandbox: Sandbox) -> None:
    """Media inside Page(...) has the same shape as a recorded Media, plus a complete pageInfo."""
    expected = RECORDED["media-status-releasing"]["data"]["Media"]
    body = await _graphql(sandbox.urls["anilist"], PAGE_QUERY, {"page": 1, "perPage": 10})
    page = body["data"]["Page"]
    assert set(page["pageInfo"]) == {"hasNextPage", "total", "currentPage", "lastPage", "perPage"}
    assert len(page["media"]) == 10
    for item in page["media"]:
        assert shape_diff(expected, item) == []


async def _v1(sandbox: Sandbox, path: str) -> Any:
    base = sandbox.urls["anilist_v1"]
    async with aiohttp.ClientSession() as session:
        grant = {"grant_type": "client_credentials", "client_id": anilist_v1.CLIENT_ID}
        grant["client_secret"] = anilist_v1.CLIENT_SECRET
        async with session.post(f"{base}/auth/access_token", data=grant) as response:
            token = (await response.json())["access_token"]
        async with session.get(f"{base}/{path}", headers={"Authorization": f"Bearer {token}"}) as response:
            assert response.status == 200
            return await response.json()


async def test_v1_browse_returns_seed_small_models(sandbox: Sandbox) -> None:
    """browse/{type} is a bare array of ≤ 40 small models with exactly seed 002's keys and types."""
    for kind, extra in (
        ("anime", {"total_episodes", "airing_status"}),
        ("manga", {"total_chapters", "publishing_status"}),
    ):
        items = await _v1(sandbox, f"browse/{kind}?page=1")
        assert isinstance(items, list)
        assert len(items) == 40
        for item in items:
            assert set(item) == SMALL_KEYS | extra
            assert json_type(item["updated_at"]) == "number"
            assert json_type(item["average_score"]) in ("number", "string")
            assert item["title_english"]
            assert item["title_japanese"]
            fuzzy = item["start_date_fuzzy"]
            assert fuzzy is None or 10000000 <= fuzzy <= 99991231


async def test_v1_page_returns_the_full_series_model(sandbox: Sandbox) -> None:
    """{type}/{id}/page carries every key of seed 002's full model plus characters and studios."""
    work = next(w for w in sandbox.ctx.need_world().works if w.anilist_id and w.kind == "anime")
    body = await _v1(sandbox, f"anime/{work.anilist_id}/page")
    assert set(body) >= FULL_KEYS
    assert {"characters", "staff", "studio", "external_links"} <= set(body)
    season = body["season"]
    assert season is None or (season % 10 in (1, 2, 3, 4) and season >= 10)
