"""The Zou simulator: JWT login and expiry, /data queries and pagination, the events log, studios."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from pipeline.sandbox.core import SandboxClock, SandboxContext
from pipeline.sandbox.zou import ZouService, create_app
from pipeline.sandbox.zou_data import ADMIN_EMAIL, ADMIN_PASSWORD, generate_zou

NOW = 1_750_000_000.5  # 2025-06-15T15:06:40.5Z, frozen: only advance() moves it
LOGIN = {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}


@pytest.fixture
def ctx() -> SandboxContext:
    return SandboxContext(clock=SandboxClock(real=lambda: NOW))


@pytest.fixture
async def client(ctx: SandboxContext) -> AsyncIterator[TestClient[Any, Any]]:
    async with TestClient(TestServer(create_app(ctx), host="127.0.0.1")) as test_client:
        yield test_client


def service(ctx: SandboxContext, name: str = "zou") -> ZouService:
    found = ctx.state[name]
    assert isinstance(found, ZouService)
    return found


async def auth(client: TestClient[Any, Any]) -> dict[str, str]:
    response = await client.post("/api/auth/login", json=LOGIN)
    assert response.status == 200
    body = await response.json()
    return {"Authorization": f"Bearer {body['access_token']}", "refresh": body["refresh_token"]}


async def get(client: TestClient[Any, Any], headers: dict[str, str], path: str, **params: str) -> Any:
    response = await client.get(path, params=params, headers={"Authorization": headers["Authorization"]})
    assert response.status == 200, await response.text()
    return await response.json()


# -- auth ----------------------------------------------------------------------------------------
async def test_bad_password_is_400_login_false(client: TestClient[Any, Any]) -> None:
    """Wrong credentials answer 400 {"login": false} and issue no token."""
    response = await client.post("/api/auth/login", json={"email": ADMIN_EMAIL, "password": "nope"})
    assert response.status == 400
    assert await response.json() == {"login": False}


async def test_repeated_failures_lock_the_account(client: TestClient[Any, Any]) -> None:
    """Five failed logins in a row lock the account: even the right password is refused for a while."""
    for _ in range(5):
        await client.post("/api/auth/login", json={"email": ADMIN_EMAIL, "password": "nope"})
    response = await client.post("/api/auth/login", json=LOGIN)
    assert response.status == 400
    assert (await response.json())["too_many_failed_login_attemps"] is True


async def test_missing_token_is_401(client: TestClient[Any, Any]) -> None:
    """A /data request without a token is refused with flask-jwt-extended's message."""
    response = await client.get("/api/data/projects")
    assert response.status == 401
    assert await response.json() == {"msg": "Missing Authorization Header"}


@pytest.mark.parametrize("flavour", ["401", "422"])
async def test_expired_access_token_then_refresh(
    ctx: SandboxContext, client: TestClient[Any, Any], flavour: str
) -> None:
    """An access token past its lifetime answers 401/422 "Signature has expired"; refresh fixes it."""
    service(ctx).configure(expired_status=flavour, access_ttl=3600)
    headers = await auth(client)
    ctx.advance_clock(3600)
    response = await client.get("/api/data/projects", headers={"Authorization": headers["Authorization"]})
    assert response.status == int(flavour)
    assert await response.json() == {"message": "Signature has expired"}
    refreshed = await client.get(
        "/api/auth/refresh-token", headers={"Authorization": f"Bearer {headers['refresh']}"}
    )
    assert refreshed.status == 200
    assert list(await refreshed.json()) == ["access_token"]
    headers["Authorization"] = f"Bearer {(await refreshed.json())['access_token']}"
    assert len(await get(client, headers, "/api/data/projects")) == 2


async def test_alternate_flavour_flips_between_401_and_422(
    ctx: SandboxContext, client: TestClient[Any, Any]
) -> None:
    """With expired_status=alternate an expired token is answered 401, then 422, then 401."""
    service(ctx).configure(expired_status="alternate")
    headers = await auth(client)
    ctx.expire_tokens("zou")
    statuses = [
        (await client.get("/api/data/projects", headers={"Authorization": headers["Authorization"]})).status
        for _ in range(3)
    ]
    assert statuses == [401, 422, 401]


async def test_forced_expiry_over_http_expires_refresh_tokens_too(client: TestClient[Any, Any]) -> None:
    """POST /_sandbox/tokens/expire expires every token, so only a new login works."""
    headers = await auth(client)
    assert (await (await client.post("/_sandbox/tokens/expire")).json())["expired"] == 2
    refresh = await client.get(
        "/api/auth/refresh-token", headers={"Authorization": f"Bearer {headers['refresh']}"}
    )
    assert refresh.status == 401
    headers = await auth(client)
    assert await get(client, headers, "/api/data/task-types")


async def test_access_token_cannot_refresh(client: TestClient[Any, Any]) -> None:
    """Refreshing with an access token is a 422, as flask-jwt-extended answers it."""
    headers = await auth(client)
    response = await client.get(
        "/api/auth/refresh-token", headers={"Authorization": headers["Authorization"]}
    )
    assert response.status == 422
    assert await response.json() == {"msg": "Only refresh tokens are allowed"}


# -- /data ---------------------------------------------------------------------------------------
async def test_unpaginated_list_and_filters(ctx: SandboxContext, client: TestClient[Any, Any]) -> None:
    """No page → a plain list; equality, JSON-list IN, ILIKE name filters; unknown params ignored."""
    headers = await auth(client)
    store = service(ctx).store
    tasks = await get(client, headers, "/api/data/tasks")
    assert isinstance(tasks, list)
    assert len(tasks) == len(store.rows("tasks"))
    project_id = tasks[0]["project_id"]
    same_project = await get(client, headers, "/api/data/tasks", project_id=project_id, whatever="x")
    assert {t["project_id"] for t in same_project} == {project_id}
    assert len(same_project) == sum(1 for t in tasks if t["project_id"] == project_id)
    wanted = [tasks[0]["id"], tasks[5]["id"]]
    by_ids = await get(client, headers, "/api/data/tasks", id=f'["{wanted[0]}", "{wanted[1]}"]')
    assert sorted(t["id"] for t in by_ids) == sorted(wanted)
    statuses = await get(client, headers, "/api/data/task-status", name="work in%")
    assert [s["name"] for s in statuses] == ["Work In Progress"]
    assert "assignees" not in tasks[0]
    with_relations = await get(client, headers, "/api/data/tasks", relations="true")
    assert all(isinstance(t["assignees"], list) for t in with_relations)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"project_id": "not-a-uuid"}, "One of the value of the filter has not the proper format"),
        ({"password": "x"}, "Filtering on password is not allowed."),
    ],
)
async def test_bad_filters_are_400(
    client: TestClient[Any, Any], params: dict[str, str], message: str
) -> None:
    """A malformed filter value or a hidden column answers 400 {"error": true, "message": …}."""
    headers = await auth(client)
    route = "/api/data/persons" if "password" in params else "/api/data/tasks"
    response = await client.get(route, params=params, headers={"Authorization": headers["Authorization"]})
    assert response.status == 400
    body = await response.json()
    assert body["error"] is True
    assert body["message"].startswith(message)


async def test_pagination_is_updated_at_desc_and_shifts_under_updates(
    ctx: SandboxContext, client: TestClient[Any, Any]
) -> None:
    """Pages are ordered updated_at DESC; a row updated mid-crawl jumps to page 1 and is missed."""
    headers = await auth(client)
    first = await get(client, headers, "/api/data/tasks", page="1", limit="50")
    assert set(first) == {"data", "total", "nb_pages", "limit", "offset", "page"}
    stamps = [t["updated_at"] for t in first["data"]]
    assert stamps == sorted(stamps, reverse=True)
    moved = (await get(client, headers, "/api/data/tasks", page="3", limit="50"))["data"][10]["id"]
    ctx.advance_clock(5)
    service(ctx).update("tasks", moved, {"priority": 3})
    second = await get(client, headers, "/api/data/tasks", page="2", limit="50")
    third = await get(client, headers, "/api/data/tasks", page="3", limit="50")
    assert second["data"][0]["id"] == first["data"][-1]["id"]  # shifted down: seen twice
    seen = {t["id"] for page in (first, second, third) for t in page["data"]}
    assert moved not in seen  # jumped to page 1, which was already read
    assert len(seen) == 149
    assert (await get(client, headers, "/api/data/tasks", page="1", limit="50"))["data"][0]["id"] == moved


async def test_page_past_the_end_reports_total_zero(client: TestClient[Any, Any]) -> None:
    """As in zou, a page beyond the last answers data [] and total 0 (not the real total)."""
    headers = await auth(client)
    body = await get(client, headers, "/api/data/persons", page="99", limit="10")
    assert body == {"data": [], "total": 0, "nb_pages": 2, "limit": 10, "offset": 980, "page": 99}


# -- events --------------------------------------------------------------------------------------
async def test_cursor_paging_sees_same_second_events_once(
    ctx: SandboxContext, client: TestClient[Any, Any]
) -> None:
    """Events made in one second page cleanly with cursor_event_id: newest first, each exactly once."""
    headers = await auth(client)
    zou = service(ctx)
    task_ids = list(zou.store.rows("tasks"))[:5]
    for task_id in task_ids:
        zou.update("tasks", task_id, {"priority": 2})
    newest = await get(client, headers, "/api/data/events/last", limit="2")
    collected = list(newest)
    while len(collected) < 5:
        collected += await get(
            client, headers, "/api/data/events/last", limit="2", cursor_event_id=collected[-1]["id"]
        )
    names = [e["name"] for e in collected[:5]]
    assert names == ["task:update"] * 5
    assert [e["data"]["task_id"] for e in collected[:5]] == list(reversed(task_ids))
    assert {e["created_at"] for e in collected[:5]} == {"2025-06-15T15:06:40"}
    assert len({e["id"] for e in collected}) == len(collected)


async def test_after_is_strict_at_full_precision(ctx: SandboxContext, client: TestClient[Any, Any]) -> None:
    """after=<an event's second> still returns that second's events (stored with microseconds)."""
    headers = await auth(client)
    zou = service(ctx)
    zou.add(
        "time-spents",
        {"task_id": next(iter(zou.store.rows("tasks"))), "duration": 60.0, "date": "2025-06-15"},
    )
    events = await get(client, headers, "/api/data/events/last", after="2025-06-15T15:06:40")
    assert [e["name"] for e in events] == ["time-spent:new"]
    assert await get(client, headers, "/api/data/events/last", after="2025-06-15T15:06:41") == []


async def test_new_server_caps_limit_at_1000(client: TestClient[Any, Any]) -> None:
    """A new server never returns more than 1000 events, whatever limit asks."""
    headers = await auth(client)
    assert len(await get(client, headers, "/api/data/events/last", limit="5000")) == 1000


async def test_old_server_ignores_cursor_and_cap(ctx: SandboxContext, client: TestClient[Any, Any]) -> None:
    """Old mode reports 0.20.x, has no cap and ignores cursor_event_id (the same page comes back)."""
    headers = await auth(client)
    service(ctx).configure(old_server=True)
    assert (await (await client.get("/api/")).json()) == {"api": "Zou", "version": "0.20.52"}
    everything = await get(client, headers, "/api/data/events/last", limit="5000")
    assert len(everything) == len(service(ctx).store.data.events) > 1000
    page = await get(client, headers, "/api/data/events/last", limit="3")
    again = await get(client, headers, "/api/data/events/last", limit="3", cursor_event_id=page[-1]["id"])
    assert again == page


async def test_before_paging_misses_same_second_events(
    ctx: SandboxContext, client: TestClient[Any, Any]
) -> None:
    """before=<oldest second of a page> is strict, so that second's unseen events need an overlap."""
    headers = await auth(client)
    zou = service(ctx)
    zou.configure(old_server=True)
    for task_id in list(zou.store.rows("tasks"))[:4]:
        zou.update("tasks", task_id, {"priority": 1})
    page = await get(client, headers, "/api/data/events/last", limit="2")
    naive = await get(client, headers, "/api/data/events/last", limit="2", before=page[-1]["created_at"])
    assert all(e["name"] != "task:update" for e in naive)
    overlap = await get(client, headers, "/api/data/events/last", limit="10", before="2025-06-15T15:06:41")
    assert sum(e["name"] == "task:update" for e in overlap) == 4


async def test_writes_emit_matching_events(ctx: SandboxContext, client: TestClient[Any, Any]) -> None:
    """Status changes, assignments and deletes emit their named events; an asset with tasks is canceled."""
    headers = await auth(client)
    zou = service(ctx)
    task = next(iter(zou.store.rows("tasks").values()))
    done = next(r.id for r in zou.store.rows("task-status").values() if r.fields["name"] == "Done")
    person = next(iter(zou.store.rows("persons")))
    zou.update("tasks", task.id, {"task_status_id": done, "assignees": [person]})
    asset = task.fields["entity_id"]
    assert zou.store.delete("entities", asset) == "canceled"
    response = await client.post(
        "/_sandbox/zou/delete", json={"resource": "entities", "id": asset, "force": True}
    )
    assert (await response.json())["outcome"] == "deleted"
    names = [e["name"] for e in await get(client, headers, "/api/data/events/last", limit="50")]
    assert {"task:status-changed", "task:assign", "task:delete"} <= set(names)
    assert names[0].endswith(":delete")
    assert (
        await client.get(f"/api/data/entities/{asset}", headers={"Authorization": headers["Authorization"]})
    ).status == 404


async def test_http_records_route_creates_a_shot(ctx: SandboxContext, client: TestClient[Any, Any]) -> None:
    """POST /_sandbox/records/shots adds a Shot entity and a shot:new event."""
    headers = await auth(client)
    project = next(iter(service(ctx).store.rows("projects")))
    response = await client.post("/_sandbox/records/shots", json={"name": "SH999", "project_id": project})
    created = await response.json()
    assert response.status == 200
    events = await get(client, headers, "/api/data/events/last", limit="1")
    assert events[0]["name"] == "shot:new"
    assert events[0]["data"] == {"shot_id": created["id"]}
    assert events[0]["project_id"] == project


# -- data and studios ----------------------------------------------------------------------------
def test_generation_is_deterministic_and_sized() -> None:
    """One (size, seed) gives identical rows; sizes grow; entities link shot → sequence → episode."""
    first, again = generate_zou("small", 3), generate_zou("small", 3)
    assert [e.as_json() for e in first.events] == [e.as_json() for e in again.events]
    medium = generate_zou("medium", 3)
    assert medium.counts()["tasks"] > 4 * first.counts()["tasks"]
    entities = first.tables["entities"]
    types = {r.id: r.fields["name"] for r in first.tables["entity-types"].values()}
    shot = next(r for r in entities.values() if types[r.fields["entity_type_id"]] == "Shot")
    sequence = entities[shot.fields["parent_id"]]
    assert types[sequence.fields["entity_type_id"]] == "Sequence"
    stamps = [e.created_us for e in first.events]
    assert stamps == sorted(stamps)
    assert len(set(stamps)) == len(stamps)


async def test_two_studios_run_side_by_side(ctx: SandboxContext) -> None:
    """Two Zou apps on one context keep separate data, tokens and counters."""
    app_a, app_b = create_app(ctx, name="studio_a"), create_app(ctx, name="studio_b")
    async with (
        TestClient(TestServer(app_a, host="127.0.0.1")) as a,
        TestClient(TestServer(app_b, host="127.0.0.1")) as b,
    ):
        headers_a = await auth(a)
        projects_a = await get(a, headers_a, "/api/data/projects")
        projects_b = await get(b, await auth(b), "/api/data/projects")
        cross = await b.get("/api/data/projects", headers={"Authorization": headers_a["Authorization"]})
    assert {p["id"] for p in projects_a}.isdisjoint({p["id"] for p in projects_b})
    assert cross.status == 422
    assert ctx.counters_for("studio_a").requests == 2
    assert ctx.counters_for("studio_b").requests == 3


async def test_http_control_changes_the_studio_models(
    ctx: SandboxContext, client: TestClient[Any, Any]
) -> None:
    """The records routes add, change and delete milestones (with zou's events); /_sandbox/zou/casting
    re-casts a shot with new link ids and a shot:casting-update."""
    headers = await auth(client)
    store = service(ctx).store
    project = sorted(store.rows("projects"))[0]
    response = await client.post(
        "/_sandbox/records/milestones", json={"project_id": project, "name": "Lock", "date": "2025-07-01"}
    )
    milestone = await response.json()
    assert response.status == 200
    assert (
        await client.patch(f"/_sandbox/records/milestones/{milestone['id']}", json={"name": "Final lock"})
    ).status == 200
    assert (await client.delete(f"/_sandbox/records/milestones/{milestone['id']}")).status in (200, 204)
    names = [e["name"] for e in await get(client, headers, "/api/data/events/last", limit="3")]
    assert names == ["milestone:delete", "milestone:update", "milestone:new"]
    links = store.rows("entity-links")
    shot = next(
        r.fields["entity_in_id"]
        for r in links.values()
        if store.rows("entities")[r.fields["entity_in_id"]].fields["nb_frames"]
    )
    asset = next(r.fields["entity_out_id"] for r in links.values())
    old = {i for i, r in links.items() if r.fields["entity_in_id"] == shot}
    response = await client.post(
        "/_sandbox/zou/casting",
        json={"entity_id": shot, "casting": [{"asset_id": asset, "nb_occurences": 2}]},
    )
    body = await response.json()
    assert response.status == 200
    assert [(link["entity_out_id"], link["nb_occurences"]) for link in body["links"]] == [(asset, 2)]
    assert not {link["id"] for link in body["links"]} & old
    served = await get(client, headers, "/api/data/entity-links", entity_in_id=shot)
    assert [link["id"] for link in served] == [link["id"] for link in body["links"]]
    last = (await get(client, headers, "/api/data/events/last", limit="1"))[0]
    assert (last["name"], last["data"]["shot_id"], last["data"]["nb_entities_out"]) == (
        "shot:casting-update",
        shot,
        1,
    )
    bad = await client.post("/_sandbox/zou/casting", json={"entity_id": shot, "casting": "nope"})
    assert bad.status == 400
    assert "casting must be a list" in (await bad.json())["error"]
