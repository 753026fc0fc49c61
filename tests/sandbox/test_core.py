"""The sandbox framework: clock, fault middleware, counters and the control API."""

from __future__ import annotations

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from pipeline.sandbox.core import SandboxClock, SandboxContext, json_response, service_app


def _app(ctx: SandboxContext) -> web.Application:
    app = service_app(ctx, "demo")

    async def hello(_: web.Request) -> web.Response:
        return json_response({"hello": "world", "pad": "x" * 200})

    app.router.add_get("/items/{id}", hello)
    return app


def test_clock_moves_forward_only() -> None:
    """advance() adds to sandbox time and refuses to go back."""
    clock = SandboxClock(real=lambda: 1000.0)
    assert clock.advance(60) == 1060.0
    with pytest.raises(ValueError, match="only moves forward"):
        clock.advance(-1)


async def test_error_burst_then_recovery() -> None:
    """An injected burst of 502s answers exactly N requests, then the handler runs again."""
    ctx = SandboxContext()
    ctx.inject("demo", error_burst=2, error_status=502)
    async with TestClient(TestServer(_app(ctx), host="127.0.0.1")) as client:
        statuses = [(await client.get("/items/1")).status for _ in range(3)]
    assert statuses == [502, 502, 200]
    counters = ctx.counters_for("demo").snapshot()
    assert counters["requests"] == 3
    assert counters["errors"] == 2
    assert counters["by_path"] == {"/items/{id}": 3}


async def test_throttle_storm_counts_429s() -> None:
    """A 429 storm answers 429 with Retry-After and is counted as throttled."""
    ctx = SandboxContext()
    ctx.inject("demo", throttle_next=2, throttle_retry_after=7)
    async with TestClient(TestServer(_app(ctx), host="127.0.0.1")) as client:
        first = await client.get("/items/1")
        await client.get("/items/1")
        third = await client.get("/items/1")
    assert first.status == 429
    assert first.headers["Retry-After"] == "7"
    assert third.status == 200
    assert ctx.counters_for("demo").throttled == 2


async def test_truncated_body_breaks_the_client_read() -> None:
    """A truncated response drops the connection mid-body, so the client sees a payload error."""
    ctx = SandboxContext()
    ctx.inject("demo", truncate_next=1)
    async with TestClient(TestServer(_app(ctx), host="127.0.0.1")) as client:
        response = await client.get("/items/1")
        with pytest.raises(aiohttp.ClientPayloadError):
            await response.read()
        again = await client.get("/items/1")
        assert (await again.json())["hello"] == "world"


async def test_hanging_response_times_out_the_client_and_is_released() -> None:
    """A hanging response never answers within the client's timeout until faults are cleared."""
    ctx = SandboxContext()
    ctx.inject("demo", hang_next=1, hang_seconds=30)
    async with TestClient(TestServer(_app(ctx), host="127.0.0.1")) as client:
        with pytest.raises(TimeoutError):
            await client.get("/items/1", timeout=aiohttp.ClientTimeout(total=0.2))
        ctx.clear_faults("demo")
        assert (await client.get("/items/1")).status == 200
    assert ctx.counters_for("demo").hung == 1


async def test_control_api_over_http() -> None:
    """The /_sandbox routes move the clock, set faults, read counters and reset."""
    ctx = SandboxContext()
    async with TestClient(TestServer(_app(ctx), host="127.0.0.1")) as client:
        before = ctx.clock.now()
        moved = await (await client.post("/_sandbox/clock", json={"advance": 3600})).json()
        assert moved["now"] >= before + 3600
        plan = await (await client.post("/_sandbox/faults", json={"error_burst": 1})).json()
        assert plan["error_burst"] == 1
        bad = await client.post("/_sandbox/faults", json={"explode": 1})
        assert bad.status == 400
        assert (await client.get("/items/1")).status == 503
        counters = await (await client.get("/_sandbox/counters")).json()
        assert counters["requests"] == 1
        await client.post("/_sandbox/reset")
        assert (await (await client.get("/_sandbox/counters")).json())["requests"] == 0
        missing = await client.post("/_sandbox/records/anime", json={})
        assert missing.status == 404
