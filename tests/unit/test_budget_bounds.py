"""The shared budget's clock mapping: sliding bounds of the last window's answers."""

from __future__ import annotations

import random

import pytest

from pipeline.budget import SlidingBounds


def brute(samples: list[tuple[float, float, float]], now: float, window: float) -> tuple[float, float]:
    kept = [s for s in samples if s[0] >= now - window]
    return max(s[1] for s in kept), min(s[2] for s in kept)


@pytest.mark.parametrize("seed", range(5))
def test_bounds_match_a_max_and_min_over_the_window(seed: int) -> None:
    """Each answer's bounds equal the max of lower and the min of upper bounds over every sample of
    the last window, whatever the order of the values (jittered round trips, repeated times)."""
    rng = random.Random(seed)
    bounds, samples, now = SlidingBounds(10.0), [], 0.0
    for _ in range(3000):
        now += rng.choice((0.0, rng.uniform(0.0, 0.05), rng.uniform(0.5, 3.0)))
        offset = rng.uniform(-0.002, 0.002)
        lower, upper = offset - rng.uniform(0, 0.01), offset + rng.uniform(0, 0.01)
        samples.append((now, lower, upper))
        assert bounds.add(now, lower, upper) == brute(samples, now, 10.0)


def test_a_sample_older_than_the_window_no_longer_bounds() -> None:
    bounds = SlidingBounds(10.0)
    assert bounds.add(0.0, 5.0, 6.0) == (5.0, 6.0)  # a tight answer …
    assert bounds.add(1.0, 1.0, 9.0) == (5.0, 6.0)  # … bounds the looser ones after it
    assert bounds.add(10.5, 2.0, 8.0) == (2.0, 8.0)  # gone after 10 s: the others remain
