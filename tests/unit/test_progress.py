"""Progress bars: one per stream with counts, rate and ETA on a terminal; nothing otherwise."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from pipeline import progress as progress_mod
from pipeline.progress import NoProgress, RichProgress


def test_not_a_terminal_means_no_bars(capsys: pytest.CaptureFixture[str]) -> None:
    """Off a terminal the reporter is a no-op and prints nothing (log lines say it all)."""
    with progress_mod.progress(False) as bars:
        assert isinstance(bars, NoProgress)
        bars.start("kitsu/anime", 100)
        bars.advance("kitsu/anime", 40)
        bars.finish("kitsu/anime", "succeeded")
    assert capsys.readouterr() == ("", "")


def test_bars_show_records_total_and_status() -> None:
    """On a terminal each stream gets a bar with done/total, and its final status in the label."""
    from rich.progress import Progress as Bars

    out = io.StringIO()
    bars = Bars(console=Console(file=out, force_terminal=True, width=120), auto_refresh=False)
    reporter = RichProgress(bars)
    with bars:
        reporter.start("kitsu/anime", 200)
        reporter.advance("kitsu/anime", 50)
        reporter.advance("kitsu/anime", 30, total=180)
        reporter.advance("nekos/images", 25)
        reporter.finish("kitsu/anime", "failed")
        reporter.finish("nekos/images", "succeeded")
        tasks = {t.description: t for t in bars.tasks}
    anime = tasks["kitsu/anime [failed]"]
    assert (anime.completed, anime.total) == (80, 180)
    images = tasks["nekos/images [succeeded]"]
    assert (images.completed, images.total) == (25, 25)  # unknown total closes at what was done
