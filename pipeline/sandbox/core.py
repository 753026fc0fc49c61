"""The sandbox framework: clock, fault injection, counters and the context every simulator shares.

Adding a service
----------------
Write ``pipeline/sandbox/<name>.py`` with ``def create_app(ctx: SandboxContext) -> web.Application``
that starts from ``service_app(ctx, "<name>")`` (fault middleware, counters and the ``/_sandbox``
control routes come with it) and adds its routes. Keep the service's own state on the context
(``ctx.state["<name>"]``) so tests can reach it in-process, judge time with ``ctx.clock.now()``
(never ``time.time()``: tests move the sandbox clock), use ``pipeline.sandbox.limits`` for
per-client limits and ``ctx.tokens`` for issued tokens. If the service holds data that tests may
change, register a ``RecordOps`` with ``ctx.register_records(name, ops)``; register per-service
clean-up for ``reset`` with ``ctx.on_reset(fn)``. ``pipeline.sandbox.server`` picks the module up
by name.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, Protocol

import orjson
from aiohttp import web

from pipeline.sandbox.tokens import TokenStore

if TYPE_CHECKING:
    from pipeline.sandbox.world import World

CONTROL_PREFIX = "/_sandbox"
SIZES = ("small", "medium", "large")
DEFAULT_SEED = 20240811

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ThrottleResponse = Callable[[web.Request, float], web.StreamResponse]

SERVICE_KEY = web.AppKey("sandbox_service", str)


class SandboxClock:
    """Sandbox time = real time + an offset that only moves forward (``advance``)."""

    def __init__(self, offset: float = 0.0, real: Callable[[], float] = time.time) -> None:
        self._offset = offset
        self._real = real

    def now(self) -> float:
        return self._real() + self._offset

    @property
    def offset(self) -> float:
        return self._offset

    def advance(self, seconds: float) -> float:
        """Move sandbox time forward by ``seconds`` and return the new now()."""
        if seconds < 0:
            raise ValueError(f"clock advance of {seconds} s: the sandbox clock only moves forward")
        self._offset += seconds
        return self.now()

    def reset(self) -> None:
        self._offset = 0.0


@dataclass
class Faults:
    """What a service does wrong next; counts are consumed one request at a time.

    ``path_prefix`` limits every fault to requests whose path starts with it (control routes are
    never affected).
    """

    error_burst: int = 0  # the next N requests answer ``error_status``
    error_status: int = 503
    error_every: int = 0  # every Nth request (counted per service) answers ``error_status``
    latency_seconds: float = 0.0  # added to every request
    hang_next: int = 0  # the next N requests wait ``hang_seconds`` (or until cleared) before answering
    hang_seconds: float = 300.0
    truncate_next: int = 0  # the next N responses close the connection halfway through the body
    throttle_next: int = 0  # the next N requests answer 429 (a 429 storm)
    throttle_retry_after: float = 1.0
    path_prefix: str = ""
    # Schema drift: attributes every media record starts sending / stops sending (Kitsu).
    extra_attributes: dict[str, Any] = field(default_factory=dict)
    drop_attributes: list[str] = field(default_factory=list)

    def update(self, **changes: Any) -> None:
        known = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ValueError(f"unknown fault(s) {unknown}; known: {', '.join(sorted(known))}")
        for key, value in changes.items():
            setattr(self, key, type(getattr(self, key))(value))

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass
class ServiceCounters:
    """What one service saw: requests, 429s answered, bans started, 5xx injected, per route."""

    requests: int = 0
    throttled: int = 0
    bans: int = 0
    errors: int = 0
    hung: int = 0
    truncated: int = 0
    by_path: Counter[str] = field(default_factory=Counter)
    by_status: Counter[int] = field(default_factory=Counter)

    def snapshot(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "throttled": self.throttled,
            "bans": self.bans,
            "errors": self.errors,
            "hung": self.hung,
            "truncated": self.truncated,
            "by_path": dict(self.by_path),
            "by_status": {str(k): v for k, v in self.by_status.items()},
        }


class RecordOps(Protocol):
    """Test/benchmark writes to a service's data (the control API's ``records`` operations)."""

    def add(self, resource: str, record: dict[str, Any]) -> dict[str, Any]: ...

    def update(self, resource: str, record_id: str, changes: dict[str, Any]) -> dict[str, Any]: ...

    def delete(self, resource: str, record_id: str) -> None: ...


@dataclass
class SandboxContext:
    """Everything the simulators share; tests drive it directly, HTTP clients via ``/_sandbox``."""

    size: str = "small"
    seed: int = DEFAULT_SEED
    clock: SandboxClock = field(default_factory=SandboxClock)
    world: World | None = None
    faults: dict[str, Faults] = field(default_factory=dict)
    counters: dict[str, ServiceCounters] = field(default_factory=dict)
    tokens: TokenStore = field(init=False)
    state: dict[str, Any] = field(default_factory=dict)
    records: dict[str, RecordOps] = field(default_factory=dict)
    # Service options chosen at start-up, e.g. {"anilist_requests_per_minute": 600} for the demo.
    options: dict[str, Any] = field(default_factory=dict)
    _reset_hooks: list[Callable[[], None]] = field(default_factory=list)
    _release: dict[str, asyncio.Event] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.tokens = TokenStore(self.clock)

    @classmethod
    def build(
        cls,
        size: str = "small",
        seed: int = DEFAULT_SEED,
        clock: SandboxClock | None = None,
        options: dict[str, Any] | None = None,
    ) -> SandboxContext:
        """A context with its world generated (deterministic for one size and seed)."""
        from pipeline.sandbox.world import generate_world

        if size not in SIZES:
            raise ValueError(f"dataset size {size!r}: use one of {', '.join(SIZES)}")
        ctx = cls(size=size, seed=seed, clock=clock or SandboxClock(), options=dict(options or {}))
        ctx.world = generate_world(size, seed, ctx.clock)
        return ctx

    def need_world(self) -> World:
        if self.world is None:
            raise RuntimeError("this SandboxContext has no world; build it with SandboxContext.build()")
        return self.world

    # -- faults and counters ---------------------------------------------------------------------
    def faults_for(self, service: str) -> Faults:
        return self.faults.setdefault(service, Faults())

    def counters_for(self, service: str) -> ServiceCounters:
        return self.counters.setdefault(service, ServiceCounters())

    def inject(self, service: str, **faults: Any) -> Faults:
        """Set faults on one service, e.g. ``inject("kitsu", error_burst=3, error_status=502)``."""
        plan = self.faults_for(service)
        plan.update(**faults)
        return plan

    def clear_faults(self, service: str | None = None) -> None:
        for name in [service] if service else list(self.faults):
            self.faults[name] = Faults()
            self.release_hung(name)

    def release_hung(self, service: str) -> None:
        """Let every hanging response of ``service`` finish now."""
        event = self._release.pop(service, None)
        if event is not None:
            event.set()

    def hang_event(self, service: str) -> asyncio.Event:
        return self._release.setdefault(service, asyncio.Event())

    # -- clock, tokens, records ------------------------------------------------------------------
    def advance_clock(self, seconds: float) -> float:
        return self.clock.advance(seconds)

    def expire_tokens(self, service: str) -> int:
        """Forced token expiry: every token issued so far by ``service`` is expired now."""
        return self.tokens.expire_all(service)

    def register_records(self, service: str, ops: RecordOps) -> None:
        self.records[service] = ops

    def _ops(self, service: str) -> RecordOps:
        try:
            return self.records[service]
        except KeyError:
            raise KeyError(
                f"service {service!r} has no writable records; known: {sorted(self.records)}"
            ) from None

    def add_record(self, service: str, resource: str, record: dict[str, Any]) -> dict[str, Any]:
        return self._ops(service).add(resource, record)

    def update_record(
        self, service: str, resource: str, record_id: str, changes: dict[str, Any]
    ) -> dict[str, Any]:
        return self._ops(service).update(resource, record_id, changes)

    def delete_record(self, service: str, resource: str, record_id: str) -> None:
        self._ops(service).delete(resource, record_id)

    # -- reset -----------------------------------------------------------------------------------
    def on_reset(self, hook: Callable[[], None]) -> None:
        self._reset_hooks.append(hook)

    def reset(self, *, data: bool = False) -> None:
        """Zero counters, clear faults and limiter state (bans too); ``data`` regenerates the world.

        Issued tokens survive a reset, so a client that is mid-run keeps working.
        """
        self.clear_faults()
        self.counters.clear()
        if data and self.world is not None:
            from pipeline.sandbox.world import generate_world

            self.world.replace_with(generate_world(self.size, self.seed, self.clock))
        for hook in self._reset_hooks:
            hook()


def json_response(
    data: Any,
    status: int = 200,
    headers: dict[str, str] | None = None,
    content_type: str = "application/json",
) -> web.Response:
    """A JSON response serialised with orjson."""
    return web.Response(body=orjson.dumps(data), status=status, headers=headers, content_type=content_type)


def default_throttle(_: web.Request, retry_after: float) -> web.StreamResponse:
    return json_response(
        {"errors": [{"status": 429, "title": "Too Many Requests"}]},
        status=429,
        headers={"Retry-After": str(max(1, round(retry_after)))},
    )


def route_key(request: web.Request) -> str:
    """The route template (``/api/edge/anime/{id}``), so per-path counts stay bounded."""
    info = request.match_info.route.resource
    return info.canonical if info is not None else request.path


def fault_middleware(ctx: SandboxContext, service: str, throttle: ThrottleResponse) -> Any:
    """Count every request, then apply the service's injected faults around the handler."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith(CONTROL_PREFIX):
            return await handler(request)
        counters = ctx.counters_for(service)
        counters.requests += 1
        counters.by_path[route_key(request)] += 1
        response = await _with_faults(ctx, service, request, handler, throttle)
        counters.by_status[response.status] += 1
        if response.status == 429:
            counters.throttled += 1
        return response

    return middleware


async def _with_faults(
    ctx: SandboxContext, service: str, request: web.Request, handler: Handler, throttle: ThrottleResponse
) -> web.StreamResponse:
    plan = ctx.faults_for(service)
    counters = ctx.counters_for(service)
    if plan.path_prefix and not request.path.startswith(plan.path_prefix):
        return await handler(request)
    if plan.latency_seconds > 0:
        await asyncio.sleep(plan.latency_seconds)
    if plan.hang_next > 0:
        plan.hang_next -= 1
        counters.hung += 1
        event = ctx.hang_event(service)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), plan.hang_seconds)
    if plan.throttle_next > 0:
        plan.throttle_next -= 1
        return throttle(request, plan.throttle_retry_after)
    if plan.error_burst > 0 or (plan.error_every > 0 and counters.requests % plan.error_every == 0):
        plan.error_burst = max(0, plan.error_burst - 1)
        counters.errors += 1
        return json_response(
            {"errors": [{"status": str(plan.error_status), "title": "Injected sandbox failure"}]},
            status=plan.error_status,
        )
    response = await handler(request)
    if plan.truncate_next > 0 and isinstance(response, web.Response) and response.body is not None:
        plan.truncate_next -= 1
        counters.truncated += 1
        return await _truncated(request, response)
    return response


async def _truncated(request: web.Request, response: web.Response) -> web.StreamResponse:
    """Announce the full Content-Length, send half the body, then drop the connection."""
    body = response.body
    assert isinstance(body, bytes)
    cut = web.StreamResponse(status=response.status, headers=response.headers)
    cut.content_length = len(body)
    await cut.prepare(request)
    await cut.write(body[: max(1, len(body) // 2)])
    if request.transport is not None:
        request.transport.close()
    return cut


def service_app(
    ctx: SandboxContext,
    service: str,
    *,
    throttle: ThrottleResponse = default_throttle,
    middlewares: Sequence[Any] = (),
    client_max_size: int = 4 * 1024 * 1024,
) -> web.Application:
    """The base Application of one simulator: fault middleware, counters, ``/_sandbox`` routes.

    ``middlewares`` run inside the fault middleware (an injected fault never reaches them).
    """
    from pipeline.sandbox.control import add_control_routes

    app = web.Application(
        middlewares=[fault_middleware(ctx, service, throttle), *middlewares], client_max_size=client_max_size
    )
    app[SERVICE_KEY] = service
    ctx.faults_for(service)
    ctx.counters_for(service)
    add_control_routes(app, ctx, service)
    return app


def client_key(request: web.Request) -> str:
    """Who a per-client limit applies to: ``X-Sandbox-Client`` when a test sets it, else the peer IP."""
    return request.headers.get("X-Sandbox-Client") or request.remote or "unknown"
