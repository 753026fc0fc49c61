"""Shared set-up for the catalogue end-to-end tests (no tests here): fast settings, sync, world views."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import asyncpg

from pipeline.runner import run_sync
from pipeline.runs import RunSummary, StreamResult
from pipeline.sandbox.server import Sandbox, source_settings
from pipeline.sandbox.world import Work, World
from pipeline.settings import Settings, parse_settings
from pipeline.sources import build_stream, open_client

FAST = {"requests": 500, "per_seconds": 1.0}  # the sandbox enforces no read limit at this size
SANDBOX_OPTIONS = {"anilist_requests_per_minute": 100_000}


def catalog_settings(sandbox: Sandbox, **overrides: dict[str, Any]) -> Settings:
    """Kitsu, AniList and AniList v1 at the sandbox, paced fast; ``overrides[name]`` edits a source."""
    tables = source_settings(sandbox)
    sources: dict[str, Any] = {}
    for name in ("kitsu", "anilist", "anilist_v1"):
        if name not in tables or overrides.get(name, {}).get("drop"):
            continue
        body = {**tables[name], "rate": FAST, **overrides.get(name, {})}
        if body.get("auth") is None:
            body.pop("auth", None)
        sources[name] = body
    return parse_settings({"sources": sources}, Path("catalog-e2e.toml"), {})


async def sync(settings: Settings, pool: asyncpg.Pool, *, expect: str = "succeeded", **kw: Any) -> RunSummary:
    """A sync whose every stream must end ``expect`` (``incomplete`` for a scan capped on purpose)."""
    summary = await run_sync(settings, pool, stream_factory=build_stream, client_factory=open_client, **kw)
    failed = [(r.source, r.resource, r.status, r.error) for r in summary.streams if r.status != expect]
    assert not failed, failed
    return summary


def stream(summary: RunSummary, source: str, resource: str) -> StreamResult:
    return next(r for r in summary.streams if r.source == source and r.resource == resource)


def kitsu_key(work: Work) -> str:
    return f"{work.kind}/{work.kitsu_id}"


def kitsu_media(world: World, *, authed: bool = True) -> set[str]:
    """The ``catalog.media`` keys Kitsu serves (R18 works only to an authenticated client)."""
    return {kitsu_key(w) for w in world.live() if w.kitsu_id is not None and (authed or not w.adult)}


def anilist_media(world: World) -> set[str]:
    return {str(w.anilist_id) for w in world.live() if w.anilist_id is not None}


async def live_media(pool: asyncpg.Pool, source: str) -> set[str]:
    rows = await pool.fetch(
        "SELECT source_id FROM catalog.media WHERE source = $1 AND deleted_at IS NULL", source
    )
    return {r["source_id"] for r in rows}


def shared_works(world: World, count: int) -> list[Work]:
    """Works every catalogue source shows to anyone: on Kitsu and AniList, not R18."""
    found = [w for w in world.live() if w.kitsu_id and w.anilist_id and not w.adult]
    return found[:: max(1, len(found) // count)][:count]
