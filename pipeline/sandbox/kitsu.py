"""Kitsu JSON:API edge simulator (``/api/edge``) with its OAuth password grant (``/api/oauth/token``).

Faithful to the real server: ``page[limit]`` default 10, max 20 (400 above; categories are
unlimited), ``page[offset]``, ``sort`` on id/updatedAt/createdAt, ``include=`` compound documents,
absolute ``links`` and ``meta.count``; R18 works are hidden unless a valid bearer token is sent;
every anime/manga ``updatedAt`` is rewritten on a six-hour clock (sandbox time); password logins
are throttled at 15 a minute per client with Rack::Attack's plain-text 429.
"""

from __future__ import annotations

import bisect
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from pipeline.sandbox import jsonapi, kitsu_render
from pipeline.sandbox.core import SandboxContext, client_key, json_response, service_app
from pipeline.sandbox.jsonapi import JsonApiError, Page
from pipeline.sandbox.kitsu_views import (
    STREAMERS,
    KitsuView,
    Mapping,
    MediaCharacter,
    Production,
    Relation,
    Staff,
    StreamingLink,
    Voice,
    build_view,
    episode_count,
    episode_id,
    episode_updated_at,
)
from pipeline.sandbox.limits import FixedWindowLimiter, LimitPolicy
from pipeline.sandbox.tokens import TokenState, bearer
from pipeline.sandbox.world import Work, WorldRecords

SERVICE = "kitsu"
PREFIX = "/api/edge"
USERNAME = "sandbox@example.com"
PASSWORD = "sandbox-kitsu-password"
TOKEN_TTL = 30 * 86400.0
LOGIN_POLICY = LimitPolicy(limit=15, window=60.0)
MEDIA_INCLUDES = ("categories", "mappings", "characters", "mediaCharacters", "episodes")
SORTS = ("id", "updatedAt", "createdAt")
# Episodes sort on their attributes too (jsonapi-resources: sortable fields = attributes, and
# BaseResource declares createdAt/updatedAt); the sandbox serves id and updatedAt.
EPISODE_SORTS = ("id", "updatedAt")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class KitsuState:
    ctx: SandboxContext
    users: dict[str, str] = field(default_factory=lambda: {USERNAME: PASSWORD})
    login_limiter: FixedWindowLimiter | None = None
    read_limiter: FixedWindowLimiter | None = None  # none by default: Kitsu documents no read limit
    _view: KitsuView | None = None
    _view_version: int = -1

    def view(self) -> KitsuView:
        world = self.ctx.need_world()
        if self._view is None or self._view_version != world.version:
            self._view, self._view_version = build_view(world), world.version
        return self._view


def create_app(ctx: SandboxContext) -> web.Application:
    state = KitsuState(ctx)
    state.login_limiter = FixedWindowLimiter(LOGIN_POLICY, ctx.clock, ctx.counters_for(SERVICE))
    ctx.state[SERVICE] = state
    ctx.register_records(SERVICE, WorldRecords(ctx.need_world(), "kitsu"))
    ctx.on_reset(state.login_limiter.reset)
    app = service_app(ctx, SERVICE)
    routes = _Routes(state)
    app.router.add_post("/api/oauth/token", routes.token)
    for kind in ("anime", "manga"):
        app.router.add_get(f"{PREFIX}/{kind}", routes.wrap(routes.media_list, kind))
        app.router.add_get(f"{PREFIX}/{kind}/{{id}}", routes.wrap(routes.media_one, kind))
        app.router.add_get(f"{PREFIX}/{kind}/{{id}}/categories", routes.wrap(routes.media_categories, kind))
        app.router.add_get(f"{PREFIX}/{kind}/{{id}}/mappings", routes.wrap(routes.media_mappings, kind))
        app.router.add_get(
            f"{PREFIX}/{kind}/{{id}}/characters", routes.wrap(routes.media_characters_of, kind)
        )
    app.router.add_get(f"{PREFIX}/anime/{{id}}/episodes", routes.wrap(routes.anime_episodes, "anime"))
    listings: tuple[
        tuple[str, Callable[[_Call, str], web.Response], Callable[[_Call, str], web.Response]], ...
    ] = (
        ("episodes", routes.episodes, routes.episode_one),
        ("categories", routes.categories, routes.category_one),
        ("mappings", routes.mappings, routes.mapping_one),
        ("characters", routes.characters, routes.character_one),
        ("media-characters", routes.media_characters, routes.media_character_one),
        ("people", routes.people, routes.person_one),
        ("producers", routes.producers, routes.producer_one),
        ("streamers", routes.streamers, routes.streamer_one),
    )
    for path, listing, one in listings:
        app.router.add_get(f"{PREFIX}/{path}", routes.wrap(listing, ""))
        app.router.add_get(f"{PREFIX}/{path}/{{id}}", routes.wrap(one, ""))
    for path in JOINS:
        app.router.add_get(f"{PREFIX}/{path}", routes.wrap(routes.joins, path))
        app.router.add_get(f"{PREFIX}/{path}/{{id}}", routes.wrap(routes.join_one, path))
    return app


# The join resources of a work, as the real server names them: path → (JSON:API type, relationships).
JOINS: dict[str, tuple[str, tuple[str, ...]]] = {
    "media-staff": ("mediaStaff", ("media", "person")),
    "media-productions": ("mediaProductions", ("media", "company")),
    "media-relationships": ("mediaRelationships", ("source", "destination")),
    "streaming-links": ("streamingLinks", ("streamer", "media")),
    "character-voices": ("characterVoices", ("mediaCharacter", "person", "licensor")),
}
Join = Staff | Production | Relation | StreamingLink | Voice


def _int_id(request: web.Request) -> int:
    raw = request.match_info["id"]
    try:
        return int(raw)
    except ValueError:
        raise jsonapi.not_found(raw) from None


@dataclass
class _Call:
    """One request's context: who is asking and where links point."""

    request: web.Request
    authed: bool
    now: float
    base: str
    view: KitsuView
    included: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)

    def visible(self, kind: str) -> list[Work]:
        return self.view.media[kind] if self.authed else self.view.sfw[kind]

    def can_see(self, work: Work) -> bool:
        return self.authed or not work.adult

    def include(self, resource: dict[str, Any]) -> None:
        self.included.setdefault((resource["type"], resource["id"]), jsonapi.sparse(resource, self.request))

    def single(self, resource: dict[str, Any]) -> web.Response:
        body: dict[str, Any] = {"data": jsonapi.sparse(resource, self.request)}
        if self.included:
            body["included"] = list(self.included.values())
        return jsonapi.document(body)

    def listing(self, resources: list[dict[str, Any]], page: Page, count: int) -> web.Response:
        body: dict[str, Any] = {"data": [jsonapi.sparse(r, self.request) for r in resources]}
        if self.included:
            body["included"] = list(self.included.values())
        body["meta"] = {"count": count}
        body["links"] = jsonapi.page_links(self.request, page, count)
        return jsonapi.document(body)


class _Routes:
    def __init__(self, state: KitsuState) -> None:
        self.state = state
        self.ctx = state.ctx

    def wrap(self, handler: Callable[[_Call, str], web.Response], kind: str) -> Handler:
        async def run(request: web.Request) -> web.StreamResponse:
            try:
                call = self._call(request)
                return handler(call, kind)
            except JsonApiError as exc:
                return exc.response()

        return run

    def _call(self, request: web.Request) -> _Call:
        limiter = self.state.read_limiter
        if limiter is not None:
            decision = limiter.check(client_key(request))
            if not decision.allowed:
                raise JsonApiError(429, "Rate Limit Exceeded", "Too many requests; slow down.")
        token = bearer(request.headers.get("Authorization"))
        authed = False
        if token is not None:
            verdict = self.ctx.tokens.check(SERVICE, token)
            if verdict is not TokenState.VALID:
                detail = (
                    "The access token expired"
                    if verdict is TokenState.EXPIRED
                    else "The access token is invalid"
                )
                raise JsonApiError(401, "Invalid token", detail)
            authed = True
        base = f"{request.scheme}://{request.host}{PREFIX}"
        return _Call(request, authed, self.ctx.clock.now(), base, self.state.view())

    # -- OAuth ---------------------------------------------------------------------------------
    async def token(self, request: web.Request) -> web.Response:
        form = (
            dict(await request.post()) if request.content_type != "application/json" else await request.json()
        )
        grant = str(form.get("grant_type", ""))
        if grant == "password":
            assert self.state.login_limiter is not None
            if not self.state.login_limiter.check(client_key(request)).allowed:
                return web.Response(status=429, text="Retry later\n")
            if self.state.users.get(str(form.get("username", ""))) != str(form.get("password", "")):
                return _oauth_error("invalid_grant")
            subject = str(form["username"])
        elif grant == "refresh_token":
            old = self.ctx.tokens.find(SERVICE, str(form.get("refresh_token", "")), kind="refresh")
            if old is None:
                return _oauth_error("invalid_grant")
            self.ctx.tokens.revoke(old.value)
            subject = old.subject
        else:
            return _oauth_error("unsupported_grant_type", status=400)
        access = self.ctx.tokens.issue(SERVICE, ttl=TOKEN_TTL, subject=subject, length=43)
        refresh = self.ctx.tokens.issue(SERVICE, ttl=None, kind="refresh", subject=subject, length=43)
        return json_response(
            {
                "access_token": access.value,
                "token_type": "Bearer",
                "expires_in": access.expires_in,
                "refresh_token": refresh.value,
                "scope": "public",
                "created_at": int(access.issued_at),
            }
        )

    # -- media -----------------------------------------------------------------------------------
    def _media(self, call: _Call, work: Work, includes: Sequence[str]) -> dict[str, Any]:
        assert work.kitsu_id is not None
        resource = kitsu_render.media_resource(
            work, call.base, call.now, call.view.ranks[(work.kind, work.kitsu_id)]
        )
        faults = self.ctx.faults_for(SERVICE)
        if faults.extra_attributes or faults.drop_attributes:  # the API's schema drifts
            attributes = resource["attributes"]
            attributes.update(faults.extra_attributes)
            for name in faults.drop_attributes:
                attributes.pop(name, None)
        rels = resource["relationships"]
        for name in includes:
            if name == "categories":
                rels["categories"]["data"] = [{"type": "categories", "id": str(c)} for c in work.categories]
                for cat_id in work.categories:
                    call.include(self._category(call, cat_id))
            elif name == "mappings":
                found = self._mappings_of(call, work)
                rels["mappings"]["data"] = [{"type": "mappings", "id": str(m.id)} for m in found]
                for m in found:
                    call.include(
                        kitsu_render.mapping_resource(m.id, m.site, m.external_id, m.work, call.base)
                    )
            elif name in ("characters", "mediaCharacters"):
                found_mc = self._media_characters_of(call, work)
                rels["characters"]["data"] = [
                    {"type": "mediaCharacters", "id": str(mc.id)} for mc in found_mc
                ]
                for mc in found_mc:
                    call.include(self._media_character(call, mc))
            elif name == "episodes" and work.kind == "anime":
                numbers = range(1, episode_count(work) + 1)
                rels["episodes"]["data"] = [
                    {"type": "episodes", "id": str(episode_id(work, n))} for n in numbers
                ]
                for n in numbers:
                    call.include(self._episode(call, work, n))
        return resource

    def _mappings_of(self, call: _Call, work: Work) -> list[Mapping]:
        return call.view.mappings_by_work.get(work.index, [])

    def _find_media(self, call: _Call, kind: str) -> Work:
        work = self.state.ctx.need_world().by_kitsu(kind, _int_id(call.request))
        if work is None or not call.can_see(work):
            raise jsonapi.not_found(call.request.match_info["id"])
        return work

    def media_list(self, call: _Call, kind: str) -> web.Response:
        request = call.request
        includes = jsonapi.parse_list(request, "include")
        jsonapi.check_includes(includes, MEDIA_INCLUDES, kind)
        page = jsonapi.parse_page(request)
        works = _filter_media(call.visible(kind), request, call.now)
        works = _sorted(works, request, call.now)
        chunk = works[page.offset : page.offset + page.limit]
        return call.listing([self._media(call, w, includes) for w in chunk], page, len(works))

    def media_one(self, call: _Call, kind: str) -> web.Response:
        includes = jsonapi.parse_list(call.request, "include")
        jsonapi.check_includes(includes, MEDIA_INCLUDES, kind)
        return call.single(self._media(call, self._find_media(call, kind), includes))

    def media_categories(self, call: _Call, kind: str) -> web.Response:
        work = self._find_media(call, kind)
        page = jsonapi.parse_page(call.request)
        ids = work.categories[page.offset : page.offset + page.limit]
        return call.listing([self._category(call, c) for c in ids], page, len(work.categories))

    def media_mappings(self, call: _Call, kind: str) -> web.Response:
        work = self._find_media(call, kind)
        page = jsonapi.parse_page(call.request)
        found = self._mappings_of(call, work)
        chunk = found[page.offset : page.offset + page.limit]
        rendered = [
            kitsu_render.mapping_resource(m.id, m.site, m.external_id, m.work, call.base) for m in chunk
        ]
        return call.listing(rendered, page, len(found))

    def media_characters_of(self, call: _Call, kind: str) -> web.Response:
        work = self._find_media(call, kind)
        page = jsonapi.parse_page(call.request)
        found = self._media_characters_of(call, work)
        chunk = found[page.offset : page.offset + page.limit]
        return call.listing([self._media_character(call, mc) for mc in chunk], page, len(found))

    # -- episodes --------------------------------------------------------------------------------
    def _episode(self, call: _Call, work: Work, number: int) -> dict[str, Any]:
        ep_id = episode_id(work, number)
        self_url = f"{call.base}/episodes/{ep_id}"
        airdate = None
        if work.start is not None and work.start[1] is not None and work.start[2] is not None:
            first = datetime(work.start[0], work.start[1], work.start[2], tzinfo=UTC).timestamp()
            airdate = datetime.fromtimestamp(first + (number - 1) * 7 * 86400, UTC).strftime("%Y-%m-%d")
        title = None if ep_id % 5 == 0 else f"Episode {number}"
        synopsis = None if ep_id % 3 == 0 else f"{work.romaji}, episode {number}."
        resource: dict[str, Any] = {
            "id": str(ep_id),
            "type": "episodes",
            "links": {"self": self_url},
            "attributes": {
                "createdAt": kitsu_render.iso(work.created_at + number * 3600),
                "updatedAt": kitsu_render.iso(episode_updated_at(work, number)),
                "synopsis": synopsis,
                "description": {"en": synopsis} if synopsis else {},
                "titles": {"en_jp": title, "en_us": title, "ja_jp": f"第{number}話"} if title else {},
                "canonicalTitle": title,
                "seasonNumber": 1,
                "number": number,
                "relativeNumber": number,
                "airdate": airdate,
                "length": work.duration,
                "thumbnail": None
                if ep_id % 4 == 0
                else {"original": f"https://media.kitsu.app/episodes/thumbnails/{ep_id}/original.jpg"},
            },
            "relationships": jsonapi.relationship_links(self_url, ("media", "videos")),
        }
        if "media" in jsonapi.parse_list(call.request, "include"):
            assert work.kitsu_id is not None
            resource["relationships"]["media"]["data"] = {"type": "anime", "id": str(work.kitsu_id)}
            if call.can_see(work):
                call.include(self._media(call, work, ()))
        return resource

    def episodes(self, call: _Call, _: str) -> web.Response:
        request = call.request
        jsonapi.check_includes(jsonapi.parse_list(request, "include"), ("media",), "episodes")
        page = jsonapi.parse_page(request)
        media_id = request.query.get("filter[mediaId]")
        if media_id is not None:
            media_type = request.query.get("filter[mediaType]", "Anime").lower()
            work = self.ctx.need_world().by_kitsu(media_type, int(media_id)) if media_id.isdigit() else None
            return self._episodes_of(call, work, page)
        key = _sort_key(request, EPISODE_SORTS)
        descending = key.startswith("-")
        wanted = _id_filter(request)
        if wanted is not None:
            world = self.ctx.need_world()
            found = []
            for ep in sorted(wanted, reverse=descending):
                work = world.by_kitsu("anime", ep // 1000)
                if work is not None and 1 <= ep % 1000 <= episode_count(work) and call.can_see(work):
                    found.append((work, ep % 1000))
            chunk = found[page.offset : page.offset + page.limit]
            return call.listing([self._episode(call, w, n) for w, n in chunk], page, len(found))
        total = call.view.episode_total
        positions = range(page.offset, min(total, page.offset + page.limit))
        at = [total - 1 - p if descending else p for p in positions]
        if key.lstrip("-") == "updatedAt":  # ORDER BY updated_at (desc) nulls last, as BaseResource
            order = call.view.episodes_by_updated()
            at = [order[p] for p in at]
        picked = [call.view.episode_at(p) for p in at]
        return call.listing([self._episode(call, w, n) for w, n in picked], page, total)

    def _episodes_of(self, call: _Call, work: Work | None, page: Page) -> web.Response:
        count = episode_count(work) if work is not None else 0
        numbers = range(page.offset + 1, min(count, page.offset + page.limit) + 1)
        assert work is not None or not numbers
        return call.listing([self._episode(call, work, n) for n in numbers if work], page, count)

    def anime_episodes(self, call: _Call, kind: str) -> web.Response:
        work = self._find_media(call, kind)
        return self._episodes_of(call, work, jsonapi.parse_page(call.request))

    def episode_one(self, call: _Call, _: str) -> web.Response:
        ep = _int_id(call.request)
        work = self.ctx.need_world().by_kitsu("anime", ep // 1000)
        if work is None or not 1 <= ep % 1000 <= episode_count(work):
            raise jsonapi.not_found(str(ep))
        return call.single(self._episode(call, work, ep % 1000))

    # -- categories ------------------------------------------------------------------------------
    def _category(self, call: _Call, cat_id: int) -> dict[str, Any]:
        cat = next(c for c in self.ctx.need_world().categories if c.id == cat_id)
        view = call.view
        return kitsu_render.category_resource(
            cat, call.base, view.category_counts[cat_id], view.child_counts[cat_id]
        )

    def categories(self, call: _Call, _: str) -> web.Response:
        page = jsonapi.parse_page(call.request, max_limit=None)  # ``paginator :unlimited``
        cats = self.ctx.need_world().categories
        slug = call.request.query.get("filter[slug]")
        if slug is not None:
            cats = [c for c in cats if c.slug in slug.split(",")]
        wanted = _id_filter(call.request)
        if wanted is not None:
            cats = [c for c in cats if c.id in wanted]
        cats = sorted(cats, key=lambda c: c.id, reverse=_sort_key(call.request, ("id",)) == "-id")
        chunk = cats[page.offset : page.offset + page.limit]
        return call.listing([self._category(call, c.id) for c in chunk], page, len(cats))

    def category_one(self, call: _Call, _: str) -> web.Response:
        cat_id = _int_id(call.request)
        if not any(c.id == cat_id for c in self.ctx.need_world().categories):
            raise jsonapi.not_found(str(cat_id))
        return call.single(self._category(call, cat_id))

    # -- mappings --------------------------------------------------------------------------------
    def _mapping(self, call: _Call, m: Mapping, includes: Sequence[str]) -> dict[str, Any]:
        resource = kitsu_render.mapping_resource(m.id, m.site, m.external_id, m.work, call.base)
        if "item" in includes:
            resource["relationships"]["item"]["data"] = {"type": m.work.kind, "id": str(m.work.kitsu_id)}
            if call.can_see(m.work):  # an R18 item stays hidden: referenced but absent
                call.include(self._media(call, m.work, ()))
        return resource

    def mappings(self, call: _Call, _: str) -> web.Response:
        request = call.request
        includes = jsonapi.parse_list(request, "include")
        jsonapi.check_includes(includes, ("item",), "mappings")
        page = jsonapi.parse_page(request)
        site, external = request.query.get("filter[externalSite]"), request.query.get("filter[externalId]")
        found = call.view.mappings
        if site is not None and external is not None:
            found = [m for s in site.split(",") for m in call.view.mapping_index.get((s, external), [])]
        elif site is not None or external is not None:
            sites = set(site.split(",")) if site else None
            found = [
                m
                for m in found
                if (sites is None or m.site in sites) and (external is None or m.external_id == external)
            ]
        wanted = _id_filter(request)
        if wanted is not None:
            found = [m for m in found if m.id in wanted]
        found = _ordered(request, found, lambda m: m.work.links_stamp("mappings", m.work.created_at + 60))
        chunk = found[page.offset : page.offset + page.limit]
        return call.listing([self._mapping(call, m, includes) for m in chunk], page, len(found))

    def mapping_one(self, call: _Call, _: str) -> web.Response:
        mapping_id = _int_id(call.request)
        found = self._mappings_by_id(call, mapping_id)
        if not found:
            raise jsonapi.not_found(str(mapping_id))
        includes = jsonapi.parse_list(call.request, "include")
        return call.single(self._mapping(call, found[0], includes))

    def _mappings_by_id(self, call: _Call, mapping_id: int) -> list[Mapping]:
        kind = "manga" if mapping_id % 8 >= 4 else "anime"
        work = self.ctx.need_world().by_kitsu(kind, mapping_id // 8)
        return [m for m in self._mappings_of(call, work) if m.id == mapping_id] if work else []

    # -- characters ------------------------------------------------------------------------------
    def characters(self, call: _Call, _: str) -> web.Response:
        page = jsonapi.parse_page(call.request)
        chars = self.ctx.need_world().characters
        descending = _sort_key(call.request, ("id",)) == "-id"
        ordered = chars[::-1] if descending else chars
        chunk = ordered[page.offset : page.offset + page.limit]
        return call.listing([kitsu_render.character_resource(c, call.base) for c in chunk], page, len(chars))

    def character_one(self, call: _Call, _: str) -> web.Response:
        index = _int_id(call.request) - 1
        chars = self.ctx.need_world().characters
        if not 0 <= index < len(chars):
            raise jsonapi.not_found(call.request.match_info["id"])
        return call.single(kitsu_render.character_resource(chars[index], call.base))

    def _media_characters_of(self, call: _Call, work: Work) -> list[MediaCharacter]:
        assert work.kitsu_id is not None
        chars = self.ctx.need_world().characters
        bit = work.kind == "manga"
        return [
            MediaCharacter((work.kitsu_id * 16 + slot) * 2 + bit, work, chars[index], role.lower())
            for slot, (index, role) in enumerate(work.characters)
        ]

    def _media_character(self, call: _Call, mc: MediaCharacter) -> dict[str, Any]:
        self_url = f"{call.base}/media-characters/{mc.id}"
        rels = jsonapi.relationship_links(self_url, ("media", "character", "voices"))
        includes = jsonapi.parse_list(call.request, "include")
        if "character" in includes or "characters" in includes:
            rels["character"]["data"] = {"type": "characters", "id": str(mc.character.kitsu_id)}
            call.include(kitsu_render.character_resource(mc.character, call.base))
        if "media" in includes:
            rels["media"]["data"] = {"type": mc.work.kind, "id": str(mc.work.kitsu_id)}
            if call.can_see(mc.work):
                call.include(self._media(call, mc.work, ()))
        return {
            "id": str(mc.id),
            "type": "mediaCharacters",
            "links": {"self": self_url},
            "attributes": {
                "createdAt": kitsu_render.iso(mc.work.created_at + 120),
                "updatedAt": kitsu_render.iso(mc.work.links_stamp("characters", mc.work.created_at + 120)),
                "role": mc.role,
            },
            "relationships": rels,
        }

    def media_characters(self, call: _Call, _: str) -> web.Response:
        request = call.request
        jsonapi.check_includes(
            jsonapi.parse_list(request, "include"), ("character", "media"), "mediaCharacters"
        )
        page = jsonapi.parse_page(request)
        media_id = request.query.get("filter[mediaId]")
        found: list[MediaCharacter] = call.view.media_characters
        if media_id is not None:
            kind = request.query.get("filter[mediaType]", "Anime").lower()
            work = self.ctx.need_world().by_kitsu(kind, int(media_id)) if media_id.isdigit() else None
            found = self._media_characters_of(call, work) if work is not None else []
        role = request.query.get("filter[role]")
        if role is not None:
            found = [mc for mc in found if mc.role == role]
        wanted = _id_filter(request)
        if wanted is not None:
            found = [mc for mc in found if mc.id in wanted]
        found = _ordered(
            request, found, lambda mc: mc.work.links_stamp("characters", mc.work.created_at + 120)
        )
        chunk = found[page.offset : page.offset + page.limit]
        return call.listing([self._media_character(call, mc) for mc in chunk], page, len(found))

    def media_character_one(self, call: _Call, _: str) -> web.Response:
        mc_id = _int_id(call.request)
        kind = "manga" if mc_id % 2 else "anime"
        work = self.ctx.need_world().by_kitsu(kind, mc_id // 32)
        found = [mc for mc in self._media_characters_of(call, work) if mc.id == mc_id] if work else []
        if not found:
            raise jsonapi.not_found(str(mc_id))
        return call.single(self._media_character(call, found[0]))

    # -- staff, productions, relationships, streaming links, voices ------------------------------
    def _join_items(self, call: _Call, path: str) -> list[Join]:
        view = call.view
        items: dict[str, list[Any]] = {
            "media-staff": view.staff,
            "media-productions": view.productions,
            "media-relationships": view.relations,
            "streaming-links": view.streaming_links,
            "character-voices": view.voices,
        }
        found: list[Join] = items[path]
        if call.authed:
            return found
        return [item for item in found if all(call.can_see(w) for w in _join_works(item))]

    def _join(self, call: _Call, path: str, item: Join, includes: Sequence[str]) -> dict[str, Any]:
        kind, relationships = JOINS[path]
        base = call.base
        attributes: dict[str, Any]
        works: dict[str, Work] = {}
        related: dict[str, dict[str, Any]] = {}
        if isinstance(item, Staff):
            attributes, works["media"] = {"role": item.role}, item.work
            related["person"] = kitsu_render.person_resource(item.person, base)
        elif isinstance(item, Production):
            attributes, works["media"] = {"role": item.role}, item.work
            related["company"] = kitsu_render.producer_resource(item.company, base)
        elif isinstance(item, Relation):
            attributes = {"role": item.role}
            works["source"], works["destination"] = item.work, item.other
        elif isinstance(item, StreamingLink):
            attributes = {"url": _stream_url(item), "subs": item.subs, "dubs": item.dubs}
            works["media"] = item.work
            count = call.view.streamer_links[item.streamer[0]]
            related["streamer"] = kitsu_render.streamer_resource(item.streamer, count, base)
        else:
            attributes = {"locale": item.locale}
            related["mediaCharacter"] = self._media_character(call, item.appearance)
            related["person"] = kitsu_render.person_resource(item.person, base)
        work = item.appearance.work if isinstance(item, Voice) else item.work
        resource = kitsu_render.link_resource(kind, item.id, work, attributes, relationships, base)
        rels = resource["relationships"]
        for name in includes:
            name = name.split(".")[0]
            if name in works:
                target = works[name]
                rels[name]["data"] = {"type": target.kind, "id": str(target.kitsu_id)}
                if call.can_see(target):
                    call.include(self._media(call, target, ()))
            elif name in related:
                rels[name]["data"] = {"type": related[name]["type"], "id": related[name]["id"]}
                call.include(related[name])
        return resource

    def joins(self, call: _Call, path: str) -> web.Response:
        request = call.request
        includes = jsonapi.parse_list(request, "include")
        kind, relationships = JOINS[path]
        jsonapi.check_includes(includes, relationships, kind)
        page = jsonapi.parse_page(request)
        found = self._join_items(call, path)
        wanted = _id_filter(request)
        if wanted is not None:
            found = [item for item in found if item.id in wanted]
        if path == "media-relationships":  # filters sourceType, sourceId; extra sort on role
            found = _relations_filtered(request, found)
        found = _ordered(
            request,
            found,
            lambda item: kitsu_render.link_updated_at(kind, _join_works(item)[0]),
            ("role",) if path == "media-relationships" else (),
        )
        chunk = found[page.offset : page.offset + page.limit]
        return call.listing([self._join(call, path, item, includes) for item in chunk], page, len(found))

    def join_one(self, call: _Call, path: str) -> web.Response:
        wanted = _int_id(call.request)
        found = self._join_items(call, path)
        at = bisect.bisect_left([item.id for item in found], wanted)
        if at == len(found) or found[at].id != wanted:
            raise jsonapi.not_found(str(wanted))
        includes = jsonapi.parse_list(call.request, "include")
        kind, relationships = JOINS[path]
        jsonapi.check_includes(includes, relationships, kind)
        return call.single(self._join(call, path, found[at], includes))

    def people(self, call: _Call, _: str) -> web.Response:
        return self._plain(call, self.ctx.need_world().people, kitsu_render.person_resource)

    def person_one(self, call: _Call, _: str) -> web.Response:
        return self._plain_one(call, self.ctx.need_world().people, kitsu_render.person_resource)

    def producers(self, call: _Call, _: str) -> web.Response:
        return self._plain(call, self.ctx.need_world().companies, kitsu_render.producer_resource)

    def producer_one(self, call: _Call, _: str) -> web.Response:
        return self._plain_one(call, self.ctx.need_world().companies, kitsu_render.producer_resource)

    def _plain_one(
        self, call: _Call, items: Sequence[Any], render: Callable[[Any, str], dict[str, Any]]
    ) -> web.Response:
        """``GET /people/{id}``-like: ids are list positions + 1 (``Person.kitsu_id``)."""
        index = _int_id(call.request) - 1
        if not 0 <= index < len(items):
            raise jsonapi.not_found(call.request.match_info["id"])
        return call.single(render(items[index], call.base))

    def _plain(
        self, call: _Call, items: Sequence[Any], render: Callable[[Any, str], dict[str, Any]]
    ) -> web.Response:
        page = jsonapi.parse_page(call.request)
        wanted = _id_filter(call.request)
        found = list(items) if wanted is None else [i for i in items if i.kitsu_id in wanted]
        if _sort_key(call.request, ("id",)) == "-id":
            found = found[::-1]
        chunk = found[page.offset : page.offset + page.limit]
        return call.listing([render(item, call.base) for item in chunk], page, len(found))

    def streamers(self, call: _Call, _: str) -> web.Response:
        page = jsonapi.parse_page(call.request, max_limit=None)  # ``paginator :unlimited``
        counts = call.view.streamer_links
        chunk = STREAMERS[page.offset : page.offset + page.limit]
        rendered = [kitsu_render.streamer_resource(s, counts[s[0]], call.base) for s in chunk]
        return call.listing(rendered, page, len(STREAMERS))

    def streamer_one(self, call: _Call, _: str) -> web.Response:
        wanted = _int_id(call.request)
        streamer = next((s for s in STREAMERS if s[0] == wanted), None)
        if streamer is None:
            raise jsonapi.not_found(str(wanted))
        return call.single(
            kitsu_render.streamer_resource(streamer, call.view.streamer_links[wanted], call.base)
        )


def _ordered(
    request: web.Request, found: list[Any], stamp: Callable[[Any], float], extra: Sequence[str] = ()
) -> list[Any]:
    """A listing in ``sort`` order: id (the default), ``updatedAt`` (``ORDER BY updated_at``, as
    BaseResource declares it on every resource) or an extra attribute; ``-`` descending."""
    key = _sort_key(request, ("id", "updatedAt", *extra))
    name = key.lstrip("-")
    if name == "updatedAt":
        found = sorted(found, key=lambda item: (stamp(item), item.id))
    elif name != "id":
        found = sorted(found, key=lambda item: (getattr(item, name), item.id))
    return found[::-1] if key.startswith("-") else found


def _relations_filtered(request: web.Request, found: list[Join]) -> list[Join]:
    """``filter[source_id]`` / ``filter[sourceId]`` and ``filter[source_type]`` (Anime, Manga)."""
    query = request.query
    source_id = query.get("filter[source_id]", query.get("filter[sourceId]"))
    source_type = query.get("filter[source_type]", query.get("filter[sourceType]"))
    out = [item for item in found if isinstance(item, Relation)]
    if source_id is not None:
        ids = {part.strip() for part in source_id.split(",")}
        out = [r for r in out if str(r.work.kitsu_id) in ids]
    if source_type is not None:
        kinds = {part.strip().lower() for part in source_type.split(",")}
        out = [r for r in out if r.work.kind in kinds]
    return list(out)


def _join_works(item: Join) -> tuple[Work, ...]:
    if isinstance(item, Relation):
        return item.work, item.other
    return (item.appearance.work,) if isinstance(item, Voice) else (item.work,)


def _stream_url(link: StreamingLink) -> str:
    site = link.streamer[1].lower().replace(" ", "")
    return f"https://www.{site}.com/watch/{link.work.slug}"


def _oauth_error(error: str, status: int = 400) -> web.Response:
    descriptions = {
        "invalid_grant": "The provided authorization grant is invalid, expired, revoked, does not match the "
        "redirection URI used in the authorization request, or was issued to another client.",
        "unsupported_grant_type": "The authorization grant type is not supported by the authorization "
        "server.",
    }
    return json_response({"error": error, "error_description": descriptions[error]}, status=status)


def _sort_key(request: web.Request, allowed: Sequence[str]) -> str:
    key = request.query.get("sort", "id")
    if key.lstrip("-") not in allowed:
        raise JsonApiError(
            400, "Invalid sort criteria", f"{key} is not a valid sort criteria for this resource", "114"
        )
    return key


def _filter_media(works: list[Work], request: web.Request, now: float) -> list[Work]:
    query = request.query
    since = query.get("filter[since]")
    if since is not None:
        try:
            moment = datetime.fromisoformat(since.replace("Z", "+00:00"))
        except ValueError:
            raise JsonApiError(
                400, "Invalid filter value", f"{since} is not a valid value for since", "103"
            ) from None
        cutoff = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
        works = [w for w in works if kitsu_render.media_updated_at(w, now) >= cutoff]
    wanted_ids = _id_filter(request)
    if wanted_ids is not None:
        works = [w for w in works if w.kitsu_id in wanted_ids]
    for key in ("filter[subtype]", "filter[slug]", "filter[ageRating]"):
        wanted = query.get(key)
        if wanted is None:
            continue
        values = set(wanted.split(","))
        if key == "filter[subtype]":
            works = [w for w in works if kitsu_render.subtype(w) in values]
        elif key == "filter[slug]":
            works = [w for w in works if w.slug in values]
        else:
            works = [w for w in works if w.age_rating in values]
    return works


def _id_filter(request: web.Request) -> set[int] | None:
    """``filter[id]=1,2,3`` (Kitsu's lookup by id, any listing): the ids asked for, else None."""
    raw = request.query.get("filter[id]")
    if raw is None:
        return None
    ids: set[int] = set()
    for part in raw.split(","):
        if not part.strip().isdigit():
            raise JsonApiError(400, "Invalid filter value", f"{part} is not a valid value for id", "103")
        ids.add(int(part))
    return ids


def _sorted(works: list[Work], request: web.Request, now: float) -> list[Work]:
    key = _sort_key(request, SORTS)
    name, descending = key.lstrip("-"), key.startswith("-")
    if name == "id":
        return works[::-1] if descending else works
    if name == "createdAt":
        return sorted(works, key=lambda w: w.created_at, reverse=descending)
    ordered = sorted(works, key=lambda w: (kitsu_render.media_updated_at(w, now), w.kitsu_id or 0))
    return ordered[::-1] if descending else ordered
