"""The Kitsu simulator answers in the shapes of the real recorded Kitsu responses."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from pipeline.sandbox.server import Sandbox, start_sandbox
from tests.contract.shapes import shape_diff

REAL = Path(__file__).resolve().parents[1] / "fixtures" / "real" / "kitsu"
SINGLE = sorted(p for p in REAL.glob("anime-*.json") if not p.stem.endswith(("_relations", "_tags")))
RECORDED = {p.stem: orjson.loads(p.read_bytes()) for p in SINGLE}
TAGS = orjson.loads((REAL / "anime-tags-1_tags.json").read_bytes())
MAPS = frozenset({"titles", "ratingFrequencies", "dimensions"})


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    async with await start_sandbox("small", services=("kitsu",)) as running:
        yield running


async def _get(url: str, **params: str) -> Any:
    async with aiohttp.ClientSession() as session, session.get(url, params=params) as response:
        assert response.status == 200, await response.text()
        assert response.content_type == "application/vnd.api+json"
        return orjson.loads(await response.read())


def _kitsu_ids(sandbox: Sandbox, count: int) -> list[int]:
    """Anime ids of the sandbox with varied statuses, images and titles, visible anonymously."""
    works = [w for w in sandbox.ctx.need_world().works if w.kind == "anime" and w.kitsu_id and not w.adult]
    return [w.kitsu_id for w in works[:count] if w.kitsu_id is not None]


@pytest.mark.parametrize("recording", sorted(RECORDED))
async def test_single_anime_has_the_recorded_shape(sandbox: Sandbox, recording: str) -> None:
    """GET /anime/{id} has the keys, JSON types and nesting of the real recording."""
    expected = RECORDED[recording]
    for kitsu_id in _kitsu_ids(sandbox, 12):
        actual = await _get(f"{sandbox.urls['kitsu']}/anime/{kitsu_id}")
        assert shape_diff(expected, actual, maps=MAPS) == [], kitsu_id


async def test_categories_list_has_the_recorded_shape(sandbox: Sandbox) -> None:
    """GET /anime/{id}/categories matches the recorded list: data, meta.count, links first/next/last."""
    expected = TAGS
    work = next(
        w for w in sandbox.ctx.need_world().works if w.kitsu_id and not w.adult and len(w.categories) > 3
    )
    actual = await _get(f"{sandbox.urls['kitsu']}/anime/{work.kitsu_id}/categories", **{"page[limit]": "2"})
    assert shape_diff(expected, actual, maps=MAPS) == []
    assert actual["meta"]["count"] == len(work.categories)


async def test_links_keep_the_real_quirks(sandbox: Sandbox) -> None:
    """Links are absolute, brackets percent-encoded and sorted, and last sits at count - limit."""
    body = await _get(f"{sandbox.urls['kitsu']}/anime", **{"page[limit]": "20", "sort": "id"})
    count = body["meta"]["count"]
    assert body["links"]["first"].startswith(sandbox.urls["kitsu"] + "/anime?")
    assert "page%5Blimit%5D=20&page%5Boffset%5D=0&sort=id" in body["links"]["first"]
    assert body["links"]["last"].endswith(f"page%5Boffset%5D={count - 20}&sort=id")
    assert "prev" not in body["links"]
