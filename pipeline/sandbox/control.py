"""The control API: JSON over HTTP under ``/_sandbox`` on every simulator.

Each route does what the ``SandboxContext`` method of the same name does, for the service that
serves it (``?service=NAME`` addresses another one):

    GET    /_sandbox                          service, size, seed, sandbox time
    GET    /_sandbox/counters[?service=*]     requests, 429s, bans, errors, per-route counts
    GET    /_sandbox/clock                    {"now": epoch, "offset": s}
    POST   /_sandbox/clock                    {"advance": seconds}
    GET    /_sandbox/faults                   the current fault plan
    POST   /_sandbox/faults                   {"error_burst": 3, "latency_seconds": 0.2, …}
    DELETE /_sandbox/faults                   clear faults, release hanging responses
    POST   /_sandbox/tokens/expire            force every issued token to be expired
    POST   /_sandbox/reset                    {"data": false}: counters, faults, limits (+ data)
    POST   /_sandbox/records/{resource}       add a record (body = the record)
    PATCH  /_sandbox/records/{resource}/{id}  update fields of a record
    DELETE /_sandbox/records/{resource}/{id}  delete a record
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from pipeline.sandbox.core import CONTROL_PREFIX, SERVICE_KEY, json_response

if TYPE_CHECKING:
    from pipeline.sandbox.core import SandboxContext


def add_control_routes(app: web.Application, ctx: SandboxContext, service: str) -> None:
    """Attach the ``/_sandbox`` routes for ``service`` to ``app``."""
    routes = _Routes(ctx)
    p = CONTROL_PREFIX
    app.router.add_get(p, routes.info)
    app.router.add_get(f"{p}/counters", routes.counters)
    app.router.add_get(f"{p}/clock", routes.clock)
    app.router.add_post(f"{p}/clock", routes.advance)
    app.router.add_get(f"{p}/faults", routes.faults)
    app.router.add_post(f"{p}/faults", routes.inject)
    app.router.add_delete(f"{p}/faults", routes.clear_faults)
    app.router.add_post(f"{p}/tokens/expire", routes.expire_tokens)
    app.router.add_post(f"{p}/reset", routes.reset)
    app.router.add_post(f"{p}/records/{{resource}}", routes.add_record)
    app.router.add_patch(f"{p}/records/{{resource}}/{{id}}", routes.update_record)
    app.router.add_delete(f"{p}/records/{{resource}}/{{id}}", routes.delete_record)
    assert app[SERVICE_KEY] == service


def _service(request: web.Request) -> str:
    return request.query.get("service") or request.app[SERVICE_KEY]


async def _body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    if not raw:
        return {}
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise _bad("request body is not valid JSON; send a JSON object") from None
    if not isinstance(data, dict):
        raise _bad("request body must be a JSON object")
    return data


def _bad(message: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=orjson.dumps({"error": message}).decode(), content_type="application/json")


class _Routes:
    def __init__(self, ctx: SandboxContext) -> None:
        self.ctx = ctx

    async def info(self, request: web.Request) -> web.Response:
        return json_response(
            {
                "service": request.app[SERVICE_KEY],
                "size": self.ctx.size,
                "seed": self.ctx.seed,
                "now": self.ctx.clock.now(),
                "services": sorted(self.ctx.counters),
            }
        )

    async def counters(self, request: web.Request) -> web.Response:
        service = _service(request)
        if service == "*":
            return json_response({name: c.snapshot() for name, c in sorted(self.ctx.counters.items())})
        return json_response(self.ctx.counters_for(service).snapshot())

    async def clock(self, _: web.Request) -> web.Response:
        return json_response({"now": self.ctx.clock.now(), "offset": self.ctx.clock.offset})

    async def advance(self, request: web.Request) -> web.Response:
        body = await _body(request)
        seconds = body.get("advance")
        if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds < 0:
            return _error(f"advance = {seconds!r}: send a non-negative number of seconds")
        self.ctx.advance_clock(float(seconds))
        return await self.clock(request)

    async def faults(self, request: web.Request) -> web.Response:
        return json_response(self.ctx.faults_for(_service(request)).as_dict())

    async def inject(self, request: web.Request) -> web.Response:
        service = _service(request)
        try:
            plan = self.ctx.inject(service, **await _body(request))
        except (ValueError, TypeError) as exc:
            return _error(str(exc))
        return json_response(plan.as_dict())

    async def clear_faults(self, request: web.Request) -> web.Response:
        service = _service(request)
        self.ctx.clear_faults(service)
        return json_response(self.ctx.faults_for(service).as_dict())

    async def expire_tokens(self, request: web.Request) -> web.Response:
        return json_response({"expired": self.ctx.expire_tokens(_service(request))})

    async def reset(self, request: web.Request) -> web.Response:
        body = await _body(request)
        self.ctx.reset(data=bool(body.get("data", False)))
        return json_response({"reset": True, "data": bool(body.get("data", False))})

    async def add_record(self, request: web.Request) -> web.Response:
        body = await _body(request)
        return self._records(lambda s: self.ctx.add_record(s, request.match_info["resource"], body), request)

    async def update_record(self, request: web.Request) -> web.Response:
        body = await _body(request)
        info = request.match_info
        return self._records(lambda s: self.ctx.update_record(s, info["resource"], info["id"], body), request)

    async def delete_record(self, request: web.Request) -> web.Response:
        info = request.match_info

        def delete(service: str) -> dict[str, Any]:
            self.ctx.delete_record(service, info["resource"], info["id"])
            return {"deleted": info["id"]}

        return self._records(delete, request)

    def _records(self, op: Any, request: web.Request) -> web.Response:
        try:
            return json_response(op(_service(request)))
        except KeyError as exc:
            return _error(str(exc.args[0]) if exc.args else str(exc), status=404)
        except ValueError as exc:
            return _error(str(exc))


def _error(message: str, status: int = 400) -> web.Response:
    return json_response({"error": message}, status=status)
