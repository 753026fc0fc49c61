"""AniList simulators: the v2 limiter and lockout, depth cap and sorting; v1 tokens and paging."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from pipeline.sandbox import anilist, anilist_v1
from pipeline.sandbox.core import SandboxClock, SandboxContext

Client = TestClient[web.Request, web.Application]
NOW = 1_800_000_000.0


@pytest.fixture
async def ctx() -> SandboxContext:
    """A medium world (more than 5,000 media) on a sandbox clock that only moves when told."""
    return SandboxContext.build("medium", seed=5, clock=SandboxClock(real=lambda: NOW))


@pytest.fixture
async def v2(ctx: SandboxContext) -> AsyncIterator[Client]:
    async with TestClient(TestServer(anilist.create_app(ctx), host="127.0.0.1")) as client:
        yield client


@pytest.fixture
async def v1(ctx: SandboxContext) -> AsyncIterator[Client]:
    async with TestClient(TestServer(anilist_v1.create_app(ctx), host="127.0.0.1")) as client:
        yield client


async def _query(client: Client, query: str, **variables: Any) -> tuple[int, dict[str, str], Any]:
    response = await client.post("/", json={"query": query, "variables": variables})
    return response.status, dict(response.headers), await response.json()


PAGE = "query($p:Int,$n:Int){Page(page:$p,perPage:$n){pageInfo{hasNextPage total}media(sort:ID){id}}}"


async def test_thirty_requests_pass_then_a_one_minute_lockout(ctx: SandboxContext, v2: Client) -> None:
    """Headers say 90, the 31st request in a minute is a 429 and the client is locked out a minute."""
    remaining = []
    for _ in range(30):
        status, headers, _ = await _query(v2, PAGE, p=1, n=1)
        assert status == 200
        assert headers["X-RateLimit-Limit"] == "90"
        remaining.append(int(headers["X-RateLimit-Remaining"]))
    assert remaining[0] == 89
    assert remaining[-1] == 60
    status, headers, body = await _query(v2, PAGE, p=1, n=1)
    assert status == 429
    assert body == {"data": None, "errors": [{"message": "Too Many Requests.", "status": 429}]}
    assert headers["Retry-After"] == "60"
    assert int(headers["X-RateLimit-Reset"]) == int(NOW) + 60
    assert headers["X-RateLimit-Remaining"] == "0"
    ctx.advance_clock(59)
    assert (await _query(v2, PAGE, p=1, n=1))[0] == 429
    ctx.advance_clock(1)
    assert (await _query(v2, PAGE, p=1, n=1))[0] == 200
    assert ctx.counters_for("anilist").throttled == 2


async def test_depth_cap_and_unreliable_total(v2: Client) -> None:
    """page × perPage beyond 5,000 is empty with hasNextPage false; total says 5000 regardless."""
    _, _, body = await _query(v2, PAGE, p=100, n=50)
    page = body["data"]["Page"]
    assert len(page["media"]) == 50
    assert page["pageInfo"] == {"hasNextPage": False, "total": 5000}
    _, _, beyond = await _query(v2, PAGE, p=101, n=50)
    assert beyond["data"]["Page"]["media"] == []


async def test_per_page_is_capped_at_50(v2: Client) -> None:
    """perPage above 50 returns 50 items."""
    _, _, body = await _query(v2, PAGE, p=1, n=500)
    assert len(body["data"]["Page"]["media"]) == 50


async def test_updated_at_desc_puts_a_changed_work_first(ctx: SandboxContext, v2: Client) -> None:
    """A record changed through the control API leads an UPDATED_AT_DESC query with the sandbox time."""
    work = ctx.need_world().works[123]
    ctx.advance_clock(10)
    ctx.update_record("anilist", work.kind, str(work.anilist_id), {"episodes": 99})
    query = (
        "{Page(perPage:2){media(sort:[UPDATED_AT_DESC],type:"
        + work.kind.upper()
        + "){id updatedAt episodes}}}"
    )
    _, _, body = await _query(v2, query)
    top = body["data"]["Page"]["media"][0]
    assert top == {"id": work.anilist_id, "updatedAt": int(NOW) + 10, "episodes": 99}


async def test_filters_partition_the_catalogue(ctx: SandboxContext, v2: Client) -> None:
    """startDate_greater/lesser and format_in select exactly the matching works."""
    query = (
        "query($a:FuzzyDateInt,$b:FuzzyDateInt){Page(perPage:50){pageInfo{hasNextPage}"
        "media(type:ANIME,startDate_greater:$a,startDate_lesser:$b,format_in:[TV,MOVIE],sort:ID){id format}}}"
    )
    _, _, body = await _query(v2, query, a=20100000, b=20110000)
    got = {m["id"] for m in body["data"]["Page"]["media"]}
    expected = {
        w.anilist_id
        for w in ctx.need_world().works
        if w.anilist_id
        and w.kind == "anime"
        and w.start
        and w.start[0] == 2010
        and w.format in ("tv", "movie")
    }
    assert got == set(sorted(expected)[:50])


async def test_unknown_argument_is_a_graphql_error(v2: Client) -> None:
    """AniList has no updatedAt filter: asking for one is a 400 naming the argument."""
    status, _, body = await _query(v2, "{Page{media(updatedAt_greater:1){id}}}")
    assert status == 400
    assert 'Unknown argument "updatedAt_greater"' in body["errors"][0]["message"]


async def _v1_token(client: Client) -> str:
    params = {"grant_type": "client_credentials", "client_id": anilist_v1.CLIENT_ID}
    params["client_secret"] = anilist_v1.CLIENT_SECRET
    response = await client.post("/api/auth/access_token", params=params)
    body = await response.json()
    assert body["expires_in"] == 3600
    assert body["expires"] == int(NOW) + 3600
    return str(body["access_token"])


async def test_v1_token_expires_after_an_hour_of_sandbox_time(ctx: SandboxContext, v1: Client) -> None:
    """A v1 token works for 59 minutes of sandbox time and is refused (401) at 60."""
    headers = {"Authorization": f"Bearer {await _v1_token(v1)}"}
    assert (await v1.get("/api/browse/anime", headers=headers)).status == 200
    ctx.advance_clock(3599)
    assert (await v1.get("/api/browse/anime", headers=headers)).status == 200
    ctx.advance_clock(1)
    expired = await v1.get("/api/browse/anime", headers=headers)
    assert expired.status == 401
    assert (await expired.json())["error"] == "access_denied"


async def test_v1_bad_client_secret_is_refused(v1: Client) -> None:
    """Wrong client credentials answer 401 invalid_client."""
    params = {"grant_type": "client_credentials", "client_id": anilist_v1.CLIENT_ID, "client_secret": "nope"}
    response = await v1.post("/api/auth/access_token", params=params)
    assert response.status == 401
    assert (await response.json())["error"] == "invalid_client"


async def test_v1_browse_pages_end_with_a_short_page(ctx: SandboxContext, v1: Client) -> None:
    """Paging browse/manga until a short page visits every manga once; English copies romaji."""
    headers = {"access_token": await _v1_token(v1)}
    seen: list[int] = []
    page = 1
    while True:
        items = await (await v1.get(f"/api/browse/manga?page={page}", headers=headers)).json()
        seen += [item["id"] for item in items]
        for item in items:
            work = ctx.need_world().by_anilist(item["id"])
            assert work is not None
            assert item["title_english"] == (work.english or work.romaji)
        if len(items) < 40:
            break
        page += 1
    expected = [w.anilist_id for w in ctx.need_world().works if w.kind == "manga" and w.anilist_id]
    assert sorted(seen) == sorted(expected)


async def test_v1_limit_is_90_a_minute(ctx: SandboxContext, v1: Client) -> None:
    """The 91st request within a minute is a 429 with an epoch X-RateLimit-Reset."""
    headers = {"access_token": await _v1_token(v1)}
    for _ in range(89):
        assert (await v1.get("/api/anime/1", headers=headers)).status in (200, 404)
    refused = await v1.get("/api/anime/1", headers=headers)
    assert refused.status == 429
    assert int(refused.headers["X-RateLimit-Reset"]) == int(NOW) + 60
