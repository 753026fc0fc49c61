"""Kitsu JSON:API documents → ``catalog.*`` rows. Pure: no I/O, no clock.

Every ``transform_<resource>`` takes one page as fetched (a list document, or a single-resource
document such as ``GET /anime/12``) and walks both ``data`` and ``included``: an anime page fetched
with ``include=categories,mappings`` yields media, genres, media_genres and external_ids at once.
What a resource becomes is decided by its JSON:API ``type``, so any route works (``/anime/1/
categories`` is a categories page). Raw records keep each resource object verbatim under the
resource name of its type; ``pipeline replay`` hands one back as ``{"data": payload}``.

Kitsu numbers anime and manga separately, so media ``source_id`` is ``anime/12`` / ``manga/12``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from functools import partial
from typing import Any

from pipeline.errors import SkippableRecordError
from pipeline.records import Batch
from pipeline.transform import common as c
from pipeline.transform.jsonapi import (
    Document,
    Identifier,
    Resource,
    attributes,
    identify,
    linkage,
    parse_document,
)

SOURCE_KIND = "kitsu"

ANIME_FORMATS = {
    "tv": "tv",
    "special": "special",
    "ova": "ova",
    "ona": "ona",
    "movie": "movie",
    "music": "music",
}
MANGA_FORMATS = {
    "manga": "manga",
    "novel": "novel",
    "manhua": "manhua",
    "oneshot": "one_shot",
    "one_shot": "one_shot",
    "doujin": "doujin",
    "manhwa": "manhwa",
    "oel": "oel",
}
# Kitsu computes status from the dates: tba (no date), unreleased/upcoming (dated, in the future).
STATUSES = {
    "tba": "not_yet_released",
    "unreleased": "not_yet_released",
    "upcoming": "not_yet_released",
    "current": "releasing",
    "finished": "finished",
}
ROLES = {"main": "main", "supporting": "supporting", "background": "background"}

ENGLISH_LOCALES = ("en", "en_us", "en_gb")
ROMAJI_LOCALES = ("en_jp", "en_cn", "en_kr", "en_tw")
NATIVE_LOCALES = ("ja_jp", "zh_cn", "ko_kr", "zh_tw", "zh_hk")
_TITLE_ORDER = (ENGLISH_LOCALES, ROMAJI_LOCALES, NATIVE_LOCALES)
MEDIA_VOLATILE = ("attributes.updatedAt",)  # bumped on every row every 6 h by a server job

Owners = Mapping[Identifier, Identifier]  # mapping resource -> the media whose `mappings` names it
Handler = Callable[[Document, Resource, Owners], c.Rows]


def media_key(kind: str, ident: str) -> str:
    """The unified ``source_id`` of a Kitsu media: ``anime/12``."""
    return f"{kind}/{ident}"


def _updated(attrs: Mapping[str, Any]) -> Any:
    return c.timestamp(attrs.get("updatedAt"), "updatedAt")


def _locale_titles(value: Any, field: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise SkippableRecordError(f"{field} = {value!r}: expected an object keyed by locale")
    found = {str(locale): c.text(title, f"{field}.{locale}") for locale, title in value.items()}
    return {locale: title for locale, title in found.items() if title is not None}


def _pick(titles: Mapping[str, str], locales: tuple[str, ...]) -> str | None:
    return c.first_text(*(titles.get(locale) for locale in locales))


def _image(value: Any) -> str | None:
    if not isinstance(value, Mapping):
        return None
    for size in ("original", "large", "medium", "small", "tiny"):
        url = value.get(size)
        if isinstance(url, str) and url.strip():
            return url.strip()
    return None


def _description(attrs: Mapping[str, Any]) -> str | None:
    synopsis = c.plain_text(attrs.get("synopsis"), "synopsis")
    if synopsis is not None:
        return synopsis
    description = attrs.get("description")
    if isinstance(description, Mapping):  # newer servers: {"en": "..."}
        description = description.get("en")
    return c.plain_text(description, "description")


def _related_media(resource: Resource, name: str) -> str | None:
    targets = linkage(resource, name)
    return media_key(*targets[0]) if targets else None


def media_rows(doc: Document, resource: Resource, owners: Owners) -> c.Rows:
    """An anime or manga: the media row, its titles and, when the page carries them, its categories."""
    kind, ident = identify(resource)
    attrs = attributes(resource)
    key = media_key(kind, ident)
    titles = _locale_titles(attrs.get("titles"), "titles")
    english, romaji = _pick(titles, ENGLISH_LOCALES), _pick(titles, ROMAJI_LOCALES)
    native = _pick(titles, NATIVE_LOCALES)
    canonical, slug = c.text(attrs.get("canonicalTitle"), "canonicalTitle"), c.text(attrs.get("slug"), "slug")
    display = c.first_text(english, romaji, native, canonical, slug)
    if display is None:
        raise SkippableRecordError(f"{kind} {ident}: no title in titles, canonicalTitle or slug")
    start = c.iso_date(attrs.get("startDate"), "startDate")
    end = c.iso_date(attrs.get("endDate"), "endDate")
    season = c.season_from_date(start)
    age_rating = c.text(attrs.get("ageRating"), "ageRating")
    nsfw = attrs.get("nsfw")
    formats = ANIME_FORMATS if kind == "anime" else MANGA_FORMATS
    subtype = attrs.get("subtype") or attrs.get("showType") or attrs.get("mangaType")
    media = {
        "source_id": key,
        "source_updated_at": _updated(attrs),
        "source_kind": SOURCE_KIND,
        "kind": kind,
        "format": c.vocabulary(subtype, formats, f"kitsu.{kind}.subtype"),
        "title": display,
        "title_romaji": romaji,
        "title_english": english,
        "title_native": native,
        "synopsis": _description(attrs),
        "status": c.vocabulary(attrs.get("status"), STATUSES, "kitsu.status"),
        **c.date_columns(start, end, season, kind, fields=("startDate", "endDate")),
        "episode_count": c.count(attrs.get("episodeCount"), "episodeCount"),
        "episode_minutes": c.count(attrs.get("episodeLength"), "episodeLength"),
        "chapter_count": c.count(attrs.get("chapterCount"), "chapterCount"),
        "volume_count": c.count(attrs.get("volumeCount"), "volumeCount"),
        "average_score": c.score(attrs.get("averageRating"), "averageRating"),
        "popularity": c.non_negative(attrs.get("userCount"), "userCount"),
        "age_rating": age_rating,
        "is_adult": nsfw if isinstance(nsfw, bool) else (age_rating == "R18" if age_rating else None),
        "poster_url": _image(attrs.get("posterImage")),
        "banner_url": _image(attrs.get("coverImage")),
    }
    rows: c.Rows = [("catalog.media", media)]
    for locale, title in titles.items():
        rows.append(_title_row(key, locale, title, is_synonym=False))
    for title in attrs.get("abbreviatedTitles") or []:
        if (clean := c.text(title, "abbreviatedTitles")) is not None:
            rows.append(_title_row(key, None, clean, is_synonym=True))
    for category_type, category_id in linkage(resource, "categories") or []:
        if category_type == "categories":
            rows.append(("catalog.media_genres", {"media_source_id": key, "genre_source_id": category_id}))
    return rows


def _title_row(media: str, locale: str | None, title: str, *, is_synonym: bool) -> tuple[str, c.Row]:
    row = {"media_source_id": media, "locale": locale, "title": title, "is_synonym": is_synonym}
    return "catalog.media_titles", row


def category_rows(doc: Document, resource: Resource, owners: Owners) -> c.Rows:
    """A category: a genre of this source."""
    _, ident = identify(resource)
    attrs = attributes(resource)
    name = c.text(attrs.get("title"), "title")
    if name is None:
        raise SkippableRecordError(f"category {ident}: no title")
    nsfw = attrs.get("nsfw")
    genre = {
        "source_id": ident,
        "source_updated_at": _updated(attrs),
        "name": name,
        "slug": c.text(attrs.get("slug"), "slug") or c.slugify(name),
        "description": c.plain_text(attrs.get("description"), "description"),
        "is_adult": nsfw if isinstance(nsfw, bool) else None,
    }
    return [("catalog.genres", genre)]


def mapping_rows(doc: Document, resource: Resource, owners: Owners) -> c.Rows:
    """A mapping of an anime or manga to another site; mappings of characters/people stay raw only."""
    mapping = identify(resource)
    attrs = attributes(resource)
    site = c.text(attrs.get("externalSite"), "externalSite")
    raw_id = attrs.get("externalId")
    external = c.require_id(raw_id, "externalId") if raw_id not in (None, "") else None
    if site is None or external is None:
        raise SkippableRecordError(f"mapping {mapping[1]}: externalSite and externalId are required")
    items = linkage(resource, "item")
    item = items[0] if items else owners.get(mapping)
    if item is None:
        raise SkippableRecordError(
            f"mapping {mapping[1]}: no item linkage; fetch mappings with include=item "
            "or through /anime/ID/mappings"
        )
    if item[0] not in ("anime", "manga"):
        return []
    row = {
        "source_id": mapping[1],
        "source_updated_at": _updated(attrs),
        "media_source_id": media_key(*item),
        "site": site,
        "external_id": external,
    }
    return [("catalog.external_ids", row)]


def episode_rows(doc: Document, resource: Resource, owners: Owners) -> c.Rows:
    """An episode of an anime (``media`` linkage present when fetched with include=media)."""
    _, ident = identify(resource)
    attrs = attributes(resource)
    titles = _locale_titles(attrs.get("titles"), "titles")
    canonical = c.text(attrs.get("canonicalTitle"), "canonicalTitle")
    airdate = c.iso_date(attrs.get("airdate", attrs.get("airDate")), "airdate")
    episode = {
        "source_id": ident,
        "source_updated_at": _updated(attrs),
        "media_source_id": _related_media(resource, "media"),
        "number": c.integer(attrs.get("number"), "number"),
        "season_number": c.integer(attrs.get("seasonNumber"), "seasonNumber"),
        "relative_number": c.integer(attrs.get("relativeNumber"), "relativeNumber"),
        "title": c.first_text(*(_pick(titles, group) for group in _TITLE_ORDER), canonical),
        "titles": titles or None,
        "synopsis": _description(attrs),
        "air_date": airdate.value if airdate else None,
        "length_minutes": c.count(attrs.get("length"), "length"),
        "thumbnail_url": _image(attrs.get("thumbnail")),
    }
    return [("catalog.episodes", episode)]


def character_rows(doc: Document, resource: Resource, owners: Owners) -> c.Rows:
    """A character."""
    _, ident = identify(resource)
    attrs = attributes(resource)
    names = _locale_titles(attrs.get("names"), "names")
    name = c.first_text(
        c.text(attrs.get("canonicalName"), "canonicalName"),
        names.get("en"),
        c.text(attrs.get("name"), "name"),
        names.get("en_jp"),
    )
    if name is None:
        raise SkippableRecordError(f"character {ident}: no name in canonicalName, names or name")
    others = [c.text(other, "otherNames") for other in attrs.get("otherNames") or []]
    character = {
        "source_id": ident,
        "source_updated_at": _updated(attrs),
        "name": name,
        "name_native": _pick(names, NATIVE_LOCALES),
        "other_names": [other for other in others if other] or None,
        "description": c.plain_text(attrs.get("description"), "description"),
        "image_url": _image(attrs.get("image")),
        **c.NO_CHARACTER_DETAILS,
    }
    return [("catalog.characters", character)]


def media_character_rows(doc: Document, resource: Resource, owners: Owners) -> c.Rows:
    """A character's role in a media (needs ``media`` and ``character`` linkage)."""
    _, ident = identify(resource)
    attrs = attributes(resource)
    characters = linkage(resource, "character")
    link = {
        "source_id": ident,
        "source_updated_at": _updated(attrs),
        "media_source_id": _related_media(resource, "media"),
        "character_source_id": characters[0][1] if characters else None,
        "role": c.vocabulary(attrs.get("role"), ROLES, "kitsu.media_character.role"),
    }
    return [("catalog.media_characters", link)]


def _raw_only(doc: Document, resource: Resource, owners: Owners) -> c.Rows:
    return []


# JSON:API type → (raw resource name, handler, raw volatile keys)
HANDLERS: dict[str, tuple[str, Handler, tuple[str, ...]]] = {
    "anime": ("anime", media_rows, MEDIA_VOLATILE),
    "manga": ("manga", media_rows, MEDIA_VOLATILE),
    "episodes": ("episodes", episode_rows, ()),
    "categories": ("categories", category_rows, ()),
    "mappings": ("mappings", mapping_rows, ()),
    "characters": ("characters", character_rows, ()),
    "media-characters": ("media-characters", media_character_rows, ()),
    "media-relationships": ("media-relationships", _raw_only, ()),
}


def _mapping_owners(doc: Document) -> dict[Identifier, Identifier]:
    owners: dict[Identifier, Identifier] = {}
    for resource in [*doc.data, *doc.included]:
        try:
            owner = identify(resource)
            targets = (linkage(resource, "mappings") or []) if owner[0] in ("anime", "manga") else []
        except SkippableRecordError:
            continue
        for target in targets:
            owners.setdefault(target, owner)
    return owners


def transform_document(payload: Any, resource: str) -> Batch:
    """Any Kitsu document: primary resources of any known type, then the included ones we store."""
    doc = parse_document(payload, f"kitsu {resource}")
    owners = _mapping_owners(doc)
    builder = c.PageBuilder()
    for item, primary in [*((item, True) for item in doc.data), *((item, False) for item in doc.included)]:
        try:
            kind, ident = identify(item)
        except SkippableRecordError as exc:
            if primary:
                builder.reject(resource, None, item, str(exc))
            continue
        handled = HANDLERS.get(kind)
        if handled is None:
            if primary:  # an unexpected type on our own page: keep it, make nothing of it
                builder.record(kind, item, ident, list)
            continue
        name, handler, volatile = handled
        builder.record(name, item, ident, partial(handler, doc, item, owners), volatile=volatile)
    return builder.batch


def transform_anime(payload: Any) -> Batch:
    """``/anime`` pages (optionally with included categories and mappings)."""
    return transform_document(payload, "anime")


def transform_manga(payload: Any) -> Batch:
    """``/manga`` pages."""
    return transform_document(payload, "manga")


def transform_episodes(payload: Any) -> Batch:
    """``/episodes`` pages (``include=media`` for the media linkage)."""
    return transform_document(payload, "episodes")


def transform_categories(payload: Any) -> Batch:
    """``/categories`` pages."""
    return transform_document(payload, "categories")


def transform_mappings(payload: Any) -> Batch:
    """``/mappings?include=item`` pages."""
    return transform_document(payload, "mappings")


def transform_characters(payload: Any) -> Batch:
    """``/characters`` and ``/media-characters?include=character`` pages."""
    return transform_document(payload, "characters")


def transform_media_characters(payload: Any) -> Batch:
    """``/media-characters`` pages."""
    return transform_document(payload, "media-characters")


def transform_media_relationships(payload: Any) -> Batch:
    """``/media-relationships?include=destination``: relations stay raw, included media are stored."""
    return transform_document(payload, "media-relationships")


# ------------------------------------------------------------------------------ stream pages

MEDIA_TYPES = ("anime", "manga")
KEEPS_INCLUDED = frozenset({"characters"})  # characters exist only as includes of media-characters


def stream_page(payload: Any, resource: str) -> Batch:
    """One page of a Kitsu stream: the included copies of records another stream owns dropped, media
    raw records and rejects re-keyed ``anime/12`` (Kitsu numbers anime and manga separately).

    Included categories on an anime page, media on an episode page, are landed by their own streams:
    a stream's scan must count only its own records. The ``characters`` stream keeps its included
    characters, which no other stream fetches.
    """
    if resource not in KEEPS_INCLUDED and isinstance(payload, Mapping) and payload.get("included"):
        payload = {**payload, "included": []}
    batch = transform_document(payload, resource)
    for i, record in enumerate(batch.raw):
        if record.resource in MEDIA_TYPES:
            batch.raw[i] = replace(record, source_id=media_key(record.resource, record.source_id))
    for i, reject in enumerate(batch.rejects):
        if reject.resource in MEDIA_TYPES and reject.source_id is not None:
            batch.rejects[i] = replace(reject, source_id=media_key(reject.resource, reject.source_id))
    return batch
