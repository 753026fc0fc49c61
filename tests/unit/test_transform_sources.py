"""Per-source transforms on documented shapes the recordings lack: pages, episodes, characters, rejects."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from pipeline.errors import ConfigError, ContractError
from pipeline.transform import TRANSFORMS, transform


def _anilist_media(ident: int, **fields: Any) -> dict[str, Any]:
    media: dict[str, Any] = {
        "id": ident,
        "idMal": ident + 1000,
        "type": "MANGA",
        "format": "MANGA",
        "status": "RELEASING",
        "title": {"romaji": f"Romaji {ident}", "english": None, "native": None},
        "startDate": {"year": 2019, "month": 12, "day": None},
        "endDate": {"year": None, "month": None, "day": None},
        "chapters": 0,
        "volumes": 3,
        "genres": ["Action", "Sci-Fi"],
        "synonyms": ["Alt"],
        "averageScore": 71,
        "popularity": 5,
        "updatedAt": 1700000000,
        "countryOfOrigin": "JP",
    }
    media.update(fields)
    return media


def _page(*media: dict[str, Any]) -> dict[str, Any]:
    return {"data": {"Page": {"pageInfo": {"hasNextPage": False}, "media": list(media)}}}


def test_anilist_page_of_manga() -> None:
    """A Page of manga: idMal and own id become external ids; month-precise start; no broadcast season."""
    batch = transform("anilist", "manga", _page(_anilist_media(30013)))
    (media,) = batch.rows["catalog.media"]
    assert media["kind"] == "manga"
    assert (media["start_date"], media["start_precision"]) == (date(2019, 12, 1), "month")
    assert (media["season"], media["season_year"]) == (None, None)  # seasons are for anime only
    assert (media["chapter_count"], media["volume_count"]) == (None, 3)
    assert {(r["site"], r["external_id"], r["source_id"]) for r in batch.rows["catalog.external_ids"]} == {
        ("anilist/manga", "30013", "30013:anilist/manga"),
        ("myanimelist/manga", "31013", "30013:myanimelist/manga"),
    }


def test_anilist_korean_manga_is_manhwa_with_korean_locales() -> None:
    """MANGA from KR is ``manhwa``; its romaji/native titles carry en_kr/ko_kr locales."""
    media = _anilist_media(1, countryOfOrigin="KR", title={"romaji": "Na Honjaman", "native": "나 혼자만"})
    batch = transform("anilist", "manga", _page(media))
    assert batch.rows["catalog.media"][0]["format"] == "manhwa"
    locales = {(t["locale"], t["title"]) for t in batch.rows["catalog.media_titles"]}
    assert {("en_kr", "Na Honjaman"), ("ko_kr", "나 혼자만"), (None, "Alt")} == locales


def test_anilist_genres_are_deduplicated_across_a_page() -> None:
    """Two media sharing genres give one genre row each and a link per media."""
    batch = transform("anilist", "manga", _page(_anilist_media(1), _anilist_media(2)))
    assert [g["source_id"] for g in batch.rows["catalog.genres"]] == ["action", "sci-fi"]
    assert len(batch.rows["catalog.media_genres"]) == 4


def test_anilist_bad_record_is_rejected_and_the_page_goes_on() -> None:
    """One Media with an impossible date is a reject with raw kept; its neighbour loads."""
    bad = _anilist_media(7, startDate={"year": 2019, "month": 13, "day": 1})
    batch = transform("anilist", "manga", _page(bad, _anilist_media(8)))
    assert [r.source_id for r in batch.raw] == ["7", "8"]
    assert [m["source_id"] for m in batch.rows["catalog.media"]] == ["8"]
    assert {t["media_source_id"] for t in batch.rows["catalog.media_titles"]} == {"8"}
    (reject,) = batch.rejects
    assert (reject.resource, reject.source_id) == ("manga", "7")
    assert "startDate" in reject.error
    assert "calendar" in reject.error


def test_anilist_unknown_format_and_status_are_unknown_and_reported() -> None:
    """New enum values are stored as ``unknown`` and listed once in the batch."""
    media = _anilist_media(9, format="WEBTOON", status="PAUSED_FOREVER")
    batch = transform("anilist", "manga", _page(media, {**media, "id": 10}))
    assert [(m["format"], m["status"]) for m in batch.rows["catalog.media"]] == [("unknown", "unknown")] * 2
    assert sorted(batch.unknown) == [("anilist.format", "WEBTOON"), ("anilist.status", "PAUSED_FOREVER")]
    again = transform("anilist", "manga", _page({**media, "id": 11}))
    assert sorted(again.unknown) == sorted(batch.unknown)  # each page reports what it met


def test_anilist_errors_without_data_are_a_contract_error() -> None:
    """A GraphQL error body is not a page: the stream stops with the errors in the message."""
    with pytest.raises(ContractError, match="Too Many Requests"):
        transform(
            "anilist", "anime", {"data": None, "errors": [{"message": "Too Many Requests.", "status": 429}]}
        )


def test_kitsu_episodes_page_with_media_linkage() -> None:
    """Episodes: number 0 kept, ``airdate`` as the server spells it, length minutes, media ref."""
    page = {
        "data": [
            {
                "id": "501",
                "type": "episodes",
                "attributes": {
                    "titles": {"en_jp": "Prologue", "ja_jp": "序章"},
                    "canonicalTitle": "Prologue",
                    "seasonNumber": 1,
                    "number": 0,
                    "relativeNumber": 0,
                    "airdate": "1990-04-13",
                    "length": 25,
                    "synopsis": "Nadia <b>meets</b> Jean.",
                    "thumbnail": {"original": "https://media.kitsu.app/episodes/thumbnails/501/original.jpg"},
                },
                "relationships": {"media": {"data": {"type": "anime", "id": "1126"}}},
            },
            {"id": "502", "type": "episodes", "attributes": {"number": 1, "length": 0}},
        ]
    }
    batch = transform("kitsu", "episodes", page)
    first, second = batch.rows["catalog.episodes"]
    assert first == {
        "source_id": "501",
        "source_updated_at": None,
        "media_source_id": "anime/1126",
        "number": 0,
        "season_number": 1,
        "relative_number": 0,
        "title": "Prologue",
        "titles": {"en_jp": "Prologue", "ja_jp": "序章"},
        "synopsis": "Nadia meets Jean.",
        "air_date": date(1990, 4, 13),
        "length_minutes": 25,
        "thumbnail_url": "https://media.kitsu.app/episodes/thumbnails/501/original.jpg",
    }
    assert (second["media_source_id"], second["length_minutes"], second["title"]) == (None, None, None)


def test_kitsu_media_characters_with_included_characters() -> None:
    """``/media-characters?include=character``: role links plus the included characters."""
    page = {
        "data": [
            {
                "id": "9001",
                "type": "mediaCharacters",
                "attributes": {"role": "main"},
                "relationships": {
                    "media": {"data": {"type": "anime", "id": "1"}},
                    "character": {"data": {"type": "characters", "id": "1"}},
                },
            }
        ],
        "included": [
            {
                "id": "1",
                "type": "characters",
                "attributes": {
                    "canonicalName": "Spike Spiegel",
                    "names": {"en": "Spike Spiegel", "ja_jp": "スパイク・スピーゲル"},
                    "otherNames": ["Swimming Bird", None],
                    "description": "<p>A bounty hunter.</p>",
                    "image": {"original": "https://media.kitsu.app/characters/images/1/original.jpg"},
                },
            }
        ],
    }
    batch = transform("kitsu", "characters", page)
    assert batch.rows["catalog.media_characters"] == [
        {
            "source_id": "9001",
            "source_updated_at": None,
            "media_source_id": "anime/1",
            "character_source_id": "1",
            "role": "main",
        }
    ]
    (character,) = batch.rows["catalog.characters"]
    assert (character["name"], character["name_native"]) == ("Spike Spiegel", "スパイク・スピーゲル")
    assert (character["other_names"], character["description"]) == (["Swimming Bird"], "A bounty hunter.")
    assert [(r.resource, r.source_id) for r in batch.raw] == [
        ("media-characters", "9001"),
        ("characters", "1"),
    ]


def test_kitsu_manga_subtypes_map_completely() -> None:
    """Every Kitsu manga subtype has a unified format (oneshot → one_shot)."""
    subtypes = ["manga", "novel", "manhua", "oneshot", "doujin", "manhwa", "oel"]
    page = {
        "data": [
            {"id": str(n), "type": "manga", "attributes": {"subtype": s, "slug": s, "chapterCount": 0}}
            for n, s in enumerate(subtypes)
        ]
    }
    rows = transform("kitsu", "manga", page).rows["catalog.media"]
    assert [r["format"] for r in rows] == ["manga", "novel", "manhua", "one_shot", "doujin", "manhwa", "oel"]
    assert [(r["kind"], r["title"], r["chapter_count"]) for r in rows][:2] == [
        ("manga", "manga", None),
        ("manga", "novel", None),
    ]


def test_kitsu_media_without_any_title_is_rejected() -> None:
    """No titles, canonicalTitle or slug: nothing to display, the record is rejected by its unified key."""
    batch = transform("kitsu", "anime", {"data": {"id": "5", "type": "anime", "attributes": {"titles": {}}}})
    assert [(r.source_id, "no title" in r.error) for r in batch.rejects] == [("anime/5", True)]
    assert "catalog.media" not in batch.rows


def test_v1_full_page_model_with_characters_and_staff() -> None:
    """``anime/{id}/page``: small character and staff models become characters, people and their links."""
    model = {
        "id": 1,
        "series_type": "anime",
        "title_romaji": "Cowboy Bebop",
        "title_english": "Cowboy Bebop",
        "title_japanese": "カウボーイビバップ",
        "type": "TV",
        "start_date_fuzzy": 19980403,
        "season": 982,
        "average_score": "86.8",
        "characters": [
            {"id": 1, "name_first": "Spike", "name_last": "Spiegel", "image_url_lge": "x.jpg", "role": "Main"}
        ],
        "staff": [
            {
                "id": 14,
                "name_first": "Megumi",
                "name_last": "Hayashibara",
                "name_first_japanese": "めぐみ",
                "name_last_japanese": "林原",
                "language": "Japanese",
                "role": None,
            },
            {"id": 2, "name_first": "Shinichirou", "name_last": "Watanabe", "role": "Director"},
        ],
    }
    batch = transform("anilist_v1", "anime", model)
    assert batch.rejects == []
    assert batch.rows["catalog.characters"][0]["name"] == "Spike Spiegel"
    assert batch.rows["catalog.media_characters"][0]["role"] == "main"
    people = {p["source_id"]: (p["name"], p["name_native"]) for p in batch.rows["catalog.people"]}
    assert people == {"14": ("Megumi Hayashibara", "林原めぐみ"), "2": ("Shinichirou Watanabe", None)}
    assert [(s["source_id"], s["role"]) for s in batch.rows["catalog.media_staff"]] == [
        ("1:14:", None),
        ("1:2:Director", "Director"),
    ]
    media = batch.rows["catalog.media"][0]
    assert (media["season"], media["season_year"], media["title_english"]) == ("spring", 1998, None)


def test_v1_manga_uses_publishing_status_and_chapters() -> None:
    """A v1 manga reads publishing_status, total_chapters and total_volumes (0 = unknown)."""
    manga = {
        "id": 30013,
        "series_type": "manga",
        "title_romaji": "One Piece",
        "type": "Manga",
        "publishing_status": "publishing",
        "total_chapters": 0,
        "total_volumes": 86,
    }
    (media,) = transform("anilist_v1", "manga", [manga]).rows["catalog.media"]
    assert (media["kind"], media["status"], media["chapter_count"], media["volume_count"]) == (
        "manga",
        "releasing",
        None,
        86,
    )


def test_v1_page_that_is_not_a_list_or_model_is_a_contract_error() -> None:
    """A Laravel-style envelope is not a browse page: a clear contract error."""
    with pytest.raises(ContractError, match="anilist_v1 anime"):
        transform("anilist_v1", "anime", {"total": 1, "data": []})


def test_dispatcher_names_the_known_transforms() -> None:
    """An unknown kind/resource is a configuration error listing what exists."""
    assert set(TRANSFORMS) >= {"kitsu", "anilist", "anilist_v1"}
    with pytest.raises(ConfigError, match="kitsu/anime"):
        transform("kitsu", "reviews", {"data": []})


def test_anilist_impossible_year_is_null_with_a_note_in_the_batch() -> None:
    """The transform stores the impossible date NULL and the batch carries the note for the runner."""
    batch = transform(
        "anilist", "anime", _page(_anilist_media(1, type="ANIME", startDate={"year": 1801, "month": 3}))
    )
    (media,) = batch.rows["catalog.media"]
    assert media["start_date"] is None
    assert batch.notes == [
        ("startDate", "year 1801 outside 1900-" + str(datetime.now(UTC).year + 20)),
        ("season", "season year 1801 outside the plausible years"),  # derived from that date
    ]
    assert (media["season"], media["season_year"]) == (None, None)
    assert batch.raw[0].payload["startDate"] == {"year": 1801, "month": 3}  # kept as sent
