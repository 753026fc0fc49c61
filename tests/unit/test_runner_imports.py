"""The unified models are imported before a stream's first request, never inside a running load.

Importing ``pipeline.models`` builds ~40 sqlmodel classes: about a second of synchronous work on a
busy two-core machine. Done lazily inside the first load it held the event loop while the
extractor's next rate slot fell due, so the slot went unused (a shared 1 req/s budget saw a 2 s
gap after every process's first page). Each check runs in a fresh interpreter, where nothing has
imported the models yet.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def fresh(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip()


def test_the_runner_imports_the_models_before_any_source_opens_a_client() -> None:
    out = fresh(
        """
        import asyncio, contextlib, sys
        from pipeline.runner import run_sources
        print("before", "pipeline.models" in sys.modules)

        @contextlib.asynccontextmanager
        async def client_factory(src):
            print("client", "pipeline.models" in sys.modules)
            yield None

        async def run_one(stream):
            raise AssertionError("no stream is run in this check")

        asyncio.run(run_sources([("src", [])], lambda *a: None, client_factory, run_one))
        """
    )
    assert out.splitlines() == ["before False", "client True"]


def test_a_loader_imports_the_models_when_built_not_at_its_first_load() -> None:
    out = fresh(
        """
        import sys
        from pipeline.load import Loader
        print("before", "pipeline.models" in sys.modules)
        Loader(None, "kitsu", None)
        print("built", "pipeline.models" in sys.modules)
        """
    )
    assert out.splitlines() == ["before False", "built True"]
