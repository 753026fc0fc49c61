"""Dagster tests: skipped (with the reason) without the [dagster] extra; ``make dagster-test`` needs them."""

from __future__ import annotations

import importlib.util
import os

import pytest


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("PIPELINE_REQUIRE_DAGSTER") == "1" and importlib.util.find_spec("dagster") is None:
        raise pytest.UsageError(
            "PIPELINE_REQUIRE_DAGSTER=1 but dagster is not installed: pip install -e '.[dev,dagster]'"
        )
