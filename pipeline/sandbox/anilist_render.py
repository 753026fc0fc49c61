"""AniList v2 ``Media`` objects built from the world, in the shape of the real recorded responses."""

from __future__ import annotations

from typing import Any

from pipeline.sandbox.names import FIRST_NAMES, LAST_NAMES
from pipeline.sandbox.world import Character, Work, World

FORMATS = {
    "tv": "TV",
    "tv_short": "TV_SHORT",
    "movie": "MOVIE",
    "special": "SPECIAL",
    "ova": "OVA",
    "ona": "ONA",
}
FORMATS |= {"music": "MUSIC", "manga": "MANGA", "novel": "NOVEL", "one_shot": "ONE_SHOT"}
FORMATS |= {"manhwa": "MANGA", "manhua": "MANGA", "doujin": "MANGA", "oel": "MANGA"}
STATUSES = {"finished": "FINISHED", "releasing": "RELEASING", "not_yet_released": "NOT_YET_RELEASED"}
STATUSES |= {"cancelled": "CANCELLED", "hiatus": "HIATUS"}
CDN = "https://s4.anilist.co/file/anilistcdn"
SOURCES = ("ORIGINAL", "MANGA", "LIGHT_NOVEL", "VISUAL_NOVEL", "VIDEO_GAME", "NOVEL", "OTHER")


def fuzzy(date: tuple[int, int | None, int | None] | None) -> dict[str, int | None]:
    if date is None:
        return {"year": None, "month": None, "day": None}
    return {"year": date[0], "month": date[1], "day": date[2]}


def fuzzy_int(date: tuple[int, int | None, int | None] | None) -> int | None:
    """``FuzzyDateInt``: YYYYMMDD with 00 for unknown parts, as the filters compare it."""
    if date is None:
        return None
    return date[0] * 10000 + (date[1] or 0) * 100 + (date[2] or 0)


def html_description(work: Work) -> str | None:
    if work.synopsis is None:
        return None
    text = work.synopsis.replace(work.romaji, f"<i>{work.romaji}</i>")
    return f"{text}\n<br><br>\n(Source: {work.source_credit})"


def _name(char: Character) -> dict[str, Any]:
    return {
        "full": char.name,
        "first": char.first,
        "last": char.last,
        "native": char.native,
        "userPreferred": char.name,
    }


ANIME_ROLES = (
    "Director", "Original Creator", "Series Composition", "Character Design", "Music",
    "Chief Animation Director", "Art Director", "Sound Director", "Theme Song Performance (OP)",
    "Script (eps 1-3)", "Storyboard (ep 1)", "Key Animation (ep 2)", "Producer",
    "ADR Director (English)", "Episode Director (ep 4)",
)  # fmt: skip
MANGA_ROLES = ("Story & Art", "Story", "Art", "Translator (English)", "Lettering (English)")
LANGUAGES = {"JAPANESE": "Japanese", "ENGLISH": "English"}
STUDIO_NAMES = ("Sunrise", "Madhouse", "Bones", "Production I.G", "Kyoto Animation", "Shaft", "Trigger")
PRODUCER_NAMES = ("Aniplex", "Bandai Visual", "Pony Canyon", "Kadokawa", "TOHO", "Lantis", "Dentsu")
STREAMERS = ("Crunchyroll", "Netflix", "HIDIVE", "Hulu", "Amazon Prime Video")


def _person(ident: str, index: int) -> tuple[str, str]:
    """A deterministic (full, native) name for a staff id."""
    given, given_native = FIRST_NAMES[index % len(FIRST_NAMES)]
    family, family_native = LAST_NAMES[(index // len(FIRST_NAMES)) % len(LAST_NAMES)]
    return f"{given} {family} {ident[-3:]}", f"{family_native}{given_native}"


def _staff_node(staff_id: int, language: str) -> dict[str, Any]:
    full, native = _person(str(staff_id), staff_id)
    given, _, family = full.rpartition(" ")[0].partition(" ")
    return {
        "id": staff_id,
        "name": {"full": full, "native": native, "first": given, "last": family, "userPreferred": full},
        "language": language,
        "languageV2": LANGUAGES[language],
        "image": {"large": f"{CDN}/staff/large/n{staff_id}.jpg"},
        "siteUrl": f"https://anilist.co/staff/{staff_id}",
    }


def voice_actors(char: Character) -> list[dict[str, Any]]:
    """A Japanese voice for every character, an English dub for every other one."""
    actors = [_staff_node(95000 + (char.index * 13) % 40000, "JAPANESE")]
    if char.index % 2 == 0:
        actors.append(_staff_node(135000 + (char.index * 17) % 40000, "ENGLISH"))
    return actors


def _character_edges(work: Work, world: World) -> list[dict[str, Any]]:
    edges = []
    for slot, (index, role) in enumerate(work.characters):
        char = world.characters[index]
        edges.append(
            {
                "id": (work.anilist_id or 0) * 10 + slot,
                "role": role,
                "voiceActors": voice_actors(char),
                "node": {
                    "id": char.anilist_id,
                    "name": {**_name(char), "alternative": [] if index % 3 else [char.first]},
                    "gender": ("Female", "Male", None)[index % 3],
                    "image": {"large": f"{CDN}/character/large/b{char.anilist_id}.png"},
                    "siteUrl": f"https://anilist.co/character/{char.anilist_id}",
                },
            }
        )
    return edges


def _staff_edges(work: Work, world: World) -> list[dict[str, Any]]:
    """4-15 credits for an anime, 1-4 for a manga; the same people recur across works, and the
    opening theme is sung by the first character's Japanese voice actor (a voice actor on staff)."""
    aid = work.anilist_id or 0
    roles = ANIME_ROLES[: 4 + work.index % 12] if work.kind == "anime" else MANGA_ROLES[: 1 + work.index % 4]
    edges = []
    for slot, role in enumerate(roles):
        if role.startswith("Theme Song Performance") and work.characters:
            node = voice_actors(world.characters[work.characters[0][0]])[0]
        else:
            english = "(English)" in role  # dub crew: a pool of their own, so a person keeps one language
            staff_id = (300000 if english else 200000) + (aid * 7 + slot * 131) % 2000
            node = _staff_node(staff_id, "ENGLISH" if english else "JAPANESE")
        edges.append({"id": aid * 100 + slot, "role": role, "node": node})
    return edges


def _studio(ident: int, name: str, *, animates: bool) -> dict[str, Any]:
    return {
        "id": ident,
        "name": name,
        "isAnimationStudio": animates,
        "siteUrl": f"https://anilist.co/studio/{ident}",
        "favourites": ident % 97,
    }


def _studio_edges(work: Work) -> list[dict[str, Any]]:
    """The main animation studio, then a producer for two works in three (anime only)."""
    aid = work.anilist_id or 0
    if work.kind != "anime":
        return []
    main = 1 + aid % 300
    edges = [
        {
            "id": aid * 5,
            "isMain": True,
            "node": _studio(main, f"{STUDIO_NAMES[main % 7]} {main}", animates=True),
        }
    ]
    if work.index % 3:
        producer = 1001 + aid % 120
        name = f"{PRODUCER_NAMES[producer % 7]} {producer}"
        edges.append({"id": aid * 5 + 1, "isMain": False, "node": _studio(producer, name, animates=False)})
    return edges


def _external_links(work: Work) -> list[dict[str, Any]]:
    """The official site (INFO), a streamer for most anime (STREAMING), a social account for some."""
    aid = work.anilist_id or 0
    links = [_link(aid * 4, "Official Site", f"https://example.org/works/{aid}", "INFO", "Japanese")]
    if work.kind == "anime" and work.index % 4:
        site = STREAMERS[work.index % len(STREAMERS)]
        slug = work.slug or str(aid)
        links.append(
            _link(
                aid * 4 + 1,
                site,
                f"https://{site.lower().replace(' ', '')}.example/{slug}",
                "STREAMING",
                None if work.index % 2 else "English",
            )
        )
    if work.index % 5 == 0:
        links.append(
            _link(aid * 4 + 2, "Twitter", f"https://twitter.example/work{aid}", "SOCIAL", "Japanese")
        )
    return links


def _link(ident: int, site: str, url: str, kind: str, language: str | None) -> dict[str, Any]:
    return {
        "id": ident,
        "url": url,
        "site": site,
        "siteId": ident % 300,
        "type": kind,
        "language": language,
        "color": None,
        "icon": None,
        "notes": None,
        "isDisabled": False,
    }


def _relation_edges(work: Work, world: World) -> list[dict[str, Any]]:
    """The previous work is a prequel, the next one a sequel (when AniList has them)."""
    aid = work.anilist_id or 0
    edges = []
    for offset, relation in ((-1, "PREQUEL"), (1, "SEQUEL")):
        at = work.index + offset
        if 0 <= at < len(world.works) and world.works[at].anilist_id:
            edges.append(
                {
                    "id": aid * 7 + 1 + max(offset, 0),
                    "relationType": relation,
                    "node": _small(world.works[at]),
                }
            )
    return edges


def _small(work: Work) -> dict[str, Any]:
    kind = work.kind
    return {
        "id": work.anilist_id,
        "title": {"userPreferred": work.romaji},
        "format": FORMATS.get(work.format or ""),
        "type": kind.upper(),
        "status": STATUSES.get(work.status or ""),
        "bannerImage": None if work.index % 3 else f"{CDN}/media/{kind}/banner/{work.anilist_id}.jpg",
        "coverImage": {"large": f"{CDN}/media/{kind}/cover/medium/{work.anilist_id}.jpg"},
    }


def media(work: Work, world: World, now: float) -> dict[str, Any]:
    """The full ``Media`` object; projection keeps what the query selected."""
    assert work.anilist_id is not None
    kind, aid = work.kind, work.anilist_id
    season = work.season
    adult = work.adult
    score = None if work.score is None else round(work.score)
    airing = None
    if work.status == "releasing" and kind == "anime":
        at = int(now // 604800 + 1) * 604800 + (work.index % 7) * 86400
        airing = {"airingAt": at, "timeUntilAiring": int(at - now), "episode": 1 + work.index % 30}
    return {
        "id": aid,
        "idMal": work.mal_id,
        "title": {
            "userPreferred": work.romaji,
            "romaji": work.romaji,
            "english": work.english,
            "native": work.native,
        },
        "coverImage": {
            "extraLarge": f"{CDN}/media/{kind}/cover/large/bx{aid}.jpg",
            "large": f"{CDN}/media/{kind}/cover/medium/bx{aid}.jpg",
            "medium": f"{CDN}/media/{kind}/cover/small/bx{aid}.jpg",
            "color": None if work.index % 4 == 0 else f"#{(work.index * 2654435761) % 0xFFFFFF:06x}",
        },
        "bannerImage": None if work.index % 3 else f"{CDN}/media/{kind}/banner/{aid}.jpg",
        "startDate": fuzzy(work.start),
        "endDate": fuzzy(work.end),
        "description": html_description(work),
        "season": season[0] if season else None,
        "seasonYear": season[1] if season else None,
        "seasonInt": (season[1] % 100) * 10 + ("WINTER", "SPRING", "SUMMER", "FALL").index(season[0]) + 1
        if season
        else None,
        "type": kind.upper(),
        "format": FORMATS.get(work.format or ""),
        "status": STATUSES.get(work.status or ""),
        "episodes": work.episodes,
        "duration": work.duration,
        "chapters": work.chapters,
        "volumes": work.volumes,
        "genres": list(work.genres),
        "synonyms": list(work.synonyms),
        "source": SOURCES[work.index % len(SOURCES)] if kind == "anime" else "ORIGINAL",
        "isAdult": adult,
        "isLocked": False,
        "meanScore": None if score is None else min(100, score + 1),
        "averageScore": score,
        "popularity": work.popularity,
        "favourites": work.favourites,
        "trending": work.popularity % 17,
        "hashtag": None if work.index % 5 else f"#{work.romaji.replace(' ', '')}",
        "countryOfOrigin": work.country,
        "isLicensed": work.index % 6 != 0,
        "isFavourite": False,
        "isRecommendationBlocked": False,
        "nextAiringEpisode": airing,
        "relations": {"edges": _relation_edges(work, world)},
        "characters": {"edges": _character_edges(work, world)},
        "staff": {"edges": _staff_edges(work, world)},
        "studios": {"edges": _studio_edges(work)},
        "reviews": {"pageInfo": {"total": 0}, "nodes": []},
        "recommendations": {"pageInfo": {"total": 0}, "nodes": []},
        "externalLinks": _external_links(work),
        "streamingEpisodes": [],
        "trailer": None if work.index % 4 else {"id": f"yt{aid:09d}", "site": "youtube"},
        "rankings": [],
        "tags": [
            {
                "id": 100 + g,
                "name": name,
                "description": f"Prominently features {name.lower()}.",
                "rank": 60 + (work.index * (g + 3)) % 40,
                "category": "Theme-Other",
                "isMediaSpoiler": g == 1 and work.index % 7 == 0,
                "isGeneralSpoiler": False,
            }
            for g, name in enumerate(work.genres[:2])
        ],
        "mediaListEntry": None,
        "stats": {
            "statusDistribution": [{"status": "CURRENT", "amount": work.popularity // 3}],
            "scoreDistribution": [{"score": (score or 50) // 10 * 10, "amount": work.rating_count}],
        },
        "updatedAt": int(work.modified_at),
        "siteUrl": f"https://anilist.co/{kind}/{aid}",
    }
