"""One "process" (or "machine") of a rate group: fetch as fast as the shared budget allows, for a while.

    python -m bench.rate_worker DATABASE_URL BASE_URL SECONDS NAME REQUESTS PER_SECONDS \
        MARGIN IN_FLIGHT [RATE_GROUP]

Prints one JSON line: requests sent, 429s seen, reservations (database round trips on the request
path), lease releases sent alone, slots given up (and of those, moved to now). Used by
bench.ratelimit (two-process cases) and tests/integration/test_rate_processes.py.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

import orjson

from pipeline import db, log
from pipeline.budget import SharedBudget
from pipeline.clock import SystemClock
from pipeline.http import ServiceClient
from pipeline.settings import SourceSettings


async def run(argv: list[str]) -> dict[str, Any]:
    url, base_url, seconds, name, requests, per, margin, in_flight = argv[:8]
    group = argv[8] if len(argv) > 8 else None
    settings = SourceSettings.model_validate(
        {
            "name": name,
            "kind": "nekos",
            "base_url": base_url,
            "resources": ("images",),
            "rate": {"requests": int(requests), "per_seconds": float(per)},
            "max_in_flight": int(in_flight),
            "page_size": 25,
            "safety_margin_seconds": float(margin),
            "violation_budget": 10_000,  # count every 429 instead of stopping at the first ones
            "rate_group": group,
        }
    )
    clock = SystemClock()
    async with db.pool_for(url, min_size=1, max_size=int(in_flight) + 2) as pool:
        budget = SharedBudget(pool, settings, None, clock)
        deadline = time.monotonic() + float(seconds)
        async with ServiceClient(settings, clock=clock) as client:
            client.share_budget(budget)

            async def worker() -> None:
                while time.monotonic() < deadline:
                    await client.get_json("items")

            async with asyncio.TaskGroup() as tasks:
                for _ in range(int(in_flight)):
                    tasks.create_task(worker())
        return {
            "requests": client.totals.requests,
            "rate_limited": client.totals.rate_limited,
            "reservations": budget.round_trips,
            "releases": budget.releases,
            "given_up": budget.given_up,
            "moved": budget.moved,
            "early": budget.early,
            "cap_waits": budget.cap_waits,
        }


def main() -> None:
    log.configure("warning")
    print(orjson.dumps(asyncio.run(run(sys.argv[1:]))).decode(), flush=True)


if __name__ == "__main__":
    main()
