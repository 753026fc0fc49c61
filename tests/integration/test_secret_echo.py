"""Token endpoints that echo the credential back in a 401 body leak it nowhere.

A fake token server on 127.0.0.1 answers Kitsu's password grant, AniList v1's client-credentials
grant and Zou's login with 401 and a body repeating what it was sent ("invalid key …", the raw form,
the base64 basic-auth pair). The secrets must not reach stdout, stderr (JSON and console logs),
``etl.runs``/``etl.stream_runs``/``etl.rejects``, ``status``/``runs`` or their ``--json``.
"""

from __future__ import annotations

import asyncio
import base64
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote, quote_plus

import asyncpg
import pytest
from aiohttp import web

pytestmark = [pytest.mark.db]

KITSU_PASSWORD = "Kq7-pass word+w/rd&1"  # holds a space: pattern rules alone stop at it
V1_SECRET = "v1-client-secret-Zq9x"
ZOU_PASSWORD = "zou-pass word-77"


def leak_forms(secret: str, user: str) -> list[str]:
    return [
        secret,
        quote(secret, safe=""),
        quote_plus(secret),
        base64.b64encode(secret.encode()).decode(),
        base64.b64encode(f"{user}:{secret}".encode()).decode(),
        secret.split()[0] if " " in secret else secret,  # the part before a space
    ]


SECRETS = [
    *leak_forms(KITSU_PASSWORD, "me"),
    *leak_forms(V1_SECRET, "cid"),
    *leak_forms(ZOU_PASSWORD, "zou@studio.test"),
]


async def echo(request: web.Request) -> web.Response:
    """401 with everything the client sent, raw and decoded, as a careless server would."""
    raw = (await request.read()).decode()
    if request.content_type == "application/json":
        sent = await request.json()
        secret, user = sent.get("password", ""), sent.get("email", "")
    else:
        form = await request.post()
        secret = str(form.get("password") or form.get("client_secret") or "")
        user = str(form.get("username") or form.get("client_id") or "")
    basic = base64.b64encode(f"{user}:{secret}".encode()).decode()
    body = {
        "error": f"invalid key {secret}",
        "received": raw,
        "basic": basic,
        "b64": base64.b64encode(secret.encode()).decode(),
    }
    return web.json_response(body, status=401)


@pytest.fixture
async def token_server() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_post("/api/oauth/token", echo)  # Kitsu password grant
    app.router.add_post("/v1/auth/access_token", echo)  # AniList v1 client credentials
    app.router.add_post("/zou/api/auth/login", echo)  # Zou login
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def cli(db_url: str, config: Path, *args: str, env: dict[str, str]) -> tuple[int, str, str]:
    full_env = {**os.environ, "DATABASE_URL": db_url, **env}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pipeline", "--config", str(config), *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=full_env,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def assert_clean(text: str, where: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{secret!r} leaked into {where}: {text[:2000]}"


async def test_echoed_credentials_leak_nowhere(token_server: str, db_url: str, tmp_path: Path) -> None:
    config = tmp_path / "echo.toml"
    config.write_text(
        f'[sources.kitsu]\nkind = "kitsu"\nbase_url = "{token_server}/api/edge"\nresources = ["categories"]\n'
        "max_attempts = 1\n"
        'auth = { kind = "oauth_password", username = "me", password = "${KITSU_PASSWORD}" }\n'
        f'[sources.v1]\nkind = "anilist_v1"\nbase_url = "{token_server}/v1"\nresources = ["anime"]\n'
        "max_attempts = 1\n"
        'auth = { kind = "oauth_client_credentials", client_id = "cid", client_secret = "${V1_SECRET}" }\n'
        f'[sources.zou]\nkind = "zou"\nbase_url = "{token_server}/zou/api"\nresources = ["projects"]\n'
        "max_attempts = 1\n"
        'auth = { kind = "zou_jwt", email = "zou@studio.test", password = "${ZOU_PASSWORD}" }\n'
    )
    env = {"KITSU_PASSWORD": KITSU_PASSWORD, "V1_SECRET": V1_SECRET, "ZOU_PASSWORD": ZOU_PASSWORD}
    outputs = []
    for fmt in ("--log-json", "--log-console"):
        code, out, err = await cli(db_url, config, fmt, "sync", env=env)
        assert code == 1, err
        outputs.append((f"sync {fmt} stdout", out))
        outputs.append((f"sync {fmt} stderr", err))
        assert "401" in out  # still says what the server answered, with the secret masked
        assert "invalid key ***" in out
    for args in (("status",), ("status", "--json"), ("runs",), ("runs", "--json")):
        code, out, err = await cli(db_url, config, *args, env=env)
        assert code == 0, err
        outputs.append((" ".join(args), out + err))
    assert "failed" in outputs[-1][1]
    for where, text in outputs:
        assert_clean(text, where)
    conn = await asyncpg.connect(db_url)
    try:
        rows = await conn.fetch(
            "SELECT coalesce(error, '') AS e FROM etl.stream_runs UNION ALL "
            "SELECT coalesce(error, '') FROM etl.runs UNION ALL SELECT error FROM etl.rejects UNION ALL "
            "SELECT args::text FROM etl.runs"
        )
        stored = "\n".join(r["e"] for r in rows)
        failed = await conn.fetchval("SELECT count(*) FROM etl.stream_runs WHERE status = 'failed'")
    finally:
        await conn.close()
    assert failed == 6
    assert "401" in stored
    assert_clean(stored, "etl tables")
