"""Nightly cost: requests and seconds of an incremental Zou, AniList and Kitsu run after 1 % of changes.

The sandbox runs in this process (``BENCH_NIGHTLY_SIZES``, default
``zou=large,anilist=medium,kitsu=medium``:
a full AniList sync of the large set takes ~5 minutes at 6,000 requests a minute, over budget),
with AniList's quota raised to 6,000 requests a minute and the written config's rate with it. The
benchmark changes data through the simulators' own write methods, which record what a real server
would (Zou emits ``<kind>:update`` events, AniList moves ``updatedAt``). Per source: a full sync
into a fresh scratch database, then 1 % of its records changed, then an incremental ``run_sync``.
Sources run one after the other so each one's seconds are its own. Proportional means the
incremental run costs at most ``PROPORTIONAL`` × the changed share of the full run. Kitsu (every
resource of the sandbox config) re-scans anime, manga, categories, mappings and characters every
night (their ``updatedAt`` is no change feed) and walks episodes ``sort=-updatedAt`` to the
watermark; 1 % of its anime are renamed (their episode rows change with them), and its nightly
requests are held to ``KITSU_TARGET`` × the full sync's.
"""

from __future__ import annotations

import asyncio
import math
import os
import random
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from bench.common import require_connector, row, scratch_database
from pipeline import db, sources
from pipeline.log import configure
from pipeline.runner import run_sync
from pipeline.runs import RunSummary
from pipeline.sandbox.core import SandboxContext
from pipeline.sandbox.server import start_sandbox, write_config
from pipeline.settings import Settings, load_settings

NAME = "nightly after 1 % changed"
CHANGED_SHARE = 0.01
PROPORTIONAL = 5.0  # the incremental run may cost up to 5x the changed share of the full run
DEFAULT_SIZES = "zou=large,anilist=medium,kitsu=medium"
KITSU_TARGET = 0.4  # nightly Kitsu requests / a full Kitsu sync
KITSU_RATE = 1000  # requests per second: the sandbox's Kitsu is local
KITSU_IN_FLIGHT = 8
SEED = 7
ANILIST_PER_MINUTE = 6000
# Zou models the benchmark edits, with the column it changes and how.
ZOU_EDITS: dict[str, tuple[str, Any]] = {
    "persons": ("position", lambda _: "lead"),
    "entities": ("description", lambda old: f"{old or ''} (revised)"),
    "tasks": ("priority", lambda old: int(old or 0) + 1),
    "comments": ("text", lambda old: f"{old or ''} (edited)"),
    "time-spents": ("duration", lambda old: float(old or 0) + 600.0),
}


@dataclass
class Cost:
    requests: int
    seconds: float
    records: int
    updated: int
    per_stream: dict[str, int]  # requests per resource


def cost_of(summary: RunSummary, seconds: float) -> Cost:
    failed = [s for s in summary.streams if not s.ok]
    if failed:
        details = "; ".join(f"{s.source}/{s.resource}: {s.status} {s.error}" for s in failed)
        raise RuntimeError(f"the sync run {summary.run_id} did not succeed: {details}")
    streams = summary.streams
    return Cost(
        requests=sum(s.requests for s in streams),
        seconds=seconds,
        records=sum(s.records for s in streams),
        updated=sum(s.updated + s.inserted for s in streams),
        per_stream={s.resource: s.requests for s in streams},
    )


async def timed_sync(settings: Settings, pool: asyncpg.Pool, source: str, *, full: bool) -> Cost:
    started = time.perf_counter()
    summary = await run_sync(
        settings,
        pool,
        sources=[source],
        full=full,
        stream_factory=sources.build_stream,
        client_factory=sources.open_client,
    )
    return cost_of(summary, time.perf_counter() - started)


def change_zou(ctx: SandboxContext, rng: random.Random) -> int:
    """Edit 1 % of the rows of each edited Zou model (at least one) through the store: events follow."""
    service = ctx.state["zou"]
    changed = 0
    for route, (column, new_value) in ZOU_EDITS.items():
        rows = service.store.rows(route)
        ids = sorted(rows)
        for row_id in rng.sample(ids, max(1, math.ceil(len(ids) * CHANGED_SHARE))):
            service.update(route, row_id, {column: new_value(rows[row_id].fields.get(column))})
            changed += 1
    return changed


def change_kitsu(ctx: SandboxContext, rng: random.Random) -> int:
    """Rename 1 % of the anime Kitsu serves: the anime rows and their episode rows change."""
    works = [
        w for w in ctx.need_world().works if w.kind == "anime" and w.kitsu_id is not None and not w.deleted
    ]
    chosen = rng.sample(works, math.ceil(len(works) * CHANGED_SHARE))
    for work in chosen:
        ctx.update_record("kitsu", "anime", str(work.kitsu_id), {"romaji": f"{work.romaji} (revised)"})
    return len(chosen)


def change_anilist(ctx: SandboxContext, rng: random.Random) -> int:
    """Edit 1 % of the works AniList serves (popularity + 1): their ``updatedAt`` moves to now."""
    works = [w for w in ctx.need_world().works if w.anilist_id is not None and not w.deleted]
    chosen = rng.sample(works, math.ceil(len(works) * CHANGED_SHARE))
    for work in chosen:
        ctx.update_record("anilist", work.kind, str(work.anilist_id), {"popularity": work.popularity + 1})
    return len(chosen)


async def measure_source(settings: Settings, ctx: SandboxContext, source: str) -> dict[str, Any]:
    change = {"zou": change_zou, "anilist": change_anilist, "kitsu": change_kitsu}[source]
    async with scratch_database(f"bench_nightly_{source}") as url, db.pool_for(url, max_size=6) as pool:
        full = await timed_sync(settings, pool, source, full=True)
        changed = change(ctx, random.Random(SEED))
        incremental = await timed_sync(settings, pool, source, full=False)
    per_stream = ", ".join(
        f"{name} {full.per_stream[name]:,} → {incremental.per_stream.get(name, 0):,}"
        for name in full.per_stream
    )
    return {"full": full, "incremental": incremental, "changed": changed, "per_stream": per_stream}


async def measure(sizes: dict[str, str], work: Path) -> dict[str, dict[str, Any]]:
    options = {
        "anilist_requests_per_minute": ANILIST_PER_MINUTE,
        "kitsu_requests_per_second": KITSU_RATE,
        "kitsu_in_flight": KITSU_IN_FLIGHT,
    }
    found = {}
    for source, size in sizes.items():
        async with await start_sandbox(size, services=(source,), options=options) as sandbox:
            settings = load_settings(write_config(sandbox, work / f"nightly-{source}.toml"))
            found[source] = await measure_source(settings, sandbox.ctx, source)
            configured = settings.sources[source]
            found[source]["setup"] = (
                f"{size} sandbox in this process; config rate {configured.rate.requests}/"
                f"{configured.rate.per_seconds:g} s, {configured.max_in_flight} in flight"
            )
    return found


def sizes_from_env() -> dict[str, str]:
    """``BENCH_NIGHTLY_SIZES`` = ``zou=large,anilist=medium,kitsu=medium`` (the default); a source
    left out is not measured."""
    raw = os.environ.get("BENCH_NIGHTLY_SIZES", DEFAULT_SIZES)
    try:
        sizes = dict(part.split("=", 1) for part in raw.split(","))
    except ValueError:
        raise ValueError(
            f"BENCH_NIGHTLY_SIZES={raw!r}: use source=size pairs, e.g. {DEFAULT_SIZES}"
        ) from None
    if not sizes or not set(sizes) <= {"zou", "anilist", "kitsu"}:
        raise ValueError(f"BENCH_NIGHTLY_SIZES={raw!r}: name zou, anilist and/or kitsu")
    if not set(sizes.values()) <= {"small", "medium", "large"}:
        raise ValueError(f"BENCH_NIGHTLY_SIZES={raw!r}: give each source a size small|medium|large")
    return sizes


def rows_for(source: str, found: dict[str, Any]) -> list[dict[str, Any]]:
    full, incremental, changed = found["full"], found["incremental"], found["changed"]
    limit = PROPORTIONAL * CHANGED_SHARE
    note = (
        f"full: {full.requests:,} requests, {full.seconds:.1f} s, {full.records:,} records; "
        f"incremental: {incremental.requests:,} requests, {incremental.seconds:.1f} s, "
        f"{incremental.records:,} records read, {incremental.updated:,} written; {changed:,} records "
        f"changed; {found['setup']}"
    )
    request_ratio = incremental.requests / full.requests
    seconds_ratio = incremental.seconds / full.seconds
    name = f"{NAME}: {source}"
    if source == "kitsu":
        return [
            row(name, "nightly requests", incremental.requests, "reference", True, note),
            row(
                name,
                "requests nightly / full",
                round(request_ratio, 4),
                f"<= {KITSU_TARGET}",
                request_ratio <= KITSU_TARGET,
                "anime, manga, categories re-scanned; episodes, mappings, characters and the join "
                f"resources walked to their watermark; per stream: {found['per_stream']}",
            ),
            row(name, "seconds nightly / full", round(seconds_ratio, 4), "reference", True, ""),
        ]
    return [
        row(name, "incremental requests", incremental.requests, "reference", True, note),
        row(name, "incremental seconds", round(incremental.seconds, 2), "reference", True, ""),
        row(
            name,
            "requests incremental / full",
            round(request_ratio, 4),
            f"<= {limit:.2f}",
            request_ratio <= limit,
            "",
        ),
        row(
            name,
            "seconds incremental / full",
            round(seconds_ratio, 4),
            f"<= {limit:.2f}",
            seconds_ratio <= limit,
            "",
        ),
    ]


def main() -> list[dict[str, Any]]:
    for kind in sizes_from_env():
        require_connector(kind)
    configure("warning")
    with tempfile.TemporaryDirectory(prefix="bench-nightly-") as work:
        found = asyncio.run(measure(sizes_from_env(), Path(work)))
    return [r for source, result in found.items() for r in rows_for(source, result)]
