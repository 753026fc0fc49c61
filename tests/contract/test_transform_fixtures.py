"""Real recorded responses (tests/fixtures/real) and AniList v1 seed records through the transforms."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from pipeline.models import catalog
from pipeline.records import Batch
from pipeline.tables import EntityTable
from pipeline.transform import kitsu, transform

REAL = Path(__file__).resolve().parents[1] / "fixtures" / "real"
KITSU_FILES = sorted((REAL / "kitsu").glob("*.json"))
ANILIST_FILES = sorted((REAL / "anilist-graphql").glob("*.json"))

# AniList v1 series models. Seed 002 (forum thread examples, small models): Nisekoi, Evangelion.
# AniList-API-Docs source/anime.rst: the Cowboy Bebop full model (old ISO dates, string score).
# Public client READMEs (Nov 2017): a browse/anime item and a list entry's anime.
V1_NISEKOI = {
    "id": 18897,
    "title_romaji": "Nisekoi",
    "type": "TV",
    "image_url_med": "http://anilist.co/img/dir/anime/med/18897.jpg",
    "image_url_sml": "http://anilist.co/img/dir/anime/sml/18897.jpg",
    "title_japanese": "",
    "title_english": "Nisekoi",
    "image_url_lge": "http://anilist.co/img/dir/anime/reg/18897.jpg",
    "airing_status": "currently airing",
    "average_score": "79.3",
    "total_episodes": 20,
    "adult": False,
    "relation_type": None,
    "role": None,
}
V1_EVANGELION = {
    "id": 30,
    "title_romaji": "Neon Genesis Evangelion",
    "type": "TV",
    "image_url_med": "http://anilist.co/img/dir/anime/med/30.jpg",
    "image_url_sml": "http://anilist.co/img/dir/anime/sml/30.jpg",
    "title_japanese": "",
    "title_english": "Neon Genesis Evangelion",
    "image_url_lge": "http://anilist.co/img/dir/anime/reg/30.jpg",
    "airing_status": "finished airing",
    "average_score": "82",
    "total_episodes": 26,
    "adult": False,
    "relation_type": None,
    "role": None,
}
V1_BEBOP = {
    "id": 1,
    "title_romaji": "Cowboy Bebop",
    "type": "TV",
    "image_url_med": "http://anilist.co/img/dir/anime/med/1.jpg",
    "image_url_sml": "http://anilist.co/img/dir/anime/sml/1.jpg",
    "start_date": "1998-04-03T21:00:00+09:00",
    "end_date": "1999-04-24T21:00:00+09:00",
    "classification": "R - 17+ (violence & profanity)",
    "hashtag": None,
    "source": None,
    "title_japanese": "カウボーイビバップ",
    "title_english": "Cowboy Bebop",
    "synonyms": [],
    "description": "Enter a world in the distant future, where Bounty Hunters roam the solar system."
    "<br><br>\nWhile traveling, they meet up with other very interesting people.",
    "genres": ["Action", "Adventure", "Comedy", "Drama", "Sci-Fi", "Space"],
    "image_url_lge": "http://anilist.co/img/dir/anime/reg/1.jpg",
    "image_url_banner": "http://anilist.co/img/dir/anime/banner/1.jpg",
    "duration": 24,
    "airing_status": "finished airing",
    "average_score": "86.8",
    "total_episodes": 26,
    "youtube_id": None,
    "adult": False,
    "relation_type": None,
    "role": None,
    "airing": None,
}
V1_NANOHA = {
    "id": 17947,
    "title_romaji": "Mahou Shoujo Lyrical Nanoha: Reflection",
    "title_english": "Magical Girl Lyrical Nanoha: Reflection",
    "title_japanese": "魔法少女リリカルなのはReflection",
    "type": "Movie",
    "start_date_fuzzy": 20170722,
    "end_date_fuzzy": 20170722,
    "season": 173,
    "series_type": "anime",
    "synonyms": [],
    "genres": ["Action", "Comedy", "Drama", "Mahou Shoujo"],
    "adult": False,
    "average_score": 0,
    "popularity": 539,
    "updated_at": 1511801686,
    "hashtag": None,
    "image_url_sml": "https://cdn.anilist.co/img/dir/anime/sml/17947-QTSoKwtDlzFJ.jpg",
    "image_url_med": "https://cdn.anilist.co/img/dir/anime/med/17947-QTSoKwtDlzFJ.jpg",
    "image_url_lge": "https://cdn.anilist.co/img/dir/anime/reg/17947-QTSoKwtDlzFJ.jpg",
    "image_url_banner": None,
    "total_episodes": 1,
    "airing_status": "finished airing",
    "airing": None,
}
V1_ISEKAI_SHOKUDOU = {
    "id": 97617,
    "title_romaji": "Isekai Shokudou",
    "title_english": "Restaurant to Another World",
    "title_japanese": "異世界食堂",
    "type": "TV",
    "start_date_fuzzy": 20170700,
    "end_date_fuzzy": None,
    "season": 173,
    "series_type": "anime",
    "synonyms": ["Alternate-World Restaurant"],
    "genres": ["Comedy", "Fantasy", "Mystery"],
    "adult": False,
    "average_score": 59.7,
    "popularity": 124,
    "updated_at": 1492581400,
    "image_url_lge": "https://cdn.anilist.co/img/dir/anime/reg/97617-Ec4CCuGbAnhB.jpg",
    "image_url_banner": None,
    "total_episodes": 0,
    "airing_status": "not yet aired",
}
V1_RECORDS = [V1_NISEKOI, V1_EVANGELION, V1_BEBOP, V1_NANOHA, V1_ISEKAI_SHOKUDOU]


def _load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _media(batch: Batch, source_id: str) -> dict[str, Any]:
    (row,) = [r for r in batch.rows["catalog.media"] if r["source_id"] == source_id]
    return row


def _expect(row: dict[str, Any], **fields: Any) -> None:
    assert {key: row[key] for key in fields} == fields


def _expected_keys(spec: Any) -> set[str]:
    keys = set(spec.columns) | {ref.key for ref in spec.refs}
    if isinstance(spec, EntityTable):
        return keys | {"source_id", "source_updated_at"}
    return keys | {spec.owner.key}


SPECS = {spec.name: spec for spec in catalog.SPECS}


def _assert_rows_fit_specs(batch: Batch) -> None:
    for table, rows in batch.rows.items():
        expected = _expected_keys(SPECS[table])
        for row in rows:
            assert set(row) == expected, f"{table}: {set(row) ^ expected}"


@pytest.mark.parametrize("path", KITSU_FILES, ids=lambda p: p.name)
def test_every_kitsu_recording_transforms(path: Path) -> None:
    """Each real Kitsu body transforms without reject; every row has exactly its table's keys."""
    batch = transform("kitsu", "anime", _load(path))
    assert batch.rejects == []
    assert len(batch.raw) >= len(batch.rows.get("catalog.media", []))
    _assert_rows_fit_specs(batch)


@pytest.mark.parametrize("path", ANILIST_FILES, ids=lambda p: p.name)
def test_every_anilist_recording_transforms(path: Path) -> None:
    """Each real AniList v2 body transforms into one media, its titles and its AniList id."""
    batch = transform("anilist", "anime", _load(path))
    assert batch.rejects == []
    assert len(batch.raw) == len(batch.rows["catalog.media"]) == 1
    media_id = batch.rows["catalog.media"][0]["source_id"]
    assert ("anilist/anime", media_id) in {
        (r["site"], r["external_id"]) for r in batch.rows["catalog.external_ids"]
    }
    _assert_rows_fit_specs(batch)


@pytest.mark.parametrize("record", V1_RECORDS, ids=lambda r: str(r["id"]))
def test_every_v1_seed_record_transforms(record: dict[str, Any]) -> None:
    """Each AniList v1 example record transforms as a browse page and as a single model."""
    for payload in ([record], record):
        batch = transform("anilist_v1", "anime", payload)
        assert batch.rejects == []
        assert [r.source_id for r in batch.raw] == [str(record["id"])]
        _assert_rows_fit_specs(batch)


def test_kitsu_one_piece_current() -> None:
    """anime/12: ongoing, no episode count, string score, day-precise start, derived fall season."""
    batch = transform("kitsu", "anime", _load(REAL / "kitsu" / "anime-status-current.json"))
    _expect(
        _media(batch, "anime/12"),
        source_kind="kitsu",
        kind="anime",
        format="tv",
        title="One Piece",
        title_english="One Piece",
        title_romaji="One Piece",
        title_native="ONE PIECE",
        status="releasing",
        start_date=date(1999, 10, 20),
        start_precision="day",
        end_date=None,
        season="fall",
        season_year=1999,
        episode_count=None,
        episode_minutes=24,
        average_score=Decimal("83.32"),
        popularity=186101,
        age_rating="PG",
        is_adult=False,
        poster_url="https://media.kitsu.app/anime/poster_images/12/original.png",
        source_updated_at=datetime(2023, 4, 28, 12, 0, 4, 37000, tzinfo=UTC),
    )
    assert batch.raw[0].volatile == ("attributes.updatedAt",)
    titles = {(t["locale"], t["title"], t["is_synonym"]) for t in batch.rows["catalog.media_titles"]}
    assert titles == {
        ("en", "One Piece", False),
        ("en_jp", "One Piece", False),
        ("ja_jp", "ONE PIECE", False),
        (None, "ワンピース", True),
    }


def test_kitsu_status_null_and_missing_english() -> None:
    """anime/42059: status null stays NULL; no ``en`` → display title is the romaji."""
    batch = transform("kitsu", "anime", _load(REAL / "kitsu" / "anime-status-null.json"))
    _expect(
        _media(batch, "anime/42059"),
        status=None,
        title="Haikyuu!!: To the Top",
        title_english=None,
        title_native="ハイキュー!! TO THE TOP",
        season="winter",
        season_year=2020,
        end_date=date(2020, 4, 4),
        episode_count=13,
        average_score=Decimal("82.04"),
        banner_url=None,
    )
    assert sum(t["is_synonym"] for t in batch.rows["catalog.media_titles"]) == 6


def test_kitsu_special_with_zero_length() -> None:
    """anime/10041: episodeLength 0 is unknown (NULL), subtype special, G rating."""
    batch = transform("kitsu", "anime", _load(REAL / "kitsu" / "anime-status-finished.json"))
    _expect(
        _media(batch, "anime/10041"),
        format="special",
        status="finished",
        episode_count=1,
        episode_minutes=None,
        title="Hatsune Miku x Tetsuya Nomura",
        title_english=None,
        age_rating="G",
        average_score=Decimal("58.21"),
    )


def test_kitsu_tba_chinese_ona() -> None:
    """anime/45557: tba → not_yet_released, Chinese romanisation and script, no dates, no score."""
    batch = transform("kitsu", "anime", _load(REAL / "kitsu" / "anime-status-tba.json"))
    _expect(
        _media(batch, "anime/45557"),
        format="ona",
        status="not_yet_released",
        title="Fog Hill of Five Elements",
        title_romaji="Wu Shan Wu Xing: Xichuan Huan Zi Lin",
        title_native="雾山五行·犀川幻紫林",
        start_date=None,
        start_precision=None,
        season=None,
        average_score=None,
        age_rating="R",
    )


def test_kitsu_music_and_movie_subtypes() -> None:
    """anime/11791 music without ``en``; anime/2027 movie with English display title."""
    music = transform("kitsu", "anime", _load(REAL / "kitsu" / "anime-type-music.json"))
    _expect(_media(music, "anime/11791"), format="music", title="Nirvana", title_native="ニルバナ")
    movie = transform("kitsu", "anime", _load(REAL / "kitsu" / "anime-type-movie.json"))
    _expect(
        _media(movie, "anime/2027"),
        format="movie",
        title="The Girl Who Leapt Through Time",
        title_romaji="Toki wo Kakeru Shoujo",
        season="summer",
        season_year=2006,
        episode_minutes=98,
    )


def test_kitsu_relations_page_becomes_media_relations() -> None:
    """The real media-relationships page of anime 1415 (fetched with ``filter[source_id]`` and
    ``include=destination``): a relation per record with Kitsu's role in the unified vocabulary;
    the stream stores only its relations, the included anime and manga are their streams' own."""
    page = _load(next(REAL.glob("kitsu/*_relations.json")))
    batch = transform("kitsu", "media-relationships", page)
    assert {r.resource for r in batch.raw} == {"media-relationships"}
    assert "catalog.media" not in batch.rows
    relations = {r["source_id"]: r for r in batch.rows["catalog.media_relations"]}
    assert len(relations) == 10
    _expect(
        relations["16813"],
        relation="sequel",
        related_media_source_id="anime/2634",
        media_source_id=None,  # no source linkage: that request filtered by source instead
    )
    by_role = {r["relation"] for r in relations.values()}
    # spinoff -> spin_off and alternative_version -> alternative (sql/017's list)
    assert by_role == {"sequel", "other", "summary", "adaptation", "spin_off", "side_story", "alternative"}
    assert not batch.unknown
    # Read as a plain document (replay of raw records, ``/anime/1/media-relationships``) the
    # included media become media rows too.
    whole = kitsu.transform_media_relationships(page)
    manga = _media(whole, "manga/3250")
    assert (manga["kind"], manga["format"]) == ("manga", "manga")
    assert len(whole.rows["catalog.media"]) == 10


def test_kitsu_categories_page_becomes_genres() -> None:
    """``/anime/1/categories``: each category a genre with slug and description."""
    batch = transform("kitsu", "categories", _load(REAL / "kitsu" / "anime-tags-1_tags.json"))
    first = batch.rows["catalog.genres"][0]
    _expect(first, source_id="21", name="Bounty Hunter", slug="bounty-hunter", is_adult=False)
    assert first["description"].startswith("Involve hunting down criminals")
    assert len(batch.rows["catalog.genres"]) == 10


def test_anilist_fullmetal_alchemist_brotherhood() -> None:
    """5114: English display title, AniList's own season, genres by slug, characters and staff."""
    batch = transform("anilist", "anime", _load(REAL / "anilist-graphql" / "media-type-tv.json"))
    _expect(
        _media(batch, "5114"),
        source_kind="anilist",
        kind="anime",
        format="tv",
        title="Fullmetal Alchemist: Brotherhood",
        title_romaji="Hagane no Renkinjutsushi: FULLMETAL ALCHEMIST",
        title_native="鋼の錬金術師 FULLMETAL ALCHEMIST",
        status="finished",
        start_date=date(2009, 4, 5),
        end_date=date(2010, 7, 4),
        season="spring",
        season_year=2009,
        episode_count=64,
        episode_minutes=25,
        average_score=Decimal("90.00"),
        popularity=473124,
        is_adult=False,
        age_rating=None,
    )
    synopsis = _media(batch, "5114")["synopsis"]
    assert "<br>" not in synopsis
    assert "\n\nAlchemy is bound" in synopsis
    assert {g["source_id"] for g in batch.rows["catalog.genres"]} == {
        "action",
        "adventure",
        "drama",
        "fantasy",
    }
    edward = next(ch for ch in batch.rows["catalog.characters"] if ch["source_id"] == "11")
    assert edward["name"] == "Edward Elric"
    link = next(
        link for link in batch.rows["catalog.media_characters"] if link["character_source_id"] == "11"
    )
    _expect(link, source_id="5114:11", media_source_id="5114", role="main")
    credit = next(s for s in batch.rows["catalog.media_staff"] if s["source_id"] == "1209")
    _expect(credit, person_source_id="95202", role="ADR Director (English)")


def test_anilist_december_special_keeps_the_sources_season() -> None:
    """106169 aired 2018-12-31: AniList says FALL 2018, and the source's own season wins."""
    batch = transform("anilist", "anime", _load(REAL / "anilist-graphql" / "media-type-special.json"))
    _expect(_media(batch, "106169"), format="special", season="fall", season_year=2018, start_precision="day")


def test_anilist_cancelled_movie_with_year_only_date() -> None:
    """101704: english null, startDate year only, averageScore null, status cancelled."""
    batch = transform("anilist", "anime", _load(REAL / "anilist-graphql" / "media-status-cancelled.json"))
    _expect(
        _media(batch, "101704"),
        title="Kiss and Cry",
        title_english=None,
        status="cancelled",
        format="movie",
        start_date=date(2009, 1, 1),
        start_precision="year",
        end_date=None,
        season=None,
        season_year=None,
        average_score=None,
        synopsis="A Japanese, Korean and American co-production.\n\n(Source: Anime News Network)",
    )


def test_anilist_null_format_and_status() -> None:
    """135643: format and status null stay NULL (not ``unknown``)."""
    batch = transform("anilist", "anime", _load(REAL / "anilist-graphql" / "media-status-null.json"))
    _expect(_media(batch, "135643"), format=None, status=None, title="Grimm (Provisional Title)")


def test_anilist_releasing_ona() -> None:
    """118123: releasing ONA, no episode count yet, spring 2019."""
    batch = transform("anilist", "anime", _load(REAL / "anilist-graphql" / "media-status-releasing.json"))
    _expect(
        _media(batch, "118123"),
        format="ona",
        status="releasing",
        episode_count=None,
        episode_minutes=2,
        season="spring",
        season_year=2019,
        average_score=Decimal("80.00"),
    )


def test_v1_nanoha_browse_item() -> None:
    """17947: season code 173, day-precise fuzzy dates, score 0 = no score yet, updated_at epoch."""
    batch = transform("anilist_v1", "anime", [V1_NANOHA])
    _expect(
        _media(batch, "17947"),
        source_kind="anilist_v1",
        kind="anime",
        format="movie",
        title="Magical Girl Lyrical Nanoha: Reflection",
        title_native="魔法少女リリカルなのはReflection",
        start_date=date(2017, 7, 22),
        start_precision="day",
        season="summer",
        season_year=2017,
        average_score=None,
        episode_count=1,
        popularity=539,
        source_updated_at=datetime(2017, 11, 27, 16, 54, 46, tzinfo=UTC),
    )


def test_v1_isekai_shokudou_month_precise_start() -> None:
    """97617: 20170700 = July 2017 (month), total_episodes 0 = unknown, numeric score."""
    batch = transform("anilist_v1", "anime", [V1_ISEKAI_SHOKUDOU])
    _expect(
        _media(batch, "97617"),
        start_date=date(2017, 7, 1),
        start_precision="month",
        end_date=None,
        season="summer",
        season_year=2017,
        episode_count=None,
        average_score=Decimal("59.70"),
        status="not_yet_released",
    )
    assert (None, "Alternate-World Restaurant", True) in {
        (t["locale"], t["title"], t["is_synonym"]) for t in batch.rows["catalog.media_titles"]
    }


def test_v1_cowboy_bebop_old_iso_dates_and_string_score() -> None:
    """1: ISO datetimes give day-precise dates; "86.8" → 86.80; derived spring season; classification kept."""
    batch = transform("anilist_v1", "anime", V1_BEBOP)
    _expect(
        _media(batch, "1"),
        start_date=date(1998, 4, 3),
        end_date=date(1999, 4, 24),
        season="spring",
        season_year=1998,
        average_score=Decimal("86.80"),
        title_english=None,
        title="Cowboy Bebop",
        title_native="カウボーイビバップ",
        age_rating="R - 17+ (violence & profanity)",
        banner_url="http://anilist.co/img/dir/anime/banner/1.jpg",
        synopsis="Enter a world in the distant future, where Bounty Hunters roam the solar system.\n\n"
        "While traveling, they meet up with other very interesting people.",
    )
    assert {(r["site"], r["external_id"]) for r in batch.rows["catalog.external_ids"]} == {
        ("anilist/anime", "1")
    }


def test_v1_nisekoi_seed_record_filled_titles() -> None:
    """18897 (seed 002): English equal to romaji and empty Japanese are stored as NULL."""
    batch = transform("anilist_v1", "anime", [V1_NISEKOI, V1_EVANGELION])
    _expect(
        _media(batch, "18897"),
        title="Nisekoi",
        title_romaji="Nisekoi",
        title_english=None,
        title_native=None,
        status="releasing",
        average_score=Decimal("79.30"),
        episode_count=20,
        kind="anime",
        format="tv",
    )
    _expect(_media(batch, "30"), status="finished", average_score=Decimal("82.00"), episode_count=26)


def test_the_recordings_are_found() -> None:
    """The fixture folders are where the tests look (an empty glob would test nothing)."""
    assert (len(KITSU_FILES), len(ANILIST_FILES)) == (20, 13)
