"""Start every simulator on its own port, write a ready pipeline config, serve until Ctrl-C.

    async with await start_sandbox("small") as sandbox:    # tests, benchmarks, the demo
        sandbox.urls["kitsu"]                               # http://127.0.0.1:PORT/api/edge
        sandbox.ctx.advance_clock(3600)

``serve`` backs the ``pipeline sandbox`` command.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType, TracebackType
from typing import Any

from aiohttp import web

from pipeline.connectors import connector_spec
from pipeline.sandbox.core import DEFAULT_SEED, SandboxContext

SERVICES = ("kitsu", "anilist", "anilist_v1", "zou", "nekos")
# ``--fast``: quotas raised for demos and benchmarks. Every quirk stays, and so does Nekos' 1 req/s
# and its bans (that limit is what the sandbox is there to prove).
FAST_OPTIONS = {
    "anilist_requests_per_minute": 600,
    "anilist_v1_requests_per_minute": 600,
    "kitsu_requests_per_second": 60,
    "kitsu_in_flight": 8,
    "min_rescan_minutes": 30,  # full re-scans (Kitsu, AniList v1, Nekos) at most every half hour
}
BASE_PATHS = {"kitsu": "/api/edge", "anilist": "", "anilist_v1": "/api", "zou": "/api", "nekos": "/api"}


@dataclass
class Sandbox:
    """Running simulators: ``urls`` maps service → base_url; ``ctx`` drives them in-process."""

    ctx: SandboxContext
    urls: dict[str, str] = field(default_factory=dict)
    roots: dict[str, str] = field(default_factory=dict)  # service → http://host:port (control API)
    startup_seconds: float = 0.0
    _runners: list[web.AppRunner] = field(default_factory=list)

    async def stop(self) -> None:
        """Release hanging responses, then shut every server down."""
        for service in list(self.ctx.faults):
            self.ctx.release_hung(service)
        runners, self._runners = self._runners, []
        for runner in runners:
            await runner.cleanup()

    async def __aenter__(self) -> Sandbox:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()


def available_services() -> dict[str, ModuleType]:
    """Every simulator module present, in the canonical order."""
    found = {}
    for name in SERVICES:
        try:
            found[name] = importlib.import_module(f"pipeline.sandbox.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"pipeline.sandbox.{name}":
                raise
    return found


async def start_sandbox(
    size: str = "small",
    host: str = "127.0.0.1",
    ports: dict[str, int] | None = None,
    seed: int = DEFAULT_SEED,
    services: tuple[str, ...] | None = None,
    options: dict[str, Any] | None = None,
) -> Sandbox:
    """Generate the world and start each simulator on its port (0 or absent = a free one)."""
    started = time.perf_counter()
    ctx = SandboxContext.build(size, seed, options=options)
    sandbox = Sandbox(ctx)
    ports = ports or {}
    try:
        for name, module in available_services().items():
            if services is not None and name not in services:
                continue
            app: web.Application = module.create_app(ctx)
            runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=1.0)
            await runner.setup()
            sandbox._runners.append(runner)
            site = web.TCPSite(runner, host, ports.get(name, 0))
            await site.start()
            bound = runner.addresses[0]
            root = f"http://{host}:{bound[1]}"
            sandbox.roots[name] = root
            sandbox.urls[name] = root + BASE_PATHS.get(name, "")
    except BaseException:
        await sandbox.stop()
        raise
    sandbox.startup_seconds = time.perf_counter() - started
    return sandbox


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {value!r} to TOML")


def source_settings(sandbox: Sandbox) -> dict[str, dict[str, Any]]:
    """The ``[sources.*]`` tables for the running simulators, with their real sandbox credentials."""
    urls = sandbox.urls
    out: dict[str, dict[str, Any]] = {}
    if "kitsu" in urls:
        from pipeline.sandbox import kitsu

        out["kitsu"] = {
            "kind": "kitsu",
            "base_url": urls["kitsu"],
            "resources": list(connector_spec("kitsu").resources),
            # Kitsu documents no read limit; the sandbox config asks for a polite 20/s by default.
            "rate": {
                "requests": int(sandbox.ctx.options.get("kitsu_requests_per_second", 20)),
                "per_seconds": 1.0,
            },
            "max_in_flight": int(sandbox.ctx.options.get("kitsu_in_flight", 4)),
            "page_size": 20,
            **_rescan(sandbox),
            "auth": {
                "kind": "oauth_password",
                "username": kitsu.USERNAME,
                "password": kitsu.PASSWORD,
                "token_url": sandbox.roots["kitsu"] + "/api/oauth/token",
            },
        }
    if "anilist" in urls:
        out["anilist"] = {
            "kind": "anilist",
            "base_url": urls["anilist"] or sandbox.roots["anilist"],
            "resources": ["anime", "manga"],
            "rate": {
                "requests": int(sandbox.ctx.options.get("anilist_requests_per_minute", 30)),
                "per_seconds": 60.0,
            },
            "max_in_flight": 1,
            "page_size": 50,
        }
    if "anilist_v1" in urls:
        from pipeline.sandbox import anilist_v1

        out["anilist_v1"] = {
            "kind": "anilist_v1",
            "base_url": urls["anilist_v1"],
            "resources": ["anime", "manga"],
            "rate": {
                "requests": int(sandbox.ctx.options.get("anilist_v1_requests_per_minute", 90)),
                "per_seconds": 60.0,
            },
            "max_in_flight": 2,
            "page_size": 40,
            **_rescan(sandbox),
            "auth": {
                "kind": "oauth_client_credentials",
                "client_id": anilist_v1.CLIENT_ID,
                "client_secret": anilist_v1.CLIENT_SECRET,
                "token_url": urls["anilist_v1"] + "/auth/access_token",
            },
        }
    out |= _production_sources(sandbox)
    return out


def _production_sources(sandbox: Sandbox) -> dict[str, dict[str, Any]]:
    urls = sandbox.urls
    out: dict[str, dict[str, Any]] = {}
    if "zou" in urls:
        zou_data = importlib.import_module("pipeline.sandbox.zou_data")
        out["zou"] = {
            "kind": "zou",
            "base_url": urls["zou"],
            "rate": {"requests": 20, "per_seconds": 1.0},
            "max_in_flight": 4,
            "page_size": 100,
            "auth": {"kind": "zou_jwt", "email": zou_data.ADMIN_EMAIL, "password": zou_data.ADMIN_PASSWORD},
        }
    if "nekos" in urls:
        nekos = importlib.import_module("pipeline.sandbox.nekos")
        out["nekos"] = {
            "kind": "nekos",
            "base_url": urls["nekos"],
            "rate": {"requests": 1, "per_seconds": 1.0},
            "max_in_flight": 1,
            "page_size": 25,
            **_rescan(sandbox),
            "violation_budget": 2,
            "auth": {"kind": "bearer", "token": nekos.SANDBOX_TOKEN},
        }
    return out


def _rescan(sandbox: Sandbox) -> dict[str, Any]:
    """``min_rescan_minutes`` for full-scan sources when the sandbox runs with it (``--fast``)."""
    minutes = sandbox.ctx.options.get("min_rescan_minutes")
    return {} if minutes is None else {"min_rescan_minutes": minutes}


def write_config(sandbox: Sandbox, path: str | Path) -> Path:
    """Write a pipeline config TOML pointing at the running sandbox; return its path."""
    target = Path(path)
    lines = [
        "# Pipeline configuration for the local sandbox (written by `pipeline sandbox`).",
        f"# Dataset size {sandbox.ctx.size!r}, seed {sandbox.ctx.seed}. Credentials are the sandbox's own.",
        "",
        "[pipeline]",
        "batch_rows = 5000",
        "queue_pages = 8",
        "",
    ]
    for name, table in source_settings(sandbox).items():
        lines.append(f"[sources.{name}]")
        lines.extend(f"{key} = {_toml(value)}" for key, value in table.items())
        lines.append("")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("\n".join(lines), encoding="utf-8")
    return target


def serve(
    size: str = "small",
    host: str = "127.0.0.1",
    port_base: int = 0,
    config_path: str | Path = "",
    options: dict[str, Any] | None = None,
) -> None:
    """Run the sandbox until Ctrl-C/SIGTERM; print the URLs and where the config was written."""
    asyncio.run(_serve(size, host, port_base, Path(config_path or "config/sandbox.toml"), options))


async def _serve(
    size: str, host: str, port_base: int, config_path: Path, options: dict[str, Any] | None = None
) -> None:
    ports = {name: port_base + i for i, name in enumerate(SERVICES)} if port_base else None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    async with await start_sandbox(size, host, ports, options=options) as sandbox:
        written = write_config(sandbox, config_path)
        print(f"sandbox ({size}) started in {sandbox.startup_seconds:.2f} s")
        for name, url in sandbox.urls.items():
            print(f"  {name:<11} {url}   control: {sandbox.roots[name]}/_sandbox")
        print(f"config written to {written}; press Ctrl-C to stop", flush=True)
        await stop.wait()
