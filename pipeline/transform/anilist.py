"""AniList GraphQL v2 responses → ``catalog.*`` rows. Pure: no I/O, no clock.

``transform_anime`` / ``transform_manga`` take one response as fetched: a page
``{"data": {"Page": {"pageInfo": …, "media": [...]}}}`` or a single ``{"data": {"Media": {…}}}``.
Each Media object is one raw record (``source_id`` = its AniList id, which is global across anime
and manga) and yields the media row, its titles, genres, external ids (``anilist/<kind>`` = its
own id, ``myanimelist/<kind>`` = ``idMal``, which is how ``catalog.works`` meets Kitsu), and the
characters and staff the query asked for (``characters``/``characterPreview``, ``staff``/
``staffPreview`` connections with ``edges``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from functools import partial
from typing import Any

from pipeline.errors import ContractError, SkippableRecordError
from pipeline.records import Batch
from pipeline.transform import common as c

SOURCE_KIND = "anilist"

KINDS = {"anime": "anime", "manga": "manga"}
FORMATS = {
    "tv": "tv",
    "tv_short": "tv_short",
    "movie": "movie",
    "special": "special",
    "ova": "ova",
    "ona": "ona",
    "music": "music",
    "manga": "manga",
    "novel": "novel",
    "one_shot": "one_shot",
}
STATUSES = {
    "finished": "finished",
    "releasing": "releasing",
    "not_yet_released": "not_yet_released",
    "cancelled": "cancelled",
    "hiatus": "hiatus",
}
SEASONS = {season: season for season in c.SEASONS}
ROLES = {"main": "main", "supporting": "supporting", "background": "background"}
# AniList has one MANGA format and tells comics apart by country; Kitsu calls them manhwa/manhua.
COMICS_BY_COUNTRY = {"KR": "manhwa", "CN": "manhua", "TW": "manhua"}
# (romaji locale, native locale) by countryOfOrigin, in Kitsu's locale spelling.
LOCALES_BY_COUNTRY = {
    "JP": ("en_jp", "ja_jp"),
    "CN": ("en_cn", "zh_cn"),
    "KR": ("en_kr", "ko_kr"),
    "TW": ("en_tw", "zh_tw"),
}


def page_media(payload: Any, resource: str) -> list[Any]:
    """The Media objects of a ``Page`` or single ``Media`` response."""
    where = f"anilist {resource}"
    if not isinstance(payload, Mapping):
        raise ContractError(f"{where}: expected a GraphQL response object, got {type(payload).__name__}")
    data = payload.get("data")
    if not isinstance(data, Mapping):
        raise ContractError(f"{where}: response without data (errors: {payload.get('errors')!r})")
    if "Page" in data:
        page = data["Page"]
        media = page.get("media") if isinstance(page, Mapping) else None
        if not isinstance(media, list):
            raise ContractError(f"{where}: data.Page has no media list; query Page {{ media {{ … }} }}")
        return media
    if "Media" in data:
        return [] if data["Media"] is None else [data["Media"]]
    raise ContractError(f"{where}: expected data.Page or data.Media, got keys {sorted(data)}")


def title_rows(media: str, titles: list[tuple[str | None, str | None]], synonyms: Any) -> c.Rows:
    """media_titles rows: one per (locale, title), then the synonyms (no locale)."""
    rows: c.Rows = []
    for locale, title in titles:
        if title is not None:
            rows.append(_title(media, locale, title, is_synonym=False))
    for synonym in synonyms or []:
        if (clean := c.text(synonym, "synonyms")) is not None:
            rows.append(_title(media, None, clean, is_synonym=True))
    return rows


def _title(media: str, locale: str | None, title: str, *, is_synonym: bool) -> tuple[str, c.Row]:
    return "catalog.media_titles", {
        "media_source_id": media,
        "locale": locale,
        "title": title,
        "is_synonym": is_synonym,
    }


def genre_rows(media: str, genres: Any) -> c.Rows:
    """A genre row per name (source_id = its slug) and the media's links to them."""
    rows: c.Rows = []
    for genre in genres or []:
        name = c.text(genre, "genres")
        if name is None:
            continue
        slug = c.slugify(name)
        row = {"source_id": slug, "source_updated_at": None, "name": name, "slug": slug}
        rows.append(("catalog.genres", {**row, "description": None, "is_adult": None}))
        rows.append(("catalog.media_genres", {"media_source_id": media, "genre_source_id": slug}))
    return rows


def external_id_row(media: str, site: str, external_id: str) -> tuple[str, c.Row]:
    """An external id stated by an AniList media; source_id ``<media>:<site>``."""
    return "catalog.external_ids", {
        "source_id": f"{media}:{site}",
        "source_updated_at": None,
        "media_source_id": media,
        "site": site,
        "external_id": external_id,
    }


def _image(value: Any) -> str | None:
    if not isinstance(value, Mapping):
        return None
    return c.first_text(*(c.text(value.get(size), "image") for size in ("extraLarge", "large", "medium")))


def _edges(media: Mapping[str, Any], *names: str) -> list[Mapping[str, Any]]:
    for name in names:
        connection = media.get(name)
        if isinstance(connection, Mapping) and isinstance(connection.get("edges"), list):
            return [edge for edge in connection["edges"] if isinstance(edge, Mapping)]
    return []


def _names(node: Mapping[str, Any], what: str) -> tuple[str, str | None, list[str]]:
    name = node.get("name") if isinstance(node.get("name"), Mapping) else {}
    assert isinstance(name, Mapping)
    full = c.first_text(
        c.text(name.get("full"), f"{what}.name.full"), c.text(name.get("userPreferred"), "name")
    )
    if full is None:
        raise SkippableRecordError(f"{what} {node.get('id')!r}: no name.full")
    others = [c.text(other, f"{what}.name.alternative") for other in name.get("alternative") or []]
    return full, c.text(name.get("native"), f"{what}.name.native"), [other for other in others if other]


def character_rows(media: str, edges: list[Mapping[str, Any]]) -> c.Rows:
    rows: c.Rows = []
    for edge in edges:
        node = edge.get("node")
        if not isinstance(node, Mapping):
            continue
        ident = c.require_id(node.get("id"), "character.id")
        full, native, others = _names(node, "character")
        character = {
            "source_id": ident,
            "source_updated_at": None,
            "name": full,
            "name_native": native,
            "other_names": others or None,
            "description": c.plain_text(node.get("description"), "character.description"),
            "image_url": _image(node.get("image")),
            **c.NO_CHARACTER_DETAILS,
            "gender": c.text(node.get("gender"), "character.gender"),
        }
        link = {
            "source_id": f"{media}:{ident}",
            "source_updated_at": None,
            "media_source_id": media,
            "character_source_id": ident,
            "role": c.vocabulary(edge.get("role"), ROLES, "anilist.character.role"),
        }
        rows += [("catalog.characters", character), ("catalog.media_characters", link)]
    return rows


def staff_rows(media: str, edges: list[Mapping[str, Any]]) -> c.Rows:
    rows: c.Rows = []
    for edge in edges:
        node = edge.get("node")
        if not isinstance(node, Mapping):
            continue
        ident = c.require_id(node.get("id"), "staff.id")
        full, native, _ = _names(node, "staff")
        role = c.text(edge.get("role"), "staff.role")
        person = {
            "source_id": ident,
            "source_updated_at": None,
            "name": full,
            "name_native": native,
            "language": c.text(node.get("languageV2") or node.get("language"), "staff.language"),
            "description": c.plain_text(node.get("description"), "staff.description"),
            "image_url": _image(node.get("image")),
        }
        edge_id = edge.get("id")
        credit = {
            "source_id": str(edge_id) if isinstance(edge_id, int) else f"{media}:{ident}:{role or ''}",
            "source_updated_at": None,
            "media_source_id": media,
            "person_source_id": ident,
            "role": role,
        }
        rows += [("catalog.people", person), ("catalog.media_staff", credit)]
    return rows


def _season(media: Mapping[str, Any], start: c.PartialDate | None) -> tuple[str, int] | None:
    season = c.vocabulary(media.get("season"), SEASONS, "anilist.season")
    year = c.integer(media.get("seasonYear"), "seasonYear")
    if season in SEASONS and year is not None:
        return season, year
    return c.season_from_date(start)


def media_rows(media: Mapping[str, Any], resource: str) -> c.Rows:
    """One Media object: the media row and everything hanging off it."""
    ident = c.require_id(media.get("id"), "id")
    kind = c.vocabulary(media.get("type"), KINDS, "anilist.type") or resource
    if kind not in KINDS:
        raise SkippableRecordError(f"media {ident}: type {media.get('type')!r} is neither ANIME nor MANGA")
    titles = media.get("title") if isinstance(media.get("title"), Mapping) else {}
    assert isinstance(titles, Mapping)
    english, romaji, native, preferred = (
        c.text(titles.get(key), f"title.{key}") for key in ("english", "romaji", "native", "userPreferred")
    )
    display = c.first_text(english, romaji, native, preferred)
    if display is None:
        raise SkippableRecordError(f"media {ident}: no title (english, romaji, native, userPreferred)")
    start = c.fuzzy_date(media.get("startDate"), "startDate")
    end = c.fuzzy_date(media.get("endDate"), "endDate")
    season = _season(media, start)
    country = c.text(media.get("countryOfOrigin"), "countryOfOrigin")
    media_format = c.vocabulary(media.get("format"), FORMATS, "anilist.format")
    if media_format == "manga" and country in COMICS_BY_COUNTRY:
        media_format = COMICS_BY_COUNTRY[country]
    is_adult = media.get("isAdult")
    row = {
        "source_id": ident,
        "source_updated_at": c.timestamp(media.get("updatedAt"), "updatedAt"),
        "source_kind": SOURCE_KIND,
        "kind": kind,
        "format": media_format,
        "title": display,
        "title_romaji": romaji,
        "title_english": english,
        "title_native": native,
        "synopsis": c.plain_text(media.get("description"), "description"),
        "status": c.vocabulary(media.get("status"), STATUSES, "anilist.status"),
        **c.date_columns(start, end, season, kind, fields=("startDate", "endDate")),
        "episode_count": c.count(media.get("episodes"), "episodes"),
        "episode_minutes": c.count(media.get("duration"), "duration"),
        "chapter_count": c.count(media.get("chapters"), "chapters"),
        "volume_count": c.count(media.get("volumes"), "volumes"),
        "average_score": c.score(media.get("averageScore"), "averageScore"),
        "popularity": c.non_negative(media.get("popularity"), "popularity"),
        "age_rating": None,
        "is_adult": is_adult if isinstance(is_adult, bool) else None,
        "poster_url": _image(media.get("coverImage")),
        "banner_url": c.text(media.get("bannerImage"), "bannerImage"),
    }
    romaji_locale, native_locale = LOCALES_BY_COUNTRY.get(country or "JP", ("en_jp", "ja_jp"))
    rows: c.Rows = [("catalog.media", row)]
    rows += title_rows(
        ident, [("en", english), (romaji_locale, romaji), (native_locale, native)], media.get("synonyms")
    )
    rows += genre_rows(ident, media.get("genres"))
    rows.append(external_id_row(ident, f"anilist/{kind}", ident))
    if media.get("idMal") is not None:
        rows.append(external_id_row(ident, f"myanimelist/{kind}", c.require_id(media["idMal"], "idMal")))
    rows += character_rows(ident, _edges(media, "characters", "characterPreview"))
    rows += staff_rows(ident, _edges(media, "staff", "staffPreview"))
    return rows


def record_id(record: Mapping[str, Any]) -> str | None:
    """The id a raw record is stored under, or None when it has none (it is then only rejected)."""
    try:
        return c.require_id(record.get("id"), "id")
    except SkippableRecordError:
        return None


def build_page(
    records: Iterable[Any], resource: str, label: str, rows: Callable[[Mapping[str, Any], str], Any]
) -> Batch:
    """Each record (Media or v1 series) a raw record plus ``rows(record, resource)``, or a reject."""
    builder = c.PageBuilder()
    for record in records:
        if not isinstance(record, Mapping):
            builder.reject(resource, None, record, f"{label} {record!r}: expected an object")
            continue
        builder.record(resource, record, record_id(record), partial(rows, record, resource))
    return builder.batch


def transform_media(payload: Any, resource: str) -> Batch:
    """A page of Media: each one a raw record plus its rows, or a reject."""
    return build_page(page_media(payload, resource), resource, "media", media_rows)


def transform_anime(payload: Any) -> Batch:
    """An anime ``Page``/``Media`` response."""
    return transform_media(payload, "anime")


def transform_manga(payload: Any) -> Batch:
    """A manga ``Page``/``Media`` response."""
    return transform_media(payload, "manga")
