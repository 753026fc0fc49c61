"""ServiceClient under 429s: each header flavour, service-wide pause, violation budget, GraphQL errors."""

from __future__ import annotations

import asyncio
import re
from email.utils import formatdate
from typing import Any

import pytest
from aioresponses import CallbackResult, aioresponses

from pipeline.clock import VirtualClock
from pipeline.errors import ContractError, DeferredError, HTTPStatusError, ViolationBudgetError
from pipeline.http import ServiceClient
from pipeline.responses import graphql_body_check
from tests.unit.test_http_client import BASE, make_settings

ANY = re.compile(r"^https://api\.test/.*$")


class Server:
    """Answers the first ``len(script)`` calls from the script, then 200s; records send times."""

    def __init__(self, clock: VirtualClock, script: list[tuple[int, dict[str, str], Any]]) -> None:
        self.clock = clock
        self.script = list(script)
        self.sent: list[float] = []

    async def respond(self, url: Any, **_: Any) -> CallbackResult:
        self.sent.append(self.clock.monotonic())
        if self.script:
            status, headers, payload = self.script.pop(0)
            return CallbackResult(status=status, headers=headers, payload=payload)
        return CallbackResult(payload={"ok": True})


async def run_workers(client: ServiceClient, workers: int, calls: int) -> None:
    """``workers`` tasks, each making ``calls`` GETs."""

    async def worker(w: int) -> None:
        for n in range(calls):
            await client.get_json("anime", params={"w": w, "n": n})

    async with asyncio.TaskGroup() as group:
        for w in range(workers):
            group.create_task(worker(w))


@pytest.mark.parametrize(
    ("headers", "expected_wait"),
    [
        pytest.param({"Retry-After": "7"}, 7.0, id="retry-after-seconds"),
        pytest.param({"Retry-After": formatdate(1_700_000_030, usegmt=True)}, 30.0, id="retry-after-date"),
        pytest.param({"X-RateLimit-Reset": "1700000060"}, 60.0, id="reset-epoch-anilist"),
        pytest.param({"X-RateLimit-Reset": "5"}, 5.0, id="reset-seconds-nekos"),
        pytest.param({"Retry-After": "3", "X-RateLimit-Reset": "1700000020"}, 20.0, id="later-of-both"),
    ],
)
async def test_429_pauses_every_worker_until_the_servers_moment(
    headers: dict[str, str], expected_wait: float
) -> None:
    """After one 429, no worker of the service sends anything before the announced moment."""
    clock = VirtualClock(start_wall=1_700_000_000.0)
    server = Server(clock, [(429, headers, {"errors": [{"status": 429}]})])
    with aioresponses() as mock:
        mock.get(ANY, callback=server.respond, repeat=True)
        client = ServiceClient(
            make_settings(max_in_flight=4, violation_budget=5),
            clock=clock,
            jitter=lambda: 1.0,
        )
        async with client:
            await run_workers(client, workers=4, calls=3)
    first, *later = server.sent
    assert first == 0.0
    assert len(later) == 12  # 12 successes: the 429'd call was retried
    assert min(later) >= expected_wait
    assert min(later) < expected_wait + 1.0
    assert client.totals.rate_limited == 1
    assert client.limiter.factor < 1.0
    assert client.limiter.margin > 0.0


async def test_rate_recovers_slowly_after_a_429() -> None:
    """A 429 halves the rate; successes give it back a little at a time, never above the config."""
    clock = VirtualClock()
    server = Server(clock, [(429, {"Retry-After": "1"}, None)])
    with aioresponses() as mock:
        mock.get(ANY, callback=server.respond, repeat=True)
        client = ServiceClient(make_settings(rate={"requests": 2, "per_seconds": 1.0}), clock=clock)
        async with client:
            await client.get_json("anime")
            assert client.limiter.factor == pytest.approx(0.5 + 0.05 / 2)
            for _ in range(60):
                await client.get_json("anime")
    assert client.limiter.factor == 1.0
    gaps = [b - a for a, b in zip(server.sent[1:], server.sent[2:], strict=False)]
    assert gaps[0] > 0.9  # right after the 429: about one a second instead of one every 0.5 s
    assert gaps[-2] + gaps[-1] == pytest.approx(1.0 + 0.05)  # full rate again, with the widened margin


async def test_violation_budget_stops_the_service_cleanly() -> None:
    """Nekos' budget of 2: the second 429 raises ViolationBudgetError and no request follows."""
    clock = VirtualClock()
    too_many = (429, {"Retry-After": "1", "X-RateLimit-Reset": "1"}, {"code": 429, "success": False})
    server = Server(clock, [too_many, too_many, too_many])
    settings = make_settings(kind="nekos", rate={"requests": 1, "per_seconds": 1.0}, violation_budget=2)
    with aioresponses() as mock:
        mock.get(ANY, callback=server.respond, repeat=True)
        async with ServiceClient(settings, clock=clock) as client:
            with pytest.raises(ViolationBudgetError) as caught:
                await client.get_json("image")
            with pytest.raises(ViolationBudgetError):
                await client.get_json("image")
    assert len(server.sent) == 2
    assert "violation_budget=2" in str(caught.value)
    assert "demo" in str(caught.value)


async def test_budget_exhaustion_wakes_paused_siblings() -> None:
    """Workers paused by a long Retry-After stop promptly once the budget is spent."""
    clock = VirtualClock()
    ban = (429, {"Retry-After": "3600"}, None)
    server = Server(clock, [ban, ban])
    settings = make_settings(
        violation_budget=2,
        max_in_flight=1,
        rate={"requests": 1, "per_seconds": 1.0},
        max_wait_seconds=7200,  # an hour is within the bound here: the pause itself is under test
    )
    with aioresponses() as mock:
        mock.get(ANY, callback=server.respond, repeat=True)
        async with ServiceClient(settings, clock=clock) as client:
            with pytest.raises(ExceptionGroup) as caught:
                await run_workers(client, workers=3, calls=1)
    assert all(isinstance(e, ViolationBudgetError) for e in caught.value.exceptions)
    assert clock.monotonic() < 3600 + 2 + 1.0  # one pause, then everyone stops


async def test_reserve_holds_sends_until_reset() -> None:
    """Remaining ≤ rate_limit_reserve with a known reset holds the next send until that reset."""
    clock = VirtualClock(start_wall=1_700_000_000.0)
    low = (
        200,
        {"X-RateLimit-Limit": "90", "X-RateLimit-Remaining": "1", "X-RateLimit-Reset": "1700000040"},
        [],
    )
    server = Server(clock, [low])
    settings = make_settings(rate_limit_reserve=1)
    with aioresponses() as mock:
        mock.get(ANY, callback=server.respond, repeat=True)
        async with ServiceClient(settings, clock=clock) as client:
            await client.get_json("anime")
            await client.get_json("anime")
    assert server.sent[1] >= 40.0
    assert client.totals.rate_limited == 0


async def test_graphql_200_with_errors_is_a_failure() -> None:
    """AniList: HTTP 200 carrying errors[] raises, naming the GraphQL message."""
    clock = VirtualClock()
    with aioresponses() as mock:
        mock.post(
            BASE, payload={"data": None, "errors": [{"message": "Unknown argument perPage", "status": 400}]}
        )
        async with ServiceClient(make_settings(), clock=clock, body_check=graphql_body_check) as client:
            with pytest.raises(ContractError, match="Unknown argument perPage"):
                await client.post_json(BASE, json={"query": "{}"})


async def test_graphql_too_many_requests_is_a_429() -> None:
    """'Too Many Requests.' inside errors[] pauses the service like an HTTP 429."""
    clock = VirtualClock()
    calls = 0

    async def answer(url: Any, **_: Any) -> CallbackResult:
        nonlocal calls
        calls += 1
        if calls == 1:
            body = {"data": None, "errors": [{"message": "Too Many Requests.", "status": 429}]}
            return CallbackResult(status=429, headers={"Retry-After": "60"}, payload=body)
        return CallbackResult(payload={"data": {"Page": {"media": []}}})

    with aioresponses() as mock:
        mock.post(BASE, callback=answer, repeat=True)
        async with ServiceClient(make_settings(), clock=clock) as client:
            data = await client.post_json(BASE, json={"query": "{}"}, body_check=graphql_body_check)
    assert data == {"data": {"Page": {"media": []}}}
    assert clock.monotonic() >= 60.0
    assert client.totals.rate_limited == 1


async def test_graphql_api_disabled_is_fatal_and_clear() -> None:
    """AniList's 403 'temporarily disabled' is fatal, and says nothing is wrong with the config."""
    clock = VirtualClock()
    body = {
        "data": None,
        "errors": [{"message": "The AniList API has been temporarily disabled.", "status": 403}],
    }
    with aioresponses() as mock:
        mock.post(BASE, status=403, payload=body)
        async with ServiceClient(make_settings(), clock=clock, body_check=graphql_body_check) as client:
            with pytest.raises(HTTPStatusError) as caught:
                await client.post_json(BASE, json={"query": "{}"})
    assert caught.value.status == 403
    assert "temporarily disabled" in str(caught.value)
    assert "try again later" in str(caught.value)


async def test_429s_do_not_use_up_max_attempts() -> None:
    """Five 429s with max_attempts = 2: the violation budget (10) governs them, the call succeeds."""
    clock = VirtualClock()
    too_many = (429, {"Retry-After": "1"}, None)
    server = Server(clock, [too_many] * 5)
    settings = make_settings(max_attempts=2, violation_budget=10, rate={"requests": 1, "per_seconds": 1.0})
    with aioresponses() as mock:
        mock.get(ANY, callback=server.respond, repeat=True)
        async with ServiceClient(settings, clock=clock) as client:
            assert await client.get_json("anime") == {"ok": True}
    assert client.totals.rate_limited == 5
    assert len(server.sent) == 6


@pytest.mark.parametrize(
    ("status", "headers"),
    [
        pytest.param(429, {"Retry-After": "86400"}, id="429-retry-after-a-day"),
        pytest.param(503, {"Retry-After": "86400"}, id="503-retry-after-a-day"),
        pytest.param(429, {"X-RateLimit-Reset": "1700086400"}, id="429-reset-epoch-read-by-magnitude"),
    ],
)
async def test_a_wait_beyond_max_wait_defers_at_once(status: int, headers: dict[str, str]) -> None:
    """Any server-asked wait over max_wait_seconds raises DeferredError naming the moment; no sleep."""
    clock = VirtualClock(start_wall=1_700_000_000.0)
    server = Server(clock, [(status, headers, None)])
    settings = make_settings(max_wait_seconds=300, max_in_flight=2)
    with aioresponses() as mock:
        mock.get(ANY, callback=server.respond, repeat=True)
        async with ServiceClient(settings, clock=clock) as client:
            with pytest.raises(DeferredError) as caught:
                await client.get_json("anime")
            with pytest.raises(DeferredError):  # the source stays stopped for its other workers
                await client.get_json("anime")
    assert clock.slept < 1.0
    assert len(server.sent) == 1
    assert caught.value.resume_at == pytest.approx(1_700_086_400.0, abs=1)
    assert "2023-11-15 22:13:20 UTC" in str(caught.value)
    assert "max_wait_seconds=300" in str(caught.value)


async def test_a_reset_hold_beyond_max_wait_defers_the_next_request() -> None:
    """Remaining at the reserve with a reset an hour away (epoch, under `seconds`): the next call defers."""
    clock = VirtualClock(start_wall=1_700_000_000.0)
    low = (200, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1700003600"}, [])
    server = Server(clock, [low])
    settings = make_settings(max_wait_seconds=300, rate_limit_reserve=0)
    with aioresponses() as mock:
        mock.get(ANY, callback=server.respond, repeat=True)
        async with ServiceClient(settings, clock=clock) as client:
            await client.get_json("anime")
            with pytest.raises(DeferredError, match="3,600 s"):
                await client.get_json("anime")
    assert len(server.sent) == 1
    assert clock.slept < 1.0


async def test_own_backoff_is_capped_by_backoff_max() -> None:
    """Exponential backoff never sleeps longer than backoff_max_seconds between attempts."""
    clock = VirtualClock()
    server = Server(clock, [(503, {}, None)] * 5)
    settings = make_settings(max_attempts=6, backoff_base_seconds=1.0, backoff_max_seconds=3.0)
    with aioresponses() as mock:
        mock.get(ANY, callback=server.respond, repeat=True)
        async with ServiceClient(settings, clock=clock, jitter=lambda: 1.0) as client:
            await client.get_json("anime")
    gaps = [b - a for a, b in zip(server.sent, server.sent[1:], strict=False)]
    assert gaps == pytest.approx([1.0, 2.0, 3.0, 3.0, 3.0], abs=0.05)
