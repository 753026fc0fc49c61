"""Legacy AniList REST v1 series models → ``catalog.*`` rows. Pure: no I/O, no clock.

``transform_anime`` / ``transform_manga`` take one response as fetched: the bare JSON array of
small series models that ``browse/{type}`` returns, or one full model (``{type}/{id}/page``, with
``characters`` and ``staff``). v1 ids are AniList ids (the same as v2), so each media also states
``anilist/<kind>`` = its id and groups with v2 rows in ``catalog.works``.

v1 quirks handled here: English/Japanese titles filled with the romaji title when missing (stored
as NULL), fuzzy ``YYYYMMDD`` dates with ``00`` for unknown parts (older records: ISO datetimes in
``start_date``/``end_date``), ``season`` codes (173 = 2017 summer), ``average_score`` as a string
or a number with 0 = no score yet, ``total_episodes``/``total_chapters`` 0 = unknown.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipeline.errors import ContractError, SkippableRecordError
from pipeline.records import Batch
from pipeline.transform import common as c
from pipeline.transform.anilist import build_page, external_id_row, genre_rows, title_rows
from pipeline.transform.resources import ResourceTransform, as_list

SOURCE_KIND = "anilist_v1"

KINDS = {"anime": "anime", "manga": "manga"}
# v1 type strings; the browse filter's numeric type ids (0 = TV … 12 = Manhwa) map the same way.
_TYPE_NAMES: tuple[str, ...] = ("tv", "tv short", "movie", "special", "ova", "ona", "music")
_TYPE_NAMES += ("manga", "novel", "one shot", "doujin", "manhua", "manhwa")
_TYPE_NAMES_MAP = {name: name.replace(" ", "_") for name in _TYPE_NAMES}
FORMATS = {
    **_TYPE_NAMES_MAP,
    **{str(number): _TYPE_NAMES_MAP[name] for number, name in enumerate(_TYPE_NAMES)},
}
STATUSES = {
    "finished airing": "finished",
    "currently airing": "releasing",
    "not yet aired": "not_yet_released",
    "finished publishing": "finished",
    "publishing": "releasing",
    "not yet published": "not_yet_released",
    "cancelled": "cancelled",
    "on hiatus": "hiatus",
}
ROLES = {"main": "main", "supporting": "supporting", "background": "background"}


def page_series(payload: Any, resource: str) -> list[Any]:
    """A browse page (bare list) or one full model (object) as a list of series models."""
    if isinstance(payload, list):
        return payload
    if isinstance(payload, Mapping) and "id" in payload:
        return [payload]
    raise ContractError(
        f"anilist_v1 {resource}: expected a list of series models or one series model, "
        f"got {type(payload).__name__}"
    )


def _date(series: Mapping[str, Any], fuzzy_key: str, iso_key: str) -> c.PartialDate | None:
    fuzzy = c.fuzzy_int_date(series.get(fuzzy_key), fuzzy_key)
    return fuzzy if fuzzy is not None else c.iso_date(series.get(iso_key), iso_key)


def _full_name(first: Any, last: Any, field: str) -> str | None:
    parts = [c.text(first, f"{field}_first"), c.text(last, f"{field}_last")]
    return " ".join(part for part in parts if part) or None


def character_rows(media: str, characters: Any) -> c.Rows:
    rows: c.Rows = []
    for character in characters or []:
        ident = c.require_id(character.get("id"), "characters.id")
        name = _full_name(character.get("name_first"), character.get("name_last"), "name")
        if name is None:
            raise SkippableRecordError(f"character {ident}: no name_first/name_last")
        alt = c.text(character.get("name_alt"), "name_alt")
        row = {
            "source_id": ident,
            "source_updated_at": None,
            "name": name,
            "name_native": c.text(character.get("name_japanese"), "name_japanese"),
            "other_names": [alt] if alt else None,
            "description": c.plain_text(character.get("info"), "info"),
            "image_url": c.first_text(c.text(character.get("image_url_lge"), "image_url_lge")),
            **c.NO_CHARACTER_DETAILS,
        }
        link = {
            "source_id": f"{media}:{ident}",
            "source_updated_at": None,
            "media_source_id": media,
            "character_source_id": ident,
            "role": c.vocabulary(character.get("role"), ROLES, "anilist_v1.character.role"),
        }
        rows += [("catalog.characters", row), ("catalog.media_characters", link)]
    return rows


def staff_rows(media: str, staff: Any) -> c.Rows:
    rows: c.Rows = []
    for person in staff or []:
        ident = c.require_id(person.get("id"), "staff.id")
        name = _full_name(person.get("name_first"), person.get("name_last"), "name")
        if name is None:
            raise SkippableRecordError(f"staff {ident}: no name_first/name_last")
        native = "".join(
            part
            for part in (c.text(person.get(f"name_{p}_japanese"), "name_japanese") for p in ("last", "first"))
            if part
        )
        role = c.text(person.get("role"), "role")
        row = {
            "source_id": ident,
            "source_updated_at": None,
            "name": name,
            "name_native": native or None,
            "language": c.text(person.get("language"), "language"),
            "description": c.plain_text(person.get("info"), "info"),
            "image_url": c.text(person.get("image_url_lge"), "image_url_lge"),
        }
        credit = {
            "source_id": f"{media}:{ident}:{role or ''}",
            "source_updated_at": None,
            "media_source_id": media,
            "person_source_id": ident,
            "role": role,
        }
        rows += [("catalog.people", row), ("catalog.media_staff", credit)]
    return rows


def media_rows(series: Mapping[str, Any], resource: str) -> c.Rows:
    """One series model: the media row, titles, genres, its AniList id, characters and staff."""
    ident = c.require_id(series.get("id"), "id")
    kind = c.vocabulary(series.get("series_type"), KINDS, "anilist_v1.series_type") or resource
    if kind not in KINDS:
        raise SkippableRecordError(
            f"series {ident}: series_type {series.get('series_type')!r} is not anime/manga"
        )
    romaji = c.text(series.get("title_romaji"), "title_romaji")
    english = c.not_a_copy(c.text(series.get("title_english"), "title_english"), romaji)
    native = c.not_a_copy(c.text(series.get("title_japanese"), "title_japanese"), romaji)
    display = c.first_text(english, romaji, native)
    if display is None:
        raise SkippableRecordError(f"series {ident}: no title_romaji, title_english or title_japanese")
    start = _date(series, "start_date_fuzzy", "start_date")
    end = _date(series, "end_date_fuzzy", "end_date")
    season = c.season_from_code(series.get("season"), "season", start) or c.season_from_date(start)
    status = series.get("airing_status") if kind == "anime" else series.get("publishing_status")
    adult = series.get("adult")
    row = {
        "source_id": ident,
        "source_updated_at": c.timestamp(series.get("updated_at"), "updated_at"),
        "source_kind": SOURCE_KIND,
        "kind": kind,
        "format": c.vocabulary(series.get("type"), FORMATS, "anilist_v1.type"),
        "title": display,
        "title_romaji": romaji,
        "title_english": english,
        "title_native": native,
        "synopsis": c.plain_text(series.get("description"), "description"),
        "status": c.vocabulary(status, STATUSES, "anilist_v1.status"),
        **c.date_columns(start, end, season, kind),
        "episode_count": c.count(series.get("total_episodes"), "total_episodes"),
        "episode_minutes": c.count(series.get("duration"), "duration"),
        "chapter_count": c.count(series.get("total_chapters"), "total_chapters"),
        "volume_count": c.count(series.get("total_volumes"), "total_volumes"),
        "average_score": c.score(series.get("average_score"), "average_score", zero_is_missing=True),
        "popularity": c.non_negative(series.get("popularity"), "popularity"),
        "age_rating": c.text(series.get("classification"), "classification"),
        "is_adult": adult if isinstance(adult, bool) else None,
        "poster_url": c.first_text(
            *(c.text(series.get(key), key) for key in ("image_url_lge", "image_url_med", "image_url_sml"))
        ),
        "banner_url": c.text(series.get("image_url_banner"), "image_url_banner"),
    }
    rows: c.Rows = [("catalog.media", row)]
    rows += title_rows(ident, [("en", english), ("en_jp", romaji), ("ja_jp", native)], series.get("synonyms"))
    rows += genre_rows(ident, series.get("genres"))
    rows.append(external_id_row(ident, f"anilist/{kind}", ident))
    rows += character_rows(ident, series.get("characters"))
    rows += staff_rows(ident, series.get("staff"))
    return rows


def transform_series(payload: Any, resource: str) -> Batch:
    """A browse page or one full model: each series a raw record plus its rows, or a reject."""
    return build_page(page_series(payload, resource), resource, "series", media_rows)


def transform_anime(payload: Any) -> Batch:
    """``browse/anime`` pages and ``anime/{id}/page`` models."""
    return transform_series(payload, "anime")


def transform_manga(payload: Any) -> Batch:
    """``browse/manga`` pages and ``manga/{id}/page`` models."""
    return transform_series(payload, "manga")


TRANSFORMS: dict[str, ResourceTransform] = {
    "anime": ResourceTransform(transform_anime, as_list),
    "manga": ResourceTransform(transform_manga, as_list),
}
