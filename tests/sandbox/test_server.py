"""The runner: every simulator up on its own port, a config the pipeline accepts, control over HTTP."""

from __future__ import annotations

import time
from pathlib import Path

import aiohttp
import pytest

from pipeline.sandbox.server import SERVICES, available_services, start_sandbox, write_config
from pipeline.settings import load_settings


async def test_small_sandbox_starts_every_service_quickly(tmp_path: Path) -> None:
    """All available simulators start (loosely: under 10 s) and the written config validates."""
    async with await start_sandbox("small") as sandbox:
        assert sandbox.startup_seconds < 10
        assert set(sandbox.urls) == set(available_services())
        assert {"kitsu", "anilist", "anilist_v1"} <= set(sandbox.urls)
        assert sandbox.urls["kitsu"].endswith("/api/edge")
        assert sandbox.urls["anilist_v1"].endswith("/api")
        ports = {url.split(":")[2].split("/")[0] for url in sandbox.urls.values()}
        assert len(ports) == len(sandbox.urls)
        settings = load_settings(write_config(sandbox, tmp_path / "sandbox.toml"), env={})
        assert set(settings.sources) == set(sandbox.urls)
        assert settings.sources["anilist"].rate.requests == 30
        assert settings.sources["kitsu"].base_url == sandbox.urls["kitsu"]


async def test_control_api_reaches_each_service_over_http() -> None:
    """Faults set through /_sandbox/faults on a service shape its next answers; counters show them."""
    async with (
        await start_sandbox("small", services=("kitsu", "anilist")) as sandbox,
        aiohttp.ClientSession() as http,
    ):
        root = sandbox.roots["kitsu"]
        async with http.post(f"{root}/_sandbox/faults", json={"error_burst": 2, "error_status": 502}) as r:
            assert r.status == 200
        statuses = []
        for _ in range(3):
            async with http.get(f"{sandbox.urls['kitsu']}/anime") as response:
                statuses.append(response.status)
        assert statuses == [502, 502, 200]
        async with http.get(f"{root}/_sandbox/counters?service=*") as r:
            counters = await r.json()
        assert counters["kitsu"]["requests"] == 3
        assert counters["kitsu"]["errors"] == 2
        assert counters["anilist"]["requests"] == 0
        async with http.post(f"{sandbox.roots['anilist']}/_sandbox/clock", json={"advance": 120}) as r:
            assert (await r.json())["offset"] == 120
        assert sandbox.ctx.clock.offset == 120


async def test_stop_releases_hanging_responses() -> None:
    """A hanging response does not keep the sandbox from stopping."""
    sandbox = await start_sandbox("small", services=("kitsu",))
    sandbox.ctx.inject("kitsu", hang_next=1, hang_seconds=300)
    async with aiohttp.ClientSession() as http:
        with pytest.raises(TimeoutError):
            await http.get(f"{sandbox.urls['kitsu']}/anime", timeout=aiohttp.ClientTimeout(total=0.2))
    started = time.monotonic()
    await sandbox.stop()
    assert time.monotonic() - started < 5
    assert sandbox.ctx.counters_for("kitsu").hung == 1


def test_service_names_match_the_config_kinds() -> None:
    """The sandbox serves exactly the five connector kinds, named as the settings name them."""
    from pipeline.connectors import BUILTIN_KINDS as KINDS

    assert set(SERVICES) == set(KINDS)
