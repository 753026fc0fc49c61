"""Shared benchmark plumbing: result rows, scratch databases, bench-owned servers, measured children.

Clients and servers run in separate processes so each side's CPU time and memory are its own:
``BenchServer`` starts ``python -m bench.servers.<name>`` and reads its one-line JSON "ready"
message; ``run_child`` runs ``python -m <module> …``, samples its RSS with psutil and returns the
JSON object it prints last, plus the peak RSS it reported itself (``ru_maxrss``) and the sample.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import resource
import select
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import orjson

from pipeline import db

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
READY_TIMEOUT = 120.0


class BenchSetupError(RuntimeError):
    """A benchmark's prerequisite is missing; the message says what to install or start."""


def row(benchmark: str, metric: str, value: Any, target: str, met: bool, note: str = "") -> dict[str, Any]:
    return {
        "benchmark": benchmark,
        "metric": metric,
        "value": value,
        "target": target,
        "met": met,
        "note": note,
    }


def require(module: str, remedy: str) -> None:
    """Fail loudly, naming the fix, when a module the benchmark needs is not importable."""
    if importlib.util.find_spec(module) is None:
        raise BenchSetupError(f"module {module!r} is not importable; {remedy}")


def require_connector(kind: str) -> None:
    require(f"pipeline.sources.{kind}", f"the {kind} connector (pipeline/sources/{kind}.py) must exist")


def self_peak_rss_mb() -> float:
    """This process's peak resident set size in MB (Linux reports ``ru_maxrss`` in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def emit(result: dict[str, Any]) -> None:
    """A child's last stdout line: its result as JSON, with its own peak RSS."""
    result = {**result, "peak_rss_mb": round(self_peak_rss_mb(), 1)}
    sys.stdout.write(orjson.dumps(result).decode() + "\n")
    sys.stdout.flush()


# -- databases --------------------------------------------------------------------------------------
def server_url() -> str:
    """``DATABASE_URL`` when set, else the embedded server (started on demand)."""
    return os.environ.get("DATABASE_URL") or db.embedded_url()


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


@contextlib.asynccontextmanager
async def scratch_database(prefix: str, *, migrate: bool = True) -> AsyncIterator[str]:
    """A fresh database (migrated unless told otherwise) on the server, dropped afterwards."""
    base = server_url()
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(base)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = with_database(base, name)
    try:
        if migrate:
            conn = await db.connect(url)
            try:
                await db.migrate(conn)
            finally:
                await conn.close()
        yield url
    finally:
        admin = await asyncpg.connect(base)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


# -- processes --------------------------------------------------------------------------------------
def process_cpu(pid: int) -> float | None:
    """CPU seconds (user + system) process ``pid`` has used so far, or None if it cannot be read."""
    import psutil

    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return None
    return float(times.user + times.system)


async def postmaster_pid(url: str) -> int | None:
    """The PostgreSQL server's postmaster, when it runs on this machine and can be read (else None)."""
    import psutil

    conn = await asyncpg.connect(url)
    try:
        backend = int(await conn.fetchval("SELECT pg_backend_pid()"))
        process = psutil.Process(backend)  # read while the backend lives
        parent = process.parent() if "postgres" in process.name() else None
    except psutil.Error:
        return None  # another machine (the pid means nothing here), or no right to read it
    finally:
        await conn.close()
    return parent.pid if parent is not None else None


def server_cpu(postmaster: int | None) -> float | None:
    """CPU seconds of a PostgreSQL server so far: the postmaster, its live processes and every backend
    that has exited (the postmaster reaps them, so their time is in its children's times)."""
    import psutil

    if postmaster is None:
        return None
    try:
        main = psutil.Process(postmaster)
        times = main.cpu_times()
        total = times.user + times.system + times.children_user + times.children_system
        for child in main.children():
            with contextlib.suppress(psutil.Error):
                t = child.cpu_times()
                total += t.user + t.system
    except psutil.Error:
        return None
    return float(total)


class BenchServer:
    """``python -m bench.servers.<name> ARGS`` in its own process; ``info`` is its ready message."""

    def __init__(self, name: str, args: Sequence[str]) -> None:
        self.command = [PYTHON, "-m", f"bench.servers.{name}", *args]
        self.proc: subprocess.Popen[bytes] | None = None
        self.info: dict[str, Any] = {}

    def __enter__(self) -> BenchServer:
        self.proc = subprocess.Popen(self.command, cwd=ROOT, stdout=subprocess.PIPE, stderr=sys.stderr)
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], READY_TIMEOUT)
        line = self.proc.stdout.readline() if ready else b""
        if not line:
            self.stop()
            raise BenchSetupError(
                f"{' '.join(self.command[2:])} did not report ready within {READY_TIMEOUT:.0f} s "
                "(its stderr is above)"
            )
        self.info = orjson.loads(line)
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def run_child(
    module: str, args: Sequence[str], timeout: float, env: dict[str, str] | None = None
) -> dict[str, Any]:
    """Run ``python -m module ARGS``; return its last JSON line plus ``sampled_peak_rss_mb``."""
    import psutil

    command = [PYTHON, "-m", module, *args]
    started = time.monotonic()
    proc = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=sys.stderr, env={**os.environ, **(env or {})}
    )
    sampled = 0
    handle = psutil.Process(proc.pid)
    while proc.poll() is None:
        with contextlib.suppress(psutil.Error):
            sampled = max(sampled, handle.memory_info().rss)
        if time.monotonic() - started > timeout:
            proc.kill()
            proc.wait()
            raise TimeoutError(f"{' '.join(command[1:])} ran over {timeout:.0f} s and was killed")
        time.sleep(0.05)
    assert proc.stdout is not None
    lines = [line for line in proc.stdout.read().splitlines() if line.strip()]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{' '.join(command[1:])} exited {proc.returncode}; its stderr is above")
    result: dict[str, Any] = orjson.loads(lines[-1])
    result["sampled_peak_rss_mb"] = round(sampled / 2**20, 1)
    result["wall_seconds"] = round(time.monotonic() - started, 2)
    return result
