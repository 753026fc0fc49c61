"""The Nekos v1 simulator: token scopes, the 1 req/s window, violation bans, unordered offset paging."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from pipeline.sandbox.core import SandboxClock, SandboxContext
from pipeline.sandbox.nekos import (
    BAN_MESSAGE,
    NO_SCOPE_TOKEN,
    RATE_MESSAGE,
    SANDBOX_TOKEN,
    UNLIMITED_TOKEN,
    NekosService,
    create_app,
)
from pipeline.sandbox.nekos_order import scan_order

NOW = 1_750_000_000.25
AUTH = {"Authorization": f"Bearer {SANDBOX_TOKEN}"}


@pytest.fixture
def ctx() -> SandboxContext:
    return SandboxContext(clock=SandboxClock(real=lambda: NOW))


@pytest.fixture
async def client(ctx: SandboxContext) -> AsyncIterator[TestClient[Any, Any]]:
    async with TestClient(TestServer(create_app(ctx), host="127.0.0.1")) as test_client:
        yield test_client


def service(ctx: SandboxContext) -> NekosService:
    found = ctx.state["nekos"]
    assert isinstance(found, NekosService)
    return found


@pytest.mark.parametrize(
    ("headers", "status", "message"),
    [
        ({}, 401, "You need an access token to access this resource."),
        ({"Authorization": "Bearer short"}, 401, "It should match `^Bearer [0-9a-zA-Z]{100}$`."),
        ({"Authorization": f"Bearer {'x' * 100}"}, 401, "The authentication token is invalid."),
        ({"Authorization": f"Bearer {NO_SCOPE_TOKEN}"}, 403, "`image:list` scope"),
    ],
)
async def test_image_list_needs_a_scoped_token(
    ctx: SandboxContext, client: TestClient[Any, Any], headers: dict[str, str], status: int, message: str
) -> None:
    """/image refuses missing, malformed, unknown and unscoped tokens before the rate limiter counts."""
    response = await client.get("/api/image", headers=headers)
    body = await response.json()
    assert response.status == status
    assert body["success"] is False
    assert body["code"] == status
    assert message in body["message"]
    assert "X-RateLimit-Limit" not in response.headers
    assert (await client.get("/api/image", headers=AUTH)).status == 200  # the 401 used no budget


async def test_second_request_in_a_second_is_429(ctx: SandboxContext, client: TestClient[Any, Any]) -> None:
    """1 req/s from the window's first request: the second gets 429 + Retry-After; a second later is fine."""
    first = await client.get("/api/category")
    assert first.status == 200
    assert first.headers["X-RateLimit-Limit"] == "1"
    assert first.headers["X-RateLimit-Remaining"] == "0"
    assert first.headers["X-RateLimit-Reset"] == "1"  # seconds to wait, not a timestamp
    second = await client.get("/api/category")
    assert second.status == 429
    assert second.headers["Retry-After"] == "1"
    assert await second.json() == {"code": 429, "message": RATE_MESSAGE, "success": False}
    ctx.advance_clock(1.0)
    assert (await client.get("/api/category")).status == 200
    assert service(ctx).violations == 1


async def test_ten_violations_ban_for_an_hour(ctx: SandboxContext, client: TestClient[Any, Any]) -> None:
    """Every 429 is a violation; the 10th within an hour bans the client for an hour, then it recovers."""
    for _ in range(10):
        ctx.advance_clock(1.0)
        assert (await client.get("/api/artist")).status == 200
        assert (await client.get("/api/artist")).status == 429
    ctx.advance_clock(5.0)
    banned = await client.get("/api/artist")
    assert banned.status == 429
    assert (await banned.json())["message"] == BAN_MESSAGE
    assert 3590 <= int(banned.headers["Retry-After"]) <= 3600
    assert ctx.counters_for("nekos").bans == 1
    assert service(ctx).describe()["banned_clients"] == ["127.0.0.1"]
    ctx.advance_clock(3600.0)
    assert (await client.get("/api/artist")).status == 200


async def test_429_storm_is_shaped_like_the_real_limiter(
    ctx: SandboxContext, client: TestClient[Any, Any]
) -> None:
    """An injected storm answers Nekos-worded 429s with rate headers, then normal service resumes."""
    service(ctx).storm(2, retry_after=3)
    storm = [await client.get("/api/character") for _ in range(2)]
    assert [r.status for r in storm] == [429, 429]
    assert storm[0].headers["Retry-After"] == "3"
    assert (await storm[0].json())["message"] == RATE_MESSAGE
    assert (await client.get("/api/character")).status == 200
    assert ctx.counters_for("nekos").throttled == 2


async def test_unlimited_token_skips_the_limiter(client: TestClient[Any, Any]) -> None:
    """A token with the api:no-ratelimit scope is never throttled."""
    headers = {"Authorization": f"Bearer {UNLIMITED_TOKEN}"}
    statuses = [(await client.get("/api/image", headers=headers)).status for _ in range(5)]
    assert statuses == [200] * 5


@pytest.mark.parametrize(("path", "limit", "lenient", "status"), [
    ("/api/image", "25", False, 200), ("/api/image", "26", False, 400), ("/api/image", "50", True, 200),
    ("/api/artist", "50", True, 200), ("/api/category", "50", True, 400), ("/api/image", "0", False, 400),
])  # fmt: skip
async def test_limit_bounds(
    ctx: SandboxContext, client: TestClient[Any, Any], path: str, limit: str, lenient: bool, status: int
) -> None:
    """limit is 1..25; with lenient_limits /image and /artist accept up to 50, as the v1 code does."""
    service(ctx).configure(lenient_limits=lenient)
    response = await client.get(path, params={"limit": limit}, headers=AUTH)
    assert response.status == status
    if status == 400:
        assert (await response.json())["message"].startswith("Invalid value for `limit` parameter.")


async def test_signed_url_changes_on_every_call(ctx: SandboxContext, client: TestClient[Any, Any]) -> None:
    """The image url and meta.expires are fresh on every call; everything else is stable."""
    image_id = next(iter(service(ctx).data.images))
    first = (await (await client.get(f"/api/image/{image_id}")).json())["data"]
    ctx.advance_clock(2.0)
    second = (await (await client.get(f"/api/image/{image_id}")).json())["data"]
    assert first["url"] != second["url"]
    assert first["meta"].pop("expires") != second["meta"].pop("expires")
    first.pop("url")
    second.pop("url")
    assert first == second


def test_scan_order_moves_rows_at_most_one_place() -> None:
    """The per-request shuffle only swaps neighbours and differs between requests."""
    ids = [str(i) for i in range(200)]
    one, two = scan_order(ids, "s:1", 0.3), scan_order(ids, "s:2", 0.3)
    assert one != two
    assert sorted(one) == sorted(ids)
    assert all(abs(one.index(x) - i) <= 1 for i, x in enumerate(ids))


async def test_offset_paging_has_no_stable_order(ctx: SandboxContext, client: TestClient[Any, Any]) -> None:
    """One offset pass may repeat and miss images; re-reading pages until total distinct ids completes."""
    service(ctx).configure(swap_probability=0.5)
    headers = {"Authorization": f"Bearer {UNLIMITED_TOKEN}"}
    seen: list[str] = []
    total = None
    for offset in range(0, 120, 10):
        body = await (
            await client.get("/api/image", params={"limit": "10", "offset": str(offset)}, headers=headers)
        ).json()
        seen += [image["id"] for image in body["data"]]
        total = body["meta"]["pagination"]["total"]
    assert total == 120
    assert len(set(seen)) < 120  # a single pass repeats some ids and misses others
    distinct = set(seen)
    for _ in range(50):
        if len(distinct) == total:
            break
        for offset in range(0, 120, 10):
            body = await (
                await client.get("/api/image", params={"limit": "10", "offset": str(offset)}, headers=headers)
            ).json()
            distinct.update(image["id"] for image in body["data"])
    assert len(distinct) == total


async def test_update_moves_a_row_to_the_end(ctx: SandboxContext, client: TestClient[Any, Any]) -> None:
    """Updating a record rewrites it at the end of the table, like a new heap tuple."""
    service(ctx).configure(swap_probability=0)
    artists = service(ctx).data.artists
    first = next(iter(artists))
    response = await client.patch(f"/_sandbox/records/artists/{first}", json={"name": "Renamed"})
    assert (await response.json())["name"] == "Renamed"
    body = await (await client.get("/api/artist", params={"limit": "25"})).json()
    assert body["data"][-1]["id"] == first
    assert body["meta"]["pagination"] == {"limit": 25, "offset": 0, "count": 12, "total": 12}


async def test_deleted_category_disappears_from_images(ctx: SandboxContext) -> None:
    """Deleting a category through the records API drops it from every image that had it."""
    create_app(ctx)
    data = service(ctx).data
    category = next(c for image in data.images.values() for c in image["category_ids"])
    ctx.delete_record("nekos", "categories", category)
    assert all(category not in image["category_ids"] for image in data.images.values())
    with pytest.raises(KeyError, match="no record"):
        ctx.delete_record("nekos", "categories", category)


def test_characters_reuse_the_world_names() -> None:
    """With a generated world, Nekos characters carry the world's character names."""
    ctx = SandboxContext.build("small", 11)
    create_app(ctx)
    assert ctx.world is not None
    names = set(ctx.world.character_names())
    assert {c["name"] for c in service(ctx).data.characters.values()} <= names
