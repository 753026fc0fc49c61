"""Dagster tests: not collected without the [dagster] extra (``make dagster-test`` installs it and
requires them; ``make test`` without it runs the rest)."""

from __future__ import annotations

import importlib.util
import os

import pytest

# Without dagster the module cannot be imported at all: leave it out of collection instead of
# collecting a skip.
collect_ignore = [] if importlib.util.find_spec("dagster") else ["test_dagster.py"]


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("PIPELINE_REQUIRE_DAGSTER") == "1" and importlib.util.find_spec("dagster") is None:
        raise pytest.UsageError(
            "PIPELINE_REQUIRE_DAGSTER=1 but dagster is not installed: pip install -e '.[dev,dagster]'"
        )
