"""A sync in a child process that kills itself with SIGKILL right after its N-th committed batch.

    python -m tests.integration.crash_worker DATABASE_URL KILL_AFTER PAGE,ORDER,...

KILL_AFTER = 0 runs to the end. Every page is its own batch (batch_rows = 1), committed in the
given order, as if fetched by parallel workers.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from typing import Any

from pipeline import db, log, runner
from pipeline.load import Loader
from tests.integration import loadkit
from tests.integration.loadkit import FakeStream, factory, item, page_doc

PAGES, PER_PAGE = 8, 5


def docs() -> list[dict[str, Any]]:
    total = PAGES * PER_PAGE
    return [page_doc([item(n) for n in range(p * PER_PAGE, (p + 1) * PER_PAGE)], total) for p in range(PAGES)]


def die_after(commits: int) -> None:
    """Wrap Loader.load so the process dies the hard way once ``commits`` batches are committed."""
    original = Loader.load
    done = 0

    async def load(self: Loader, *args: Any, **kwargs: Any) -> Any:
        nonlocal done
        counts = await original(self, *args, **kwargs)
        done += 1
        if done == commits:
            os.kill(os.getpid(), signal.SIGKILL)
        return counts

    Loader.load = load  # type: ignore[method-assign]


async def main(url: str, kill_after: int, order: list[int]) -> int:
    log.configure(json=True, stream=sys.stderr)
    if kill_after:
        die_after(kill_after)
    settings = loadkit.settings(batch_rows=1, queue_pages=2)
    stream = FakeStream(settings.sources["fake"], docs(), order=order)
    async with db.pool_for(url, max_size=4) as pool:
        summary = await runner.run_sync(settings, pool, stream_factory=factory({"fake": stream}))
    print(summary.status, stream.stats.requests, flush=True)
    return summary.exit_code


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1], int(sys.argv[2]), [int(n) for n in sys.argv[3].split(",")])))
