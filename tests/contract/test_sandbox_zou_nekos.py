"""The Zou and Nekos simulators answer in the shapes of the seed documents and the servers' serialisers."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from pipeline.sandbox import nekos, zou
from pipeline.sandbox.core import SandboxClock, SandboxContext
from pipeline.sandbox.zou_data import ADMIN_EMAIL, ADMIN_PASSWORD

SEEDS = Path(__file__).resolve().parents[1] / "fixtures" / "seeds"
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
ZOU_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$")
JS_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def _ctx() -> SandboxContext:
    return SandboxContext(clock=SandboxClock(real=lambda: 1_750_000_000.0))


async def _zou_get(client: TestClient[Any, Any], path: str, **params: str) -> Any:
    login = await (
        await client.post("/api/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    ).json()
    response = await client.get(
        path, params=params, headers={"Authorization": f"Bearer {login['access_token']}"}
    )
    assert response.status == 200
    return await response.json()


async def test_zou_paginated_envelope_matches_seed_003() -> None:
    """/data/<model>?page=&limit= carries exactly seed 003's keys, with integer counters."""
    seed = (SEEDS / "003_9e1efefef1fe253f.txt").read_text()
    assert '"nb_pages": 2' in seed
    async with TestClient(TestServer(zou.create_app(_ctx()), host="127.0.0.1")) as client:
        page = await _zou_get(client, "/api/data/time-spents", page="1", limit="50")
    assert list(page) == ["data", "total", "nb_pages", "limit", "offset", "page"]
    assert (page["limit"], page["offset"], page["page"]) == (50, 0, 1)
    assert page["nb_pages"] == -(-page["total"] // 50)
    row = page["data"][0]
    assert {"id", "person_id", "duration", "date"} <= set(row)  # seed 003's time-spent sample
    assert isinstance(row["duration"], float)
    assert re.match(r"^\d{4}-\d\d-\d\d$", row["date"])


async def test_zou_rows_match_the_model_fields() -> None:
    """Shots, tasks, persons and events carry the fields of the zou models and seed 003's shot sample."""
    async with TestClient(TestServer(zou.create_app(_ctx()), host="127.0.0.1")) as client:
        entities = await _zou_get(client, "/api/data/entities")
        tasks = await _zou_get(client, "/api/data/tasks", page="1", limit="5", relations="true")
        persons = await _zou_get(client, "/api/data/persons")
        events = await _zou_get(client, "/api/data/events/last", limit="5")
    shot = next(e for e in entities if e["nb_frames"])
    assert {"id", "name", "project_id", "parent_id", "nb_frames", "data", "entity_type_id", "type"} <= set(
        shot
    )
    assert shot["type"] == "Entity"
    assert {"cut_in", "frame_in", "frame_out"} <= set(shot["data"])
    task = tasks["data"][0]
    for key in ("task_type_id", "task_status_id", "entity_id", "project_id", "assignees", "created_at"):
        assert key in task
    assert ZOU_TIME.match(task["updated_at"])
    assert all(UUID.match(p["id"]) for p in persons)
    assert all("password" not in p for p in persons)
    assert {p["role"] for p in persons} <= {"user", "admin", "supervisor", "manager", "client", "vendor"}
    for event in events:
        assert list(event) == ["id", "created_at", "name", "user_id", "project_id", "data"]
        assert ZOU_TIME.match(event["created_at"])
        assert re.match(r"^[a-z-]+:[a-z-]+$", event["name"])


async def test_zou_login_and_version_match_seed_001() -> None:
    """Login answers user/login/access_token/refresh_token; GET /api/ reports the Zou version."""
    seed = (SEEDS / "001_93fa8098f3647f47.txt").read_text()
    assert "/auth/refresh-token" in seed
    ctx = _ctx()
    async with TestClient(TestServer(zou.create_app(ctx), host="127.0.0.1")) as client:
        login = await (
            await client.post("/api/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
        ).json()
        index = await (await client.get("/api/")).json()
        ctx.state["zou"].configure(old_server=True)
        old = await (await client.get("/api/")).json()
    assert {"user", "login", "access_token", "refresh_token"} <= set(login)
    assert login["login"] is True
    assert login["access_token"].count(".") == 2
    assert index["api"] == "Zou"
    assert old["version"].startswith("0.20.")


async def test_nekos_envelope_and_image_match_api_notes() -> None:
    """Lists carry {success,data,meta.pagination{limit,offset,count,total}}; images the §4 fields."""
    seed = (SEEDS / "004_5bd9aa81226ecd27.txt").read_text()
    assert "The default limit is 10 and the maximum limit is 25." in seed
    ctx = _ctx()
    headers = {"Authorization": f"Bearer {nekos.UNLIMITED_TOKEN}"}
    async with TestClient(TestServer(nekos.create_app(ctx), host="127.0.0.1")) as client:
        images = await (await client.get("/api/image", headers=headers)).json()
        artist = await (await client.get("/api/artist", params={"limit": "1"}, headers=headers)).json()
        character = await (await client.get("/api/character", params={"limit": "1"}, headers=headers)).json()
        category = await (await client.get("/api/category", params={"limit": "1"}, headers=headers)).json()
        error = await (await client.get("/api/category", params={"limit": "99"}, headers=headers)).json()
    assert list(images) == ["success", "data", "meta"]
    assert images["meta"]["pagination"] == {"limit": 10, "offset": 0, "count": 10, "total": 120}
    image = images["data"][0]
    assert list(image) == [
        "id",
        "url",
        "artist",
        "source",
        "original",
        "nsfw",
        "categories",
        "characters",
        "createdAt",
        "meta",
    ]
    assert UUID.match(image["id"])
    assert image["nsfw"] in ("sfw", "questionable", "nsfw")
    assert image["original"] in (True, False, None)
    assert set(image["source"]) == {"name", "url"}
    assert JS_TIME.match(image["createdAt"])
    assert list(image["meta"]) == ["eTag", "size", "mimetype", "color", "expires", "dimens"]
    assert set(image["meta"]["dimens"]) == {"height", "width", "aspectRatio", "orientation"}
    assert image["meta"]["dimens"]["orientation"] in ("landscape", "portrait", "square")
    assert set(artist["data"][0]) == {"id", "name", "url"}
    assert {
        "id",
        "name",
        "description",
        "source",
        "gender",
        "ages",
        "birth_date",
        "nationality",
        "occupations",
        "createdAt",
    } == set(character["data"][0])
    assert set(category["data"][0]) == {"id", "name", "description", "nsfw", "type", "createdAt"}
    assert error == {
        "code": 400,
        "message": "Invalid value for `limit` parameter. Expected a number between 1 and 25.",
        "success": False,
    }


@pytest.mark.parametrize("resource", ["image", "artist", "character", "category"])
async def test_nekos_detail_is_a_bare_data_object(resource: str) -> None:
    """/<resource>/<id> answers {data: {...}, success: true}; detail counts add ``images``."""
    ctx = _ctx()
    headers = {"Authorization": f"Bearer {nekos.UNLIMITED_TOKEN}"}
    async with TestClient(TestServer(nekos.create_app(ctx), host="127.0.0.1")) as client:
        listing = await (await client.get(f"/api/{resource}", params={"limit": "1"}, headers=headers)).json()
        record_id = listing["data"][0]["id"]
        detail = await (await client.get(f"/api/{resource}/{record_id}", headers=headers)).json()
        missing = await client.get(f"/api/{resource}/not-a-uuid", headers=headers)
    assert set(detail) == {"data", "success"}
    assert detail["data"]["id"] == record_id
    if resource != "image":
        assert isinstance(detail["data"]["images"], int)
    assert missing.status == 400
