"""JSON:API compound documents: linkage, included resolution, type spellings, broken pages."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline.errors import ContractError
from pipeline.transform import kitsu
from pipeline.transform.jsonapi import linkage, normalise_type, parse_document


def _anime(ident: str, **relationships: Any) -> dict[str, Any]:
    return {
        "id": ident,
        "type": "anime",
        "attributes": {"titles": {"en_jp": f"Title {ident}"}, "subtype": "TV", "slug": f"t-{ident}"},
        "relationships": relationships,
    }


def _category(ident: str, title: str) -> dict[str, Any]:
    return {"id": ident, "type": "categories", "attributes": {"title": title, "slug": title.lower()}}


def test_type_spellings_are_normalised() -> None:
    """camelCase, snake_case and dashed JSON:API types compare equal."""
    assert normalise_type("mediaCharacters") == "media-characters"
    assert normalise_type("media_characters") == "media-characters"
    assert normalise_type("anime") == "anime"


def test_linkage_distinguishes_not_loaded_from_empty() -> None:
    """No ``data`` key = not loaded (None); null or [] = loaded and empty."""
    assert linkage({"relationships": {"categories": {"links": {}}}}, "categories") is None
    assert linkage({"relationships": {"categories": {"data": []}}}, "categories") == []
    assert linkage({"relationships": {"media": {"data": None}}}, "media") == []
    assert linkage({"relationships": {"media": {"data": {"type": "anime", "id": 7}}}}, "media") == [
        ("anime", "7")
    ]


def test_related_resolves_included_and_skips_absent() -> None:
    """A referenced resource missing from ``included`` is skipped, not an error."""
    doc = parse_document(
        {
            "data": [_anime("1", categories={"data": [{"type": "categories", "id": "5"}] * 1})],
            "included": [_category("5", "Space")],
        },
        "test",
    )
    anime = doc.data[0]
    assert [r["id"] for r in doc.related(anime, "categories")] == ["5"]
    ghost = _anime("2", categories={"data": [{"type": "categories", "id": "404"}]})
    assert doc.related(ghost, "categories") == []


def test_compound_anime_page_yields_genres_links_and_mappings() -> None:
    """An anime page with included categories and mappings fills media, genres, links and external ids."""
    page = {
        "data": [
            _anime(
                "1",
                categories={"data": [{"type": "categories", "id": "5"}, {"type": "categories", "id": "404"}]},
                mappings={"data": [{"type": "mappings", "id": "m1"}]},
            )
        ],
        "included": [
            _category("5", "Space"),
            {
                "id": "m1",
                "type": "mappings",
                "attributes": {"externalSite": "anilist/anime", "externalId": "1"},
            },
        ],
        "meta": {"count": 1},
    }
    batch = kitsu.transform_anime(page)
    assert batch.rejects == []
    assert [(r.resource, r.source_id) for r in batch.raw] == [
        ("anime", "1"),
        ("categories", "5"),
        ("mappings", "m1"),
    ]
    assert batch.rows["catalog.media_genres"] == [
        {"media_source_id": "anime/1", "genre_source_id": "5"},
        {"media_source_id": "anime/1", "genre_source_id": "404"},
    ]
    assert [g["name"] for g in batch.rows["catalog.genres"]] == ["Space"]
    assert batch.rows["catalog.external_ids"] == [
        {
            "source_id": "m1",
            "source_updated_at": None,
            "media_source_id": "anime/1",
            "site": "anilist/anime",
            "external_id": "1",
        }
    ]


def test_mapping_item_linkage_names_the_media() -> None:
    """``/mappings?include=item``: the item linkage picks the media; character mappings stay raw only."""
    page = {
        "data": [
            {
                "id": "10",
                "type": "mappings",
                "attributes": {"externalSite": "myanimelist/manga", "externalId": 21},
                "relationships": {"item": {"data": {"type": "manga", "id": "3250"}}},
            },
            {
                "id": "11",
                "type": "mappings",
                "attributes": {"externalSite": "myanimelist/character", "externalId": "3"},
                "relationships": {"item": {"data": {"type": "characters", "id": "3"}}},
            },
            {"id": "12", "type": "mappings", "attributes": {"externalSite": "anidb", "externalId": "4"}},
        ]
    }
    batch = kitsu.transform_mappings(page)
    assert [
        (r["media_source_id"], r["site"], r["external_id"]) for r in batch.rows["catalog.external_ids"]
    ] == [("manga/3250", "myanimelist/manga", "21")]
    assert [r.source_id for r in batch.raw] == ["10", "11", "12"]
    assert [(r.source_id, "include=item" in r.error) for r in batch.rejects] == [("12", True)]


@pytest.mark.parametrize(
    "payload",
    [
        [],
        {"meta": {}},
        {"errors": [{"status": "404", "title": "Record not found"}]},
        {"data": [], "included": {}},
    ],
)
def test_unreadable_documents_are_a_contract_error(payload: Any) -> None:
    """A page without ``data`` (or with only errors) stops the stream with a clear message."""
    with pytest.raises(ContractError, match="kitsu anime"):
        kitsu.transform_anime(payload)


def test_a_record_without_id_is_rejected_and_the_page_goes_on() -> None:
    """A primary resource without an id is a reject; its neighbours still transform."""
    page = {"data": [{"type": "anime", "attributes": {}}, _anime("2")]}
    batch = kitsu.transform_anime(page)
    assert [r.source_id for r in batch.raw] == ["2"]
    assert [m["source_id"] for m in batch.rows["catalog.media"]] == ["anime/2"]
    assert len(batch.rejects) == 1
    assert batch.rejects[0].source_id is None
