"""``--metrics-file PATH``: a run's figures in the Prometheus text format (node_exporter textfile collector).

A batch job has no endpoint to scrape, so each run (sync, backfill, replay) leaves a file that
node_exporter's ``--collector.textfile.directory`` reads on every scrape. The file is written at
the end of every run, whatever its outcome (succeeded, partial, failed, aborted by a signal, with
deferred or incomplete streams), and also when the run could not start (bad configuration, the
database unreachable: run-level series only, ``status="error"``). It is replaced atomically: the
text goes to a temporary file in the same directory (its name does not end in ``.prom``, so the
collector never reads half a file), is flushed and fsynced, then renamed over ``PATH``.

Every series is a gauge: the file is a snapshot of the latest run, not a counter that grows. Labels:
``command`` (sync | backfill | replay, so two commands writing two files in one directory never
collide), ``source`` and ``stream`` (the resource). No sample carries a timestamp (the textfile
collector refuses them); times are values in seconds since the epoch.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import asyncpg

from pipeline.errors import ConfigError
from pipeline.runs import OK_STATUSES

PREFIX = "pipeline"


class StreamFigures(Protocol):
    """What one stream reports (``api.StreamSummary`` and ``runs.StreamResult`` fit)."""

    @property
    def source(self) -> str: ...
    @property
    def resource(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def pages(self) -> int: ...
    @property
    def records(self) -> int: ...
    @property
    def inserted(self) -> int: ...
    @property
    def updated(self) -> int: ...
    @property
    def unchanged(self) -> int: ...
    @property
    def other_rows(self) -> int: ...
    @property
    def deleted(self) -> int: ...
    @property
    def rejected(self) -> int: ...
    @property
    def requests(self) -> int: ...
    @property
    def retries(self) -> int: ...
    @property
    def rate_limited(self) -> int: ...
    @property
    def duration_seconds(self) -> float: ...


@dataclass(frozen=True, slots=True)
class Figure:
    name: str
    help: str
    attribute: str


# Per stream and run: (metric name without the prefix, HELP text, StreamFigures attribute).
STREAM_FIGURES = (
    Figure(
        "stream_records_inserted",
        "Rows inserted into the stream's main tables by the last run.",
        "inserted",
    ),
    Figure("stream_records_updated", "Rows of the stream's main tables updated by the last run.", "updated"),
    Figure(
        "stream_records_unchanged",
        "Rows of the stream's main tables fetched again with the same content by the last run.",
        "unchanged",
    ),
    Figure(
        "stream_other_rows_written",
        "Rows the last run wrote to other tables (included records, nested objects, links).",
        "other_rows",
    ),
    Figure(
        "stream_records_deleted",
        "Records soft-deleted by the last run (verified gone, or tombstones).",
        "deleted",
    ),
    Figure("stream_records_rejected", "Records the last run rejected (see etl.rejects).", "rejected"),
    Figure("stream_records_fetched", "Records the last run fetched.", "records"),
    Figure("stream_pages", "Pages the last run fetched and committed.", "pages"),
    Figure("stream_requests", "HTTP requests the last run made (retries included).", "requests"),
    Figure("stream_rate_limited_responses", "HTTP 429 responses the last run received.", "rate_limited"),
    Figure("stream_retries", "Requests the last run retried (429, 5xx, timeouts).", "retries"),
    Figure(
        "stream_duration_seconds", "Wall-clock seconds the stream took in the last run.", "duration_seconds"
    ),
)
STATUS_HELP = (
    "Status of the stream in the last run, as the status label (value 1): succeeded, sampled, "
    "skipped, failed, incomplete, deferred, stopped, stuck, aborted."
)
OK_HELP = "1 when the stream ended ok in the last run (succeeded, sampled or skipped), else 0."
SUCCESS_HELP = (
    "When the stream last finished a successful sync or backfill, seconds since the epoch (0: never)."
)
LAG_HELP = (
    "Seconds from the stream's last successful sync or backfill to the end of the last run "
    "(+Inf: never succeeded). Live lag: time() - pipeline_stream_last_success_timestamp_seconds."
)


def check_path(path: str | os.PathLike[str]) -> Path:
    """Refuse before the run a metrics file that could not be written at its end."""
    target = Path(path)
    folder = target.parent
    if target.is_dir():
        raise ConfigError(
            f"--metrics-file {target} is a directory; name a file such as {target}/pipeline.prom"
        )
    if not folder.is_dir():
        raise ConfigError(
            f"--metrics-file {target}: the directory {folder} does not exist; create it or point at the "
            "textfile collector's directory (node_exporter --collector.textfile.directory)"
        )
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(
            f"--metrics-file {target}: the directory {folder} is not writable by this user; the file is "
            "written there (a temporary file, then a rename): let the user running the pipeline write there"
        )
    return target


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(labels: Mapping[str, str]) -> str:
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items()) + "}"


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    if float(value).is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(float(value))


class _Text:
    """Families in order, each with its HELP and TYPE once, then its samples."""

    def __init__(self) -> None:
        self.families: dict[str, tuple[str, list[str]]] = {}

    def add(self, name: str, help_text: str, labels: Mapping[str, str], value: float) -> None:
        full = f"{PREFIX}_{name}"
        _, samples = self.families.setdefault(full, (help_text, []))
        samples.append(f"{full}{_labels(labels)} {_number(value)}")

    def render(self) -> str:
        out: list[str] = []
        for name, (help_text, samples) in self.families.items():
            out.append(f"# HELP {name} {help_text}")
            out.append(f"# TYPE {name} gauge")
            out.extend(samples)
        return "\n".join(out) + "\n"


def render(
    command: str,
    *,
    run_id: int | None,
    status: str,
    exit_code: int,
    streams: Iterable[StreamFigures] = (),
    last_success: Mapping[tuple[str, str], datetime | None] | None = None,
    finished_at: float | None = None,
) -> str:
    """The text of the file: run-level series, then one series per stream and figure.

    ``last_success`` maps (source, resource) to the stream's last successful finish (``None``:
    never); a stream missing from it (the database could not be read) gets no success or lag series.
    """
    now = time.time() if finished_at is None else finished_at
    text = _Text()
    run = {"command": command}
    text.add("run_finished_timestamp_seconds", "When the last run ended, seconds since the epoch.", run, now)
    text.add(
        "run_status",
        "Status of the last run, as the status label (value 1): succeeded, partial, failed, aborted, "
        "or error (it could not start: bad configuration, database unreachable).",
        {**run, "status": status},
        1,
    )
    text.add(
        "run_exit_code",
        "Exit code of the last run: 0 ok, 1 some stream not ok, 2 configuration or database, 130/143 signal.",
        run,
        exit_code,
    )
    if run_id is not None:
        text.add("run_id", "etl.runs.id of the last run.", run, run_id)
    chosen = list(streams)
    for s in chosen:
        labels = {**run, "source": s.source, "stream": s.resource}
        text.add("stream_status", STATUS_HELP, {**labels, "status": s.status}, 1)
        text.add("stream_ok", OK_HELP, labels, 1 if s.status in OK_STATUSES else 0)
        for figure in STREAM_FIGURES:
            text.add(figure.name, figure.help, labels, float(getattr(s, figure.attribute)))
        if last_success is not None and (s.source, s.resource) in last_success:
            at = last_success[(s.source, s.resource)]
            text.add(
                "stream_last_success_timestamp_seconds", SUCCESS_HELP, labels, at.timestamp() if at else 0
            )
            text.add(
                "stream_lag_seconds", LAG_HELP, labels, max(0.0, now - at.timestamp()) if at else math.inf
            )
    return text.render()


def write_atomically(path: str | os.PathLike[str], text: str) -> None:
    """Temporary file in the same directory → flush → fsync → rename over ``path`` → fsync the directory."""
    target = Path(path)
    folder = target.parent
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{target.name}.", suffix=".tmp")
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # readable by node_exporter like any file this user writes
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    try:
        dir_fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass  # some filesystems cannot fsync a directory; the rename itself is atomic
    finally:
        os.close(dir_fd)


async def last_successes(
    pool: asyncpg.Pool, streams: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], Any]:
    """Each stream's last successful (non-replay) finish from ``etl.stream_runs``; ``None``: never."""
    wanted = sorted(set(streams))
    if not wanted:
        return {}
    rows = await pool.fetch(
        "SELECT source, resource, max(finished_at) AS at FROM etl.stream_runs "
        "WHERE status = 'succeeded' AND mode <> 'replay' "
        "AND (source, resource) IN (SELECT * FROM unnest($1::text[], $2::text[])) GROUP BY source, resource",
        [s for s, _ in wanted],
        [r for _, r in wanted],
    )
    found = {(r["source"], r["resource"]): r["at"] for r in rows}
    return {key: found.get(key) for key in wanted}
