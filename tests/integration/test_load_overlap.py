"""The loader asks for stored hashes first and hashes the batch while the server probes its index."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest

from pipeline.load import Loader
from pipeline.load import entities as entities_module
from tests.integration.test_load_links_plan import kitsu_batch


class WatchedLookup:
    """``stored_hashes`` with its progress recorded: sent (running) and answered."""

    def __init__(self) -> None:
        self.sent = self.answered = 0
        self.original = entities_module.stored_hashes

    async def __call__(self, *args: Any) -> Any:
        self.sent += 1
        result = await self.original(*args)
        self.answered += 1
        return result


async def test_rows_are_hashed_while_the_stored_hashes_are_looked_up(
    pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a table that had rows, the lookup is in flight (sent, not answered) while the rows are
    hashed, and the result is the same as without the overlap."""
    lookup, seen = WatchedLookup(), []
    original = entities_module.staged_rows

    def watched(entity: Any, latest: Any) -> Iterator[tuple[Any, ...]]:
        seen.append((lookup.sent, lookup.answered))
        yield from original(entity, latest)

    async with pool.acquire() as conn:
        loader = Loader(conn, "kitsu", run_id=None, owned_tables=("catalog.media",))
        await loader.load(kitsu_batch(0))  # first load: COPY, no lookup
        monkeypatch.setattr(entities_module, "stored_hashes", lookup)
        monkeypatch.setattr(entities_module, "staged_rows", watched)
        rerun = Loader(conn, "kitsu", run_id=None, owned_tables=("catalog.media",))  # the next run
        counts = await rerun.load(kitsu_batch(1))  # media unchanged: every row looked up
    assert seen, "no row was hashed on the second load"
    assert seen[0] == (1, 0), f"hashing began at (sent, answered) {seen[0]}"
    assert lookup.answered == lookup.sent
    assert counts.change("catalog.media").unchanged == 20


async def test_a_hashing_error_leaves_no_lookup_running_and_the_connection_usable(
    pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An error while hashing cancels the lookup already sent: the batch fails with that error and
    the connection serves the next statement (no task left behind holding it)."""
    lookup = WatchedLookup()

    def broken(entity: Any, latest: Any) -> Iterator[tuple[Any, ...]]:
        raise ValueError("cannot hash this row")

    async with pool.acquire() as conn:
        loader = Loader(conn, "kitsu", run_id=None, owned_tables=("catalog.media",))
        await loader.load(kitsu_batch(0))
        monkeypatch.setattr(entities_module, "stored_hashes", lookup)
        monkeypatch.setattr(entities_module, "staged_rows", broken)
        rerun = Loader(conn, "kitsu", run_id=None, owned_tables=("catalog.media",))
        with pytest.raises(ValueError, match="cannot hash this row"):
            await rerun.load(kitsu_batch(1))
        assert lookup.sent == 1
        assert lookup.answered == 0  # cancelled, not left running
        assert await conn.fetchval("SELECT count(*) FROM catalog.media WHERE source = 'kitsu'") == 20
