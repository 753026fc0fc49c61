"""Real ``pipeline sync`` and ``pipeline backfill`` processes share one rate budget (real time, ~30 s).

The Nekos simulator (1 request per second per client IP, a fixed window opened by an arrival,
every refusal a violation, a ban after 10) runs in this test's event loop on 127.0.0.1; every
process is a separate ``python -m pipeline`` with nothing in common but the database and the rate
group. Two "machines" are two processes with separate config files (different source names, page
sizes, one ``rate_group``): machine A runs its nightly ``sync`` (artists, 10 pages) and a
hand-started ``backfill --full`` (categories, 5 pages), machine B a ``backfill --full``
(characters, 12 pages). A's sync and B's backfill start together, A's backfill once 6 requests
were admitted since both had their first: two processes, then three until the first ends, then two
(``bench.ratelimit.run_cli``, also a ``make bench`` case).

Judged from the server's own arrival log (each process owns a resource, so its path names it):
no 429 at all, never two admitted arrivals inside one window (combined rate within the limit),
and the combined use over the stretch of three processes and the longest of two at least 0.90 of
the limit.
This is a real-time test of a rate limit, hence the ``slow`` mark; it still runs in ``make test``.
"""

from __future__ import annotations

import itertools

import pytest

from bench.ratelimit import run_cli, window_share

pytestmark = [pytest.mark.db, pytest.mark.slow]
MIN_USE = 0.90


async def test_sync_and_backfills_on_two_machines_share_one_budget(db_url: str) -> None:
    run = await run_cli(db_url)
    start = run.arrivals[0].at if run.arrivals else 0.0
    timeline = [(round(a.at - start, 2), a.path.rsplit("/", 1)[-1], a.allowed) for a in run.arrivals]
    for code, out in zip(run.codes, run.outputs, strict=True):
        assert code == 0, f"exit {code}\n{out[-3000:]}"
    assert run.refused == 0, f"{run.refused} × 429: {timeline}"
    times = [a.at for a in run.arrivals]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= 1.0, timeline  # never two arrivals in one window: within the limit
    per_path = {p: sum(1 for a in run.arrivals if a.path == p) for p in run.paths}
    assert per_path == {"/api/artist": 10, "/api/category": 5, "/api/character": 12}
    three, two = run.windows()
    report = (
        f"3 processes: {len(three)} arrivals, use {window_share(three):.3f}; "
        f"2 processes: {len(two)} arrivals, use {window_share(two):.3f}; "
        f"min gap {min(gaps):.3f} s; timeline {timeline}"
    )
    print(report)
    assert len(three) >= 8, report  # long enough overlaps to judge
    assert len(two) >= 6, report
    assert window_share(three) >= MIN_USE, report
    assert window_share(two) >= MIN_USE, report
    assert window_share(times) <= 1.0
