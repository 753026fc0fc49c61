"""Test databases: one migrated template per session, a fresh copy per test (CREATE DATABASE … TEMPLATE)."""

from __future__ import annotations

import asyncio
import os
import uuid
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from pipeline import db


def server_url() -> str:
    """``DATABASE_URL`` when set (e.g. the PostgreSQL 15 server), else the embedded server."""
    return os.environ.get("DATABASE_URL") or db.embedded_url()


def embedded_running() -> bool:
    """Whether the embedded server of this checkout is running (its postmaster.pid exists)."""
    return (db.DATA_DIR / "postgres" / "postmaster.pid").exists()


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


async def create_database(url: str, name: str, template: str | None = None) -> str:
    conn = await asyncpg.connect(url)
    try:
        clause = f' TEMPLATE "{template}"' if template else ""
        await conn.execute(f'CREATE DATABASE "{name}"{clause}')
    finally:
        await conn.close()
    return with_database(url, name)


async def drop_database(url: str, name: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def unique_name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


async def migrated_template(url: str) -> str:
    name = unique_name("pipeline_tmpl")
    target = await create_database(url, name)
    conn = await db.connect(target)
    try:
        await db.migrate(conn)
    finally:
        await conn.close()
    return name


def run(coro: object) -> object:
    return asyncio.run(coro)  # type: ignore[arg-type]
