"""The batch run's collector settings: raised thresholds and frozen start-up objects, restored after."""

from __future__ import annotations

import gc

import pytest

from pipeline import api
from pipeline.gcpolicy import BATCH_THRESHOLDS, batch_gc
from pipeline.runs import RunSummary


def test_batch_gc_raises_thresholds_freezes_and_restores() -> None:
    before = gc.get_threshold()
    assert before != BATCH_THRESHOLDS
    with batch_gc():
        assert gc.get_threshold() == BATCH_THRESHOLDS
        assert gc.get_freeze_count() > 0  # start-up objects left out of every later collection
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_batch_gc_restores_after_an_error() -> None:
    before = gc.get_threshold()
    with pytest.raises(RuntimeError), batch_gc():
        raise RuntimeError("run failed")
    assert (gc.get_threshold(), gc.get_freeze_count()) == (before, 0)


def test_runs_go_through_the_batch_collector() -> None:
    """sync and backfill run their work inside ``batch_gc`` (``api.run_interruptible``)."""
    seen: list[tuple[int, int, int]] = []

    async def work() -> RunSummary:
        seen.append(gc.get_threshold())
        return RunSummary(run_id=1, command="sync", status="succeeded")

    before = gc.get_threshold()
    api.run_interruptible(work)
    assert seen == [BATCH_THRESHOLDS]
    assert gc.get_threshold() == before
