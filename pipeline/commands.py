"""The commands behind the CLI that need the database, the runner or the sandbox.

Each ``cmd_<name>(args) -> exit code`` calls the matching ``pipeline.api`` function (which loads
the settings, opens and migrates the database and runs the core) and renders its frozen result as a
table, or as JSON with ``--json``. Logging is configured once by ``pipeline.cli``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from pipeline import api
from pipeline.errors import ConfigError
from pipeline.progress import progress
from pipeline.redact import redact_text, redact_value
from pipeline.sources import window_refusal as sources_window_refusal
from pipeline.streams import decode_cursor


def parse_when(value: str | None, flag: str) -> datetime | None:
    """``YYYY-MM-DD`` or an ISO datetime, taken as UTC when it has no offset."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"{flag} {value!r} is not a date; use YYYY-MM-DD or an ISO datetime") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# ---------------------------------------------------------------------------------------- render


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return f"{value:,.1f}"
    return str(value)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain aligned text table (readable in a terminal, a cron mail or a CI log)."""
    cells = [[str(h) for h in headers]] + [[_cell(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return redact_text("\n".join(lines))


STREAM_COLUMNS = (
    "source",
    "resource",
    "mode",
    "status",
    "inserted",
    "updated",
    "unchanged",
    "other rows",  # included records and links written to the stream's other tables
    "deleted",
    "rejected",
    "requests",
    "429s",
    "worker wait s",  # summed over the requests in flight: can exceed "seconds"
    "seconds",
)


def stream_row(r: api.StreamSummary) -> list[Any]:
    return [
        r.source,
        r.resource,
        r.mode,
        r.status,
        r.inserted,
        r.updated,
        r.unchanged,
        r.other_rows,
        r.deleted,
        r.rejected,
        r.requests,
        r.rate_limited,
        round(r.limiter_wait_seconds, 1),
        round(r.duration_seconds, 1),
    ]


def render_summary(summary: api.RunResult) -> str:
    head = f"run {summary.run_id} ({summary.command}): {summary.status}"
    if summary.backfill_id is not None:
        head += f"; backfill {summary.backfill_id} (resume: pipeline backfill --resume {summary.backfill_id})"
    lines = [head, table(STREAM_COLUMNS, [stream_row(r) for r in summary.streams])]
    for r in summary.streams:
        if r.error:
            lines.append(f"  {r.source}/{r.resource} {r.status}: {r.error}")
    return redact_text("\n".join(lines))


def to_json(value: Any) -> str:
    def plain(obj: Any) -> Any:
        if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
            return {f.name: plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
        if isinstance(obj, list | tuple):
            return [plain(v) for v in obj]
        if isinstance(obj, dict):
            return {k: plain(v) for k, v in obj.items()}
        if isinstance(obj, datetime):
            return obj.isoformat()
        return obj

    return json.dumps(redact_value(plain(value)), indent=2, default=str)


def cursor_data(text: str | None, kind: str | None) -> Any:
    """A checkpoint cursor as data: an epoch or timestamp as an ISO-8601 time (UTC), a JSON
    watermark (Zou's events cursor) as its object, anything else as stored."""
    try:
        value = decode_cursor(text, kind)
        if isinstance(value, datetime):
            return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat(timespec="seconds")
        if isinstance(value, int | float):
            return datetime.fromtimestamp(value, UTC).isoformat(timespec="seconds")
        if value is not None and value.startswith("{"):
            body = json.loads(value)
            if isinstance(body, dict):
                return body
    except (ValueError, OverflowError):
        pass  # not what its kind says: shown as stored
    return text


def cursor_summary(text: str | None, kind: str | None, width: int = 40) -> str | None:
    """The cursor for the status table: a time, a short watermark summary, or the text cut to ``width``."""
    value = cursor_data(text, kind)
    if isinstance(value, dict):
        if "at" in value:  # the Zou events watermark: newest event time, ids inside the overlap
            recent = value.get("recent") or []
            return f"events to {value['at'] or 'start'} (+{len(recent)} in overlap)"
        value = ", ".join(f"{k}={v}" for k, v in value.items())
    if value is None:
        return None
    shown = str(value)
    return shown if len(shown) <= width else shown[: width - 1] + "…"


# -------------------------------------------------------------------------------------- commands


def _finish(summary: api.RunResult) -> int:
    print(render_summary(summary))
    return summary.exit_code


def print_plan(args: argparse.Namespace, command: str, window: str | None = None) -> int:
    """``--dry-run``: the streams a command would run, their modes, checkpoints and windows.

    Nothing is fetched and nothing is written but pending migrations (the checkpoints are read
    from the database the run would use).
    """
    from pipeline.runner import plan_streams

    settings = api.load(args.config)
    sources = [args.source] if isinstance(args.source, str) else args.source
    plan = plan_streams(settings, sources, args.resource, include_disabled=args.include_disabled)
    known = {(s.source, s.resource): s for s in api.status(settings=settings, log_level=None)}
    body = []
    for source, resources in plan:
        for resource in resources:
            s = known.get((source.name, resource))
            if command == "backfill":
                mode = "backfill: full re-scan" if args.full else f"backfill: window {window}"
            elif args.full:
                mode = "full re-scan (--full)"
            else:
                mode = next_action(s) if s is not None else "full scan (first run)"
            scan = "-"
            if s is not None and s.scan_pages_committed and not s.scan_completed_at:
                scan = f"{s.scan_pages_committed} pages committed"
            elif s is not None and s.scan_completed_at:
                scan = "complete " + s.scan_completed_at.strftime("%Y-%m-%d %H:%M")
            body.append([source.name, resource, source.kind, mode, s.cursor if s else None, scan])
    print(table(("source", "resource", "kind", "would run", "checkpoint", "scan"), body))
    print(f"dry run: {len(body)} stream(s) planned; nothing was fetched")
    return 0


def cmd_sync(args: argparse.Namespace) -> int:
    if args.dry_run:
        return print_plan(args, "sync")
    with progress(False if args.no_progress else None) as bars:
        result = api.sync(
            config=args.config,
            source=args.source,
            resource=args.resource,
            full=args.full,
            progress=bars,
            log_level=None,
            allow_deletes=args.allow_deletes,
            include_disabled=args.include_disabled,
            metrics_file=args.metrics_file,
            max_pages=args.max_pages,
        )
    return _finish(result)


def cmd_backfill(args: argparse.Namespace) -> int:
    if args.resume is None and not args.source:
        raise ConfigError("pipeline backfill needs --source NAME, or --resume ID to continue one")
    if args.resume is None and not args.full and not args.since:
        raise ConfigError("pipeline backfill needs a window (--since D [--until D]) or --full")
    if args.full and (args.since or args.until):
        raise ConfigError("pipeline backfill takes either --full or --since/--until, not both")
    since, until = parse_when(args.since, "--since"), parse_when(args.until, "--until")
    if since and until and since >= until:
        raise ConfigError(f"--since {args.since} is not before --until {args.until}; swap them")
    if args.dry_run:
        if args.resume is not None:
            raise ConfigError("--dry-run plans a new backfill; drop --resume (etl.backfills shows its state)")
        if not args.full:
            source = api.load(args.config).sources.get(args.source)
            reason = sources_window_refusal(source) if source is not None else None
            if reason is not None:
                raise ConfigError(f"source {args.source} cannot back-fill a --since/--until window: {reason}")
        window = f"{since.isoformat() if since else '-'} .. {until.isoformat() if until else 'now'}"
        return print_plan(args, "backfill", window)
    with progress() as bars:
        result = api.backfill(
            config=args.config,
            source=args.source,
            resource=args.resource,
            since=since,
            until=until,
            full=args.full,
            resume=args.resume,
            progress=bars,
            log_level=None,
            allow_deletes=args.allow_deletes,
            include_disabled=args.include_disabled,
            metrics_file=args.metrics_file,
            max_pages=args.max_pages,
        )
    return _finish(result)


def cmd_replay(args: argparse.Namespace) -> int:
    return _finish(
        api.replay(
            config=args.config,
            source=args.source,
            resource=args.resource,
            log_level=None,
            metrics_file=args.metrics_file,
        )
    )


def cmd_status(args: argparse.Namespace) -> int:
    rows = api.status(config=args.config, log_level=None)
    drifted = api.new_fields(config=args.config, log_level=None)
    stuck = api.stuck_runs(config=args.config, log_level=None)
    if args.json:
        fields_of: dict[tuple[str, str], list[str]] = {}
        for f in drifted:
            fields_of.setdefault((f.source, f.resource), []).append(f.path)
        streams = [
            {
                **{k.name: getattr(s, k.name) for k in dataclasses.fields(s)},
                "cursor": cursor_data(s.cursor, s.cursor_kind),
                "new_fields": fields_of.get((s.source, s.resource), []),
            }
            for s in rows
        ]
        print(to_json(streams))
        return 0
    for run in stuck:
        print(f"stuck: {run.describe()}; stop that process, its streams are skipped as stuck until then")
    if not rows:
        print("no stream has run yet: try `pipeline sync`")
        return 0
    headers = (
        "source",
        "resource",
        "last",
        "last success",
        "lag h",
        "raw records",  # live raw.records of the resource (Kitsu characters: the characters)
        "checkpoint",
        "scan",
        "next",
        "error",
    )
    body = []
    for s in rows:
        scan = (
            f"{s.scan_pages_committed} pages"
            if s.scan_pages_committed
            else ("done" if s.scan_completed_at else "-")
        )
        lag = round(s.lag_seconds / 3600, 1) if s.lag_seconds is not None else None
        success = s.last_success_at.strftime("%Y-%m-%d %H:%M") if s.last_success_at else None
        body.append(
            [
                s.source,
                s.resource,
                s.last_status,
                success,
                lag,
                s.rows,
                cursor_summary(s.cursor, s.cursor_kind),
                scan,
                next_action(s),
                (s.last_error or "")[:60] or None,
            ]
        )
    print(table(headers, body))
    if drifted:
        print("\nfields new since each stream's first run (schema drift; see etl.field_paths):")
        print(
            table(
                ("source", "resource", "path", "first seen", "records"),
                [
                    [f.source, f.resource, f.path, f.first_seen_at.strftime("%Y-%m-%d %H:%M"), f.seen_records]
                    for f in drifted
                ],
            )
        )
    return 0


def next_action(s: Any) -> str:
    """What the next nightly run will do for this stream."""
    if s.last_status == "failed":
        return "retry (fix the error)"
    if s.last_status in ("deferred", "stopped"):
        return "resume when the API allows (see error)"
    if s.last_status == "stuck":
        return "blocked by a stuck run"
    if s.scan_pages_committed and not s.scan_completed_at:
        return "resume scan"
    if s.cursor:
        return "incremental"
    return "full scan"


def cmd_runs(args: argparse.Namespace) -> int:
    runs = api.runs(last=args.last, config=args.config, log_level=None)
    if args.json:
        print(to_json(runs))
        return 0
    if not runs:
        print("no run yet: try `pipeline sync`")
        return 0
    headers = (
        "run",
        "command",
        "status",
        "started",
        "seconds",
        "streams",
        "failed",
        "rows changed",
        "deleted",
        "error",
    )
    body = []
    for r in runs:
        seconds = (r.finished_at - r.started_at).total_seconds() if r.finished_at else None
        failed = sum(1 for s in r.streams if s.get("status") in ("failed", "incomplete", "aborted"))
        changed = sum(int(s.get("inserted") or 0) + int(s.get("updated") or 0) for s in r.streams)
        deleted = sum(int(s.get("deleted") or 0) for s in r.streams)
        body.append(
            [
                r.run_id,
                r.command,
                r.status,
                r.started_at.strftime("%Y-%m-%d %H:%M:%S"),
                round(seconds, 1) if seconds is not None else None,
                len(r.streams),
                failed,
                changed,
                deleted,
                (r.error or "")[:60] or None,
            ]
        )
    print(table(headers, body))
    return 0


def cmd_sandbox(args: argparse.Namespace) -> int:
    from pipeline.sandbox.server import FAST_OPTIONS, serve

    serve(args.size, args.host, args.port, args.write_config, FAST_OPTIONS if args.fast else None)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from pipeline.demo import run_demo

    return run_demo(args.size, config_out=None)


def stderr(message: str) -> None:
    print(message, file=sys.stderr)
