"""Zou (CGWire Kitsu production tracker) simulator: JWT login, ``/data/<model>`` CRUD reads, events log.

Base URL ``http://127.0.0.1:PORT/api``. Several studios run side by side: give each app its own
``name`` (its service name for counters, faults, tokens and ``/_sandbox?service=``) and seed.

Zou-specific control routes (besides core's ``/_sandbox`` ones):

    GET  /_sandbox/zou                 mode, token lifetimes, counts, auth counters, login email
    POST /_sandbox/zou/mode            {"old_server": bool, "expired_status": "401"|"422"|"alternate",
                                        "page_size": int, "access_ttl": s, "refresh_ttl": s}
    POST /_sandbox/zou/delete          {"resource", "id", "force": bool, "cancel": bool}: delete (cancel
                                        when tasks exist); "cancel": zou's cancel_asset (asset:delete
                                        event, the asset kept with canceled = true)
    POST /_sandbox/zou/casting         {"entity_id", "casting": [{"asset_id", "nb_occurences", "label"}]}:
                                        zou's update_casting (links re-made with new ids, one
                                        <kind>:casting-update event)
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from pipeline.sandbox.core import CONTROL_PREFIX, SandboxContext, json_response, service_app
from pipeline.sandbox.zou_auth import AuthError, ZouAuth
from pipeline.sandbox.zou_data import ADMIN_EMAIL, ADMIN_PASSWORD, generate_zou
from pipeline.sandbox.zou_models import MODELS, serialize
from pipeline.sandbox.zou_store import FilterError, ZouStore

NEW_VERSION = "1.0.67"
OLD_VERSION = "0.20.52"
NOT_FOUND = {
    "message": "The requested URL was not found on the server. If you entered the URL manually please check "
    "your spelling and try again."
}


@dataclass
class ZouOptions:
    """How one studio behaves; every field is also settable at run time via ``/_sandbox/zou/mode``."""

    old_server: bool = False
    expired_status: str = "401"
    page_size: int = 100
    access_ttl: float | None = None
    refresh_ttl: float | None = None
    credentials: dict[str, str] = field(default_factory=lambda: {ADMIN_EMAIL: ADMIN_PASSWORD})


class ZouService:
    """The state of one studio, reachable in-process as ``ctx.state[name]``."""

    def __init__(self, ctx: SandboxContext, name: str, size: str, seed: int, options: ZouOptions) -> None:
        self.name = name
        self.size = size
        self.seed = seed
        self.options = options
        self.store = ZouStore(generate_zou(size, seed), ctx.clock.now, page_size=options.page_size)
        secret = f"zou-secret:{name}:{seed}".encode()
        self.auth = ZouAuth(
            name, ctx.tokens, ctx.clock.now, secret, {k.lower(): v for k, v in options.credentials.items()}
        )
        self.configure(
            expired_status=options.expired_status,
            access_ttl=options.access_ttl,
            refresh_ttl=options.refresh_ttl,
        )

    def __repr__(self) -> str:
        return f"ZouService(name={self.name!r}, size={self.size!r}, seed={self.seed})"

    @property
    def version(self) -> str:
        return OLD_VERSION if self.options.old_server else NEW_VERSION

    def configure(self, **changes: Any) -> dict[str, Any]:
        """Switch old-server mode, the expired-token status, page size or token lifetimes."""
        for key, value in changes.items():
            if value is None:
                continue
            if key == "old_server":
                self.options.old_server = bool(value)
            elif key == "expired_status":
                if str(value) not in ("401", "422", "alternate"):
                    raise ValueError(f"expired_status = {value!r}: use 401, 422 or 'alternate'")
                self.options.expired_status = self.auth.expired_status = str(value)  # type: ignore[assignment]
            elif key == "page_size":
                self.options.page_size = self.store.page_size = int(value)
            elif key in ("access_ttl", "refresh_ttl"):
                setattr(self.options, key, float(value))
                setattr(self.auth, key, float(value))
            else:
                raise ValueError(
                    f"unknown zou setting {key!r}; known: old_server, expired_status, page_size, "
                    "access_ttl, refresh_ttl"
                )
        return self.describe()

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "size": self.size,
            "seed": self.seed,
            "version": self.version,
            "old_server": self.options.old_server,
            "expired_status": self.options.expired_status,
            "page_size": self.store.page_size,
            "access_ttl": self.auth.access_ttl,
            "refresh_ttl": self.auth.refresh_ttl,
            "login_email": sorted(self.auth.credentials),
            "counts": self.store.data.counts(),
            "auth": dict(self.auth.stats),
        }

    # -- RecordOps (core's /_sandbox/records routes) ---------------------------------------------
    def add(self, resource: str, record: dict[str, Any]) -> dict[str, Any]:
        return self.store.create(resource, record)

    def update(self, resource: str, record_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        return self.store.update(resource, record_id, changes)

    def delete(self, resource: str, record_id: str) -> None:
        self.store.delete(resource, record_id)


def studio_seed(ctx_seed: int, name: str) -> int:
    """The default seed of a studio: the context's for ``zou``, a distinct one for other names."""
    return ctx_seed if name == "zou" else ctx_seed ^ zlib.crc32(name.encode())


def create_app(
    ctx: SandboxContext,
    *,
    name: str = "zou",
    size: str | None = None,
    seed: int | None = None,
    options: ZouOptions | None = None,
) -> web.Application:
    """The Zou simulator for one studio; its state lives in ``ctx.state[name]``."""
    service = ZouService(
        ctx,
        name,
        size or ctx.size,
        studio_seed(ctx.seed, name) if seed is None else seed,
        options or ZouOptions(),
    )
    ctx.state[name] = service
    ctx.register_records(name, service)
    app = service_app(ctx, name)
    handlers = _Handlers(service)
    app.router.add_get("/api", handlers.index)
    app.router.add_get("/api/", handlers.index)
    app.router.add_post("/api/auth/login", handlers.login)
    app.router.add_get("/api/auth/refresh-token", handlers.refresh)
    app.router.add_get("/api/auth/logout", handlers.logout)
    app.router.add_get("/api/auth/authenticated", handlers.authenticated)
    app.router.add_get("/api/data/events/last", handlers.events)
    app.router.add_get("/api/data/{model}", handlers.rows)
    app.router.add_get("/api/data/{model}/", handlers.rows)
    app.router.add_get("/api/data/{model}/{id}", handlers.row)
    app.router.add_get(f"{CONTROL_PREFIX}/zou", handlers.control_info)
    app.router.add_post(f"{CONTROL_PREFIX}/zou/mode", handlers.control_mode)
    app.router.add_post(f"{CONTROL_PREFIX}/zou/delete", handlers.control_delete)
    app.router.add_post(f"{CONTROL_PREFIX}/zou/casting", handlers.control_casting)
    return app


def _auth_error(error: AuthError) -> web.Response:
    return json_response(error.body, status=error.status)


class _Handlers:
    def __init__(self, service: ZouService) -> None:
        self.service = service

    def _person(self, request: web.Request) -> str:
        return self.service.auth.check(request.headers.get("Authorization"))

    async def index(self, _: web.Request) -> web.Response:
        return json_response({"api": "Zou", "version": self.service.version})

    async def login(self, request: web.Request) -> web.Response:
        try:
            body = orjson.loads(await request.read() or b"{}")
        except orjson.JSONDecodeError:
            return json_response({"login": False}, status=400)
        if not isinstance(body, dict):
            return json_response({"login": False}, status=400)
        email = str(body.get("email", "")).lower()
        person = next(
            (
                r
                for r in self.service.store.rows("persons").values()
                if str(r.fields["email"]).lower() == email and r.fields["active"]
            ),
            None,
        )
        try:
            tokens = self.service.auth.login(email, body.get("password", ""), person.id if person else None)
        except AuthError as error:
            return _auth_error(error)
        assert person is not None
        user = serialize(MODELS["persons"], person)
        return json_response({"user": user, "login": True, "ldap": False, **tokens})

    async def refresh(self, request: web.Request) -> web.Response:
        try:
            return json_response(self.service.auth.refresh(request.headers.get("Authorization")))
        except AuthError as error:
            return _auth_error(error)

    async def logout(self, request: web.Request) -> web.Response:
        try:
            self.service.auth.logout(request.headers.get("Authorization"))
        except AuthError as error:
            return _auth_error(error)
        return json_response({"logout": True})

    async def authenticated(self, request: web.Request) -> web.Response:
        try:
            person_id = self._person(request)
        except AuthError as error:
            return _auth_error(error)
        return json_response({"authenticated": True, "user": self.service.store.get("persons", person_id)})

    async def events(self, request: web.Request) -> web.Response:
        try:
            self._person(request)
            events = self.service.store.events_last(request.query, old_server=self.service.options.old_server)
        except AuthError as error:
            return _auth_error(error)
        except FilterError as error:
            return json_response(error.body, status=400)
        return json_response(events)

    async def rows(self, request: web.Request) -> web.Response:
        route = request.match_info["model"]
        try:
            self._person(request)
            if route not in MODELS:
                return json_response(NOT_FOUND, status=404)
            return json_response(self.service.store.query(route, request.query))
        except AuthError as error:
            return _auth_error(error)
        except FilterError as error:
            return json_response(error.body, status=400)

    async def row(self, request: web.Request) -> web.Response:
        route, row_id = request.match_info["model"], request.match_info["id"]
        try:
            self._person(request)
        except AuthError as error:
            return _auth_error(error)
        found = self.service.store.get(route, row_id) if route in MODELS else None
        return json_response(found, status=200) if found is not None else json_response(NOT_FOUND, status=404)

    async def control_info(self, _: web.Request) -> web.Response:
        return json_response(self.service.describe())

    async def control_mode(self, request: web.Request) -> web.Response:
        try:
            body = orjson.loads(await request.read() or b"{}")
            return json_response(self.service.configure(**body))
        except (ValueError, TypeError) as exc:
            return json_response({"error": str(exc)}, status=400)

    async def control_delete(self, request: web.Request) -> web.Response:
        try:
            body = orjson.loads(await request.read() or b"{}")
            store = self.service.store
            if body.get("cancel"):
                outcome = store.cancel(str(body["resource"]), str(body["id"]))
            else:
                outcome = store.delete(str(body["resource"]), str(body["id"]), force=bool(body.get("force")))
        except KeyError as exc:
            return json_response(
                {"error": str(exc.args[0]) if exc.args else "resource and id are required"}, 404
            )
        except (ValueError, TypeError) as exc:
            return json_response({"error": str(exc)}, status=400)
        return json_response({"id": body["id"], "outcome": outcome})

    async def control_casting(self, request: web.Request) -> web.Response:
        try:
            body = orjson.loads(await request.read() or b"{}")
            casting = body.get("casting", [])
            if not isinstance(casting, list) or not all(isinstance(c, dict) for c in casting):
                raise ValueError('casting must be a list of {"asset_id", "nb_occurences", "label"} objects')
            links = self.service.store.set_casting(str(body["entity_id"]), casting)
        except KeyError as exc:
            return json_response(
                {"error": str(exc.args[0]) if exc.args else "entity_id and casting are required"}, 404
            )
        except (ValueError, TypeError) as exc:
            return json_response({"error": str(exc)}, status=400)
        return json_response({"entity_id": body["entity_id"], "links": links})
