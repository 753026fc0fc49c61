"""AniList v2 breadth: the real recordings' nested objects as rows, and the query's complexity budget."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from pipeline.errors import ConfigError
from pipeline.records import Batch
from pipeline.sandbox import anilist as simulator
from pipeline.sandbox import graphql
from pipeline.sandbox.core import SandboxClock, SandboxContext
from pipeline.settings import load_settings, parse_settings
from pipeline.sources import anilist
from pipeline.transform.anilist import REPLACED, transform_anime
from pipeline.transform.common import collect_unknown
from tests.contract.test_sandbox_anilist import MEDIA_QUERY

ROOT = Path(__file__).resolve().parents[2]
REAL = ROOT / "tests" / "fixtures" / "real" / "anilist-graphql"
URL = "http://127.0.0.1:9/"
Client = TestClient[web.Request, web.Application]


def recorded(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = orjson.loads((REAL / f"{name}.json").read_bytes())
    return doc


def rows(batch: Batch, table: str) -> dict[str, dict[str, Any]]:
    return {str(row["source_id"]): row for row in batch.rows.get(table, [])}


def test_recorded_studios_relations_tags_and_links_become_rows() -> None:
    """5114 (FMA:B): five studios, five relations, 46 tags and nine links, keyed as sql/017 says."""
    batch = transform_anime(recorded("media-type-tv"))
    assert batch.rejects == []
    companies = rows(batch, "catalog.companies")
    assert companies["4"] == {
        "source_id": "4",
        "source_updated_at": None,
        "name": "bones",
        "site_url": None,
        "is_animation_studio": None,  # the recording's query did not ask
    }
    parts = rows(batch, "catalog.media_companies")
    assert sorted(parts) == ["5114:143", "5114:17", "5114:4", "5114:493", "5114:58"]
    assert (parts["5114:4"]["is_main"], parts["5114:17"]["is_main"]) == (True, False)
    assert {part["role"] for part in parts.values()} == {None}  # isAnimationStudio not given
    relations = rows(batch, "catalog.media_relations")
    assert sorted(relations) == [
        "5114:121:alternative",
        "5114:30025:source",
        "5114:6421:side_story",
        "5114:7902:spin_off",
        "5114:9135:side_story",
    ]
    assert relations["5114:30025:source"]["related_media_source_id"] == "30025"
    tags = rows(batch, "catalog.media_tags")
    assert len(tags) == 46
    assert {k: tags["5114:85"][k] for k in ("rank", "is_spoiler", "category")} == {
        "rank": 91,
        "is_spoiler": True,
        "category": None,
    }
    assert tags["5114:456"]["is_spoiler"] is True  # a media spoiler only
    links = batch.rows["catalog.streaming_links"]
    assert [link["site"] for link in links][:2] == ["Hulu", "Crunchyroll"]
    assert {link["kind"] for link in links} == {None}  # the recording's query asked no type
    assert links[0]["source_id"] == "5114:http://www.hulu.com/fullmetal-alchemist-brotherhood"


def test_recorded_characters_bring_their_voice_actors() -> None:
    """characterPreview's voiceActors become people and character_voices on the appearance row."""
    batch = transform_anime(recorded("media-type-tv"))
    voices = rows(batch, "catalog.character_voices")
    assert voices["5114:11:95082"] == {
        "source_id": "5114:11:95082",
        "source_updated_at": None,
        "media_character_source_id": "5114:11",
        "person_source_id": "95082",
        "language": "JAPANESE",
    }
    assert "5114:11" in rows(batch, "catalog.media_characters")
    assert len([v for v in voices.values() if v["media_character_source_id"] == "5114:65"]) == 2
    people = rows(batch, "catalog.people")
    assert people["95082"]["name"] == "Romi Park"
    assert people["95202"]["language"] == "ENGLISH"  # staff and voice actors share catalog.people


def test_next_airing_episode_is_an_absolute_time() -> None:
    """nextAiringEpisode keeps airingAt and the episode; timeUntilAiring (a countdown) is ignored."""
    batch = transform_anime(recorded("media-status-releasing"))
    (row,) = batch.rows["catalog.next_episodes"]
    assert row == {
        "source_id": "118123",
        "source_updated_at": None,
        "media_source_id": "118123",
        "episode": 206,
        "airing_at": datetime.fromtimestamp(1682845200, UTC),
    }
    later = copy.deepcopy(recorded("media-status-releasing"))
    later["data"]["Media"]["nextAiringEpisode"]["timeUntilAiring"] = 5
    assert transform_anime(later).rows["catalog.next_episodes"] == [row]
    assert "catalog.next_episodes" not in transform_anime(recorded("media-type-tv")).rows


def test_a_media_claims_its_nested_tables_whole() -> None:
    """Every nested table is replaced for each transformed media; voices for each appearance."""
    batch = transform_anime(recorded("media-type-tv"))
    assert {table: batch.replaced[table] for table in REPLACED} == {table: {"5114"} for table in REPLACED}
    assert batch.replaced["catalog.character_voices"] == set(rows(batch, "catalog.media_characters"))
    broken = copy.deepcopy(recorded("media-type-tv"))
    broken["data"]["Media"]["title"] = {}
    rejected = transform_anime(broken)
    assert len(rejected.rejects) == 1
    assert rejected.replaced == {}  # a rejected media retires nothing


def test_unknown_relation_and_link_types_fit_the_check_lists() -> None:
    """An unknown relationType is 'unknown', an unknown link type 'other' (sql/017 CHECK lists)."""
    doc = copy.deepcopy(recorded("media-status-not_yet_released"))
    media = doc["data"]["Media"]
    media["relations"]["edges"][0]["relationType"] = "REBOOT"
    media["externalLinks"] = [
        {"id": 9, "site": "Crunchyroll", "url": "https://c.example/x", "type": "STREAMING", "language": None},
        {"id": 10, "site": "Fan wiki", "url": "https://w.example/x", "type": "WIKI", "language": "English"},
    ]
    media["studios"]["edges"][0]["node"]["isAnimationStudio"] = True
    with collect_unknown() as unknown:
        batch = transform_anime(doc)
    relations = {row["relation"] for row in batch.rows["catalog.media_relations"]}
    assert relations == {"unknown", "source", "sequel"}
    assert unknown == [("anilist.relationType", "REBOOT"), ("anilist.externalLinks.type", "WIKI")]
    assert [(r["source_id"], r["kind"]) for r in batch.rows["catalog.streaming_links"]] == [
        ("9", "streaming"),
        ("10", "other"),
    ]
    (studio,) = batch.rows["catalog.media_companies"]
    assert (studio["role"], studio["is_main"]) == ("studio", False)


# -- complexity ------------------------------------------------------------------------------------


def cost(query: str, variables: dict[str, Any]) -> int:
    op = graphql.parse(query)
    return graphql.complexity(op.selections, op.fragments, variables, simulator.per_item)


@pytest.mark.parametrize("query", [anilist.QUERY, anilist.LOOKUP_QUERY], ids=["page", "lookup"])
@pytest.mark.parametrize(("characters", "staff"), [(12, 12), (1, 1), (25, 1), (15, 15), (5, 25)])
def test_the_connector_arithmetic_is_the_simulator_count(query: str, characters: int, staff: int) -> None:
    """query_complexity (the docstring's 77 + 19 P + 11 S) is what the simulator charges."""
    variables = {"characters": characters, "staff": staff, "perPage": 50}
    assert cost(query, variables) == anilist.query_complexity(characters, staff)


class AnyEnv(dict[str, str]):
    """Every ``${VAR}`` a shipped config names, set to a placeholder."""

    def __missing__(self, key: str) -> str:
        return "placeholder"

    def __contains__(self, key: object) -> bool:
        return True


def test_configured_page_sizes_stay_under_the_limit() -> None:
    """The defaults and the shipped configs' AniList sources cost at most 500 (437 by default)."""
    settings = parse_settings({"sources": {"a": {"kind": "anilist", "base_url": URL}}}, Path("t.toml"), {})
    default = anilist.nested_sizes(settings.sources["a"])
    assert default == {"characters": 12, "staff": 12}
    assert cost(anilist.QUERY, {**default, "perPage": 50}) == 437 <= anilist.COMPLEXITY_LIMIT
    configs = [ROOT / "config" / name for name in ("pipeline.toml", "sandbox.toml")]
    shipped = [
        s for path in configs for s in load_settings(path, AnyEnv()).sources.values() if s.kind == "anilist"
    ]
    assert shipped
    for source in shipped:
        sizes = anilist.nested_sizes(source)
        assert cost(anilist.QUERY, {**sizes, "perPage": source.page_size}) <= anilist.COMPLEXITY_LIMIT
    assert cost(MEDIA_QUERY, {}) == 442  # the recordings' own website query fits the same count


def test_too_expensive_nested_pages_are_refused_at_build_time() -> None:
    """characters_per_page 25 with staff_per_page 20 (an estimate of 772) is a ConfigError naming both."""
    settings = parse_settings(
        {
            "sources": {
                "a": {"kind": "anilist", "base_url": URL, "characters_per_page": 25, "staff_per_page": 20}
            }
        },
        Path("t.toml"),
        {},
    )
    with pytest.raises(ConfigError, match=r"complexity 772, above AniList's 500.*lower them"):
        anilist.nested_sizes(settings.sources["a"])


@pytest.fixture
async def v2() -> AsyncIterator[Client]:
    ctx = SandboxContext.build("small", seed=3, clock=SandboxClock(real=lambda: 1_800_000_000.0))
    async with TestClient(TestServer(simulator.create_app(ctx), host="127.0.0.1")) as client:
        yield client


async def test_the_simulator_refuses_a_query_above_500_like_anilist(v2: Client) -> None:
    """25 characters and 25 staff per media cost 827: HTTP 400 with AniList's message, no data."""
    variables = {"page": 1, "perPage": 5, "type": "ANIME", "characters": 25, "staff": 25}
    response = await v2.post("/", json={"query": anilist.QUERY, "variables": variables})
    assert response.status == 400
    assert await response.json() == {
        "errors": [{"message": "Max query complexity should be 500 but got 827.", "status": 400}],
        "data": None,
    }


async def test_the_simulator_answers_the_connector_query_with_one_nested_page(v2: Client) -> None:
    """At 2 characters and 3 staff a media holds at most that many, hasNextPage saying when more exist."""
    variables = {"page": 1, "perPage": 50, "type": "ANIME", "sort": ["ID"], "characters": 2, "staff": 3}
    response = await v2.post("/", json={"query": anilist.QUERY, "variables": variables})
    assert response.status == 200, await response.text()
    media = (await response.json())["data"]["Page"]["media"]
    assert len(media) == 50
    for item in media:
        characters, staff = item["characters"], item["staff"]
        assert set(characters) == set(staff) == {"pageInfo", "edges"}
        assert len(characters["edges"]) <= 2
        assert len(staff["edges"]) <= 3
        roles = [edge["role"] for edge in characters["edges"]]
        assert roles == sorted(roles, key=simulator.ROLE_ORDER.__getitem__)  # sort: ROLE first
        for edge in characters["edges"]:
            assert {actor["languageV2"] for actor in edge["voiceActors"]} <= {"Japanese", "English"}
        assert set(item["nextAiringEpisode"] or {}) <= {"airingAt", "episode"}
        assert all(set(link) == {"id", "site", "url", "type", "language"} for link in item["externalLinks"])
    assert any(item["staff"]["pageInfo"]["hasNextPage"] for item in media)
    assert any(item["characters"]["pageInfo"]["hasNextPage"] is False for item in media)


@pytest.fixture
def sandbox_ctx() -> SandboxContext:
    return SandboxContext.build("small", seed=3, clock=SandboxClock(real=lambda: 1_800_000_000.0))


async def test_nested_arguments_filter_like_the_server(sandbox_ctx: SandboxContext) -> None:
    """voiceActors(language:), characters(role:, page:) and studios(isMain:) narrow what comes back;
    an argument a nested field does not take is a GraphQL error."""
    query = (
        "query($id:Int){Media(id:$id){characters(role:SUPPORTING,perPage:1,page:2,sort:[ID]){"
        "pageInfo{total currentPage hasNextPage}"
        "edges{role node{id}voiceActors(language:ENGLISH){languageV2}}}"
        "studios(isMain:true){edges{isMain}}}}"
    )
    works = [
        w
        for w in sandbox_ctx.need_world().live()
        if w.anilist_id and sum(role == "SUPPORTING" for _, role in w.characters) >= 2
    ][:5]
    assert works
    async with TestClient(TestServer(simulator.create_app(sandbox_ctx), host="127.0.0.1")) as client:
        for work in works:
            response = await client.post("/", json={"query": query, "variables": {"id": work.anilist_id}})
            assert response.status == 200, await response.text()
            media = (await response.json())["data"]["Media"]
            supporting = sum(role == "SUPPORTING" for _, role in work.characters)
            info = {"total": supporting, "currentPage": 2, "hasNextPage": supporting > 2}
            assert media["characters"]["pageInfo"] == info
            (edge,) = media["characters"]["edges"]
            assert edge["role"] == "SUPPORTING"
            assert {actor["languageV2"] for actor in edge["voiceActors"]} <= {"English"}
            assert all(e["isMain"] for e in media["studios"]["edges"])
        unknown = "query($id:Int){Media(id:$id){characters(language:ENGLISH){edges{role}}}}"
        response = await client.post("/", json={"query": unknown, "variables": {"id": works[0].anilist_id}})
        assert response.status == 400
        assert 'Unknown argument "language"' in (await response.json())["errors"][0]["message"]
