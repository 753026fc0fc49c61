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
    normalise_type,
    parse_document,
)
from pipeline.transform.resources import Lookup, ResourceTransform

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
# MediaProduction#role and MediaRelationship#role (kitsu-server app/models), onto sql/017's lists.
PRODUCTION_ROLES = {r: r for r in ("studio", "producer", "licensor", "serialization")}
RELATION_ROLES = {
    "sequel": "sequel",
    "prequel": "prequel",
    "alternative_setting": "alternative",
    "alternative_version": "alternative",
    "side_story": "side_story",
    "parent_story": "parent",
    "summary": "summary",
    "full_story": "full_story",
    "spinoff": "spin_off",
    "adaptation": "adaptation",
    "character": "character",
    "other": "other",
}

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


def _target(resource: Resource, name: str) -> str | None:
    """The id of the one record relationship ``name`` links to (None without linkage)."""
    targets = linkage(resource, name)
    return targets[0][1] if targets else None


def streaming_link_rows(doc: Document, resource: Resource, owners: Owners) -> c.Rows:
    """Where a media streams: the site is the included streamer's ``siteName``."""
    _, ident = identify(resource)
    attrs = attributes(resource)
    url = c.text(attrs.get("url"), "url")
    streamers = doc.related(resource, "streamer")
    site = c.text(attributes(streamers[0]).get("siteName"), "streamer.siteName") if streamers else None
    if url is None:
        raise SkippableRecordError(f"streaming link {ident}: no url")
    if site is None:
        raise SkippableRecordError(
            f"streaming link {ident}: no streamer siteName; fetch streaming-links with include=streamer"
        )
    link = {
        "source_id": ident,
        "source_updated_at": _updated(attrs),
        "media_source_id": _related_media(resource, "media"),
        "site": site,
        "url": url,
        "kind": "streaming",
        "subtitles": _languages(attrs.get("subs"), "subs"),
        "dubs": _languages(attrs.get("dubs"), "dubs"),
    }
    return [("catalog.streaming_links", link)]


def _languages(value: Any, field: str) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise SkippableRecordError(f"{field} = {value!r}: expected a list of language codes")
    found = [c.text(item, field) for item in value]
    return [item for item in found if item]


# -- join records: a row keyed by the record's id, its fields read off linkage and attributes ----
Field = Callable[[Resource, Mapping[str, Any]], Any]


def _media_of(relationship: str) -> Field:
    return lambda resource, attrs: _related_media(resource, relationship)


def _id_of(relationship: str) -> Field:
    return lambda resource, attrs: _target(resource, relationship)


def _text_of(attribute: str) -> Field:
    return lambda resource, attrs: c.text(attrs.get(attribute), attribute)


def _term_of(attribute: str, vocabulary: dict[str, str], field: str) -> Field:
    return lambda resource, attrs: c.vocabulary(attrs.get(attribute), vocabulary, field)


def join_rows(
    table: str, fields: Mapping[str, Field], *, required: str | None = None, **constants: Any
) -> Handler:
    """The handler of a plain record: one ``table`` row per record, ``fields`` read from it (a
    record whose ``required`` field is empty is rejected)."""

    def rows(doc: Document, resource: Resource, owners: Owners) -> c.Rows:
        kind, ident = identify(resource)
        attrs = attributes(resource)
        row = {"source_id": ident, "source_updated_at": _updated(attrs), **constants}
        row |= {name: read(resource, attrs) for name, read in fields.items()}
        if required is not None and row[required] is None:
            raise SkippableRecordError(f"{kind} {ident}: no {required}")
        return [(table, row)]

    return rows


# A character's role in a media (``media`` and ``character`` linkage).
media_character_rows = join_rows(
    "catalog.media_characters",
    {
        "media_source_id": _media_of("media"),
        "character_source_id": _id_of("character"),
        "role": _term_of("role", ROLES, "kitsu.media_character.role"),
    },
)
# A person's credit on a media (``role`` is free text: Director, Original Creator, ...).
media_staff_rows = join_rows(
    "catalog.media_staff",
    {"media_source_id": _media_of("media"), "person_source_id": _id_of("person"), "role": _text_of("role")},
)
# A company's part in a media (``company`` links to a producer).
media_production_rows = join_rows(
    "catalog.media_companies",
    {
        "media_source_id": _media_of("media"),
        "company_source_id": _id_of("company"),
        "role": _term_of("role", PRODUCTION_ROLES, "kitsu.media_production.role"),
    },
    is_main=None,
)
# ``destination`` is the ``role`` of ``source`` (source -> sequel -> destination).
media_relationship_rows = join_rows(
    "catalog.media_relations",
    {
        "media_source_id": _media_of("source"),
        "related_media_source_id": _media_of("destination"),
        "relation": _term_of("role", RELATION_ROLES, "kitsu.media_relationship.role"),
    },
)
# A person (staff member or voice actor); ``malId`` is a placeholder string, not an id.
person_rows = join_rows(
    "catalog.people",
    {
        "name": _text_of("name"),
        "description": lambda resource, attrs: c.plain_text(attrs.get("description"), "description"),
        "image_url": lambda resource, attrs: _image(attrs.get("image")),
    },
    required="name",
    name_native=None,
    language=None,
)
# A producer: a company (studio, producer, licensor or magazine, by its productions' roles).
producer_rows = join_rows(
    "catalog.companies", {"name": _text_of("name")}, required="name", site_url=None, is_animation_studio=None
)
# A voice actor of a character's appearance in a media (``mediaCharacter`` and ``person``).
character_voice_rows = join_rows(
    "catalog.character_voices",
    {
        "media_character_source_id": _id_of("mediaCharacter"),
        "person_source_id": _id_of("person"),
        "language": _text_of("locale"),
    },
)


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
    "media-relationships": ("media-relationships", media_relationship_rows, ()),
    "people": ("people", person_rows, ()),
    "media-staff": ("media-staff", media_staff_rows, ()),
    "producers": ("producers", producer_rows, ()),
    "media-productions": ("media-productions", media_production_rows, ()),
    "streaming-links": ("streaming-links", streaming_link_rows, ()),
    "streamers": ("streamers", _raw_only, ()),
    "character-voices": ("character-voices", character_voice_rows, ()),
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


def transform_document(
    payload: Any,
    resource: str,
    keep: frozenset[str] | None = None,
    known: Mapping[Identifier, Resource] | None = None,
) -> Batch:
    """Any Kitsu document: primary resources of any known type, then the included ones we store
    (those of the types in ``keep``, when given; the others still resolve linkage, e.g. a streaming
    link's streamer name). ``known``: resources the page refers to without including them (read
    from earlier pages), looked up like includes but never stored."""
    doc = parse_document(payload, f"kitsu {resource}")
    if known:
        doc = replace(doc, index={**known, **doc.index})
    owners = _mapping_owners(doc)
    builder = c.PageBuilder()
    included = doc.included if keep is None else [i for i in doc.included if _type_of(i) in keep]
    for item, primary in [*((item, True) for item in doc.data), *((item, False) for item in included)]:
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


def _streamer(ident: str, name: str) -> Resource:
    return {"type": "streamers", "id": ident, "attributes": {"siteName": name}}


def _type_of(resource: Any) -> str | None:
    kind = resource.get("type") if isinstance(resource, Mapping) else None
    return normalise_type(kind) if isinstance(kind, str) else None


# ``/anime``, ``/manga`` (with included categories and mappings), ``/episodes`` (``include=media``),
# ``/categories``, ``/mappings?include=item``, ``/characters`` and ``/media-characters`` pages.
transform_anime = partial(transform_document, resource="anime")
transform_manga = partial(transform_document, resource="manga")
transform_episodes = partial(transform_document, resource="episodes")
transform_categories = partial(transform_document, resource="categories")
transform_mappings = partial(transform_document, resource="mappings")
transform_characters = partial(transform_document, resource="characters")
transform_media_characters = partial(transform_document, resource="media-characters")


def transform_media_relationships(payload: Any) -> Batch:
    """``/media-relationships?include=source,destination`` pages (included media stored too)."""
    return transform_document(payload, "media-relationships")


# ------------------------------------------------------------------------------ stream pages

MEDIA_TYPES = ("anime", "manga")
# Included types a stream stores: records no stream lists (characters, people, producers exist
# only as includes of their join resources). Every other included copy is left to its own stream.
KEEPS_INCLUDED: dict[str, frozenset[str]] = {
    "characters": frozenset({"characters"}),
    "media-staff": frozenset({"people"}),
    "character-voices": frozenset({"people"}),
    "media-productions": frozenset({"producers"}),
    "streaming-links": frozenset({"streamers"}),  # raw only: their site names serve replay
}
NOTHING: frozenset[str] = frozenset()


def stream_page(payload: Any, resource: str, streamer_names: Mapping[str, str] | None = None) -> Batch:
    """One page of a Kitsu stream: the included copies of records another stream owns dropped, media
    raw records and rejects re-keyed ``anime/12`` (Kitsu numbers anime and manga separately).

    Included categories on an anime page, media on an episode page, are landed by their own streams:
    a stream's scan must count only its own records. The join streams keep the records they are the
    only way to (``KEEPS_INCLUDED``: characters, people, producers); the included streamer of a
    streaming link names its site (``streamer_names``, the streamers already landed, stand in when
    the page does not include them: replay).
    """
    keep = KEEPS_INCLUDED.get(resource)
    if keep is None and isinstance(payload, Mapping) and payload.get("included"):
        payload = {**payload, "included": []}  # nothing to keep or look up: skip indexing them
    known = {("streamers", sid): _streamer(sid, name) for sid, name in (streamer_names or {}).items()}
    batch = transform_document(payload, resource, keep or NOTHING, known)
    for record in batch.raw:  # the page's own records, made here: re-keyed in place
        if record.resource in MEDIA_TYPES:
            record.source_id = media_key(record.resource, record.source_id)
    for reject in batch.rejects:
        if reject.resource in MEDIA_TYPES and reject.source_id is not None:
            reject.source_id = media_key(reject.resource, reject.source_id)
    return batch


# ------------------------------------------------------------------------------ the resources


def _stream(resource: str, lands: tuple[str, ...] = ()) -> ResourceTransform:
    return ResourceTransform(partial(stream_page, resource=resource), lands=lands)


TRANSFORMS: dict[str, ResourceTransform] = {
    **{r: _stream(r) for r in ("anime", "manga", "episodes", "categories", "mappings")},
    "characters": _stream("characters", ("characters", "media-characters")),
    "media-characters": ResourceTransform(transform_media_characters),
    "media-relationships": _stream("media-relationships"),
    # A link's site is its included streamer's name; replay (no includes) reads it from the
    # streamers the stream landed.
    "streaming-links": ResourceTransform(
        partial(stream_page, resource="streaming-links"),
        context={"streamer_names": Lookup("streamers", "attributes.siteName")},
        lands=("streamers", "streaming-links"),
    ),
    # People, producers and streamers land only as includes of the join streams; replay reads them
    # back first, then the joins.
    **{r: _stream(r) for r in ("people", "producers", "streamers")},
    "media-staff": _stream("media-staff", ("people", "media-staff")),
    "media-productions": _stream("media-productions", ("producers", "media-productions")),
    "character-voices": _stream("character-voices", ("people", "character-voices")),
}
