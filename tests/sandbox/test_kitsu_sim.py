"""Kitsu simulator behaviour: paging limits, R18 hiding, OAuth, the six-hour updatedAt clock."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from pipeline.sandbox import kitsu
from pipeline.sandbox.core import SandboxClock, SandboxContext

Client = TestClient[web.Request, web.Application]


@pytest.fixture
async def ctx() -> SandboxContext:
    """A small world whose sandbox clock stands still at 2027-01-15T08:00:00Z."""
    return SandboxContext.build("small", seed=11, clock=SandboxClock(real=lambda: 1_800_000_000.0))


@pytest.fixture
async def client(ctx: SandboxContext) -> AsyncIterator[Client]:
    async with TestClient(TestServer(kitsu.create_app(ctx), host="127.0.0.1")) as test_client:
        yield test_client


async def _token(client: Client) -> str:
    form = {"grant_type": "password", "username": kitsu.USERNAME, "password": kitsu.PASSWORD}
    response = await client.post("/api/oauth/token", data=form)
    assert response.status == 200
    return str((await response.json())["access_token"])


async def test_page_limit_above_20_is_a_400_jsonapi_error(client: Client) -> None:
    """page[limit]=21 answers 400 with the JSON:API error the real server sends."""
    response = await client.get("/api/edge/anime", params={"page[limit]": "21"})
    assert response.status == 400
    error = (await response.json(content_type=None))["errors"][0]
    assert error["title"] == "Invalid Page Value"
    assert "maximum page size of 20" in error["detail"]


async def test_default_page_is_10_and_offsets_walk_the_whole_list(client: Client) -> None:
    """Default limit 10; following links.next visits every anime exactly once."""
    first = await (await client.get("/api/edge/anime")).json(content_type=None)
    assert len(first["data"]) == 10
    seen: list[str] = []
    url: str | None = str(client.make_url("/api/edge/anime?page[limit]=20&sort=id"))
    while url:
        body = await (await client.session.get(url)).json(content_type=None)
        seen += [item["id"] for item in body["data"]]
        url = body["links"].get("next")
    assert len(seen) == len(set(seen)) == first["meta"]["count"]


async def test_r18_hidden_without_token_and_visible_with_one(ctx: SandboxContext, client: Client) -> None:
    """Anonymous clients never see R18 works; a password-grant token shows them."""
    adult = next(w for w in ctx.need_world().works if w.adult and w.kind == "anime" and w.kitsu_id)
    assert (await client.get(f"/api/edge/anime/{adult.kitsu_id}")).status == 404
    headers = {"Authorization": f"Bearer {await _token(client)}"}
    shown = await client.get(f"/api/edge/anime/{adult.kitsu_id}", headers=headers)
    assert shown.status == 200
    assert (await shown.json(content_type=None))["data"]["attributes"]["nsfw"] is True
    anonymous = await (await client.get("/api/edge/anime")).json(content_type=None)
    authed = await (await client.get("/api/edge/anime", headers=headers)).json(content_type=None)
    assert authed["meta"]["count"] > anonymous["meta"]["count"]


async def test_forced_token_expiry_answers_401_and_refresh_recovers(
    ctx: SandboxContext, client: Client
) -> None:
    """An expired bearer token is a 401; the refresh_token grant issues a working one."""
    form = {"grant_type": "password", "username": kitsu.USERNAME, "password": kitsu.PASSWORD}
    tokens = await (await client.post("/api/oauth/token", data=form)).json()
    ctx.expire_tokens("kitsu")
    expired = await client.get(
        "/api/edge/anime", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert expired.status == 401
    refreshed = await client.post(
        "/api/oauth/token", data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    )
    fresh = (await refreshed.json())["access_token"]
    assert (await client.get("/api/edge/anime", headers={"Authorization": f"Bearer {fresh}"})).status == 200


async def test_wrong_password_and_login_throttle(client: Client) -> None:
    """Bad credentials are invalid_grant; the 16th login in a minute gets Rack::Attack's 429."""
    bad = await client.post(
        "/api/oauth/token", data={"grant_type": "password", "username": "x", "password": "y"}
    )
    assert (await bad.json())["error"] == "invalid_grant"
    for _ in range(14):
        await _token(client)
    throttled = await client.post("/api/oauth/token", data={"grant_type": "password", "username": "x"})
    assert throttled.status == 429
    assert await throttled.text() == "Retry later\n"


async def test_updated_at_is_bumped_every_six_hours(ctx: SandboxContext, client: Client) -> None:
    """Every work's updatedAt jumps to the last six-hour mark of sandbox time, changed or not."""

    async def updated() -> set[str]:
        body = await (await client.get("/api/edge/anime?page[limit]=20")).json(content_type=None)
        return {item["attributes"]["updatedAt"] for item in body["data"]}

    assert await updated() == {"2027-01-15T06:00:04.037Z"}
    ctx.advance_clock(6 * 3600)
    assert await updated() == {"2027-01-15T12:00:04.037Z"}


async def test_include_categories_builds_a_compound_document(ctx: SandboxContext, client: Client) -> None:
    """include=categories adds relationship data and the included category resources."""
    body = await (await client.get("/api/edge/anime?include=categories&page[limit]=5")).json(
        content_type=None
    )
    linked = {ref["id"] for item in body["data"] for ref in item["relationships"]["categories"]["data"]}
    included = {(res["type"], res["id"]) for res in body["included"]}
    assert linked
    assert included == {("categories", cat_id) for cat_id in linked}
    bad = await client.get("/api/edge/anime?include=nonsense")
    assert bad.status == 400


async def test_mappings_filter_finds_the_kitsu_item_of_an_anilist_id(
    ctx: SandboxContext, client: Client
) -> None:
    """filter[externalSite]+[externalId]&include=item resolves an AniList id to its Kitsu work."""
    work = next(w for w in ctx.need_world().works if w.map_anilist and w.kind == "anime" and not w.adult)
    params = {
        "filter[externalSite]": "anilist/anime",
        "filter[externalId]": str(work.anilist_id),
        "include": "item",
    }
    body = await (await client.get("/api/edge/mappings", params=params)).json(content_type=None)
    assert body["meta"]["count"] == 1
    assert body["data"][0]["relationships"]["item"]["data"] == {"type": "anime", "id": str(work.kitsu_id)}
    assert body["included"][0]["id"] == str(work.kitsu_id)


async def test_episodes_list_pages_through_every_episode(ctx: SandboxContext, client: Client) -> None:
    """The global episodes list counts every anime's episodes and filters by mediaId."""
    body = await (await client.get("/api/edge/episodes?page[limit]=20")).json(content_type=None)
    assert body["meta"]["count"] > 100
    first = body["data"][0]
    media_id = int(first["id"]) // 1000
    one = await client.get(f"/api/edge/episodes?filter[mediaId]={media_id}&filter[mediaType]=Anime")
    assert all(int(item["id"]) // 1000 == media_id for item in (await one.json(content_type=None))["data"])


async def test_control_api_update_changes_the_served_record(ctx: SandboxContext, client: Client) -> None:
    """PATCH /_sandbox/records/anime/{id} changes what GET /anime/{id} returns."""
    work = next(w for w in ctx.need_world().works if w.kind == "anime" and w.kitsu_id and not w.adult)
    patched = await client.patch(f"/_sandbox/records/anime/{work.kitsu_id}", json={"romaji": "Kaizou Sareta"})
    assert patched.status == 200
    body = await (await client.get(f"/api/edge/anime/{work.kitsu_id}")).json(content_type=None)
    assert body["data"]["attributes"]["titles"]["en_jp"] == "Kaizou Sareta"
    deleted = await client.delete(f"/_sandbox/records/anime/{work.kitsu_id}")
    assert deleted.status == 200
    assert (await client.get(f"/api/edge/anime/{work.kitsu_id}")).status == 404


async def test_filter_id_looks_records_up_and_leaves_out_the_gone(
    ctx: SandboxContext, client: Client
) -> None:
    """``filter[id]=a,b,c`` on a listing answers the records that exist, as Kitsu does; bad ids are a 400."""
    world = ctx.need_world()
    anime = [w for w in world.live() if w.kind == "anime" and w.kitsu_id and not w.adult][:3]
    world.delete_work(anime[1])
    ids = ",".join(str(w.kitsu_id) for w in anime)
    body = await (await client.get("/api/edge/anime", params={"filter[id]": ids})).json(content_type=None)
    assert [d["id"] for d in body["data"]] == [str(anime[0].kitsu_id), str(anime[2].kitsu_id)]
    assert body["meta"]["count"] == 2
    categories = await (await client.get("/api/edge/categories", params={"filter[id]": "1,2"})).json(
        content_type=None
    )
    assert sorted(d["id"] for d in categories["data"]) == [
        str(c.id) for c in world.categories if c.id in (1, 2)
    ]
    bad = await client.get("/api/edge/anime", params={"filter[id]": "1,x"})
    assert bad.status == 400
