"""The row order of a ``SELECT … LIMIT … OFFSET`` without ``ORDER BY``, as Nekos API v1 pages it.

Postgres returns such rows in roughly physical order, but not reliably: concurrent scans, vacuum
and updates (a new tuple lands at the end of the heap) reshuffle it. The sandbox models that as
the table's insertion order (updates move a row to the end) plus, on every request, a fresh set of
non-overlapping adjacent swaps drawn from a per-request seed. Each row moves at most one place,
so a page boundary may hand a row to the neighbouring page (a duplicate on one page, a miss on
the other), yet a client that re-reads pages until it has seen ``total`` distinct ids finishes:
every request re-draws the swaps, so any row is eventually seen on its page.
"""

from __future__ import annotations

import random


def scan_order(ids: list[str], seed: str, swap_probability: float) -> list[str]:
    """``ids`` with adjacent pairs swapped at random (each row moves at most one position)."""
    order = list(ids)
    if swap_probability <= 0:
        return order
    rng = random.Random(seed)
    i = 0
    last = len(order) - 1
    while i < last:
        if rng.random() < swap_probability:
            order[i], order[i + 1] = order[i + 1], order[i]
            i += 2
        else:
            i += 1
    return order
