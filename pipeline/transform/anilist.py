"""AniList GraphQL v2 responses → ``catalog.*`` rows. Pure: no I/O, no clock.

``transform_anime`` / ``transform_manga`` take one response as fetched: a page
``{"data": {"Page": {"pageInfo": …, "media": [...]}}}`` or a single ``{"data": {"Media": {…}}}``.
Each Media object is one raw record (``source_id`` = its AniList id, which is global across anime
and manga) and yields the media row, its titles, genres, external ids (``anilist/<kind>`` = its
own id, ``myanimelist/<kind>`` = ``idMal``, which is how ``catalog.works`` meets Kitsu), and what
the query nested in it:

* characters (``characters``/``characterPreview`` edges) → ``characters``, ``media_characters``
  ``"<media>:<character>"``, their voice actors → ``people`` + ``character_voices``
  ``"<media>:<character>:<staff>"`` (language ``languageV2``, else ``language``);
* staff (``staff``/``staffPreview`` edges) → ``people`` + ``media_staff`` (the edge id);
* studios → ``companies`` + ``media_companies`` ``"<media>:<studio>"`` (role ``studio`` when
  ``isAnimationStudio``, else ``producer``; ``is_main``);
* relations → ``media_relations`` ``"<media>:<related>:<relation>"`` (the related media's key is
  kept whether or not it is in the catalogue);
* tags → ``media_tags`` ``"<media>:<tag>"``; externalLinks → ``streaming_links`` (the link id;
  type STREAMING / INFO / SOCIAL, anything else ``other``; the link's ``language`` — the language
  of the linked page, not a subtitle or dub list — stays in ``raw.records``);
* nextAiringEpisode → ``next_episodes`` (one row per media: episode and absolute ``airingAt``).

A media's nested rows are the complete set its document holds (one nested page of characters and
staff, see ``sources/anilist.py``): ``Batch.replaced`` says so, and the loader soft-deletes that
media's stored rows the document no longer holds. ``catalog.characters``, ``people`` and
``companies`` are shared by many media and are never retired that way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from functools import partial
from typing import Any

from pipeline.errors import ContractError, SkippableRecordError
from pipeline.records import Batch
from pipeline.transform import common as c
from pipeline.transform.resources import ResourceTransform

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
# relationType(version: 2) → catalog.media_relations.relation (sql/017 CHECK list)
RELATIONS = {
    name.lower(): name.lower()
    for name in (
        "ADAPTATION", "PREQUEL", "SEQUEL", "PARENT", "SIDE_STORY", "CHARACTER", "SUMMARY",
        "ALTERNATIVE", "SPIN_OFF", "OTHER", "SOURCE", "COMPILATION", "CONTAINS",
    )
}  # fmt: skip
LINK_KINDS = {"streaming": "streaming", "info": "info", "social": "social"}
# The nested tables a media document holds completely, by the key naming their owner.
REPLACED = (
    "catalog.media_characters",
    "catalog.media_staff",
    "catalog.media_companies",
    "catalog.media_relations",
    "catalog.media_tags",
    "catalog.streaming_links",
    "catalog.external_ids",
    "catalog.next_episodes",
)
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
        appearance = f"{media}:{ident}"
        link = {
            "source_id": appearance,
            "source_updated_at": None,
            "media_source_id": media,
            "character_source_id": ident,
            "role": c.vocabulary(edge.get("role"), ROLES, "anilist.character.role"),
        }
        rows += [("catalog.characters", character), ("catalog.media_characters", link)]
        rows += voice_rows(appearance, edge.get("voiceActors"))
    return rows


def person_row(node: Mapping[str, Any], ident: str) -> tuple[str, c.Row]:
    """A staff member (crew or voice actor) as a ``catalog.people`` row."""
    full, native, _ = _names(node, "staff")
    return "catalog.people", {
        "source_id": ident,
        "source_updated_at": None,
        "name": full,
        "name_native": native,
        "language": c.text(node.get("languageV2") or node.get("language"), "staff.language"),
        "description": c.plain_text(node.get("description"), "staff.description"),
        "image_url": _image(node.get("image")),
    }


def voice_rows(appearance: str, actors: Any) -> c.Rows:
    """The voice actors of one ``media_characters`` row: their people rows and the voice links."""
    rows: c.Rows = []
    for actor in actors if isinstance(actors, list) else []:
        if not isinstance(actor, Mapping):
            continue
        ident = c.require_id(actor.get("id"), "voiceActors.id")
        rows.append(person_row(actor, ident))
        language = c.first_text(
            c.text(actor.get("languageV2"), "voiceActors.languageV2"),
            c.text(actor.get("language"), "voiceActors.language"),
        )
        voice = {
            "source_id": f"{appearance}:{ident}",
            "source_updated_at": None,
            "media_character_source_id": appearance,
            "person_source_id": ident,
            "language": language,
        }
        rows.append(("catalog.character_voices", voice))
    return rows


def staff_rows(media: str, edges: list[Mapping[str, Any]]) -> c.Rows:
    rows: c.Rows = []
    for edge in edges:
        node = edge.get("node")
        if not isinstance(node, Mapping):
            continue
        ident = c.require_id(node.get("id"), "staff.id")
        role = c.text(edge.get("role"), "staff.role")
        _, person = person_row(node, ident)
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


def studio_rows(media: str, edges: list[Mapping[str, Any]]) -> c.Rows:
    """Studio edges: the company and its part in the media (``<media>:<studio>``)."""
    rows: c.Rows = []
    for edge in edges:
        node = edge.get("node")
        if not isinstance(node, Mapping):
            continue
        ident = c.require_id(node.get("id"), "studio.id")
        name = c.text(node.get("name"), "studio.name")
        if name is None:
            raise SkippableRecordError(f"studio {ident}: no name")
        animates = node.get("isAnimationStudio")
        main = edge.get("isMain")
        company = {
            "source_id": ident,
            "source_updated_at": None,
            "name": name,
            "site_url": c.text(node.get("siteUrl"), "studio.siteUrl"),
            "is_animation_studio": animates if isinstance(animates, bool) else None,
        }
        part = {
            "source_id": f"{media}:{ident}",
            "source_updated_at": None,
            "media_source_id": media,
            "company_source_id": ident,
            "role": None if not isinstance(animates, bool) else "studio" if animates else "producer",
            "is_main": main if isinstance(main, bool) else None,
        }
        rows += [("catalog.companies", company), ("catalog.media_companies", part)]
    return rows


def relation_rows(media: str, edges: list[Mapping[str, Any]]) -> c.Rows:
    """Relation edges: what the related media is to this one (``<media>:<related>:<relation>``)."""
    rows: c.Rows = []
    for edge in edges:
        node = edge.get("node")
        if not isinstance(node, Mapping):
            continue
        related = c.require_id(node.get("id"), "relations.node.id")
        relation = c.vocabulary(edge.get("relationType"), RELATIONS, "anilist.relationType")
        row = {
            "source_id": f"{media}:{related}:{relation or ''}",
            "source_updated_at": None,
            "media_source_id": media,
            "related_media_source_id": related,
            "relation": relation,
        }
        rows.append(("catalog.media_relations", row))
    return rows


def tag_rows(media: str, tags: Any) -> c.Rows:
    """Tags with their rank and spoiler flag (``<media>:<tag>``)."""
    rows: c.Rows = []
    for tag in tags if isinstance(tags, list) else []:
        if not isinstance(tag, Mapping):
            continue
        ident = c.require_id(tag.get("id"), "tags.id")
        name = c.text(tag.get("name"), "tags.name")
        if name is None:
            raise SkippableRecordError(f"tag {ident}: no name")
        rank = c.integer(tag.get("rank"), "tags.rank")
        flags = [tag.get(key) for key in ("isMediaSpoiler", "isGeneralSpoiler")]
        known = [flag for flag in flags if isinstance(flag, bool)]
        row = {
            "source_id": f"{media}:{ident}",
            "source_updated_at": None,
            "media_source_id": media,
            "name": name,
            "category": c.text(tag.get("category"), "tags.category"),
            "rank": rank if rank is not None and 0 <= rank <= 100 else None,
            "is_spoiler": any(known) if known else None,
        }
        rows.append(("catalog.media_tags", row))
    return rows


def link_rows(media: str, links: Any) -> c.Rows:
    """externalLinks: streaming, info and social pages (the link id; type unknown → other)."""
    rows: c.Rows = []
    for link in links if isinstance(links, list) else []:
        if not isinstance(link, Mapping):
            continue
        site = c.text(link.get("site"), "externalLinks.site")
        url = c.text(link.get("url"), "externalLinks.url")
        if site is None or url is None:
            continue  # nothing to point at
        ident = link.get("id")
        kind = c.vocabulary(link.get("type"), LINK_KINDS, "anilist.externalLinks.type")
        row = {
            "source_id": c.require_id(ident, "externalLinks.id") if ident is not None else f"{media}:{url}",
            "source_updated_at": None,
            "media_source_id": media,
            "site": site,
            "url": url,
            "kind": "other" if kind == "unknown" else kind,
            "subtitles": None,
            "dubs": None,
        }
        rows.append(("catalog.streaming_links", row))
    return rows


def next_episode_rows(media: str, upcoming: Any) -> c.Rows:
    """``nextAiringEpisode`` as an absolute time and episode number (never the countdown)."""
    if not isinstance(upcoming, Mapping):
        return []
    airing_at = c.timestamp(upcoming.get("airingAt"), "nextAiringEpisode.airingAt")
    if airing_at is None:
        return []
    row = {
        "source_id": media,
        "source_updated_at": None,
        "media_source_id": media,
        "episode": c.count(upcoming.get("episode"), "nextAiringEpisode.episode"),
        "airing_at": airing_at,
    }
    return [("catalog.next_episodes", row)]


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
    rows += studio_rows(ident, _edges(media, "studios"))
    rows += relation_rows(ident, _edges(media, "relations"))
    rows += tag_rows(ident, media.get("tags"))
    rows += link_rows(ident, media.get("externalLinks"))
    rows += next_episode_rows(ident, media.get("nextAiringEpisode"))
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
    """A page of Media: each one a raw record plus its rows, or a reject; the nested rows of every
    media that transformed are complete (``Batch.replaced``), their character voices included."""
    batch = build_page(page_media(payload, resource), resource, "media", media_rows)
    owners = {str(row["source_id"]) for row in batch.rows.get("catalog.media", ())}
    if owners:
        for table in REPLACED:
            batch.replaced[table] = set(owners)
        appearances = batch.rows.get("catalog.media_characters", ())
        batch.replaced["catalog.character_voices"] = {str(row["source_id"]) for row in appearances}
    return batch


def transform_anime(payload: Any) -> Batch:
    """An anime ``Page``/``Media`` response."""
    return transform_media(payload, "anime")


def transform_manga(payload: Any) -> Batch:
    """A manga ``Page``/``Media`` response."""
    return transform_media(payload, "manga")


def _page(payloads: list[dict[str, Any]]) -> Any:
    return {"data": {"Page": {"pageInfo": {"hasNextPage": False}, "media": payloads}}}


TRANSFORMS: dict[str, ResourceTransform] = {
    "anime": ResourceTransform(transform_anime, _page),
    "manga": ResourceTransform(transform_manga, _page),
}
