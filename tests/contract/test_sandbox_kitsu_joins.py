"""Kitsu's join resources as the simulator serves them: the real recorded media-relationships page's
shape, the attributes and relationships kitsu-server declares for the others (docs/API.md, Kitsu
§1.3), and each page transformed into its unified rows."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from pipeline.sandbox.server import Sandbox, start_sandbox
from pipeline.transform import transform
from tests.contract.shapes import shape_diff

REAL = Path(__file__).resolve().parents[1] / "fixtures" / "real" / "kitsu"
RELATIONS = orjson.loads(
    (REAL / "anime-related_anime-has_adaption_multiple_relations-1415_relations.json").read_bytes()
)
MAPS = frozenset({"titles", "ratingFrequencies", "dimensions"})

# path -> (JSON:API type, attributes beyond createdAt/updatedAt, relationships), from the
# resources of kitsu-server (app/resources/*_resource.rb).
DECLARED: dict[str, tuple[str, set[str], set[str]]] = {
    "media-staff": ("mediaStaff", {"role"}, {"media", "person"}),
    "media-productions": ("mediaProductions", {"role"}, {"media", "company"}),
    "media-relationships": ("mediaRelationships", {"role"}, {"source", "destination"}),
    "streaming-links": ("streamingLinks", {"url", "subs", "dubs"}, {"streamer", "media"}),
    "character-voices": ("characterVoices", {"locale"}, {"mediaCharacter", "person", "licensor"}),
    "people": ("people", {"name", "malId", "description", "image"}, {"castings", "staff", "voices"}),
    "producers": ("producers", {"slug", "name"}, {"animeProductions", "mangaProductions"}),
    "streamers": ("streamers", {"siteName", "logo", "streamingLinksCount"}, {"streamingLinks", "videos"}),
}
INCLUDES = {
    "media-staff": ("person,media", "catalog.media_staff", {"people"}),
    "media-productions": ("company,media", "catalog.media_companies", {"producers"}),
    "media-relationships": ("source,destination", "catalog.media_relations", set()),
    "streaming-links": ("streamer,media", "catalog.streaming_links", {"streamers"}),
    "character-voices": ("person,mediaCharacter", "catalog.character_voices", {"people"}),
}


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    async with await start_sandbox("small", services=("kitsu",)) as running:
        yield running


async def _get(url: str, status: int = 200, **params: str) -> Any:
    async with aiohttp.ClientSession() as session, session.get(url, params=params) as response:
        assert response.status == status, await response.text()
        return orjson.loads(await response.read())


async def test_relationships_page_has_the_recorded_shape(sandbox: Sandbox) -> None:
    """The request the real recording was made with, against the sandbox: the same document shape,
    and only the filtered work's relations, by role."""
    view_relations = [r for r in _view(sandbox).relations if r.work.kind == "anime" and not r.work.adult]
    source = view_relations[0].work
    actual = await _get(
        f"{sandbox.urls['kitsu']}/media-relationships",
        **{
            "filter[source_id]": str(source.kitsu_id),
            "filter[source_type]": "Anime",
            "include": "destination",
            "sort": "role",
        },
    )
    body = {k: v for k, v in actual.items() if k != "included"}
    assert shape_diff({k: v for k, v in RELATIONS.items() if k != "included"}, body, maps=MAPS) == []
    recorded = {i["type"]: i for i in reversed(RELATIONS["included"])}  # one of each type
    assert actual["included"]
    for item in actual["included"]:
        assert shape_diff(recorded[item["type"]], item, maps=MAPS) == [], item["type"]
    roles = [r["attributes"]["role"] for r in actual["data"]]
    assert roles == sorted(roles)
    assert roles
    assert actual["meta"]["count"] == sum(1 for r in view_relations if r.work is source)
    assert {i["type"] for i in actual["included"]} <= {"anime", "manga"}


@pytest.mark.parametrize("path", sorted(DECLARED))
async def test_resources_carry_the_declared_attributes_and_relationships(sandbox: Sandbox, path: str) -> None:
    kind, attributes, relationships = DECLARED[path]
    page = await _get(f"{sandbox.urls['kitsu']}/{path}", **{"page[limit]": "5"})
    assert page["data"], path
    for resource in page["data"]:
        assert resource["type"] == kind
        assert set(resource["attributes"]) == {"createdAt", "updatedAt", *attributes}
        assert set(resource["relationships"]) == relationships
        assert resource["links"]["self"].endswith(f"/{path}/{resource['id']}")
        one = await _get(f"{sandbox.urls['kitsu']}/{path}/{resource['id']}")
        assert one["data"]["id"] == resource["id"]
    if path == "people":
        assert {r["attributes"]["malId"] for r in page["data"]} == {"Moved to mappings relationship."}
    assert page["meta"]["count"] >= len(page["data"])


@pytest.mark.parametrize("path", sorted(INCLUDES))
async def test_a_fetched_page_becomes_its_unified_rows(sandbox: Sandbox, path: str) -> None:
    """The stream's request (include=…, slim media): every listed record one row, linkage filled,
    included people/producers (and streamers, raw only) stored, included media left to their own
    streams."""
    include, table, stored = INCLUDES[path]
    params = {"include": include, "page[limit]": "20", "fields[anime]": "slug", "fields[manga]": "slug"}
    page = await _get(f"{sandbox.urls['kitsu']}/{path}", **params)
    batch = transform("kitsu", path, page)
    rows = batch.rows[table]
    assert [r["source_id"] for r in rows] == [r["id"] for r in page["data"]]
    assert {r.resource for r in batch.raw} == {path, *stored}
    assert "catalog.media" not in batch.rows
    refs = {k for r in rows for k, v in r.items() if k.endswith("_source_id") and v is None}
    assert refs == set(), f"{path}: unresolved {refs}"
    assert not batch.rejects
    assert not batch.unknown


async def test_bad_requests_answer_like_the_server(sandbox: Sandbox) -> None:
    base = sandbox.urls["kitsu"]
    error = await _get(f"{base}/media-staff", 400, include="studio")
    assert error["errors"][0]["title"] == "Invalid field"
    error = await _get(f"{base}/media-productions", 400, **{"page[limit]": "21"})
    assert "errors" in error
    missing = await _get(f"{base}/streaming-links/999999999", 404)
    assert missing["errors"][0]["status"] == "404"


def _view(sandbox: Sandbox) -> Any:
    from pipeline.sandbox.kitsu_views import build_view

    return build_view(sandbox.ctx.need_world())
