"""A real Nekos or Kitsu scan against its simulator in a child process, killed by SIGKILL mid-scan.

    python -m tests.integration.scan_worker DATABASE_URL SERVICE KILL_AFTER

SERVICE is ``nekos`` (images, an unstable unordered listing) or ``kitsu`` (anime, 5 a page).
The simulator is seeded, so every child serves the same records. KILL_AFTER = N: SIGKILL right
after the N-th committed batch (every page is its own batch); 0 runs to the end and prints one
JSON line: the run's status and the ids the source serves.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import orjson

from pipeline import db, log, runner
from pipeline.sandbox import nekos as nekos_sim
from pipeline.sandbox.server import source_settings, start_sandbox
from pipeline.settings import Settings, parse_settings
from pipeline.sources import build_stream, open_client
from tests.integration.crash_worker import die_after
from tests.integration.test_catalog_e2e_kit import catalog_settings, kitsu_media

FAST = {"rate": {"requests": 200, "per_seconds": 1.0}, "max_in_flight": 2}


def nekos_config(sandbox: Any) -> Settings:
    body = {
        **source_settings(sandbox)["nekos"],
        **FAST,
        "resources": ["images"],
        "auth": {"kind": "bearer", "token": nekos_sim.UNLIMITED_TOKEN},
    }
    raw = {"sources": {"nekos": body}, "pipeline": {"batch_rows": 1, "queue_pages": 2}}
    return parse_settings(raw, Path("scan-worker.toml"), {})


def kitsu_config(sandbox: Any) -> Settings:
    base = catalog_settings(
        sandbox,
        anilist={"drop": True},
        anilist_v1={"drop": True},
        kitsu={"resources": ["anime"], "page_size": 5, "max_in_flight": 2, "parallel_pages": 2},
    )
    return base.model_copy(update={"pipeline": base.pipeline.model_copy(update={"batch_rows": 1})})


async def main(url: str, service: str, kill_after: int) -> int:
    log.configure(json=True, stream=sys.stderr)
    if kill_after:
        die_after(kill_after)
    options = {"anilist_requests_per_minute": 100_000}
    async with await start_sandbox("small", services=(service,), options=options) as sandbox:
        if service == "nekos":
            state = sandbox.ctx.state["nekos"]
            state.configure(swap_probability=0.3)  # rows hop between pages: misses to re-read
            settings = nekos_config(sandbox)
            expected = sorted(state.data.images)
        else:
            settings = kitsu_config(sandbox)
            world = sandbox.ctx.need_world()
            expected = sorted(k for k in kitsu_media(world) if k.startswith("anime/"))
        async with db.pool_for(url, max_size=6) as pool:
            summary = await runner.run_sync(
                settings, pool, stream_factory=build_stream, client_factory=open_client
            )
    statuses = [r.status for r in summary.streams]
    print(orjson.dumps({"statuses": statuses, "expected": expected}).decode(), flush=True)
    return summary.exit_code


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]))))
