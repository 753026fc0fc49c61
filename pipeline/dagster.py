"""``defs`` for Dagster: ``dagster dev -m pipeline.dagster``, ``dagster asset materialize``.

Built from ``$PIPELINE_CONFIG`` (else ``config/pipeline.toml``) and ``DATABASE_URL`` (else
``[database] url``, else the embedded server) when Dagster loads the module; see
``pipeline.dagster_assets`` for what it holds and docs/OPERATIONS.md for running it.

``python -m pipeline.dagster set-pools [--limit N]`` gives the pool of every enabled source an
explicit limit (default 1) in the storage of ``$DAGSTER_HOME``: run it once per deployment, and
again after adding a source.
"""

from __future__ import annotations

import argparse
import sys

from pipeline.dagster_assets import build_defs, set_pool_limits
from pipeline.settings import load_settings

defs = build_defs()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.dagster",
        description="Dagster helpers for the pipeline's definitions.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    pools = commands.add_parser(
        "set-pools",
        help="give every enabled source's pool an explicit slot limit in $DAGSTER_HOME's storage",
        description="Set the concurrency limit of the pool of every enabled source (one per rate "
        "group) in the Dagster instance of $DAGSTER_HOME. Prints each pool and its limit.",
        epilog="example: DAGSTER_HOME=/srv/dagster PIPELINE_CONFIG=/etc/pipeline.toml "
        "python -m pipeline.dagster set-pools --limit 1",
    )
    pools.add_argument("--limit", type=int, default=1, help="slots per pool (default 1: one op per API)")
    args = parser.parse_args(argv)

    import dagster as dg

    with dg.DagsterInstance.get() as instance:
        try:
            limits = set_pool_limits(instance, load_settings(), args.limit)
        except ValueError as exc:
            print(f"set-pools: {exc}", file=sys.stderr)
            return 2
    for pool, limit in limits.items():
        print(f"{pool}\t{limit}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
