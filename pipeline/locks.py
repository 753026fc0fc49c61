"""Advisory locks per (source, resource): an overlapping run skips a stream instead of loading it twice.

The lock is session-level on the connection that loads the stream, held for the stream's whole life;
if the process dies the connection closes and PostgreSQL releases it.
"""

from __future__ import annotations

import hashlib

import asyncpg

_NAMESPACE = b"pipeline.stream:"


def lock_key(source: str, resource: str) -> int:
    """A stable signed 64-bit key for ``pg_try_advisory_lock``."""
    digest = hashlib.blake2b(_NAMESPACE + f"{source}/{resource}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


async def try_lock_stream(conn: asyncpg.Connection, source: str, resource: str) -> bool:
    """Take the stream's lock on ``conn`` if nobody holds it; never waits."""
    return bool(await conn.fetchval("SELECT pg_try_advisory_lock($1)", lock_key(source, resource)))


async def unlock_stream(conn: asyncpg.Connection, source: str, resource: str) -> None:
    await conn.execute("SELECT pg_advisory_unlock($1)", lock_key(source, resource))


async def lock_holder(conn: asyncpg.Connection, source: str, resource: str) -> int | None:
    """Process id of the backend holding the stream's lock, for the "skipped" message."""
    key = lock_key(source, resource)
    pid: int | None = await conn.fetchval(
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
        "AND objsubid = 1 AND ((classid::bigint << 32) | objid::bigint) = $1 LIMIT 1",
        key,
    )
    return pid
