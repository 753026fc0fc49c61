"""Legacy AniList REST v1 simulator (``/api``), shaped by seed 002 and the v1 docs' real examples.

- ``POST /api/auth/access_token`` (client_credentials; form, query or JSON) → ``{access_token,
  token_type, expires, expires_in: 3600}``; tokens die after an hour of sandbox time (401).
- ``GET /api/browse/{anime|manga}?page=N`` → a bare JSON array of ≤ 40 small series models, no
  paging metadata; ``GET /api/{anime|manga}/{id}`` the series model; ``…/{id}/page`` with
  characters, staff, relations, studios and links.
- Quirks: ``title_english``/``title_japanese`` copy the romaji title when missing; fuzzy dates are
  ``YYYYMMDD`` integers with ``00`` for unknown parts; older records carry ISO datetimes in
  ``start_date`` instead; ``season`` is a code like 173 (2017 summer); ``average_score`` is
  sometimes a string; ``0`` means unknown for counts and scores; ``updated_at`` is a unix time.
- 90 requests a minute per client, 429 with ``Retry-After`` and an epoch ``X-RateLimit-Reset``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from aiohttp import web

from pipeline.sandbox.anilist_render import fuzzy_int, html_description
from pipeline.sandbox.core import SandboxContext, client_key, json_response, service_app
from pipeline.sandbox.limits import ANILIST_V1_POLICY, FixedWindowLimiter
from pipeline.sandbox.tokens import TokenState, bearer
from pipeline.sandbox.world import Work, WorldRecords

SERVICE = "anilist_v1"
CLIENT_ID = "sandbox-client"
CLIENT_SECRET = "sandbox-anilist-v1-secret"
TOKEN_TTL = 3600.0
PAGE_SIZE = 40
IMG = "http://anilist.co/img/dir"
JST = timezone(timedelta(hours=9))
TYPES = {
    "tv": "TV",
    "tv_short": "TV Short",
    "movie": "Movie",
    "special": "Special",
    "ova": "OVA",
    "ona": "ONA",
}
TYPES |= {"music": "Music", "manga": "Manga", "novel": "Novel", "one_shot": "One Shot", "doujin": "Doujin"}
TYPES |= {"manhua": "Manhua", "manhwa": "Manhwa", "oel": "Manga"}
AIRING = {"finished": "finished airing", "releasing": "currently airing", "not_yet_released": "not yet aired"}
AIRING |= {"cancelled": "cancelled", "hiatus": "currently airing"}
PUBLISHING = {
    "finished": "finished publishing",
    "releasing": "publishing",
    "not_yet_released": "not yet published",
}
PUBLISHING |= {"cancelled": "cancelled", "hiatus": "publishing"}
SOURCES = ("Original", "Manga", "Light Novel", "Visual Novel", "Video Game", "Other")
SEASONS = ("winter", "spring", "summer", "fall")
BROWSE_SORTS = ("id", "score", "popularity", "start_date", "end_date")


@dataclass
class V1State:
    ctx: SandboxContext
    limiter: FixedWindowLimiter
    clients: dict[str, str] = field(default_factory=lambda: {CLIENT_ID: CLIENT_SECRET})
    _works: dict[str, list[Work]] = field(default_factory=dict)
    _version: int = -1

    def works(self, kind: str) -> list[Work]:
        world = self.ctx.need_world()
        if self._version != world.version:
            live = sorted(
                (w for w in world.works if w.anilist_id and not w.deleted), key=lambda w: w.anilist_id or 0
            )
            self._works = {k: [w for w in live if w.kind == k] for k in ("anime", "manga")}
            self._version = world.version
        return self._works[kind]


def create_app(ctx: SandboxContext) -> web.Application:
    per_minute = ctx.options.get("anilist_v1_requests_per_minute")
    policy = ANILIST_V1_POLICY if per_minute is None else replace(ANILIST_V1_POLICY, limit=int(per_minute))
    state = V1State(ctx, FixedWindowLimiter(policy, ctx.clock, ctx.counters_for(SERVICE)))
    ctx.state[SERVICE] = state
    ctx.on_reset(state.limiter.reset)
    ctx.register_records(SERVICE, WorldRecords(ctx.need_world(), "anilist"))
    app = service_app(ctx, SERVICE, middlewares=[_limit_middleware(state)])
    routes = _Routes(state)
    app.router.add_post("/api/auth/access_token", routes.token)
    app.router.add_get("/api/browse/{kind}", routes.browse)
    app.router.add_get("/api/{kind}/{id}", routes.series)
    app.router.add_get("/api/{kind}/{id}/page", routes.page)
    return app


def _limit_middleware(state: V1State) -> Any:
    @web.middleware
    async def middleware(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path.startswith("/_sandbox"):
            response: web.StreamResponse = await handler(request)
            return response
        decision = state.limiter.check(client_key(request))
        headers = {"X-RateLimit-Limit": str(decision.limit), "X-RateLimit-Remaining": str(decision.remaining)}
        if not decision.allowed:
            headers["Retry-After"] = str(math.ceil(decision.retry_after or 0))
            headers["X-RateLimit-Reset"] = str(math.ceil(decision.reset_at))
            return json_response({"error": "Too Many Requests"}, status=429, headers=headers)
        response = await handler(request)
        response.headers.update(headers)
        return response

    return middleware


class _Routes:
    def __init__(self, state: V1State) -> None:
        self.state = state
        self.ctx = state.ctx

    async def token(self, request: web.Request) -> web.Response:
        params: dict[str, Any] = dict(request.query)
        if request.content_type == "application/json":
            params |= await request.json()
        else:
            params |= dict(await request.post())
        if params.get("grant_type") != "client_credentials":
            return _oauth_error("unsupported_grant_type", 400)
        if self.state.clients.get(str(params.get("client_id", ""))) != str(params.get("client_secret", "")):
            return _oauth_error("invalid_client", 401)
        token = self.ctx.tokens.issue(SERVICE, ttl=TOKEN_TTL, subject=str(params["client_id"]))
        assert token.expires_at is not None
        return json_response(
            {
                "access_token": token.value,
                "token_type": "bearer",
                "expires": int(token.expires_at),
                "expires_in": token.expires_in,
            }
        )

    def _authorise(self, request: web.Request) -> web.Response | None:
        value = (
            bearer(request.headers.get("Authorization"))
            or request.headers.get("access_token")
            or request.query.get("access_token")
        )
        if value is None:
            return _oauth_error("invalid_request", 401)
        if self.ctx.tokens.check(SERVICE, value) is not TokenState.VALID:
            return _oauth_error("access_denied", 401)
        return None

    def _kind(self, request: web.Request) -> str:
        kind = request.match_info["kind"]
        if kind not in ("anime", "manga"):
            raise web.HTTPNotFound(text='{"error":"Not Found"}', content_type="application/json")
        return kind

    async def browse(self, request: web.Request) -> web.Response:
        denied = self._authorise(request)
        if denied is not None:
            return denied
        kind = self._kind(request)
        works = _browse_filter(self.state.works(kind), request)
        if request.query.get("full_page") == "true" and (
            "season" in request.query or "status" in request.query
        ):
            return json_response([small_model(w) for w in works])
        try:
            page = max(1, int(request.query.get("page", "1")))
        except ValueError:
            page = 1
        chunk = works[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
        return json_response([small_model(w) for w in chunk])

    def _find(self, request: web.Request) -> Work:
        kind = self._kind(request)
        raw = request.match_info["id"]
        work = self.ctx.need_world().by_anilist(int(raw)) if raw.isdigit() else None
        if work is None or work.kind != kind:
            raise web.HTTPNotFound(text='{"error":"Not Found"}', content_type="application/json")
        return work

    async def series(self, request: web.Request) -> web.Response:
        denied = self._authorise(request)
        return denied or json_response(series_model(self._find(request)))

    async def page(self, request: web.Request) -> web.Response:
        denied = self._authorise(request)
        if denied is not None:
            return denied
        work = self._find(request)
        return json_response(page_model(work, self.state))


OAUTH_ERRORS = {
    "unsupported_grant_type": "The authorization grant type is not supported by the authorization server.",
    "invalid_client": "Client authentication failed.",
    "invalid_request": 'The request is missing a required parameter. Check the "access_token" parameter.',
    "access_denied": "The resource owner or authorization server denied the request.",
}


def _oauth_error(error: str, status: int) -> web.Response:
    return json_response({"error": error, "error_description": OAUTH_ERRORS[error]}, status=status)


def _browse_filter(works: list[Work], request: web.Request) -> list[Work]:
    q = request.query
    found = works
    if "year" in q:
        found = [w for w in found if w.start is not None and str(w.start[0]) == q["year"]]
    if "season" in q:
        found = [w for w in found if w.season is not None and w.season[0].lower() == q["season"].lower()]
    if "type" in q:
        found = [w for w in found if TYPES.get(w.format or "") == q["type"]]
    if "status" in q:
        found = [w for w in found if _status(w) == q["status"].lower()]
    if "genres" in q:
        need = set(q["genres"].split(","))
        found = [w for w in found if need <= set(w.genres)]
    if "genres_exclude" in q:
        drop = set(q["genres_exclude"].split(","))
        found = [w for w in found if not drop & set(w.genres)]
    sort = q.get("sort", "id")
    name = sort.removesuffix("-desc")
    if name not in BROWSE_SORTS:
        return found
    keys = {
        "id": lambda w: w.anilist_id or 0,
        "score": lambda w: w.score or 0,
        "popularity": lambda w: w.popularity,
        "start_date": lambda w: fuzzy_int(w.start) or 0,
        "end_date": lambda w: fuzzy_int(w.end) or 0,
    }
    return sorted(found, key=keys[name], reverse=sort.endswith("-desc"))


def _status(work: Work) -> str | None:
    return (AIRING if work.kind == "anime" else PUBLISHING).get(work.status or "")


def _iso(date: tuple[int, int | None, int | None] | None) -> str | None:
    if date is None:
        return None
    moment = datetime(date[0], date[1] or 1, date[2] or 1, 21, 0, tzinfo=UTC).astimezone(JST)
    return moment.replace(hour=21).isoformat()


def _score(work: Work) -> float | str | int:
    if work.score is None:
        return 0
    score = round(work.score, 1)
    return f"{score:g}" if work.legacy_v1 or work.index % 7 == 0 else score


def small_model(work: Work) -> dict[str, Any]:
    """The small series model of seed 002 (what ``browse`` returns)."""
    kind, aid = work.kind, work.anilist_id
    legacy = work.legacy_v1
    out: dict[str, Any] = {
        "id": aid,
        "series_type": kind,
        "title_romaji": work.romaji,
        "title_english": work.english or work.romaji,
        "title_japanese": work.native or work.romaji,
        "type": TYPES.get(work.format or ""),
        "start_date_fuzzy": None if legacy else fuzzy_int(work.start),
        "end_date_fuzzy": None if legacy else fuzzy_int(work.end),
        "synonyms": list(work.synonyms),
        "genres": list(work.genres),
        "adult": work.adult,
        "average_score": _score(work),
        "popularity": work.popularity,
        "image_url_sml": f"{IMG}/{kind}/sml/{aid}.jpg" if kind == "anime" else None,
        "image_url_med": f"{IMG}/{kind}/med/{aid}.jpg",
        "image_url_lge": f"{IMG}/{kind}/reg/{aid}.jpg",
        "updated_at": int(work.modified_at),
    }
    if kind == "anime":
        out["total_episodes"] = work.episodes or 0
        out["airing_status"] = _status(work)
    else:
        out["total_chapters"] = work.chapters or 0
        out["publishing_status"] = _status(work)
    return out


def series_model(work: Work) -> dict[str, Any]:
    """The full series model: the small one plus dates, season, description and stats."""
    out = small_model(work)
    season = work.season
    legacy = work.legacy_v1
    out |= {
        "start_date": _iso(work.start) if legacy else None,
        "end_date": _iso(work.end) if legacy else None,
        "season": (season[1] % 100) * 10 + SEASONS.index(season[0].lower()) + 1 if season else None,
        "description": html_description(work),
        "favourite": False,
        "image_url_banner": None if work.index % 3 else f"{IMG}/{work.kind}/banner/{work.anilist_id}.jpg",
        "score_distribution": {str(s): (work.rating_count * s) // 550 for s in range(10, 101, 10)},
        "list_stats": {
            "completed": work.popularity // 2,
            "on_hold": work.popularity // 20,
            "dropped": work.popularity // 25,
            "plan_to_watch": work.popularity // 4,
            "watching": work.popularity // 8,
        },
    }
    if work.kind == "anime":
        out |= {
            "duration": work.duration,
            "youtube_id": None if work.index % 4 else f"yt{work.index:09d}",
            "hashtag": None if work.index % 5 else f"#{work.romaji.replace(' ', '')}",
            "source": SOURCES[work.index % len(SOURCES)],
            "airing_stats": [],
        }
    else:
        out["total_volumes"] = work.volumes or 0
    return out


def page_model(work: Work, state: V1State) -> dict[str, Any]:
    world = state.ctx.need_world()
    out = series_model(work)
    characters = []
    for index, role in work.characters[:9]:
        char = world.characters[index]
        characters.append(
            {
                "id": char.anilist_id,
                "name_first": char.first,
                "name_last": char.last,
                "image_url_lge": f"{IMG}/character/reg/{char.anilist_id}.jpg",
                "image_url_med": f"{IMG}/character/med/{char.anilist_id}.jpg",
                "role": role.title(),
                "actor": [],
            }
        )
    out |= {
        "characters": characters,
        "staff": [],
        "reviews": [],
        "relations": [],
        "relations_manga": [],
        "studio": [
            {"id": 1 + (work.anilist_id or 0) % 300, "studio_name": "Sandbox Studio", "main_studio": 1}
        ]
        if work.kind == "anime"
        else [],
        "external_links": [],
    }
    return out
