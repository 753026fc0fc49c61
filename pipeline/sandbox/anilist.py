"""AniList GraphQL v2 simulator: ``POST /`` like ``https://graphql.anilist.co``.

Faithful where it hurts: 30 requests a minute while ``X-RateLimit-Limit`` says 90 (``Remaining``
counts down from 90, so the 31st request meets a 429 at ``Remaining`` 60), then a one-minute
lockout with ``Retry-After`` and an epoch ``X-RateLimit-Reset``; ``perPage`` is capped at 50;
``pageInfo.total``/``lastPage`` are unreliable (5000 once there is more than a page) and a query
cannot page past item 5,000 (``page × perPage``); no ``updatedAt`` filter exists, only sorting.
Only the fields a query selects come back; unknown fields and arguments are GraphQL errors.

A query whose complexity passes 500 is refused before it runs, as AniList does: HTTP 400
``{"errors": [{"message": "Max query complexity should be 500 but got 525.", "status": 400}],
"data": null}``. The cost is 1 per selected field plus what it selects (a ``Page`` list is charged
once); a nested connection (``characters``, ``staff``, ``reviews``, … inside a media) charges its
items once per ``perPage`` (default and maximum 25), the upper bound ``sources/anilist.py``
documents. Nested connections honour ``page``/``perPage``/``sort`` (and ``role``), voice actors
their ``language``, studios ``isMain``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import orjson
from aiohttp import web

from pipeline.sandbox import anilist_render, graphql
from pipeline.sandbox.core import SandboxContext, client_key, json_response, service_app
from pipeline.sandbox.graphql import Field, GraphQLError, Operation
from pipeline.sandbox.limits import ANILIST_POLICY, FixedWindowLimiter, LimitPolicy
from pipeline.sandbox.world import GENRES, Work, WorldRecords

SERVICE = "anilist"
MAX_PER_PAGE = 50
MAX_COMPLEXITY = 500
NESTED_PER_PAGE = 25  # default and maximum of a nested connection page
# Paged connections of a media (charged per item when nested) and the arguments of nested fields.
PAGED = frozenset(("characters", "staff", "reviews", "recommendations", "airingSchedule", "trends", "media"))
NESTED_ARGS: dict[tuple[str, str], frozenset[str]] = {
    ("Media", "characters"): frozenset(("page", "perPage", "sort", "role")),
    ("Media", "staff"): frozenset(("page", "perPage", "sort")),
    ("Media", "studios"): frozenset(("sort", "isMain")),
    ("Media.characters.edges", "voiceActors"): frozenset(("language", "sort")),
    ("Media.relations.edges", "relationType"): frozenset(("version",)),
}
ROLE_ORDER = {"MAIN": 0, "SUPPORTING": 1, "BACKGROUND": 2}
CHARACTER_SORTS = frozenset(("ID", "ROLE", "RELEVANCE", "FAVOURITES", "SEARCH_MATCH"))
STAFF_SORTS = frozenset(("ID", "ROLE", "LANGUAGE", "RELEVANCE", "FAVOURITES", "SEARCH_MATCH"))
DEPTH_CAP = 5000
TOO_MANY = {"data": None, "errors": [{"message": "Too Many Requests.", "status": 429}]}
MEDIA_ARGS = frozenset((
    "id", "idMal", "id_in", "id_not_in", "idMal_in", "type", "format", "format_in", "format_not_in",
    "status", "status_in", "status_not_in", "startDate", "startDate_greater", "startDate_lesser",
    "endDate_greater", "endDate_lesser", "season", "seasonYear", "isAdult", "genre", "genre_in", "search",
    "sort", "countryOfOrigin", "popularity_greater",
))  # fmt: skip
SORTS: dict[str, Callable[[Work], Any]] = {
    "ID": lambda w: w.anilist_id,
    "UPDATED_AT": lambda w: (int(w.modified_at), w.anilist_id),
    "POPULARITY": lambda w: (w.popularity, w.anilist_id),
    "SCORE": lambda w: (w.score or 0, w.anilist_id),
    "START_DATE": lambda w: (anilist_render.fuzzy_int(w.start) or 0, w.anilist_id),
    "TITLE_ROMAJI": lambda w: (w.romaji, w.anilist_id),
    "FAVOURITES": lambda w: (w.favourites, w.anilist_id),
}


@dataclass
class AniListState:
    ctx: SandboxContext
    limiter: FixedWindowLimiter
    _works: list[Work] = field(default_factory=list)
    _version: int = -1

    def works(self) -> list[Work]:
        """Every live work AniList knows, by id; rebuilt when the world changes."""
        world = self.ctx.need_world()
        if self._version != world.version:
            found = [w for w in world.works if w.anilist_id is not None and not w.deleted]
            self._works = sorted(found, key=lambda w: w.anilist_id or 0)
            self._version = world.version
        return self._works


def throttled(_: web.Request, retry_after: float) -> web.StreamResponse:
    return json_response(TOO_MANY, status=429, headers={"Retry-After": str(max(1, round(retry_after)))})


def policy(ctx: SandboxContext) -> LimitPolicy:
    """The degraded 30/min quota (headers say 90), or ``anilist_requests_per_minute`` with the same lie."""
    per_minute = ctx.options.get("anilist_requests_per_minute")
    if per_minute is None:
        return ANILIST_POLICY
    return replace(ANILIST_POLICY, limit=int(per_minute), reported_limit=3 * int(per_minute))


def create_app(ctx: SandboxContext) -> web.Application:
    state = AniListState(ctx, FixedWindowLimiter(policy(ctx), ctx.clock, ctx.counters_for(SERVICE)))
    ctx.state[SERVICE] = state
    ctx.on_reset(state.limiter.reset)
    ctx.register_records(SERVICE, WorldRecords(ctx.need_world(), "anilist"))
    app = service_app(ctx, SERVICE, throttle=throttled)

    async def endpoint(request: web.Request) -> web.StreamResponse:
        return await _handle(state, request)

    app.router.add_post("/", endpoint)
    app.router.add_get("/", endpoint)
    return app


async def _handle(state: AniListState, request: web.Request) -> web.StreamResponse:
    decision = state.limiter.check(client_key(request))
    headers = {"X-RateLimit-Limit": str(decision.limit), "X-RateLimit-Remaining": str(decision.remaining)}
    if not decision.allowed:
        headers["Retry-After"] = str(math.ceil(decision.retry_after or 0))
        headers["X-RateLimit-Reset"] = str(math.ceil(decision.reset_at))
        return json_response(TOO_MANY, status=429, headers=headers)
    try:
        query, variables = await _read(request)
        operation = graphql.parse(query)
        variables = {**_defaults(operation), **variables}
        cost = graphql.complexity(operation.selections, operation.fragments, variables, per_item)
        if cost > MAX_COMPLEXITY:
            refused = {
                "message": f"Max query complexity should be {MAX_COMPLEXITY} but got {cost}.",
                "status": 400,
            }
            return json_response({"errors": [refused], "data": None}, status=400, headers=headers)
        data, status, errors = _execute(state, operation, variables)
    except GraphQLError as exc:
        return json_response({"errors": [exc.as_error()], "data": None}, status=400, headers=headers)
    body: dict[str, Any] = {"data": data}
    if errors:
        body["errors"] = errors
    return json_response(body, status=status, headers=headers)


def per_item(field: Field, args: Mapping[str, Any], path: tuple[str, ...]) -> int:
    """How many times a field's items are charged: a nested connection's page size, else once."""
    if field.name in PAGED and path and path[-1] != "Page":
        return _nested_size(args)
    return 1


def _nested_size(args: Mapping[str, Any]) -> int:
    return max(1, min(NESTED_PER_PAGE, int(args.get("perPage") or NESTED_PER_PAGE)))


def shaper(variables: Mapping[str, Any]) -> graphql.Shape:
    """Apply nested fields' arguments to a rendered media, as the server resolves them."""

    def shape(field: Field, value: Any, parent: str) -> Any:
        allowed = NESTED_ARGS.get((parent, field.name))
        if allowed is None:
            return value
        args = graphql.resolve_args(field.args, variables)
        _check_args(field, args, allowed, parent)
        args = {k: v for k, v in args.items() if v is not None}
        if field.name in ("characters", "staff"):
            return _connection(field, value["edges"], args)
        if field.name == "voiceActors" and "language" in args:
            return [actor for actor in value if actor["language"] == args["language"]]
        if field.name == "studios" and "isMain" in args:
            return {"edges": [e for e in value["edges"] if e["isMain"] == bool(args["isMain"])]}
        return value

    return shape


def _connection(field: Field, edges: list[dict[str, Any]], args: Mapping[str, Any]) -> dict[str, Any]:
    """One page of a nested characters/staff connection, sorted and filtered by its arguments."""
    allowed = CHARACTER_SORTS if field.name == "characters" else STAFF_SORTS
    found = [e for e in edges if "role" not in args or e["role"] == args["role"]]
    for name in reversed(_as_list(args.get("sort", []))):
        base = str(name).removesuffix("_DESC")
        if base not in allowed:
            enum = "CharacterSort" if field.name == "characters" else "StaffSort"
            raise GraphQLError(f'Value "{name}" does not exist in "{enum}" enum.', field.line, field.column)
        keys: dict[str, Callable[[dict[str, Any]], Any]] = {
            "ID": lambda e: e["node"]["id"],
            "ROLE": lambda e: ROLE_ORDER.get(e["role"], 3) if field.name == "characters" else e["role"],
            "LANGUAGE": lambda e: e["node"].get("language") or "",
        }
        if base in keys:  # RELEVANCE, FAVOURITES, SEARCH_MATCH: the rendered order already
            found = sorted(found, key=keys[base], reverse=str(name).endswith("_DESC"))
    size, page = _nested_size(args), max(1, int(args.get("page") or 1))
    chunk = found[(page - 1) * size : page * size]
    info = {
        "total": len(found),
        "perPage": size,
        "currentPage": page,
        "lastPage": max(1, math.ceil(len(found) / size)),
        "hasNextPage": page * size < len(found),
    }
    return {"edges": chunk, "nodes": [e["node"] for e in chunk], "pageInfo": info}


def _defaults(operation: Operation) -> dict[str, Any]:
    return graphql.resolve_args(operation.defaults, {})


async def _read(request: web.Request) -> tuple[str, dict[str, Any]]:
    if request.method == "GET":
        raw_vars: Any = request.query.get("variables") or {}
        query = request.query.get("query", "")
    else:
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            raise GraphQLError("Invalid JSON in request body.") from None
        if not isinstance(body, dict):
            raise GraphQLError("Request body must be a JSON object with a query.")
        query, raw_vars = body.get("query") or "", body.get("variables") or {}
    if isinstance(raw_vars, str):
        try:
            raw_vars = orjson.loads(raw_vars)
        except orjson.JSONDecodeError:
            raise GraphQLError("Variables are invalid JSON.") from None
    if not query:
        raise GraphQLError("Must provide query string.")
    if not isinstance(raw_vars, dict):
        raise GraphQLError("Variables must be an object.")
    return query, raw_vars


def _execute(
    state: AniListState, op: Operation, variables: dict[str, Any]
) -> tuple[dict[str, Any], int, list[dict[str, Any]]]:
    data: dict[str, Any] = {}
    errors: list[dict[str, Any]] = []
    status = 200
    now = state.ctx.clock.now()
    world = state.ctx.need_world()
    for root in graphql.fields_of(op.selections, op.fragments):
        args = graphql.resolve_args(root.args, variables)
        if root.name == "Page":
            data[root.key] = _page(state, root, args, variables, op, now)
        elif root.name == "Media":
            _check_args(root, args, MEDIA_ARGS, "Query")
            found = _select(state.works(), args)
            if not found:
                data[root.key] = None
                errors.append({"message": "Not Found.", "status": 404, "locations": [_loc(root)]})
                status = 404
                continue
            full = anilist_render.media(found[0], world, now)
            data[root.key] = graphql.project(full, root.selections, op.fragments, "Media", shaper(variables))
        elif root.name == "GenreCollection":
            data[root.key] = list(GENRES)
        else:
            raise GraphQLError(f'Cannot query field "{root.name}" on type "Query".', root.line, root.column)
    return data, status, errors


def _page(
    state: AniListState,
    page_field: Field,
    args: dict[str, Any],
    variables: dict[str, Any],
    op: Operation,
    now: float,
) -> dict[str, Any]:
    _check_args(page_field, args, {"page", "perPage"}, "Query")
    page = max(1, int(args.get("page") or 1))
    per_page = max(1, min(MAX_PER_PAGE, int(args.get("perPage") or MAX_PER_PAGE)))
    children = graphql.fields_of(page_field.selections, op.fragments)
    matched = 0
    rendered: dict[str, Any] = {}
    for child in children:
        if child.name == "media":
            media_args = graphql.resolve_args(child.args, variables)
            _check_args(child, media_args, MEDIA_ARGS, "Page")
            found = _select(state.works(), media_args)
            matched = len(found)
            start = (page - 1) * per_page
            chunk = [] if page * per_page > DEPTH_CAP else found[start : start + per_page]
            world = state.ctx.need_world()
            full = [anilist_render.media(w, world, now) for w in chunk]
            rendered[child.key] = graphql.project(
                full, child.selections, op.fragments, "Media", shaper(variables)
            )
        elif child.name != "pageInfo":
            raise GraphQLError(f'Cannot query field "{child.name}" on type "Page".', child.line, child.column)
    total = matched if matched <= per_page else DEPTH_CAP
    info = {
        "total": total,
        "perPage": per_page,
        "currentPage": page,
        "lastPage": max(1, math.ceil(total / per_page)),
        "hasNextPage": page * per_page < matched and page * per_page < DEPTH_CAP,
    }
    out: dict[str, Any] = {}
    for child in children:
        if child.name == "pageInfo":
            out[child.key] = graphql.project(info, child.selections, op.fragments, "PageInfo")
        else:
            out[child.key] = rendered[child.key]
    return out


def _check_args(where: Field, args: dict[str, Any], allowed: set[str] | frozenset[str], parent: str) -> None:
    for name in args:
        if name not in allowed:
            raise GraphQLError(
                f'Unknown argument "{name}" on field "{where.name}" of type "{parent}".',
                where.line,
                where.column,
            )


def _loc(f: Field) -> dict[str, int]:
    return {"line": f.line, "column": f.column}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _select(works: list[Work], args: dict[str, Any]) -> list[Work]:
    """Filter by the Media arguments (nulls mean 'not given', as on AniList), then sort."""
    a = {k: v for k, v in args.items() if v is not None}
    found = works
    if "id" in a:
        found = [w for w in found if w.anilist_id == int(a["id"])]
    checks: list[Callable[[Work], bool]] = []
    if "id_in" in a:
        ids = {int(i) for i in a["id_in"]}
        checks.append(lambda w: w.anilist_id in ids)
    if "id_not_in" in a:
        not_ids = {int(i) for i in a["id_not_in"]}
        checks.append(lambda w: w.anilist_id not in not_ids)
    if "idMal" in a:
        checks.append(lambda w: w.mal_id == int(a["idMal"]))
    if "idMal_in" in a:
        mal = {int(i) for i in a["idMal_in"]}
        checks.append(lambda w: w.mal_id in mal)
    if "type" in a:
        checks.append(lambda w: w.kind == str(a["type"]).lower())
    for key, getter, mapping in (
        ("format", lambda w: w.format, anilist_render.FORMATS),
        ("status", lambda w: w.status, anilist_render.STATUSES),
    ):
        checks.extend(_enum_checks(a, key, getter, mapping))
    if "startDate" in a:
        checks.append(lambda w: anilist_render.fuzzy_int(w.start) == int(a["startDate"]))
    if "startDate_greater" in a:
        checks.append(lambda w: (anilist_render.fuzzy_int(w.start) or -1) > int(a["startDate_greater"]))
    if "startDate_lesser" in a:
        checks.append(lambda w: -1 < (anilist_render.fuzzy_int(w.start) or -1) < int(a["startDate_lesser"]))
    if "endDate_greater" in a:
        checks.append(lambda w: (anilist_render.fuzzy_int(w.end) or -1) > int(a["endDate_greater"]))
    if "endDate_lesser" in a:
        checks.append(lambda w: -1 < (anilist_render.fuzzy_int(w.end) or -1) < int(a["endDate_lesser"]))
    if "season" in a:
        checks.append(lambda w: w.season is not None and w.season[0] == a["season"])
    if "seasonYear" in a:
        checks.append(lambda w: w.season is not None and w.season[1] == int(a["seasonYear"]))
    if "isAdult" in a:
        checks.append(lambda w: w.adult == bool(a["isAdult"]))
    if "genre" in a:
        checks.append(lambda w: a["genre"] in w.genres)
    if "genre_in" in a:
        checks.append(lambda w: any(g in w.genres for g in a["genre_in"]))
    if "countryOfOrigin" in a:
        checks.append(lambda w: w.country == a["countryOfOrigin"])
    if "popularity_greater" in a:
        checks.append(lambda w: w.popularity > int(a["popularity_greater"]))
    if "search" in a:
        needle = str(a["search"]).lower()
        checks.append(lambda w: needle in w.romaji.lower() or needle in (w.english or "").lower())
    if checks:
        found = [w for w in found if all(check(w) for check in checks)]
    return _sort(found, _as_list(a.get("sort", ["ID"])))


def _enum_checks(
    a: dict[str, Any], key: str, getter: Callable[[Work], str | None], mapping: dict[str, str]
) -> list[Callable[[Work], bool]]:
    def shown(w: Work) -> str | None:
        return mapping.get(getter(w) or "")

    out: list[Callable[[Work], bool]] = []
    if key in a:
        out.append(lambda w: shown(w) == a[key])
    if f"{key}_in" in a:
        wanted = set(a[f"{key}_in"])
        out.append(lambda w: shown(w) in wanted)
    if f"{key}_not_in" in a:
        unwanted = set(a[f"{key}_not_in"])
        out.append(lambda w: shown(w) not in unwanted)
    return out


def _sort(works: list[Work], sorts: list[Any]) -> list[Work]:
    ordered = works
    for name in reversed(sorts):
        base = str(name).removesuffix("_DESC")
        if base not in SORTS:
            raise GraphQLError(f'Value "{name}" does not exist in "MediaSort" enum.')
        if base == "ID" and not str(name).endswith("_DESC") and ordered is works:
            continue  # already in id order
        ordered = sorted(ordered, key=SORTS[base], reverse=str(name).endswith("_DESC"))
    return ordered
