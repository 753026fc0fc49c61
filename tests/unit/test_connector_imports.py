"""The connector contract is light: a connector loads no database driver, loader, runner or db module.

Each import runs in a fresh interpreter (``sys.modules`` of this test process already holds
everything the suite imported).
"""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import orjson
import pytest

import pipeline.sources

FORBIDDEN = ("asyncpg", "pipeline.load", "pipeline.runner", "pipeline.db", "pipeline.checkpoints")
CONNECTORS = sorted(m.name for m in pkgutil.iter_modules(pipeline.sources.__path__))

PROBE = """
import sys, orjson
import {module}
print(orjson.dumps(sorted(sys.modules)).decode())
"""


def loaded_after(module: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(module=module)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    modules: list[str] = orjson.loads(done.stdout)
    return modules


def forbidden_in(modules: list[str]) -> list[str]:
    return [m for m in modules if any(m == f or m.startswith(f + ".") for f in FORBIDDEN)]


def test_every_connector_module_is_probed() -> None:
    assert {"kitsu", "anilist", "anilist_v1", "nekos", "zou"} <= set(CONNECTORS)


@pytest.mark.parametrize("module", ["pipeline.streams", "pipeline.sources", "pipeline.transform"])
def test_contract_modules_load_no_engine(module: str) -> None:
    assert forbidden_in(loaded_after(module)) == []


@pytest.mark.parametrize("name", CONNECTORS)
def test_connector_loads_no_engine(name: str) -> None:
    modules = loaded_after(f"pipeline.sources.{name}")
    assert f"pipeline.sources.{name}" in modules  # the probe really imported the connector
    assert forbidden_in(modules) == []


def test_the_probe_sees_the_engine_when_it_is_imported() -> None:
    """The check can fail: importing the runner shows up as forbidden."""
    assert {"asyncpg", "pipeline.runner", "pipeline.load"} <= set(
        forbidden_in(loaded_after("pipeline.runner"))
    )


def test_checkpoints_record_progress_without_the_loader() -> None:
    """checkpoints.py decides which records a scan lost and records progress; applying deletes (and
    a page's tombstones) is load/'s, handed in by the runner."""
    modules = loaded_after("pipeline.checkpoints")
    assert "pipeline.checkpoints" in modules
    assert [m for m in modules if m == "pipeline.load" or m.startswith("pipeline.load.")] == []


def test_connectors_module_loads_nothing_of_the_engine() -> None:
    """pipeline.connectors is read by settings: it must not pull connectors or the engine in."""
    modules = loaded_after("pipeline.connectors")
    assert not [m for m in modules if m.startswith(("pipeline.sources", "pipeline.settings"))]
    assert forbidden_in(modules) == []
