"""Shared fixtures: real PostgreSQL databases (embedded, or DATABASE_URL), fresh per test."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest

from pipeline import db
from tests import dbutil

os.environ.setdefault("XDG_RUNTIME_DIR", f"/tmp/pipeline-runtime-{os.getuid()}")  # noqa: S108
os.makedirs(os.environ["XDG_RUNTIME_DIR"], mode=0o700, exist_ok=True)


@pytest.fixture(scope="session")
def database_url() -> str:
    """URL of the server under test (maintenance database)."""
    return dbutil.server_url()


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
