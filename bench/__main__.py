"""Run every benchmark, compare each figure with its target, write bench/results/latest.{md,json}.

Each benchmark module exposes ``main() -> list[dict]`` with rows
``{"benchmark", "metric", "value", "target", "met", "note"}``. ``python -m bench NAME …`` runs a
subset. A benchmark that crashes is reported as a row with ``met = False`` and the error, and the
others still run.
"""

from __future__ import annotations

import importlib
import json
import platform
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCHMARKS = ("load", "load_kitsu", "ratelimit", "e2e", "memory", "nightly")
RESULTS = Path(__file__).resolve().parent / "results"


def run_one(name: str) -> list[dict[str, Any]]:
    started = time.perf_counter()
    try:
        module = importlib.import_module(f"bench.{name}")
        rows: list[dict[str, Any]] = module.main()
    except Exception as exc:  # a broken benchmark must not hide the others' figures
        traceback.print_exc()
        rows = [
            {
                "benchmark": name,
                "metric": "error",
                "value": None,
                "target": "-",
                "met": False,
                "note": f"{type(exc).__name__}: {exc}",
            }
        ]
    for row in rows:
        row.setdefault("note", "")
    print(f"== {name}: {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
    return rows


def render(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    lines = [
        "# Benchmark results",
        "",
        f"{meta['when']} · Python {meta['python']} · {meta['machine']} · total {meta['seconds']:.0f} s",
        "",
        "| benchmark | metric | value | target | met | note |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        value = r["value"]
        shown = f"{value:,.3f}" if isinstance(value, float) else ("-" if value is None else f"{value:,}")
        met = "met" if r["met"] else "**not met**"
        lines.append(f"| {r['benchmark']} | {r['metric']} | {shown} | {r['target']} | {met} | {r['note']} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    names = argv or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s) {unknown}; choose from {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    rows = [row for name in names for row in run_one(name)]
    meta = {
        "when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {len(__import__('os').sched_getaffinity(0))} cores",
        "seconds": time.perf_counter() - started,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2, default=str))
    table = render(rows, meta)
    (RESULTS / "latest.md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
