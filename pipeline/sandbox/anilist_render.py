"""AniList v2 ``Media`` objects built from the world, in the shape of the real recorded responses."""

from __future__ import annotations

from typing import Any

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


def _character_edges(work: Work, world: World) -> list[dict[str, Any]]:
    edges = []
    for slot, (index, role) in enumerate(work.characters):
        char = world.characters[index]
        staff_id = 95000 + (index * 13) % 40000
        edges.append(
            {
                "id": (work.anilist_id or 0) * 10 + slot,
                "role": role,
                "voiceActors": [
                    {
                        "id": staff_id,
                        "name": {"full": f"{char.last} Seiyuu", "native": None},
                        "language": "JAPANESE",
                        "image": {"large": f"{CDN}/staff/large/n{staff_id}.jpg"},
                    }
                ],
                "node": {
                    "id": char.anilist_id,
                    "name": _name(char),
                    "image": {"large": f"{CDN}/character/large/b{char.anilist_id}.png"},
                },
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
    related = [w for w in (world.works[work.index - 1 : work.index] if work.index else []) if w.anilist_id]
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
        "relations": {
            "edges": [{"id": aid * 7 + 1, "relationType": "PREQUEL", "node": _small(w)} for w in related],
        },
        "characters": {"edges": _character_edges(work, world), "pageInfo": {"total": len(work.characters)}},
        "staff": {
            "edges": [
                {
                    "id": aid * 3,
                    "role": "Director" if kind == "anime" else "Story & Art",
                    "node": {
                        "id": 100000 + aid % 50000,
                        "name": {
                            "full": f"{world.characters[0].last if world.characters else 'Sandbox'} Kantoku"
                        },
                        "language": "JAPANESE",
                        "image": {"large": f"{CDN}/staff/large/n{100000 + aid % 50000}.jpg"},
                    },
                }
            ]
        },
        "studios": {
            "edges": [{"isMain": True, "node": {"id": 1 + aid % 300, "name": f"Studio {aid % 300}"}}]
        },
        "reviews": {"pageInfo": {"total": 0}, "nodes": []},
        "recommendations": {"pageInfo": {"total": 0}, "nodes": []},
        "externalLinks": [{"site": "Official Site", "url": f"https://example.org/works/{aid}"}],
        "streamingEpisodes": [],
        "trailer": None if work.index % 4 else {"id": f"yt{aid:09d}", "site": "youtube"},
        "rankings": [],
        "tags": [
            {
                "id": 100 + g,
                "name": name,
                "description": f"Prominently features {name.lower()}.",
                "rank": 60 + (work.index * (g + 3)) % 40,
                "isMediaSpoiler": False,
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
