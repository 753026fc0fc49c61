"""The sandbox simulators in a process of their own: ``python -m bench.servers.sandbox``.

Prints one JSON line when ready (``urls``, ``roots``, ``config``, ``startup_seconds``, ``counts``)
and serves until SIGTERM/SIGINT. ``--option key=value`` passes start-up options (integers parsed).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys

import orjson

from pipeline.sandbox.server import start_sandbox, write_config


def _option(text: str) -> tuple[str, object]:
    key, _, value = text.partition("=")
    return key, int(value) if value.lstrip("-").isdigit() else value


async def serve(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    services = tuple(args.services.split(",")) if args.services else None
    options = dict(_option(o) for o in args.option)
    async with await start_sandbox(args.size, services=services, options=options) as sandbox:
        written = write_config(sandbox, args.config)
        world = sandbox.ctx.need_world()
        counts = {
            kind: sum(1 for w in world.works if w.kind == kind and not w.deleted)
            for kind in ("anime", "manga")
        }
        ready = {
            "urls": sandbox.urls,
            "roots": sandbox.roots,
            "config": str(written),
            "startup_seconds": round(sandbox.startup_seconds, 2),
            "counts": counts,
        }
        sys.stdout.write(orjson.dumps(ready).decode() + "\n")
        sys.stdout.flush()
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.servers.sandbox")
    parser.add_argument("--size", default="small", choices=("small", "medium", "large"))
    parser.add_argument("--services", default="", help="comma-separated simulators (default: all)")
    parser.add_argument("--config", required=True, help="where to write the pipeline config")
    parser.add_argument("--option", action="append", default=[], help="start-up option key=value")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(parser.parse_args()))


if __name__ == "__main__":
    main()
