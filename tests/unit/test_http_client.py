"""ServiceClient: retries, fatal errors, body cap, stats, in-flight cap and pacing (fake clock)."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import aiohttp
import pytest
from aioresponses import CallbackResult, aioresponses

from pipeline.clock import VirtualClock
from pipeline.errors import ContractError, HTTPStatusError, TransientError
from pipeline.http import RequestStats, ServiceClient
from pipeline.settings import SourceSettings

BASE = "https://api.test/api"
ANY = re.compile(r"^https://api\.test/.*$")


def make_settings(**overrides: Any) -> SourceSettings:
    """A source with fast, deterministic knobs; tests override what they exercise."""
    values: dict[str, Any] = {
        "name": "demo",
        "kind": "kitsu",
        "base_url": BASE,
        "resources": ("anime",),
        "rate": {"requests": 100, "per_seconds": 1.0},
        "max_in_flight": 4,
        "page_size": 20,
        "max_attempts": 4,
        "backoff_base_seconds": 1.0,
        "backoff_max_seconds": 30.0,
        "safety_margin_seconds": 0.0,
    }
    values.update(overrides)
    return SourceSettings.model_validate(values)


def make_client(clock: VirtualClock, **overrides: Any) -> ServiceClient:
    """A client on the virtual clock with deterministic jitter (always the full backoff)."""
    return ServiceClient(make_settings(**overrides), clock=clock, jitter=lambda: 1.0)


async def test_two_5xx_then_200_succeeds_with_backoff() -> None:
    """503, 502, 200: the call succeeds, two retries are counted and backoff doubles (1 s, 2 s)."""
    clock = VirtualClock()
    stats = RequestStats()
    with aioresponses() as mock:
        mock.get(f"{BASE}/anime", status=503, body="down")
        mock.get(f"{BASE}/anime", status=502, body="bad gateway")
        mock.get(f"{BASE}/anime", status=200, payload={"data": [1]})
        async with make_client(clock) as client:
            data = await client.get_json("anime", stats=stats)
    assert data == {"data": [1]}
    assert (stats.requests, stats.retries) == (3, 2)
    assert clock.monotonic() == pytest.approx(3.0)


async def test_timeout_then_success() -> None:
    """A timeout is transient: the request is retried and succeeds."""
    clock = VirtualClock()
    with aioresponses() as mock:
        mock.get(f"{BASE}/anime", exception=TimeoutError())
        mock.get(f"{BASE}/anime", payload=[1, 2])
        async with make_client(clock) as client:
            assert await client.get_json("anime") == [1, 2]
            assert client.totals.retries == 1


async def test_connection_reset_and_payload_error_are_retried() -> None:
    """Connection resets and truncated transfers are retried like 5xx."""
    clock = VirtualClock()
    with aioresponses() as mock:
        mock.get(f"{BASE}/anime", exception=aiohttp.ServerDisconnectedError())
        mock.get(f"{BASE}/anime", exception=aiohttp.ClientPayloadError("truncated"))
        mock.get(f"{BASE}/anime", payload={"ok": True})
        async with make_client(clock) as client:
            assert await client.get_json("anime") == {"ok": True}
            assert client.totals.retries == 2


async def test_truncated_json_is_retried() -> None:
    """A 200 whose JSON is cut short is retried, not returned or raised as fatal."""
    clock = VirtualClock()
    with aioresponses() as mock:
        mock.get(f"{BASE}/anime", status=200, body='{"data": [1, 2')
        mock.get(f"{BASE}/anime", status=200, body='{"data": [1, 2]}')
        async with make_client(clock) as client:
            assert await client.get_json("anime") == {"data": [1, 2]}


async def test_attempts_are_bounded() -> None:
    """Persistent 500s raise TransientError after max_attempts, naming the source and the fix."""
    clock = VirtualClock()
    with aioresponses() as mock:
        mock.get(f"{BASE}/anime", status=500, body="boom", repeat=True)
        async with make_client(clock, max_attempts=3) as client:
            with pytest.raises(TransientError, match=r"demo: .*failed 3 times.*max_attempts"):
                await client.get_json("anime")
            assert client.totals.requests == 3


async def test_backoff_is_capped_and_jittered() -> None:
    """Full jitter: each delay is jitter × min(max, base × 2^(n-1))."""
    clock = VirtualClock()
    draws = iter([0.5, 0.25, 1.0])
    client = ServiceClient(
        make_settings(max_attempts=4, backoff_base_seconds=2.0, backoff_max_seconds=3.0),
        clock=clock,
        jitter=lambda: next(draws),
    )
    with aioresponses() as mock:
        for _ in range(3):
            mock.get(f"{BASE}/anime", status=503)
        mock.get(f"{BASE}/anime", payload={})
        async with client:
            await client.get_json("anime")
    assert clock.monotonic() == pytest.approx(0.5 * 2 + 0.25 * 3 + 1.0 * 3)


async def test_400_is_fatal_with_a_useful_message() -> None:
    """A 400 is not retried; the error names source, redacted URL, status, body excerpt and a hint."""
    clock = VirtualClock()
    body = '{"errors":[{"title":"Invalid Page Value","detail":"Limit exceeds maximum page size of 20"}]}'
    with aioresponses() as mock:
        mock.get(ANY, status=400, body=body)
        async with make_client(clock) as client:
            with pytest.raises(HTTPStatusError) as caught:
                await client.get_json("anime", params={"page[limit]": "50", "access_token": "SEKRET"})
    message = str(caught.value)
    assert caught.value.status == 400
    assert "demo:" in message
    assert "api.test/api/anime" in message
    assert "400" in message
    assert "Limit exceeds maximum page size of 20" in message
    assert "page_size" in message
    assert "SEKRET" not in message
    assert client.totals.requests == 1


async def test_body_over_cap_is_an_error() -> None:
    """A body above max_body_bytes raises ContractError instead of being buffered."""
    clock = VirtualClock()
    with aioresponses() as mock:
        mock.get(f"{BASE}/anime", body=b"[" + b"1," * 600 + b"1]")
        async with make_client(clock, max_body_bytes=1000) as client:
            with pytest.raises(ContractError, match="max_body_bytes=1000"):
                await client.get_json("anime")


async def test_stats_are_attributed_per_call_and_totalled() -> None:
    """Two streams sharing a client get their own counters; the client keeps the totals."""
    clock = VirtualClock()
    anime, manga = RequestStats(), RequestStats()
    with aioresponses() as mock:
        mock.get(f"{BASE}/anime", status=503)
        mock.get(f"{BASE}/anime", body=b"[1]")
        mock.get(f"{BASE}/manga", body=b"[1, 2]")
        async with make_client(clock) as client:
            await client.get_json("anime", stats=anime)
            await client.get_json(f"{BASE}/manga", stats=manga)
    assert (anime.requests, anime.retries, anime.bytes) == (2, 1, 3)
    assert (manga.requests, manga.retries, manga.bytes) == (1, 0, 6)
    assert client.totals.requests == 3
    assert client.totals.bytes == 9


async def test_in_flight_never_exceeds_the_cap() -> None:
    """50 concurrent calls never have more than max_in_flight requests on the wire at once."""
    clock = VirtualClock()
    on_wire = 0
    peak = 0

    async def slow(url: Any, **_: Any) -> CallbackResult:
        nonlocal on_wire, peak
        on_wire += 1
        peak = max(peak, on_wire)
        await clock.sleep(0.3)
        on_wire -= 1
        return CallbackResult(payload={"ok": 1})

    with aioresponses() as mock:
        mock.get(ANY, callback=slow, repeat=True)
        async with make_client(clock, max_in_flight=3) as client, asyncio.TaskGroup() as group:
            for n in range(50):
                group.create_task(client.get_json("anime", params={"n": n}))
    assert peak == 3
    assert client.peak_in_flight == 3


async def test_n_requests_take_at_least_n_minus_burst_over_rate() -> None:
    """At 4 req/s, 41 requests by 8 workers span at least (41 − 1) / 4 = 10 s of send times."""
    clock = VirtualClock()
    sent: list[float] = []

    async def record(url: Any, **_: Any) -> CallbackResult:
        sent.append(clock.monotonic())
        return CallbackResult(payload=[])

    with aioresponses() as mock:
        mock.get(ANY, callback=record, repeat=True)
        client = make_client(clock, rate={"requests": 4, "per_seconds": 1.0}, max_in_flight=8)
        async with client, asyncio.TaskGroup() as group:
            for n in range(41):
                group.create_task(client.get_json("anime", params={"n": n}))
    assert len(sent) == 41
    assert sent[-1] - sent[0] >= 10.0
    assert sent[-1] - sent[0] <= 10.5
    assert all(sent[k + 4] - sent[k] >= 1.0 for k in range(len(sent) - 4))
    assert client.totals.wait_seconds > 0


async def test_json_post_and_default_headers() -> None:
    """post_json sends an orjson body with Content-Type and the client's default headers."""
    clock = VirtualClock()
    seen: dict[str, Any] = {}

    async def capture(url: Any, **kwargs: Any) -> CallbackResult:
        seen.update(kwargs)
        return CallbackResult(payload={"data": {"Page": {}}})

    with aioresponses() as mock:
        mock.post(BASE, callback=capture)
        client = ServiceClient(make_settings(), clock=clock, headers={"Accept": "application/vnd.api+json"})
        async with client:
            assert await client.post_json(BASE, json={"query": "{ x }"}) == {"data": {"Page": {}}}
    assert seen["data"] == b'{"query":"{ x }"}'
    assert seen["headers"]["Content-Type"] == "application/json"
    assert seen["headers"]["Accept"] == "application/vnd.api+json"
