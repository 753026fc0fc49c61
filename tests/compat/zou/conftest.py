"""The real Zou server for the compatibility suite: started once per session, seeded through gazu."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from tests.compat.zou.server import Unavailable, ZouServer, running_zou


@pytest.fixture(scope="session")
def zou_server() -> Iterator[ZouServer]:
    """A private zou 1.0.97; skips (fails under ZOU_COMPAT_REQUIRED=1) when it cannot run here."""
    try:
        with running_zou() as server:
            yield server
    except Unavailable as exc:
        message = f"real Zou server unavailable, compatibility suite not run: {exc}"
        if os.environ.get("ZOU_COMPAT_REQUIRED") == "1":
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="session")
def seeded(zou_server: ZouServer) -> dict[str, Any]:
    """What ``studio.py seed`` made (two projects with assets, shots, tasks, comments, time spents)."""
    return zou_server.studio("seed")
