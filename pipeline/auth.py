"""Auth providers: attach credentials to requests and renew them, once, under many workers.

    AuthProvider
    ├── NoAuth                     public APIs
    ├── StaticBearer               a long-lived token (Nekos); a refusal is final
    └── TokenAuth                  a token obtained over HTTP, renewed by exactly one worker
        ├── OAuthPassword          password grant + refresh_token grant (Kitsu)
        ├── OAuthClientCredentials client credentials, renewed before ``expires_in`` runs out (AniList v1)
        └── ZouJWT                 /auth/login, /auth/refresh-token, then one re-login (Zou)

Workers read ``credentials()``; on a 401 (or Zou's 422 "Signature has expired") they call
``refresh(stale)`` with the credentials they used. Only the first caller for a given token
generation renews; the others wait on the lock and reuse the new token. Tokens live in
``SecretStr`` and never reach a repr, a log line or an error.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

import orjson
from pydantic import SecretStr

from pipeline import settings as cfg
from pipeline.clock import Clock, SystemClock
from pipeline.errors import AuthError
from pipeline.log import get_logger
from pipeline.redact import redact_text, redact_url, register_secret

log = get_logger(__name__)

EXPIRY_SKEW_SECONDS = 60.0  # renew this long before a token runs out (at most 10 % of its life)


class AuthCall(Protocol):
    """How a provider reaches its token endpoint: the owning client's budgeted, unauthenticated call."""

    async def __call__(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        form: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[int, Any]: ...


@dataclass(frozen=True)
class Credentials:
    """Headers to attach, and the token generation they belong to (for refresh de-duplication)."""

    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    generation: int = 0


class AuthProvider:
    """No credentials; the base of every provider."""

    refreshable = False

    def __init__(self, source: str) -> None:
        self.source = source

    async def credentials(self, call: AuthCall) -> Credentials:
        return Credentials()

    async def refresh(self, call: AuthCall, stale: Credentials) -> None:
        raise AuthError(
            f"{self.source}: the API refused the request as unauthenticated (401); "
            f"configure [sources.{self.source}.auth] with credentials that grant access"
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(source={self.source!r})"


NoAuth = AuthProvider


class StaticBearer(AuthProvider):
    """A fixed ``Authorization: Bearer`` token; a 401 cannot be fixed by refreshing."""

    def __init__(self, source: str, token: SecretStr) -> None:
        super().__init__(source)
        self._token = token

    async def credentials(self, call: AuthCall) -> Credentials:
        return Credentials({"Authorization": "Bearer " + self._token.get_secret_value()})

    async def refresh(self, call: AuthCall, stale: Credentials) -> None:
        raise AuthError(
            f"{self.source}: the bearer token was refused (401); check that "
            f"[sources.{self.source}.auth].token is current and has the scope the resource needs"
        )


class TokenAuth(AuthProvider):
    """A token fetched over HTTP, renewed proactively before expiry and once per rejected generation."""

    refreshable = True

    def __init__(self, source: str, clock: Clock | None = None) -> None:
        super().__init__(source)
        self._clock = clock or SystemClock()
        self._access: SecretStr | None = None
        self._refresh_token: SecretStr | None = None
        self._renew_at: float | None = None
        self._generation = 0
        self._lock: asyncio.Lock | None = None
        self.renewals = 0  # tokens obtained so far (login, refresh or grant)

    async def credentials(self, call: AuthCall) -> Credentials:
        if self._needs_token():
            async with self._get_lock():
                if self._needs_token():
                    await self._obtain(call)
        assert self._access is not None
        return Credentials({"Authorization": "Bearer " + self._access.get_secret_value()}, self._generation)

    async def refresh(self, call: AuthCall, stale: Credentials) -> None:
        async with self._get_lock():
            if stale.generation != self._generation:
                return  # another worker already renewed the token this request was sent with
            log.info("auth_token_rejected", source=self.source, generation=stale.generation)
            await self._renew(call)

    async def _obtain(self, call: AuthCall) -> None:
        """Get a token when there is none or it is about to expire."""
        await self._renew(call)

    async def _renew(self, call: AuthCall) -> None:
        raise NotImplementedError

    def _store(self, body: Any, *, where: str, expires_in: float | None = None) -> None:
        """Keep ``access_token`` (and ``refresh_token``/``expires_in`` when given) from a token response."""
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            keys = sorted(body) if isinstance(body, dict) else type(body).__name__
            raise AuthError(
                f"{self.source}: {where} answered without an access_token (keys: {keys}); "
                f"check the token URL and the grant this API expects"
            )
        register_secret(token)  # a token obtained at run time is masked like a configured secret
        self._access = SecretStr(token)
        if isinstance(body.get("refresh_token"), str):
            register_secret(body["refresh_token"])
            self._refresh_token = SecretStr(body["refresh_token"])
        lifetime = body.get("expires_in", expires_in)
        if isinstance(lifetime, int | float) and lifetime > 0:
            self._renew_at = self._clock.monotonic() + lifetime - min(EXPIRY_SKEW_SECONDS, lifetime / 10)
        else:
            self._renew_at = None
        self._generation += 1
        self.renewals += 1
        log.info("auth_token_obtained", source=self.source, where=where, generation=self._generation)

    def _needs_token(self) -> bool:
        if self._access is None:
            return True
        return self._renew_at is not None and self._clock.monotonic() >= self._renew_at

    def _get_lock(self) -> asyncio.Lock:
        if self._lock is None:  # created on first use, inside the running loop
            self._lock = asyncio.Lock()
        return self._lock

    def _refused(self, what: str, url: str, status: int, body: Any, fix: str) -> AuthError:
        # Masked before it is cut: a secret split at the cut would otherwise leak its first half.
        shown = _cut(redact_text(orjson.dumps(body).decode()), 200) if body is not None else "(no JSON body)"
        return AuthError(f"{self.source}: {what} at {redact_url(url)} failed with {status}: {shown}; {fix}")


class OAuthPassword(TokenAuth):
    """OAuth2 password grant; renews with the refresh_token grant, falls back to a new password grant."""

    def __init__(
        self, source: str, settings: cfg.OAuthPasswordAuth, token_url: str, clock: Clock | None = None
    ):
        super().__init__(source, clock)
        self._settings = settings
        self.token_url = token_url

    async def _renew(self, call: AuthCall) -> None:
        if self._refresh_token is not None:
            status, body = await call("POST", self.token_url, form=self._client_fields("refresh_token"))
            if 200 <= status < 300:
                self._store(body, where="refresh_token grant")
                return
            log.warning("auth_refresh_failed", source=self.source, status=status)
            self._refresh_token = None
        form = self._client_fields("password")
        form |= {"username": self._settings.username, "password": self._settings.password.get_secret_value()}
        status, body = await call("POST", self.token_url, form=form)
        if not 200 <= status < 300:
            fix = f"check [sources.{self.source}.auth] username and password"
            raise self._refused("password grant", self.token_url, status, body, fix)
        self._store(body, where="password grant")

    def _client_fields(self, grant: str) -> dict[str, str]:
        form = {"grant_type": grant}
        if grant == "refresh_token" and self._refresh_token is not None:
            form["refresh_token"] = self._refresh_token.get_secret_value()
        if self._settings.client_id:
            form["client_id"] = self._settings.client_id
        if self._settings.client_secret is not None:
            form["client_secret"] = self._settings.client_secret.get_secret_value()
        return form


class OAuthClientCredentials(TokenAuth):
    """OAuth2 client credentials; ``expires_in`` drives a renewal shortly before the token dies."""

    def __init__(
        self,
        source: str,
        settings: cfg.OAuthClientCredentialsAuth,
        token_url: str,
        clock: Clock | None = None,
    ):
        super().__init__(source, clock)
        self._settings = settings
        self.token_url = token_url

    async def _renew(self, call: AuthCall) -> None:
        form = {
            "grant_type": "client_credentials",
            "client_id": self._settings.client_id,
            "client_secret": self._settings.client_secret.get_secret_value(),
        }
        status, body = await call("POST", self.token_url, form=form)
        if not 200 <= status < 300:
            fix = f"check [sources.{self.source}.auth] client_id and client_secret"
            raise self._refused("client credentials grant", self.token_url, status, body, fix)
        self._store(body, where="client credentials grant")


class ZouJWT(TokenAuth):
    """Zou: login for access+refresh JWTs; renewal (shortly before ``exp``, or after a 401/422) goes
    through ``GET /auth/refresh-token`` and logs in again only when the refresh is refused.

    A login is a password check and a ``login_log`` row on the studio's server, a refresh is neither;
    zou's refresh answers ``{"access_token"}`` only, so the refresh JWT of the login is kept.
    """

    def __init__(self, source: str, settings: cfg.ZouJWTAuth, base_url: str, clock: Clock | None = None):
        super().__init__(source, clock)
        self._settings = settings
        self.login_url = base_url + "/auth/login"
        self.refresh_url = base_url + "/auth/refresh-token"

    async def _renew(self, call: AuthCall) -> None:
        if self._refresh_token is not None:
            bearer = {"Authorization": "Bearer " + self._refresh_token.get_secret_value()}
            status, body = await call("GET", self.refresh_url, headers=bearer)
            if 200 <= status < 300:
                self._store(body, where="refresh-token", expires_in=_jwt_lifetime(body, self._clock))
                return
            log.warning("auth_refresh_failed", source=self.source, status=status)
            self._refresh_token = None
        await self._login(call)

    async def _login(self, call: AuthCall) -> None:
        payload = {"email": self._settings.email, "password": self._settings.password.get_secret_value()}
        status, body = await call("POST", self.login_url, json=payload)
        if not 200 <= status < 300 or (isinstance(body, dict) and body.get("login") is False):
            fix = (
                f"check [sources.{self.source}.auth] email and password (an account that still has its "
                f"default password, 2FA or too many failed attempts cannot log in from a script)"
            )
            raise self._refused("login", self.login_url, status, body, fix)
        self._store(body, where="login", expires_in=_jwt_lifetime(body, self._clock))


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def _jwt_lifetime(body: Any, clock: Clock) -> float | None:
    """Seconds until the access JWT's ``exp`` claim (read without verification), if it has one."""
    token = body.get("access_token") if isinstance(body, dict) else None
    if not isinstance(token, str) or token.count(".") != 2:
        return None
    payload = token.split(".")[1]
    try:
        claims = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (ValueError, orjson.JSONDecodeError):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    return float(exp) - clock.wall() if isinstance(exp, int | float) else None


def build_auth(settings: cfg.SourceSettings, clock: Clock | None = None) -> AuthProvider:
    """The provider a source's ``auth`` settings ask for, with per-kind default token URLs."""
    auth = settings.auth
    if isinstance(auth, cfg.BearerAuth):
        return StaticBearer(settings.name, auth.token)
    if isinstance(auth, cfg.OAuthPasswordAuth):
        parts = urlsplit(settings.base_url)
        token_url = auth.token_url or f"{parts.scheme}://{parts.netloc}/api/oauth/token"
        return OAuthPassword(settings.name, auth, token_url, clock)
    if isinstance(auth, cfg.OAuthClientCredentialsAuth):
        token_url = auth.token_url or settings.base_url + "/auth/access_token"
        return OAuthClientCredentials(settings.name, auth, token_url, clock)
    if isinstance(auth, cfg.ZouJWTAuth):
        return ZouJWT(settings.name, auth, settings.base_url, clock)
    return NoAuth(settings.name)
