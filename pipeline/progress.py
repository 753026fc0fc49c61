"""Progress bars with rate and ETA per stream on a terminal (rich); silence otherwise (logs suffice)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol


class Progress(Protocol):
    def start(self, stream: str, total: int | None) -> None: ...
    def advance(self, stream: str, records: int, total: int | None = None) -> None: ...
    def finish(self, stream: str, status: str) -> None: ...


class NoProgress:
    """Used when stderr is not a terminal: the per-stream summary log lines say it all."""

    def start(self, stream: str, total: int | None) -> None:
        return None

    def advance(self, stream: str, records: int, total: int | None = None) -> None:
        return None

    def finish(self, stream: str, status: str) -> None:
        return None


class RichProgress:
    """One bar per stream: records done / expected total (from meta.count, total …), rate, ETA."""

    def __init__(self, bars: Any) -> None:
        self._bars = bars
        self._tasks: dict[str, Any] = {}

    def start(self, stream: str, total: int | None) -> None:
        if stream not in self._tasks:
            self._tasks[stream] = self._bars.add_task(stream, total=total)

    def advance(self, stream: str, records: int, total: int | None = None) -> None:
        self.start(stream, total)
        if total is not None:
            self._bars.update(self._tasks[stream], total=total)
        self._bars.advance(self._tasks[stream], records)

    def finish(self, stream: str, status: str) -> None:
        self.start(stream, None)
        task = self._tasks[stream]
        self._bars.update(task, description=f"{stream} [{status}]")
        total = self._bars.tasks[task].total
        if total is None or status == "succeeded":
            self._bars.update(task, total=self._bars.tasks[task].completed)


@contextmanager
def progress(enabled: bool | None = None) -> Iterator[Progress]:
    """Bars when ``enabled`` (default: stderr is a terminal), otherwise a no-op reporter."""
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        yield NoProgress()
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        ProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.progress import Progress as Bars
    from rich.text import Text

    class RateColumn(ProgressColumn):
        """Records per second over rich's speed window."""

        def render(self, task: Any) -> Text:
            return Text(f"{task.speed:>8,.0f} rec/s" if task.speed else "       - rec/s")

    bars = Bars(
        TextColumn("{task.description:<32}"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    with bars:
        yield RichProgress(bars)
