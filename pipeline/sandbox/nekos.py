"""Nekos API v1 simulator: bearer-token image listing, limit/offset envelopes, 1 req/s with bans.

Base URL ``http://127.0.0.1:PORT/api``. Each request is judged as the v1 middleware does it:
the token first (401s are not rate limited), then the per-client fixed window (1 request per
second from the window's first request; every refusal is a violation; 10 violations within an
hour ban the client for an hour), then the parameters. ``X-RateLimit-Limit``, ``-Remaining`` and
``-Reset`` (seconds until the window ends, not a timestamp) are on every response that reached
the limiter; 429s add ``Retry-After``.

Nekos-specific control routes (besides core's ``/_sandbox`` ones, e.g. ``/_sandbox/faults``
``{"throttle_next": N}`` for a 429 storm):

    GET  /_sandbox/nekos         counts, options, violations, banned clients
    POST /_sandbox/nekos/mode    {"lenient_limits": bool, "swap_probability": float}
    POST /_sandbox/nekos/unban   forget every client's window, violations and ban

In process, ``ctx.state["nekos"].arrivals`` is the limiter's arrival log (time, client, path,
admitted): the server-side view a test judges a client's pace by.
"""

from __future__ import annotations

import math
import re
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from pipeline.sandbox.core import CONTROL_PREFIX, SandboxContext, client_key, json_response, service_app
from pipeline.sandbox.limits import NEKOS_POLICY, Decision, FixedWindowLimiter
from pipeline.sandbox.nekos_data import (
    artist_json,
    category_json,
    character_json,
    generate_nekos,
    image_json,
)
from pipeline.sandbox.nekos_order import scan_order
from pipeline.sandbox.nekos_records import NekosRecords

# The tokens the sandbox knows (100 alphanumeric characters, as v1 requires).
SANDBOX_TOKEN = ("NekosSandbox" + "0123456789abcdefghijklmnopqrstuvwxyz" * 3)[:100]
NO_SCOPE_TOKEN = ("NekosNoScope" + "zyxwvutsrqponmlkjihgfedcba9876543210" * 3)[:100]
UNLIMITED_TOKEN = ("NekosUnlimited" + "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789" * 3)[:100]
TOKEN_SCOPES = {
    SANDBOX_TOKEN: frozenset({"image:list"}),
    NO_SCOPE_TOKEN: frozenset(),
    UNLIMITED_TOKEN: frozenset({"image:list", "api:no-ratelimit"}),
}
VERSION = "v1.6.0"
_TOKEN_FORMAT = re.compile(r"^Bearer (?P<token>[0-9a-zA-Z]{100})$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
RATE_MESSAGE = "You have exceeded the rate limit. Please try again later."
BAN_MESSAGE = "You have exceeded the rate limit too many times. Please try again later."
ARRIVALS_KEPT = 100_000
RESOURCES = {"image": "images", "artist": "artists", "character": "characters", "category": "categories"}


@dataclass(frozen=True, slots=True)
class Arrival:
    """One request the limiter judged: sandbox time, client, path and whether it was admitted."""

    at: float
    client: str
    path: str
    allowed: bool


@dataclass
class NekosOptions:
    """``lenient_limits``: ``/image`` and ``/artist`` accept ``limit`` up to 50, as the v1 code does
    (docs and the other routes say 25). ``swap_probability``: how unstable the unordered scan is."""

    lenient_limits: bool = False
    swap_probability: float = 0.05
    extra_tokens: dict[str, frozenset[str]] = field(default_factory=dict)


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return json_response(
        {"code": status, "message": message, "success": False}, status=status, headers=headers
    )


def _rate_headers(decision: Decision) -> dict[str, str]:
    headers = {
        "X-RateLimit-Limit": str(decision.limit),
        "X-RateLimit-Remaining": str(decision.remaining),
        "X-RateLimit-Reset": str(math.ceil(decision.reset_in)),
    }
    if not decision.allowed:
        headers["Retry-After"] = str(max(1, math.ceil(decision.retry_after or 0.0)))
    return headers


def nekos_throttle(_: web.Request, retry_after: float) -> web.StreamResponse:
    """An injected 429 (storm) worded and headed as the real limiter's."""
    wait = str(max(1, math.ceil(retry_after)))
    headers = {
        "Retry-After": wait,
        "X-RateLimit-Limit": "1",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": wait,
    }
    return _error(429, RATE_MESSAGE, headers)


class NekosService:
    """The state of the simulator, reachable in-process as ``ctx.state["nekos"]``."""

    def __init__(self, ctx: SandboxContext, name: str, options: NekosOptions) -> None:
        self.ctx = ctx
        self.name = name
        self.options = options
        names = ctx.world.character_names() if ctx.world is not None else None
        self.data = generate_nekos(ctx.size, ctx.seed, names)
        self.limiter = FixedWindowLimiter(NEKOS_POLICY, ctx.clock, ctx.counters_for(name))
        self.scopes = {**TOKEN_SCOPES, **options.extra_tokens}
        self.violations = 0
        # The requests the limiter judged (the last ARRIVALS_KEPT), in arrival order: a test measures
        # the clients' combined pace from the server's own log.
        self.arrivals: deque[Arrival] = deque(maxlen=ARRIVALS_KEPT)
        self._requests = 0
        self._clients: set[str] = set()
        for token, scopes in self.scopes.items():
            ctx.tokens.issue(name, ttl=None, kind="access", subject="sandbox", scopes=scopes, value=token)

    def __repr__(self) -> str:
        return f"NekosService(name={self.name!r}, size={self.ctx.size!r})"

    def describe(self) -> dict[str, Any]:
        banned = sorted(c for c in self._clients if self.limiter.is_banned(c))
        return {
            "name": self.name,
            "counts": self.data.counts(),
            "lenient_limits": self.options.lenient_limits,
            "swap_probability": self.options.swap_probability,
            "violations": self.violations,
            "banned_clients": banned,
            "counters": self.ctx.counters_for(self.name).snapshot(),
        }

    def configure(self, **changes: Any) -> dict[str, Any]:
        for key, value in changes.items():
            if key == "lenient_limits":
                self.options.lenient_limits = bool(value)
            elif key == "swap_probability":
                probability = float(value)
                if not 0 <= probability <= 0.5:
                    raise ValueError(f"swap_probability = {value!r}: use a number between 0 and 0.5")
                self.options.swap_probability = probability
            else:
                raise ValueError(f"unknown nekos setting {key!r}; known: lenient_limits, swap_probability")
        return self.describe()

    def storm(self, count: int, retry_after: float = 1.0) -> None:
        """The next ``count`` requests answer 429 whatever their pace (a 429 storm)."""
        self.ctx.inject(self.name, throttle_next=count, throttle_retry_after=retry_after)

    def unban(self) -> None:
        self.limiter.reset()
        self.arrivals.clear()

    # -- request pipeline ------------------------------------------------------------------------
    def authorize(self, request: web.Request, *, scope: str | None) -> frozenset[str] | web.Response:
        """The token's scopes, or the 401/403 the v1 middleware answers."""
        header = request.headers.get("Authorization")
        if not header:
            if scope is not None:
                return _error(401, "You need an access token to access this resource.")
            return frozenset()
        match = _TOKEN_FORMAT.match(header)
        if match is None:
            return _error(
                401, "The authentication token is invalid. It should match `^Bearer [0-9a-zA-Z]{100}$`."
            )
        scopes = self.scopes.get(match.group("token"))
        if scopes is None:
            return _error(401, "The authentication token is invalid.")
        if scope is not None and scope not in scopes:
            return _error(403, f"Your token is missing the `{scope}` scope required by this resource.")
        return scopes

    def admit(self, request: web.Request, scopes: frozenset[str]) -> dict[str, str] | web.Response:
        """The rate-limit headers for an admitted request, or the 429 that refuses it."""
        if "api:no-ratelimit" in scopes:
            return {}
        client = client_key(request)
        self._clients.add(client)
        decision = self.limiter.check(client)
        self.arrivals.append(Arrival(self.ctx.clock.now(), client, request.path, decision.allowed))
        headers = _rate_headers(decision)
        if decision.allowed:
            return headers
        if not decision.banned or decision.ban_started:
            self.violations += 1
        return _error(
            429, BAN_MESSAGE if decision.banned and not decision.ban_started else RATE_MESSAGE, headers
        )

    def page(self, resource: str, params: dict[str, str]) -> tuple[list[str], int, int, int] | web.Response:
        """(ids of one page, limit, offset, total) or the 400 for a bad ``limit``/``offset``."""
        cap = 50 if self.options.lenient_limits and resource in ("images", "artists") else 25
        limit_raw, offset_raw = params.get("limit", "10"), params.get("offset", "0")
        if not limit_raw.isdigit() or not 1 <= int(limit_raw) <= cap:
            return _error(400, f"Invalid value for `limit` parameter. Expected a number between 1 and {cap}.")
        if not offset_raw.isdigit():
            return _error(400, "Invalid value for `offset` parameter. Expected a number greater than 0.")
        limit, offset = int(limit_raw), int(offset_raw)
        table = self.data.table(resource)
        self._requests += 1
        order = scan_order(list(table), f"{self.ctx.seed}:{self._requests}", self.options.swap_probability)
        return order[offset : offset + limit], limit, offset, len(table)

    def render(self, resource: str, record_id: str, base_url: str, *, detail: bool) -> dict[str, Any]:
        row = self.data.table(resource)[record_id]
        if resource == "images":
            return image_json(record_id, row, self.data, self.ctx.clock.now(), base_url)
        images = self._image_count(resource, record_id) if detail else None
        maker = {"artists": artist_json, "characters": character_json, "categories": category_json}[resource]
        return maker(record_id, row, images)

    def _image_count(self, resource: str, record_id: str) -> int:
        key = {"artists": "artist_id", "characters": "character_ids", "categories": "category_ids"}[resource]
        images = self.data.images.values()
        if key == "artist_id":
            return sum(1 for image in images if image["artist_id"] == record_id)
        return sum(1 for image in images if record_id in image[key])


def create_app(
    ctx: SandboxContext, *, name: str = "nekos", options: NekosOptions | None = None
) -> web.Application:
    """The Nekos API v1 simulator; its state lives in ``ctx.state[name]``."""
    service = NekosService(ctx, name, options or NekosOptions())
    ctx.state[name] = service
    ctx.register_records(name, NekosRecords(service.data, ctx.clock.now))
    ctx.on_reset(service.unban)
    app = service_app(ctx, name, throttle=nekos_throttle)
    handlers = _Handlers(service)
    app.router.add_get("/api", handlers.index)
    app.router.add_get("/api/", handlers.index)
    for singular in RESOURCES:
        app.router.add_get(f"/api/{singular}", handlers.listing)
        app.router.add_get(f"/api/{singular}/{{id}}", handlers.detail)
    app.router.add_get(f"{CONTROL_PREFIX}/nekos", handlers.control_info)
    app.router.add_post(f"{CONTROL_PREFIX}/nekos/mode", handlers.control_mode)
    app.router.add_post(f"{CONTROL_PREFIX}/nekos/unban", handlers.control_unban)
    return app


def _base_url(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"


class _Handlers:
    def __init__(self, service: NekosService) -> None:
        self.service = service

    async def _gate(self, request: web.Request, scope: str | None) -> dict[str, str] | web.Response:
        scopes = self.service.authorize(request, scope=scope)
        if isinstance(scopes, web.Response):
            return scopes
        return self.service.admit(request, scopes)

    async def index(self, request: web.Request) -> web.Response:
        headers = await self._gate(request, None)
        if isinstance(headers, web.Response):
            return headers
        data = {"name": "Nekos API", "version": VERSION, "docs": "https://nekosapi.com/docs"}
        return json_response({"data": data, "success": True}, headers=headers)

    async def listing(self, request: web.Request) -> web.Response:
        singular = request.path.rstrip("/").rsplit("/", 1)[-1]
        resource = RESOURCES[singular]
        headers = await self._gate(request, "image:list" if resource == "images" else None)
        if isinstance(headers, web.Response):
            return headers
        page = self.service.page(resource, dict(request.query))
        if isinstance(page, web.Response):
            page.headers.update(headers)
            return page
        ids, limit, offset, total = page
        data = [self.service.render(resource, i, _base_url(request), detail=False) for i in ids]
        pagination = {"limit": limit, "offset": offset, "count": len(data), "total": total}
        return json_response(
            {"success": True, "data": data, "meta": {"pagination": pagination}}, headers=headers
        )

    async def detail(self, request: web.Request) -> web.Response:
        singular = request.path.rstrip("/").rsplit("/", 2)[-2]
        resource, record_id = RESOURCES[singular], request.match_info["id"]
        headers = await self._gate(request, None)
        if isinstance(headers, web.Response):
            return headers
        if not _UUID.match(record_id):
            return _error(400, f"Invalid value for `{singular}Id` parameter. Expected a UUID.", headers)
        if record_id not in self.service.data.table(resource):
            return _error(404, f"The {singular} with id {record_id} does not exist.", headers)
        data = self.service.render(resource, record_id, _base_url(request), detail=True)
        return json_response({"data": data, "success": True}, headers=headers)

    async def control_info(self, _: web.Request) -> web.Response:
        return json_response(self.service.describe())

    async def control_mode(self, request: web.Request) -> web.Response:
        try:
            body = orjson.loads(await request.read() or b"{}")
            return json_response(self.service.configure(**body))
        except (ValueError, TypeError) as exc:
            return json_response({"error": str(exc)}, status=400)

    async def control_unban(self, _: web.Request) -> web.Response:
        self.service.unban()
        return json_response(self.service.describe())
