"""Auth providers through the ServiceClient: refresh on expiry, one renewal for many workers, no leaks."""

from __future__ import annotations

import asyncio
import base64
import re
from typing import Any

import orjson
import pytest
import structlog
from aioresponses import CallbackResult, aioresponses

from pipeline.auth import OAuthClientCredentials, OAuthPassword, StaticBearer, ZouJWT, build_auth
from pipeline.clock import VirtualClock
from pipeline.errors import AuthError, HTTPStatusError
from pipeline.http import ServiceClient
from tests.unit.test_http_client import make_settings

ZOU = "https://zou.test/api"
PASSWORD = "hunter2-zou-password"
SECRETS = (PASSWORD, "ACCESS-ONE", "ACCESS-TWO", "REFRESH-ONE", "CLIENT-SECRET-XYZ", "NEKOS-TOKEN-0123")


def zou_settings(**overrides: Any) -> Any:
    """A Zou source with JWT auth."""
    auth = {"kind": "zou_jwt", "email": "bot@studio.test", "password": PASSWORD}
    return make_settings(
        name="studio_a", kind="zou", base_url=ZOU, resources=("tasks",), auth=auth, **overrides
    )


class ZouServer:
    """A tiny Zou: login gives ACCESS-ONE/REFRESH-ONE, refresh gives ACCESS-TWO; data wants ``valid``."""

    def __init__(self, *, valid: str = "ACCESS-TWO", expired_status: int = 401) -> None:
        self.valid = valid
        self.expired_status = expired_status
        self.logins = 0
        self.refreshes = 0
        self.refresh_ok = True
        self.login_ok = True
        self.data_auth: list[str] = []

    def install(self, mock: aioresponses) -> None:
        mock.post(f"{ZOU}/auth/login", callback=self.login, repeat=True)
        mock.get(f"{ZOU}/auth/refresh-token", callback=self.refresh, repeat=True)
        mock.get(re.compile(rf"^{re.escape(ZOU)}/data/.*$"), callback=self.data, repeat=True)

    async def login(self, url: Any, **kwargs: Any) -> CallbackResult:
        self.logins += 1
        assert kwargs["data"] == b'{"email":"bot@studio.test","password":"hunter2-zou-password"}'
        if not self.login_ok:
            return CallbackResult(status=400, payload={"login": False})
        tokens = {"access_token": "ACCESS-ONE", "refresh_token": "REFRESH-ONE", "login": True}
        return CallbackResult(payload=tokens)

    async def refresh(self, url: Any, **kwargs: Any) -> CallbackResult:
        self.refreshes += 1
        assert kwargs["headers"]["Authorization"] == "Bearer REFRESH-ONE"
        await asyncio.sleep(0)  # let other workers pile up on the lock
        if not self.refresh_ok:
            return CallbackResult(status=401, payload={"msg": "Token has been revoked"})
        return CallbackResult(payload={"access_token": "ACCESS-TWO"})

    async def data(self, url: Any, **kwargs: Any) -> CallbackResult:
        header = kwargs["headers"]["Authorization"]
        self.data_auth.append(header)
        if header != f"Bearer {self.valid}":
            return CallbackResult(status=self.expired_status, payload={"message": "Signature has expired"})
        return CallbackResult(payload={"data": [], "total": 0, "nb_pages": 0, "page": 1})


@pytest.mark.parametrize("expired_status", [401, 422])
async def test_expired_token_is_refreshed_once_then_succeeds(expired_status: int) -> None:
    """401 or 422 'Signature has expired' → GET /auth/refresh-token with the refresh JWT → retry succeeds."""
    server = ZouServer(expired_status=expired_status)
    with aioresponses() as mock:
        server.install(mock)
        async with ServiceClient(zou_settings(), clock=VirtualClock()) as client:
            page = await client.get_json("data/tasks", params={"page": 1})
    assert page["page"] == 1
    assert (server.logins, server.refreshes) == (1, 1)
    assert server.data_auth == ["Bearer ACCESS-ONE", "Bearer ACCESS-TWO"]


async def test_failed_refresh_then_one_relogin_then_a_clear_error() -> None:
    """Refresh refused → exactly one new login; if the API still refuses, AuthError (no loop)."""
    server = ZouServer(valid="a token this server never issues")
    with aioresponses() as mock:
        server.install(mock)
        server.refresh_ok = False
        async with ServiceClient(zou_settings(), clock=VirtualClock()) as client:
            with pytest.raises(AuthError, match=r"studio_a: GET .*/data/tasks was refused with 401"):
                await client.get_json("data/tasks")
    assert server.refreshes == 1
    assert server.logins == 2  # the initial one and exactly one re-login


async def test_refresh_then_relogin_success() -> None:
    """Refresh refused → re-login gives a token the API accepts → the call succeeds."""
    server = ZouServer()
    logins = 0

    async def login(url: Any, **_: Any) -> CallbackResult:
        nonlocal logins
        logins += 1
        return CallbackResult(payload={"access_token": f"LOGIN-{logins}", "refresh_token": "REFRESH-ONE"})

    with aioresponses() as mock:
        mock.post(f"{ZOU}/auth/login", callback=login, repeat=True)
        mock.get(f"{ZOU}/auth/refresh-token", status=401, payload={"msg": "revoked"}, repeat=True)
        server.valid = "LOGIN-2"
        mock.get(re.compile(rf"^{re.escape(ZOU)}/data/.*$"), callback=server.data, repeat=True)
        async with ServiceClient(zou_settings(), clock=VirtualClock()) as client:
            assert (await client.get_json("data/tasks"))["page"] == 1
    assert logins == 2
    assert server.data_auth == ["Bearer LOGIN-1", "Bearer LOGIN-2"]


async def test_login_refused_is_a_clear_auth_error() -> None:
    """A refused login raises AuthError naming the source, the fix, and never the password."""
    server = ZouServer()
    server.login_ok = False
    with aioresponses() as mock:
        server.install(mock)
        async with ServiceClient(zou_settings(), clock=VirtualClock()) as client:
            with pytest.raises(AuthError) as caught:
                await client.get_json("data/tasks")
    message = str(caught.value)
    assert "studio_a" in message
    assert "[sources.studio_a.auth] email and password" in message
    assert PASSWORD not in message


async def test_fifty_workers_with_an_expired_token_cause_one_refresh() -> None:
    """50 concurrent requests all rejected with the old token trigger exactly one refresh."""
    server = ZouServer()
    with aioresponses() as mock:
        server.install(mock)
        settings = zou_settings(max_in_flight=50, rate={"requests": 1000, "per_seconds": 1.0})
        async with ServiceClient(settings, clock=VirtualClock()) as client, asyncio.TaskGroup() as group:
            for n in range(50):
                group.create_task(client.get_json("data/tasks", params={"n": n}))
    assert server.logins == 1
    assert server.refreshes == 1
    assert server.data_auth.count("Bearer ACCESS-TWO") == 50


async def test_client_credentials_renew_before_expiry() -> None:
    """AniList v1: a token with expires_in=3600 is replaced proactively, without any 401."""
    clock = VirtualClock()
    base = "https://anilist.test/api"
    grants: list[dict[str, str]] = []

    async def token(url: Any, **kwargs: Any) -> CallbackResult:
        grants.append(dict(kwargs["data"]))
        return CallbackResult(payload={"access_token": f"CC-{len(grants)}", "expires_in": 3600})

    seen: list[str] = []

    async def browse(url: Any, **kwargs: Any) -> CallbackResult:
        seen.append(kwargs["headers"]["Authorization"])
        return CallbackResult(payload=[])

    auth = {"kind": "oauth_client_credentials", "client_id": "app", "client_secret": "CLIENT-SECRET-XYZ"}
    settings = make_settings(
        name="anilist_v1", kind="anilist_v1", base_url=base, resources=("anime",), auth=auth
    )
    with aioresponses() as mock:
        mock.post(f"{base}/auth/access_token", callback=token, repeat=True)
        mock.get(f"{base}/browse/anime", callback=browse, repeat=True)
        async with ServiceClient(settings, clock=clock) as client:
            await client.get_json("browse/anime")
            clock.advance(3539)
            await client.get_json("browse/anime")
            clock.advance(2)  # now past expires_in − 60 s
            await client.get_json("browse/anime")
    assert seen == ["Bearer CC-1", "Bearer CC-1", "Bearer CC-2"]
    assert grants[0] == {
        "grant_type": "client_credentials",
        "client_id": "app",
        "client_secret": "CLIENT-SECRET-XYZ",
    }


async def test_password_grant_then_refresh_token_grant() -> None:
    """Kitsu: password grant first; on 401 the refresh_token grant renews the access token."""
    base = "https://kitsu.test/api/edge"
    grants: list[str] = []

    async def token(url: Any, **kwargs: Any) -> CallbackResult:
        form = dict(kwargs["data"])
        grants.append(form["grant_type"])
        if form["grant_type"] == "password":
            assert (form["username"], form["password"]) == ("fan@example.test", PASSWORD)
            return CallbackResult(payload={"access_token": "ACCESS-ONE", "refresh_token": "REFRESH-ONE"})
        assert form["refresh_token"] == "REFRESH-ONE"
        return CallbackResult(payload={"access_token": "ACCESS-TWO", "refresh_token": "REFRESH-ONE"})

    async def anime(url: Any, **kwargs: Any) -> CallbackResult:
        ok = kwargs["headers"]["Authorization"] == "Bearer ACCESS-TWO"
        return CallbackResult(status=200 if ok else 401, payload={"data": []})

    auth = {"kind": "oauth_password", "username": "fan@example.test", "password": PASSWORD}
    settings = make_settings(base_url=base, auth=auth)
    with aioresponses() as mock:
        mock.post("https://kitsu.test/api/oauth/token", callback=token, repeat=True)
        mock.get(f"{base}/anime", callback=anime, repeat=True)
        async with ServiceClient(settings, clock=VirtualClock()) as client:
            assert await client.get_json("anime") == {"data": []}
    assert grants == ["password", "refresh_token"]


async def test_static_bearer_refused_is_fatal_without_the_token() -> None:
    """Nekos: a refused bearer token cannot be refreshed; the error gives the fix, not the token."""
    settings = make_settings(name="nekos", kind="nekos", auth={"kind": "bearer", "token": "NEKOS-TOKEN-0123"})
    with aioresponses() as mock:
        mock.get(re.compile(r"^https://api\.test/.*$"), status=401, payload={"code": 401, "success": False})
        async with ServiceClient(settings, clock=VirtualClock()) as client:
            with pytest.raises(AuthError) as caught:
                await client.get_json("image")
    assert "[sources.nekos.auth].token" in str(caught.value)
    assert "NEKOS-TOKEN-0123" not in str(caught.value)


async def test_still_refused_after_renewal_is_fatal() -> None:
    """A token that is refused even right after renewal means missing permissions: AuthError, no loop."""
    server = ZouServer(valid="nobody")
    with aioresponses() as mock:
        server.install(mock)
        async with ServiceClient(zou_settings(), clock=VirtualClock()) as client:
            with pytest.raises(AuthError, match="even with a freshly renewed token"):
                await client.get_json("data/tasks")
    assert server.refreshes == 1


def test_build_auth_default_token_urls() -> None:
    """Token URLs default to <origin>/api/oauth/token (Kitsu) and <base_url>/auth/access_token (v1)."""
    kitsu = build_auth(
        make_settings(
            base_url="https://kitsu.app/api/edge",
            auth={"kind": "oauth_password", "username": "u", "password": "p"},
        )
    )
    v1 = build_auth(
        make_settings(
            kind="anilist_v1",
            base_url="https://anilist.co/api",
            auth={"kind": "oauth_client_credentials", "client_id": "c", "client_secret": "s"},
        )
    )
    assert isinstance(kitsu, OAuthPassword)
    assert kitsu.token_url == "https://kitsu.app/api/oauth/token"
    assert isinstance(v1, OAuthClientCredentials)
    assert v1.token_url == "https://anilist.co/api/auth/access_token"
    assert isinstance(build_auth(zou_settings()), ZouJWT)
    assert isinstance(build_auth(make_settings(auth={"kind": "bearer", "token": "t"})), StaticBearer)


async def test_no_secret_in_logs_exceptions_or_reprs() -> None:
    """Across login, refresh, retries and a fatal 400, no secret appears in any log event, error or repr."""
    server = ZouServer()
    texts: list[str] = []
    with aioresponses() as mock, structlog.testing.capture_logs() as events:
        mock.get(f"{ZOU}/data/persons?access_token=ACCESS-TWO", status=400, body="bad token=ACCESS-TWO")
        server.install(mock)
        client = ServiceClient(zou_settings(), clock=VirtualClock())
        async with client:
            await client.get_json("data/tasks")
            with pytest.raises(HTTPStatusError) as caught:
                await client.get_json("data/persons", params={"access_token": "ACCESS-TWO"})
            texts += [str(caught.value), repr(caught.value), repr(client), repr(client.auth)]
            credentials = await client.auth.credentials(client._auth_call)
            texts.append(repr(credentials))
    texts += [repr(event) for event in events]
    assert any(e["event"] == "auth_token_obtained" for e in events)
    for text in texts:
        for secret in SECRETS:
            assert secret not in text, (secret, text)


def jwt(name: str, exp: float) -> str:
    """An unsigned JWT-shaped token with an ``exp`` claim (the client reads it without verifying)."""

    def part(body: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(orjson.dumps(body)).rstrip(b"=").decode()

    return f"{part({'alg': 'HS256'})}.{part({'exp': int(exp), 'name': name})}.c2ln"


async def test_zou_token_is_renewed_before_expiry_by_refresh_not_by_login() -> None:
    """Before the access JWT's exp the client calls /auth/refresh-token; it logs in again only if refused."""
    clock = VirtualClock()
    issued: list[str] = []
    logins = refreshes = 0

    async def login(url: Any, **_: Any) -> CallbackResult:
        nonlocal logins
        logins += 1
        issued.append(jwt(f"login-{logins}", clock.wall() + 600))
        return CallbackResult(payload={"access_token": issued[-1], "refresh_token": "REFRESH-ONE"})

    async def refresh(url: Any, **kwargs: Any) -> CallbackResult:
        nonlocal refreshes
        refreshes += 1
        assert kwargs["headers"]["Authorization"] == "Bearer REFRESH-ONE"
        if refreshes == 3:
            return CallbackResult(status=401, payload={"msg": "Token has expired"})
        issued.append(jwt(f"refresh-{refreshes}", clock.wall() + 600))
        return CallbackResult(payload={"access_token": issued[-1]})

    seen: list[str] = []

    async def data(url: Any, **kwargs: Any) -> CallbackResult:
        seen.append(kwargs["headers"]["Authorization"].removeprefix("Bearer "))
        return CallbackResult(payload={"data": [], "total": 0, "nb_pages": 0, "page": 1})

    with aioresponses() as mock:
        mock.post(f"{ZOU}/auth/login", callback=login, repeat=True)
        mock.get(f"{ZOU}/auth/refresh-token", callback=refresh, repeat=True)
        mock.get(re.compile(rf"^{re.escape(ZOU)}/data/.*$"), callback=data, repeat=True)
        async with ServiceClient(zou_settings(), clock=clock) as client:
            for _ in range(4):
                await client.get_json("data/tasks")
                clock.advance(545)  # past exp − 60 s (10 % of 600 s)
    assert (logins, refreshes) == (2, 3)  # two proactive refreshes, the third refused → one login
    assert seen == issued
