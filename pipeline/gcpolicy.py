"""Garbage-collector settings for a batch run (sync, backfill, replay).

A run allocates millions of short-lived containers (parsed pages, rows, batches) that reference
counting frees at once; almost none form cycles. CPython's default thresholds (700 allocations
for a young collection, full collections as the old generation grows) then spend a large share
of the run re-scanning the same long-lived objects: modules, settings, plans, the loader's state.
``batch_gc`` collects once, freezes what start-up made (``gc.freeze``: those objects leave every
later collection) and raises the young threshold, for the length of the run only; the previous
settings come back afterwards, so an embedding process (a notebook, Dagster) is left as it was.
Cycles are still collected, only less often: memory stays bounded by the young threshold.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

BATCH_THRESHOLDS = (50_000, 20, 100)


@contextmanager
def batch_gc(thresholds: tuple[int, int, int] = BATCH_THRESHOLDS) -> Iterator[None]:
    """Collector tuned for a batch run inside the block; restored (and unfrozen) on the way out."""
    previous = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(*thresholds)
    try:
        yield
    finally:
        gc.set_threshold(*previous)
        gc.unfreeze()
