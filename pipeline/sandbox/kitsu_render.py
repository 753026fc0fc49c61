"""Kitsu resources rendered from the world in the exact attribute order and types of the real API."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from pipeline.sandbox.jsonapi import relationship_links
from pipeline.sandbox.world import Category, Character, Company, Person, Work

BUMP_PERIOD = 6 * 3600.0  # AverageRatingUpdateWorker: cron '0 0 */6 * * *' touches every media row
BUMP_LAG = 4.037  # the job takes a few seconds; real rows show ``…T12:00:04.037Z``
ANIME_SUBTYPES = {"tv": "TV", "tv_short": "TV", "special": "special", "ova": "OVA", "ona": "ONA"}
ANIME_SUBTYPES |= {"movie": "movie", "music": "music"}
MANGA_SUBTYPES = {"one_shot": "oneshot"}
AGE_GUIDES = {
    "G": "All Ages",
    "PG": "Teens 13 or older",
    "R": "17+ (violence & profanity)",
    "R18": "Adults Only",
}
MEDIA_RELATIONSHIPS = (
    "genres", "categories", "castings", "installments", "mappings", "reviews", "mediaRelationships",
    "characters", "staff", "productions", "quotes",
)  # fmt: skip
ANIME_RELATIONSHIPS = (
    *MEDIA_RELATIONSHIPS, "episodes", "streamingLinks", "animeProductions", "animeCharacters", "animeStaff",
)  # fmt: skip
MANGA_RELATIONSHIPS = (*MEDIA_RELATIONSHIPS, "chapters", "mangaCharacters", "mangaStaff")
JST = timezone(timedelta(hours=9))
KITSU_EPOCH = 1_361_376_000.0  # 2013-02-20, when the catalogue was first imported


def iso(epoch: float) -> str:
    """``2013-02-20T16:00:13.609Z``: UTC with milliseconds, as Rails renders it."""
    moment = datetime.fromtimestamp(epoch, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def last_bump(now: float) -> float:
    """When the six-hourly job last rewrote every media row's ``updated_at``."""
    bump = math.floor(now / BUMP_PERIOD) * BUMP_PERIOD + BUMP_LAG
    return bump if bump <= now else bump - BUMP_PERIOD


def media_updated_at(work: Work, now: float) -> float:
    return max(last_bump(now), work.modified_at) if work.modified_at <= now else last_bump(now)


def kitsu_date(date: tuple[int, int | None, int | None] | None) -> str | None:
    if date is None or date[1] is None or date[2] is None:
        return None
    return f"{date[0]:04d}-{date[1]:02d}-{date[2]:02d}"


def kitsu_status(work: Work, now: float) -> str | None:
    """Computed from the dates at read time, like the real ``Media#status``."""
    if work.status is None:
        return None
    if work.status == "finished":
        return "finished"
    if work.start is None:
        return "tba"
    if work.status == "not_yet_released":
        return "unreleased" if work.start[0] > datetime.fromtimestamp(now, UTC).year + 1 else "upcoming"
    return "current"


def titles(work: Work) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    if work.english is not None:
        out["en"] = work.english
    elif work.english_style == "null":
        out["en"] = None
    elif work.english_style == "empty":
        out["en"] = ""
    out["en_jp"] = work.romaji
    if work.native is not None:
        out["ja_jp"] = work.native
    return out


def _image(kind: str, kitsu_id: int, what: str, dims: dict[str, tuple[int, int]]) -> dict[str, Any]:
    base = f"https://media.kitsu.app/{kind}/{what}/{kitsu_id}"
    out: dict[str, Any] = {size: f"{base}/{size}.jpg" for size in dims}
    out["original"] = f"{base}/original.jpg"
    out["meta"] = {"dimensions": {size: {"width": w, "height": h} for size, (w, h) in dims.items()}}
    return out


POSTER = {"tiny": (110, 156), "large": (550, 780), "small": (284, 402), "medium": (390, 554)}
COVER = {"tiny": (840, 200), "large": (3360, 800), "small": (1680, 400)}


def rating_frequencies(work: Work) -> dict[str, str]:
    """Counts per half-star step 2..20, as strings, peaking around the average."""
    center = (work.score or 60) / 5
    total = max(0, work.rating_count)
    weights = {step: math.exp(-((step - center) ** 2) / 18) for step in range(2, 21)}
    norm = sum(weights.values())
    return {str(step): str(round(total * w / norm)) for step, w in weights.items()}


def media_resource(work: Work, base: str, now: float, ranks: tuple[int | None, int | None]) -> dict[str, Any]:
    assert work.kitsu_id is not None
    kind = work.kind
    self_url = f"{base}/{kind}/{work.kitsu_id}"
    synopsis = None if work.synopsis is None else f"{work.synopsis}\n\n(Source: {work.source_credit})"
    canonical = work.english if work.english and work.index % 3 == 0 else work.romaji
    abbreviated: list[str | None] = list(work.synonyms)
    if work.index % 97 == 5:
        abbreviated.append(None)
    attributes: dict[str, Any] = {
        "createdAt": iso(work.created_at),
        "updatedAt": iso(media_updated_at(work, now)),
        "slug": work.slug,
        "synopsis": synopsis,
        "description": synopsis,
        "coverImageTopOffset": (work.index * 37) % 400,
        "titles": titles(work),
        "canonicalTitle": canonical,
        "abbreviatedTitles": abbreviated,
        "averageRating": None if work.score is None else f"{work.score:.2f}",
        "ratingFrequencies": rating_frequencies(work),
        "userCount": work.rating_count * 3 + work.favourites,
        "favoritesCount": work.favourites,
        "startDate": kitsu_date(work.start),
        "endDate": kitsu_date(work.end),
        "nextRelease": _next_release(work, now),
        "popularityRank": ranks[0],
        "ratingRank": ranks[1],
        "ageRating": work.age_rating,
        "ageRatingGuide": AGE_GUIDES.get(work.age_rating or ""),
        "subtype": subtype(work),
        "status": kitsu_status(work, now),
        "tba": None if work.start is not None or work.status != "not_yet_released" else "2026",
        "posterImage": None if work.index % 20 == 7 else _image(kind, work.kitsu_id, "poster_images", POSTER),
        "coverImage": None if work.index % 5 < 2 else _image(kind, work.kitsu_id, "cover_images", COVER),
    }
    if kind == "anime":
        attributes["episodeCount"] = work.episodes
        attributes["episodeLength"] = work.duration
        total = (work.episodes or 0) * (work.duration or 0)
        attributes["totalLength"] = total if work.episodes else None
        attributes["youtubeVideoId"] = (
            None if work.index % 4 == 0 else ("" if work.index % 4 == 1 else f"yt{work.index:09d}")
        )
        attributes["showType"] = attributes["subtype"]
    else:
        attributes["chapterCount"] = work.chapters
        attributes["volumeCount"] = work.volumes
        attributes["serialization"] = None if work.index % 3 else "Weekly Shōnen Sandbox"
        attributes["mangaType"] = attributes["subtype"]
    attributes["nsfw"] = work.adult
    relationships = ANIME_RELATIONSHIPS if kind == "anime" else MANGA_RELATIONSHIPS
    return {
        "id": str(work.kitsu_id),
        "type": kind,
        "links": {"self": self_url},
        "attributes": attributes,
        "relationships": relationship_links(self_url, relationships),
    }


def subtype(work: Work) -> str:
    if work.kind == "anime":
        return ANIME_SUBTYPES.get(work.format or "tv", "TV")
    return MANGA_SUBTYPES.get(work.format or "manga", work.format or "manga")


def _next_release(work: Work, now: float) -> str | None:
    if work.kind != "anime" or work.status != "releasing":
        return None
    moment = datetime.fromtimestamp(now, JST).replace(hour=0, minute=30, second=0, microsecond=0)
    moment += timedelta(days=(work.index % 7) + 1)
    return moment.isoformat(timespec="milliseconds")


def category_resource(cat: Category, base: str, media_count: int, child_count: int) -> dict[str, Any]:
    attributes = {
        "title": cat.title,
        "description": cat.description,
        "totalMediaCount": media_count,
        "slug": cat.slug,
        "nsfw": cat.nsfw,
        "childCount": child_count,
    }
    updated = cat.created_at + 4 * 365 * 86400
    relationships = ("parent", "anime", "drama", "manga")
    return resource("categories", cat.id, base, cat.created_at, updated, attributes, relationships)


def mapping_resource(mapping_id: int, site: str, external_id: str, work: Work, base: str) -> dict[str, Any]:
    made = work.created_at + 60
    updated = work.links_stamp("mappings", made)
    attributes = {"externalSite": site, "externalId": external_id}
    return resource("mappings", mapping_id, base, made, updated, attributes, ("item",))


def character_resource(char: Character, base: str) -> dict[str, Any]:
    name = char.name
    image = None
    if char.index % 6:
        url = f"https://media.kitsu.app/characters/images/{char.kitsu_id}"
        image = {
            "tiny": f"{url}/tiny.jpg",
            "large": f"{url}/large.jpg",
            "original": f"{url}/original.jpg",
            "meta": {
                "dimensions": {"tiny": {"width": 60, "height": 94}, "large": {"width": 225, "height": 350}}
            },
        }
    attributes = {
        "slug": f"{name.lower().replace(' ', '-')}-{char.kitsu_id}",
        "names": {"en": name, "ja_jp": char.native},
        "canonicalName": name,
        "otherNames": [] if char.index % 4 else [char.first],
        "name": name,
        "malId": char.mal_id,
        "description": char.description,
        "image": image,
    }
    updated = char.created_at + 86400 * (char.index % 400)
    relationships = ("primaryMedia", "castings", "mediaCharacters", "quotes")
    return resource("characters", char.kitsu_id, base, char.created_at, updated, attributes, relationships)


def person_resource(person: Person, base: str) -> dict[str, Any]:
    """A ``people`` record: ``malId`` is always the placeholder string the real server sends."""
    image = None
    if person.index % 5:
        url = f"https://media.kitsu.app/people/images/{person.kitsu_id}"
        image = {"original": f"{url}/original.jpg", "meta": {"dimensions": {}}}
    described = f"{person.name} ({person.native}) works in animation."
    attributes = {
        "image": image,
        "name": person.name,
        "malId": "Moved to mappings relationship.",
        "description": None if person.index % 3 else described,
    }
    updated = person.created_at + 86400 * (person.index % 300)
    relationships = ("castings", "staff", "voices")
    return resource("people", person.kitsu_id, base, person.created_at, updated, attributes, relationships)


def producer_resource(company: Company, base: str) -> dict[str, Any]:
    attributes = {"slug": company.name.lower().replace(" ", "-"), "name": company.name}
    relationships = ("animeProductions", "mangaProductions")
    made = company.created_at
    return resource("producers", company.kitsu_id, base, made, made, attributes, relationships)


def streamer_resource(streamer: tuple[int, str], links_count: int, base: str) -> dict[str, Any]:
    ident, name = streamer
    attributes = {"siteName": name, "logo": None, "streamingLinksCount": links_count}
    return resource(
        "streamers", ident, base, KITSU_EPOCH, KITSU_EPOCH, attributes, ("streamingLinks", "videos")
    )


# JSON:API type of a join record -> the work's edit stamp its ``updatedAt`` follows (world.LINK_FIELDS).
LINK_STAMPS = {
    "mediaStaff": "staff",
    "mediaProductions": "productions",
    "mediaRelationships": "relations",
    "streamingLinks": "streaming",
    "characterVoices": "characters",
    "mediaCharacters": "characters",
}


def link_updated_at(kind: str, work: Work) -> float:
    """A join record's ``updated_at``: made with its work, moved by an edit of what it renders."""
    return work.links_stamp(LINK_STAMPS[kind], work.created_at + 180)


def link_resource(
    kind: str, ident: int, work: Work, attributes: dict[str, Any], relationships: tuple[str, ...], base: str
) -> dict[str, Any]:
    """A join record of a work (media-staff, media-productions, ...)."""
    path = "".join(f"-{c.lower()}" if c.isupper() else c for c in kind)
    made = work.created_at + 180
    return resource(kind, ident, base, made, link_updated_at(kind, work), attributes, relationships, path)


def resource(
    kind: str,
    ident: int | str,
    base: str,
    created: float,
    updated: float,
    attributes: dict[str, Any],
    relationships: Sequence[str],
    path: str | None = None,
) -> dict[str, Any]:
    """A JSON:API resource as Kitsu renders one: id as a string, its own link, ``createdAt`` and
    ``updatedAt`` first among the attributes, a self/related link pair per relationship."""
    self_url = f"{base}/{path or kind}/{ident}"
    return {
        "id": str(ident),
        "type": kind,
        "links": {"self": self_url},
        "attributes": {"createdAt": iso(created), "updatedAt": iso(updated), **attributes},
        "relationships": relationship_links(self_url, relationships),
    }
