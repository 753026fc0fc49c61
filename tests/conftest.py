"""Shared fixtures: real PostgreSQL databases (embedded, or DATABASE_URL), fresh per test."""

from __future__ import annotations

import asyncio
import os
import types
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import asyncpg
import pytest
from aioresponses import core as aioresponses_core

from pipeline import db
from tests import dbutil

os.environ.setdefault("XDG_RUNTIME_DIR", f"/tmp/pipeline-runtime-{os.getuid()}")  # noqa: S108
os.makedirs(os.environ["XDG_RUNTIME_DIR"], mode=0o700, exist_ok=True)


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """URL of the server under test (maintenance database).

    Without ``DATABASE_URL`` this is the embedded server; if the suite had to start it, the
    suite stops it at the end (one that was already running is left running).
    """
    started_here = not os.environ.get("DATABASE_URL") and not dbutil.embedded_running()
    yield dbutil.server_url()
    if started_here:
        db.stop_embedded()


@pytest.fixture(scope="session")
def template_database(database_url: str) -> Iterator[str]:
    """A database with every migration applied, copied for each test that needs one."""
    name = asyncio.run(dbutil.migrated_template(database_url))
    yield name
    asyncio.run(dbutil.drop_database(database_url, name))


@pytest.fixture
def db_url(database_url: str, template_database: str) -> Iterator[str]:
    """A fresh, fully migrated database for one test."""
    name = dbutil.unique_name("pipeline_test")
    url = asyncio.run(dbutil.create_database(database_url, name, template=template_database))
    yield url
    asyncio.run(dbutil.drop_database(database_url, name))


@pytest.fixture
async def pool(db_url: str) -> AsyncIterator[asyncpg.Pool]:
    """An asyncpg pool on a fresh migrated database."""
    async with db.pool_for(db_url, min_size=1, max_size=8) as p:
        yield p


@pytest.fixture
def empty_db_url(database_url: str) -> Iterator[str]:
    """A fresh database with no migration applied."""
    name = dbutil.unique_name("pipeline_empty")
    url = asyncio.run(dbutil.create_database(database_url, name))
    yield url
    asyncio.run(dbutil.drop_database(database_url, name))


class _CompatResponse(aiohttp.ClientResponse):
    """aiohttp 3.14 requires ``stream_writer``, which aioresponses 0.7.9 does not pass (issue #289)."""

    def __init__(self, method: str, url: Any, **kwargs: Any) -> None:
        kwargs.setdefault("stream_writer", types.SimpleNamespace(output_size=0))
        super().__init__(method, url, **kwargs)


@pytest.fixture(autouse=True)
def aiohttp_compat(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let aioresponses build responses under aiohttp 3.14 (remove once aioresponses is fixed)."""
    monkeypatch.setattr(aioresponses_core, "ClientResponse", _CompatResponse)


@pytest.fixture(autouse=True)
def forget_secrets() -> Iterator[None]:
    """Each test starts with an empty secret registry (``pipeline.redact.SECRETS`` is process-wide)."""
    from pipeline.redact import SECRETS

    SECRETS.clear()
    yield
    SECRETS.clear()
