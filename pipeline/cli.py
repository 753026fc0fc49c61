"""Command line: parse arguments, load settings, configure logging, run, map the outcome to an exit code.

Exit codes: 0 all ok, 1 some stream failed, 2 bad configuration or usage.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from pipeline import log
from pipeline.errors import ConfigError, DatabaseError, PipelineError
from pipeline.redact import redact_text
from pipeline.settings import Settings, config_path, load_settings

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
EXIT_PIPE_CLOSED = 141  # 128 + SIGPIPE: what a shell reports for a reader that went away

Handler = Callable[[argparse.Namespace], int]
ALLOW_DELETES_HELP = "apply a scan's verified deletes even beyond the source's max_delete_share"
DRY_RUN_HELP = "print the plan (streams, modes, checkpoints, window) and fetch nothing"
METRICS_HELP = (
    "at the end of the run (whatever its outcome) write its figures there in the Prometheus text "
    "format, atomically (for node_exporter's textfile collector: a *.prom file in its directory)"
)
MAX_PAGES_HELP = (
    "smoke test: fetch and load at most N pages per stream; no scan is marked complete, nothing is "
    "deleted, no checkpoint moves (streams end 'sampled')"
)


GLOBAL_DEFAULTS: dict[str, Any] = {"config": None, "log_level": "info", "log_json": None}


def _global_options(suppress: bool) -> argparse.ArgumentParser:
    """``--config``/``--log-*``, accepted before and after the subcommand.

    The subcommands' copies default to SUPPRESS so a flag given before the subcommand is not
    overwritten by the subparser's default; ``main`` fills the defaults in afterwards.
    """
    default = argparse.SUPPRESS if suppress else None
    common = argparse.ArgumentParser(add_help=False)
    opts = common.add_argument_group("global options (before or after the command)")
    opts.add_argument(
        "--config", default=default, help="config file (default: $PIPELINE_CONFIG or config/pipeline.toml)"
    )
    opts.add_argument("--log-level", default=default, choices=log.LEVELS, help="default: info")
    fmt = opts.add_mutually_exclusive_group()
    fmt.add_argument(
        "--log-json", dest="log_json", action="store_true", default=default, help="JSON log lines"
    )
    fmt.add_argument(
        "--log-console",
        dest="log_json",
        action="store_false",
        default=default,
        help="readable log lines (default: JSON unless stderr is a terminal)",
    )
    return common


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pipeline",
        description=__doc__.splitlines()[0],
        parents=[_global_options(suppress=True)],
        epilog="Run 'pipeline COMMAND --help' for a command's options and an example.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common = _global_options(suppress=True)

    class _Sub:
        def add_parser(self, name: str, *, help: str, example: str) -> argparse.ArgumentParser:
            return sub.add_parser(
                name,
                help=help,
                description=help[0].upper() + help[1:] + ".",
                epilog="example:\n  " + example,
                parents=[common],
                formatter_class=argparse.RawDescriptionHelpFormatter,
            )

    commands = _Sub()

    def stream_filters(p: argparse.ArgumentParser) -> None:
        p.add_argument("--source", action="append", help="only this source (repeatable)")
        p.add_argument("--resource", action="append", help="only this resource (repeatable)")

    p = commands.add_parser(
        "sync",
        help="sync every enabled source (incremental where the API allows)",
        example="pipeline sync --source kitsu --log-json",
    )
    stream_filters(p)
    p.add_argument("--full", action="store_true", help="full re-scan instead of an incremental run")
    p.add_argument("--no-progress", action="store_true", help="no progress bars, even on a terminal")
    p.add_argument("--dry-run", action="store_true", help=DRY_RUN_HELP)
    p.add_argument("--max-pages", type=int, metavar="N", help=MAX_PAGES_HELP)
    p.add_argument("--metrics-file", metavar="PATH", help=METRICS_HELP)
    p.add_argument("--allow-deletes", action="store_true", help=ALLOW_DELETES_HELP)
    p.add_argument(
        "--include-disabled", action="store_true", help="run a named source even if it has enabled = false"
    )

    p = commands.add_parser(
        "backfill",
        help="re-load a window or everything, without moving nightly checkpoints",
        example="pipeline backfill --source anilist --since 2024-01-01 --until 2024-07-01",
    )
    p.add_argument("--source", help="source name (required unless --resume)")
    p.add_argument("--resource", action="append", help="only this resource (repeatable)")
    p.add_argument("--since", help="window start, YYYY-MM-DD or ISO datetime (UTC)")
    p.add_argument("--until", help="window end, exclusive (default: now)")
    p.add_argument("--full", action="store_true", help="full re-scan")
    p.add_argument("--resume", type=int, metavar="ID", help="resume backfill ID from etl.backfills")
    p.add_argument("--dry-run", action="store_true", help=DRY_RUN_HELP)
    p.add_argument("--max-pages", type=int, metavar="N", help=MAX_PAGES_HELP)
    p.add_argument("--metrics-file", metavar="PATH", help=METRICS_HELP)
    p.add_argument("--allow-deletes", action="store_true", help=ALLOW_DELETES_HELP)
    p.add_argument(
        "--include-disabled", action="store_true", help="run a named source even if it has enabled = false"
    )

    p = commands.add_parser(
        "replay",
        help="rebuild the unified tables from raw.records (no API calls)",
        example="pipeline replay --source kitsu --resource anime",
    )
    stream_filters(p)
    p.add_argument("--metrics-file", metavar="PATH", help=METRICS_HELP)

    for name, text, example in (
        ("status", "one row per stream: checkpoint, lag, last run", "pipeline status --json"),
        ("runs", "recent runs with their streams", "pipeline runs --last 5"),
    ):
        p = commands.add_parser(name, help=text, example=example)
        p.add_argument("--json", action="store_true", help="machine-readable output")
        if name == "runs":
            p.add_argument("--last", type=int, default=10, metavar="N")

    p = commands.add_parser(
        "sandbox",
        help="serve the five API simulators on 127.0.0.1 and write a config for them",
        example="pipeline sandbox --size small   # then: pipeline --config config/sandbox.toml sync",
    )
    p.add_argument("--size", default="small", choices=("small", "medium", "large"))
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8700, help="first port, one per service (0: free ports)")
    p.add_argument("--write-config", default="config/sandbox.toml", help="where to write the config")
    p.add_argument("--fast", action="store_true", help="raise AniList/Kitsu quotas (demos, benchmarks)")

    p = commands.add_parser(
        "demo",
        help="embedded Postgres + sandbox + full sync + summary and example queries",
        example="pipeline demo --size small",
    )
    p.add_argument("--size", default="medium", choices=("small", "medium", "large"))

    commands.add_parser(
        "migrate",
        help="apply pending migrations (also done before every sync)",
        example="DATABASE_URL=postgresql://etl@db/warehouse pipeline migrate",
    )
    p = commands.add_parser(
        "check-config",
        help="validate the config file (every problem at once) and probe the database",
        example="pipeline check-config --config config/pipeline.toml",
    )
    p.add_argument("--offline", action="store_true", help="do not connect to the database")

    p = commands.add_parser(
        "db",
        help="the database: print its URL or stop the embedded server",
        example='psql "$(pipeline db url --show-password)"',
    )
    p.add_argument("action", choices=("url", "stop"))
    p.add_argument(
        "--show-password",
        action="store_true",
        help='print the password too (for psql "$(pipeline db url --show-password)"); default: masked',
    )
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(args.config)


def _database_settings(args: argparse.Namespace) -> Settings:
    """The settings for a command that needs only the database (``migrate``, ``db url``).

    With no ``--config``/``$PIPELINE_CONFIG`` and no default file, the database is still known
    (``DATABASE_URL`` or the embedded server): an installed package migrates from any directory.
    """
    if args.config is None and not os.environ.get("PIPELINE_CONFIG") and not config_path(None).exists():
        return Settings()
    return load_settings(args.config)


def cmd_check_config(args: argparse.Namespace) -> int:
    settings = _settings(args)
    enabled = ", ".join(f"{s.name} ({s.kind})" for s in settings.enabled_sources()) or "none"
    print(f"{config_path(args.config)}: ok; enabled sources: {enabled}")
    for warning in settings.warnings:
        print(f"warning: {warning}")
    if args.offline:
        return EXIT_OK
    from pipeline import db

    url = db.resolve_url(settings.database_url())

    async def probe() -> tuple[str, int]:
        conn = await db.connect(url)
        try:
            version = await db.require_server_version(conn)
            return version, len(await db.pending(conn))
        finally:
            await conn.close()

    version, pending = asyncio.run(probe())
    todo = f"{pending} migration(s) pending (applied by the next command)" if pending else "schema up to date"
    print(f"database {db.display_url(url)}: ok; PostgreSQL {version}; {todo}")
    return EXIT_OK


def cmd_migrate(args: argparse.Namespace) -> int:
    from pipeline import db

    settings = _database_settings(args)
    url = db.resolve_url(settings.database_url())

    async def go() -> list[str]:
        conn = await db.connect(url)
        try:
            return await db.migrate(conn)
        finally:
            await conn.close()

    applied = asyncio.run(go())
    print(f"applied {len(applied)} migration(s)" + (": " + ", ".join(applied) if applied else "; up to date"))
    return EXIT_OK


def cmd_db(args: argparse.Namespace) -> int:
    from pipeline import db

    if args.action == "stop":
        stopped = db.stop_embedded()
        print("embedded database stopped" if stopped else "embedded database was not running")
        return EXIT_OK
    url = db.resolve_url(_database_settings(args).database_url())
    print(url if args.show_password else db.display_url(url))
    return EXIT_OK


def _not_available(what: str) -> Handler:
    def handler(_: argparse.Namespace) -> int:
        print(f"pipeline {what}: not available yet in this version", file=sys.stderr)
        return EXIT_USAGE

    return handler


def _handler(command: str) -> Handler:
    """The function for a command; commands whose machinery is missing say so and exit 2."""
    handlers: dict[str, Handler] = {
        "check-config": cmd_check_config,
        "migrate": cmd_migrate,
        "db": cmd_db,
    }
    if command in handlers:
        return handlers[command]
    try:
        commands = importlib.import_module("pipeline.commands")
    except ModuleNotFoundError:
        return _not_available(command)
    found: Handler | None = getattr(commands, "cmd_" + command.replace("-", "_"), None)
    return found or _not_available(command)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
        return int(exc.code) if isinstance(exc.code, int) else EXIT_USAGE
    for name, value in GLOBAL_DEFAULTS.items():
        if not hasattr(args, name):
            setattr(args, name, value)
    log.configure(args.log_level, json=args.log_json)
    try:
        return _handler(args.command)(args)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"config error: {redact_text(problem)}", file=sys.stderr)
        return EXIT_USAGE
    except DatabaseError as exc:
        print(f"error: {redact_text(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except PipelineError as exc:
        print(f"error: {redact_text(str(exc))}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("interrupted; committed pages are kept, the next run resumes", file=sys.stderr)
        return 130
    except Exception as exc:
        if isinstance(exc, BrokenPipeError) and stdout_closed():
            return EXIT_PIPE_CLOSED
        lost = database_lost(exc)
        if lost is None:
            raise
        print(
            "error: the database is unreachable or the connection was lost "
            f"({type(lost).__name__}: {redact_text(str(lost))}); "
            "check that PostgreSQL is running and reachable (DATABASE_URL or [database] url), then "
            "re-run: committed pages are kept and the next run resumes",
            file=sys.stderr,
        )
        return EXIT_FAILED


def stdout_closed() -> bool:
    """True when standard output's reader went away (``pipeline status | head -3``).

    Then nothing more can be printed: stdout is pointed at /dev/null so the interpreter's own
    flush at exit stays quiet, and the command ends as a program killed by SIGPIPE would (141).
    """
    import select

    try:
        fd = sys.stdout.fileno()
        poller = select.poll()
        poller.register(fd, select.POLLOUT)
        events = poller.poll(0)
    except (OSError, ValueError, AttributeError):  # no real file behind stdout
        return False
    if not any(mask & (select.POLLERR | select.POLLHUP) for _, mask in events):
        return False
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)
    return True


def database_lost(exc: BaseException) -> BaseException | None:
    """The connection-level database error inside ``exc`` (an exception group too), if any."""
    import asyncpg

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, BaseExceptionGroup) and current.exceptions:
            inner = database_lost(current.exceptions[0])
            if inner is not None:
                return inner
        if isinstance(
            current,
            asyncpg.ConnectionDoesNotExistError
            | asyncpg.InterfaceError
            | asyncpg.CannotConnectNowError
            | asyncpg.AdminShutdownError
            | ConnectionError,
        ):
            return current
        current = current.__cause__ or current.__context__
    return None


def run_main(*_: Any) -> None:
    raise SystemExit(main())
