"""A private real Zou for the compatibility suite: its own venv, database, Redis and gunicorn servers.

Everything is local (127.0.0.1): the venv ``.data/zou-venv`` (pinned ``requirements.txt``, kept
between runs), a database ``zou_compat_<hex>`` on the PostgreSQL server of ``ZOU_COMPAT_PG``
(default ``postgresql://postgres@127.0.0.1:5432``), a ``redis-server`` on a free port (zou's Redis
database numbers are fixed, so the machine's Redis is never shared), ``zou init-db``,
``init-data`` and ``create-admin``, then two gunicorn servers on free ports: ``main`` (zou's token
lifetimes) and ``short`` (access tokens of ``SHORT_TOKEN_SECONDS``). Each writes an access log
(method, path, query, status per request) that the tests count requests with.

``Unavailable`` means the server could not be installed or started: the suite skips (or fails
when ``ZOU_COMPAT_REQUIRED=1``, as in ``.ci/run``), never passes.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
REQUIREMENTS = HERE / "requirements.txt"
ADMIN_EMAIL = "admin@compat.example"
SHORT_TOKEN_SECONDS = 2
BOOT_SECONDS = 90.0


class Unavailable(RuntimeError):
    """The real server cannot be installed or started here (the reason says why)."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _python() -> str:
    return shutil.which("python3.11") or sys.executable


def ensure_venv(path: Path = ROOT / ".data" / "zou-venv") -> Path:
    """The zou venv with the pinned packages (re-made when requirements.txt changes)."""
    wanted = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    stamp = path / ".requirements.sha256"
    if stamp.exists() and stamp.read_text() == wanted and (path / "bin" / "zou").exists():
        return path
    shutil.rmtree(path, ignore_errors=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    steps = (
        [_python(), "-m", "venv", str(path)],
        [str(path / "bin" / "python"), "-m", "pip", "install", "--quiet", "-r", str(REQUIREMENTS)],
    )
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True, timeout=900, check=False)
        if done.returncode != 0:
            tail = (done.stderr or done.stdout)[-800:]
            raise Unavailable(f"cannot install zou/gazu ({' '.join(step[:4])} …): {tail}")
    stamp.write_text(wanted)
    return path


@dataclass
class Gunicorn:
    name: str
    port: int
    access_log: Path
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def mark(self) -> int:
        return self.access_log.stat().st_size if self.access_log.exists() else 0

    def requests_since(self, mark: int) -> list[tuple[str, str, str, int]]:
        """(method, path, query, status) of every request logged after ``mark``."""
        with self.access_log.open("rb") as handle:
            handle.seek(mark)
            lines = handle.read().decode().splitlines()
        out = []
        for line in lines:
            parts = line.split(" ")
            if len(parts) == 4 and parts[3].isdigit():
                out.append((parts[0], parts[1], parts[2], int(parts[3])))
        return out


@dataclass
class ZouServer:
    venv: Path
    workdir: Path
    database: str
    pg_url: str
    env: dict[str, str]
    password: str
    servers: dict[str, Gunicorn] = field(default_factory=dict)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def email(self) -> str:
        return ADMIN_EMAIL

    def db_url(self) -> str:
        return f"{self.pg_url.rstrip('/')}/{self.database}"

    def studio(self, *args: str, server: str = "main") -> dict[str, Any]:
        """Run ``studio.py`` (gazu, in the zou venv) and return its JSON answer."""
        env = {
            **self.env,
            "ZOU_URL": self.servers[server].url,
            "ZOU_EMAIL": ADMIN_EMAIL,
            "ZOU_PASSWORD": self.password,
        }
        done = subprocess.run(
            [str(self.venv / "bin" / "python"), str(HERE / "studio.py"), *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
            check=False,
        )
        if done.returncode != 0:
            raise AssertionError(f"studio.py {' '.join(args)} failed: {done.stderr[-2000:]}")
        result: dict[str, Any] = json.loads(done.stdout)
        return result

    def zou(self, *args: str) -> None:
        done = subprocess.run(
            [str(self.venv / "bin" / "zou"), *args],
            capture_output=True,
            text=True,
            env=self.env,
            timeout=300,
            check=False,
        )
        if done.returncode != 0:
            raise Unavailable(f"zou {args[0]} failed: {(done.stderr or done.stdout)[-800:]}")

    def start_gunicorn(self, name: str, token_seconds: int | None) -> Gunicorn:
        port = free_port()
        access = self.workdir / f"access-{name}.log"
        env = {**self.env, "COMPAT_JWT_ACCESS_SECONDS": str(token_seconds or "")}
        command = [
            str(self.venv / "bin" / "gunicorn"),
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "2",
            "--chdir",
            str(HERE),
            "--access-logfile",
            str(access),
            "--access-logformat",
            "%(m)s %(U)s %(q)s %(s)s",
            "--error-logfile",
            str(self.workdir / f"error-{name}.log"),
            "wsgi_compat:app",
        ]
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.processes.append(process)
        started = time.monotonic()
        while time.monotonic() - started < BOOT_SECONDS:
            try:
                process.wait(timeout=0.25)  # the poll interval; an exit means it cannot start
            except subprocess.TimeoutExpired:
                pass
            else:
                log = (self.workdir / f"error-{name}.log").read_text()[-800:]
                raise Unavailable(f"gunicorn ({name}) exited with {process.returncode}: {log}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                continue
        else:
            raise Unavailable(f"gunicorn ({name}) did not listen on 127.0.0.1:{port} in {BOOT_SECONDS:.0f} s")
        server = Gunicorn(name, port, access, process)
        self.servers[name] = server
        return server

    def stop(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=5)


async def _admin(pg_url: str, sql: str) -> None:
    conn = await asyncio.wait_for(asyncpg.connect(f"{pg_url.rstrip('/')}/postgres"), 10)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextmanager
def running_zou() -> Iterator[ZouServer]:
    """Install (once), create, initialise and serve a private Zou; everything is removed afterwards."""
    if shutil.which("redis-server") is None:
        raise Unavailable("redis-server is not installed (apt-get install redis-server)")
    pg_url = os.environ.get("ZOU_COMPAT_PG", "postgresql://postgres@127.0.0.1:5432")
    database = f"zou_compat_{secrets.token_hex(6)}"
    try:
        asyncio.run(_admin(pg_url, f'CREATE DATABASE "{database}"'))
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        raise Unavailable(f"no PostgreSQL for zou at {pg_url}: {type(exc).__name__}: {exc}") from exc
    venv = ensure_venv()
    workdir = Path(tempfile.mkdtemp(prefix="zou-compat-"))
    redis_port = free_port()
    host, port = pg_url.rsplit("@", 1)[-1].split(":") if "@" in pg_url else ("127.0.0.1", "5432")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(workdir),
        "DB_HOST": host,
        "DB_PORT": port.split("/")[0],
        "DB_USERNAME": "postgres",
        "DB_PASSWORD": "",
        "DB_DATABASE": database,
        "DB_POOL_SIZE": "5",
        "DB_MAX_OVERFLOW": "5",
        "KV_HOST": "127.0.0.1",
        "KV_PORT": str(redis_port),
        "SECRET_KEY": secrets.token_hex(32),
        "PREVIEW_FOLDER": str(workdir / "previews"),
        "TMP_DIR": str(workdir / "tmp"),
        "INDEXER_HOST": "127.0.0.1",
        "INDEXER_PORT": str(free_port()),  # nothing listens: search indexing is skipped
        "MAIL_ENABLED": "false",
        "MAIL_CHECK_DELIVERABILITY": "false",
        "EVENT_STREAM_HOST": "127.0.0.1",
    }
    server = ZouServer(venv, workdir, database, pg_url, env, secrets.token_urlsafe(12) + "-Aa1")
    try:
        redis = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(redis_port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        server.processes.append(redis)
        server.zou("init-db")
        server.zou("init-data")
        server.zou("create-admin", ADMIN_EMAIL, "--password", server.password)
        server.start_gunicorn("main", None)
        server.start_gunicorn("short", SHORT_TOKEN_SECONDS)
        yield server
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
        with suppress(OSError, asyncpg.PostgresError, TimeoutError):
            asyncio.run(_admin(pg_url, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
