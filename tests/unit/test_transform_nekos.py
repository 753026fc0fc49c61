"""Nekos API v1 envelopes → catalog images, links, artists, characters and tags."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pipeline import tables
from pipeline.errors import ContractError
from pipeline.load import raw_hash, row_hash
from pipeline.records import Batch
from pipeline.tables import EntityTable
from pipeline.transform import nekos

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "nekos"
I1 = "d0e1f2a3-b4c5-4d6e-8f70-8192a3b4c501"
I2 = "d0e1f2a3-b4c5-4d6e-8f70-8192a3b4c502"
I3 = "d0e1f2a3-b4c5-4d6e-8f70-8192a3b4c503"
A1 = "5a1f0c2e-7d3b-4c8e-9a61-0b7c3e2d4f01"
C1 = "8c2e4b6d-1f3a-4e5c-b7d9-2a4c6e8f0a01"
C2 = "8c2e4b6d-1f3a-4e5c-b7d9-2a4c6e8f0a02"
K1 = "3e5a7c9b-2d4f-4a6c-8e0b-1c3e5a7c9b01"
K2 = "3e5a7c9b-2d4f-4a6c-8e0b-1c3e5a7c9b02"
K3 = "3e5a7c9b-2d4f-4a6c-8e0b-1c3e5a7c9b03"


def load(name: str) -> Any:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def by_id(batch: Batch, table: str) -> dict[str, dict[str, Any]]:
    return {row["source_id"]: row for row in batch.rows[table]}


def content_hash(table: str, row: dict[str, Any]) -> bytes:
    """The unified content hash the loader computes: spec columns and natural keys minus volatile ones."""
    spec = tables.spec(table)
    assert isinstance(spec, EntityTable)
    keys = [*spec.columns, *(r.key for r in spec.refs)]
    return row_hash([row.get(c) for c in keys if c not in spec.volatile])


def test_image_fields_from_the_envelope() -> None:
    """An image row carries rating, source, file metadata, dimensions, artist and the signed URL's expiry."""
    batch = nekos.transform_images(load("images_page"))
    assert not batch.rejects
    image = by_id(batch, "catalog.images")[I1]
    assert image == {
        "source_id": I1,
        "url": f"https://v1.nekosapi.com/storage/v1/object/sign/nekos-api/images/{I1}.png"
        "?token=8f14e45fceea167a5a36dedd4bea2543a",
        "url_expires_at": datetime(2024, 5, 1, 10, 0, tzinfo=UTC),
        "rating": "sfw",
        "original": True,
        "source_name": "Pixiv",
        "source_url": "https://www.pixiv.net/en/artworks/98765432",
        "width": 1920,
        "height": 1080,
        "aspect_ratio": "16:9",
        "orientation": "landscape",
        "mimetype": "image/png",
        "size_bytes": 2345678,
        "color": "#e5c5a1",
        "etag": '"9b2cf535f27731c974343645a3985328"',
        "artist_source_id": A1,
        "source_created_at": datetime(2023, 1, 10, 8, 30, 12, 345000, tzinfo=UTC),
        "source_updated_at": None,
    }
    bare = by_id(batch, "catalog.images")[I2]
    assert (bare["artist_source_id"], bare["original"], bare["rating"]) == (None, None, "questionable")
    assert (bare["source_name"], bare["orientation"], bare["aspect_ratio"]) == (None, "portrait", "17:24")


def test_image_links_to_characters_and_tags_by_natural_key() -> None:
    """Each image's embedded characters and categories become link rows, one per (image, target)."""
    batch = nekos.transform_images(load("images_page"))
    assert sorted(
        (r["image_source_id"], r["character_source_id"]) for r in batch.rows["catalog.image_characters"]
    ) == [
        (I1, C1),
        (I3, C1),
        (I3, C2),
    ]
    assert sorted((r["image_source_id"], r["tag_source_id"]) for r in batch.rows["catalog.image_tags"]) == [
        (I1, K1),
        (I1, K2),
        (I3, K3),
    ]


def test_raw_records_are_verbatim_with_volatile_paths_named() -> None:
    """Every image lands in raw as fetched, marked with url and meta.expires as volatile."""
    page = load("images_page")
    batch = nekos.transform_images(page)
    assert [r.payload for r in batch.raw] == page["data"]
    assert {r.volatile for r in batch.raw} == {("url", "meta.expires")}
    assert {r.resource for r in batch.raw} == {"images"}


def test_volatile_url_and_expiry_do_not_change_the_content() -> None:
    """Re-fetching an unchanged image (new signed url, new expiry) gives the same raw and unified hashes."""
    first = nekos.transform_images(load("images_page"))
    again = nekos.transform_images(load("images_page_refetched"))
    assert [r.payload["url"] for r in first.raw] != [r.payload["url"] for r in again.raw]
    assert [raw_hash(r)[0] for r in first.raw] == [raw_hash(r)[0] for r in again.raw]
    spec = tables.spec("catalog.images")
    assert isinstance(spec, EntityTable)
    assert set(spec.volatile) == {"url", "url_expires_at"}
    for before, after in zip(first.rows["catalog.images"], again.rows["catalog.images"], strict=True):
        assert before["url_expires_at"] != after["url_expires_at"]
        assert content_hash("catalog.images", before) == content_hash("catalog.images", after)


def test_a_real_change_does_change_the_content() -> None:
    """A new rating or a new file (eTag) is a content change, unlike the URL."""
    page = load("images_page")
    changed = copy.deepcopy(page)
    changed["data"][0]["nsfw"] = "questionable"
    changed["data"][1]["meta"]["eTag"] = '"ffff"'
    before = nekos.transform_images(page).rows["catalog.images"]
    after = nekos.transform_images(changed).rows["catalog.images"]
    assert [content_hash("catalog.images", r) for r in before[:2]] != [
        content_hash("catalog.images", r) for r in after[:2]
    ]
    assert [raw_hash(r)[0] for r in nekos.transform_images(page).raw][:2] != [
        raw_hash(r)[0] for r in nekos.transform_images(changed).raw
    ][:2]


def test_older_shapes_artist_id_string_and_boolean_nsfw() -> None:
    """Docs show artist as a bare id and early servers a boolean nsfw; both map cleanly."""
    page = load("images_page")
    page["data"][0]["artist"] = A1
    page["data"][0]["nsfw"] = True
    page["data"][1]["nsfw"] = False
    del page["data"][1]["meta"]["dimens"]["orientation"]
    rows = by_id(nekos.transform_images(page), "catalog.images")
    assert (rows[I1]["artist_source_id"], rows[I1]["rating"]) == (A1, "nsfw")
    assert (rows[I2]["rating"], rows[I2]["orientation"]) == ("sfw", "portrait")


def test_one_bad_image_is_rejected_and_the_rest_load() -> None:
    """An unknown rating, a negative size or a missing id rejects that image alone (links included)."""
    page = load("images_page")
    page["data"][0]["nsfw"] = "spicy"
    page["data"][1]["meta"]["size"] = -5
    page["data"].append({"url": "https://example.invalid/x.png"})
    batch = nekos.transform_images(page)
    assert list(by_id(batch, "catalog.images")) == [I3]
    assert {r["image_source_id"] for r in batch.rows["catalog.image_characters"]} == {I3}
    assert [r.source_id for r in batch.rejects] == [I1, I2, None]
    assert "spicy" in batch.rejects[0].error
    assert "meta.size" in batch.rejects[1].error
    assert {r.source_id for r in batch.raw} == {I1, I2, I3}


def test_an_error_envelope_is_a_contract_error() -> None:
    """``{success: false}`` (or a body without data) stops the stream with a message saying what to check."""
    with pytest.raises(ContractError, match="nekos images"):
        nekos.transform_images({"code": 401, "message": "Unauthorized", "success": False})
    with pytest.raises(ContractError, match="API version"):
        nekos.transform_artists({"success": True, "items": [], "count": 0})


def test_single_object_data_is_a_page_of_one() -> None:
    """``/artist/:id`` answers with an object under data; it maps like a one-record list."""
    single = {"success": True, "data": load("artists_page")["data"][1]}
    assert [r["name"] for r in nekos.transform_artists(single).rows["catalog.artists"]] == ["Kei Tsuki"]


def test_artists() -> None:
    """Artists keep name and url; the derived images count is not stored."""
    rows = nekos.transform_artists(load("artists_page")).rows["catalog.artists"]
    assert rows[0] == {"source_id": A1, "name": "Rin Aozora", "url": "https://www.pixiv.net/en/users/10001"}
    assert len(rows) == 2


def test_characters_fill_the_shared_characters_table() -> None:
    """Nekos characters become catalog.characters rows; descriptions are plain text like other sources'."""
    batch = nekos.transform_characters(load("characters_page"))
    megumin = by_id(batch, "catalog.characters")[C1]
    assert megumin == {
        "source_id": C1,
        "name": "Megumin",
        "name_native": None,
        "other_names": None,
        "description": "An arch wizard of the Crimson Demon clan.\nLoves explosions.",
        "image_url": None,
        "gender": "female",
        "ages": [14, 15],
        "birth_date": "12-04",
        "nationality": "Crimson Demon",
        "occupations": ["Arch Wizard"],
        "origin": "KonoSuba",
    }
    spec = tables.spec("catalog.characters")
    assert set(megumin) - {"source_id"} <= set(spec.columns)
    assert batch.raw[0].payload["source"] == "KonoSuba"


def test_categories_become_tags_with_slugs() -> None:
    """Categories map to catalog.tags with a slug, nsfw flag, type and creation time."""
    rows = by_id(nekos.transform_categories(load("categories_page")), "catalog.tags")
    assert rows[K2] == {
        "source_id": K2,
        "name": "Night Sky",
        "slug": "night-sky",
        "description": "Images with a night sky & stars.",
        "is_nsfw": False,
        "tag_type": "setting",
        "source_created_at": datetime(2022, 11, 2, 10, 5, tzinfo=UTC),
    }
    assert (rows[K3]["is_nsfw"], rows[K3]["description"], rows[K1]["slug"]) == (True, None, "catgirl")


def test_an_image_seen_twice_on_a_page_is_one_row() -> None:
    """Nekos pages have no ORDER BY; a record repeated within a page is loaded once."""
    page = load("images_page")
    page["data"].append(copy.deepcopy(page["data"][0]))
    batch = nekos.transform_images(page)
    assert len(batch.rows["catalog.images"]) == 3
    assert len(batch.rows["catalog.image_tags"]) == 3
