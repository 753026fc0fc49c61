"""Zou's JWT login: access and refresh tokens judged on the sandbox clock, with both expiry flavours.

Tokens look like flask-jwt-extended's (``header.payload.signature``, HS256, claims ``sub``,
``type``, ``jti``, ``iat``, ``exp``) and are recorded in the context's ``TokenStore`` so the
control API can force their expiry. Expired tokens are answered 401 or 422 with
``{"message": "Signature has expired"}``: which one is a setting (``expired_status``), and
``"alternate"`` flips between the two so a client must handle both.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from pipeline.sandbox.tokens import TokenState, TokenStore, bearer

ExpiredStatus = Literal["401", "422", "alternate"]
ACCESS_TTL = 7 * 86_400.0  # JWT_ACCESS_TOKEN_EXPIRES in zou/app/config.py
REFRESH_TTL = 15 * 86_400.0  # JWT_REFRESH_TOKEN_EXPIRES
LOCKOUT_AFTER = 5  # failed logins in a row before the account is locked
LOCKOUT_SECONDS = 60.0


@dataclass
class AuthError(Exception):
    """An auth refusal as the real server words it."""

    status: int
    body: dict[str, Any]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class ZouAuth:
    """Issue, refresh, revoke and check tokens for one studio (service ``name``)."""

    def __init__(
        self,
        name: str,
        tokens: TokenStore,
        now: Callable[[], float],
        secret: bytes,
        credentials: dict[str, str],
    ) -> None:
        self.name = name
        self._now = now
        self.tokens = tokens
        self.credentials = credentials
        self.access_ttl = ACCESS_TTL
        self.refresh_ttl = REFRESH_TTL
        self.expired_status: ExpiredStatus = "401"
        self._secret = secret
        self._flip = False
        self._failures: dict[str, tuple[int, float]] = {}
        self.stats = {"logins": 0, "failed_logins": 0, "refreshes": 0, "expired": 0, "rejected": 0}

    def __repr__(self) -> str:
        return f"ZouAuth(name={self.name!r}, accounts={len(self.credentials)})"

    def login(self, email: Any, password: Any, person_id: str | None) -> dict[str, str]:
        """Both tokens for good credentials; ``AuthError`` 400 ``{"login": false}`` otherwise."""
        now = self._now()
        key = str(email).lower()
        count, since = self._failures.get(key, (0, 0.0))
        if count >= LOCKOUT_AFTER and now - since < LOCKOUT_SECONDS:
            self.stats["failed_logins"] += 1
            raise AuthError(400, {"error": True, "login": False, "too_many_failed_login_attemps": True})
        expected = self.credentials.get(key)
        if person_id is None or expected is None or not hmac.compare_digest(str(password), expected):
            self._failures[key] = (count + 1, now)
            self.stats["failed_logins"] += 1
            raise AuthError(400, {"login": False})
        self._failures.pop(key, None)
        self.stats["logins"] += 1
        return {
            "access_token": self._issue(person_id, "access", self.access_ttl),
            "refresh_token": self._issue(person_id, "refresh", self.refresh_ttl),
        }

    def refresh(self, authorization: str | None) -> dict[str, str]:
        """A new access token for a valid refresh token (the refresh token itself is kept)."""
        token = self.check(authorization, kind="refresh")
        self.stats["refreshes"] += 1
        return {"access_token": self._issue(token, "access", self.access_ttl)}

    def logout(self, authorization: str | None) -> None:
        self.check(authorization, kind="access")
        value = bearer(authorization)
        if value:
            self.tokens.revoke(value)

    def check(self, authorization: str | None, *, kind: str = "access") -> str:
        """The person id of a valid token of ``kind``; ``AuthError`` as flask-jwt-extended words it."""
        value = bearer(authorization)
        if value is None:
            self.stats["rejected"] += 1
            raise AuthError(401, {"msg": "Missing Authorization Header"})
        claims = self._claims(value)
        if claims is None:
            self.stats["rejected"] += 1
            raise AuthError(422, {"msg": "Signature verification failed"})
        if claims.get("type") != kind:
            self.stats["rejected"] += 1
            wanted = (
                "Only refresh tokens are allowed"
                if kind == "refresh"
                else "Only non-refresh tokens are allowed"
            )
            raise AuthError(422, {"msg": wanted})
        state = self.tokens.check(self.name, value, kind)
        if state is TokenState.UNKNOWN:
            self.stats["rejected"] += 1
            raise AuthError(401, {"msg": "Token has been revoked"})
        if state is TokenState.EXPIRED:
            self.stats["expired"] += 1
            raise AuthError(self._expired_code(), {"message": "Signature has expired"})
        return str(claims["sub"])

    def _expired_code(self) -> int:
        if self.expired_status == "alternate":
            self._flip = not self._flip
            return 401 if self._flip else 422
        return int(self.expired_status)

    def _issue(self, person_id: str, kind: str, ttl: float) -> str:
        now = self._now()
        claims = {
            "fresh": False,
            "iat": int(now),
            "jti": str(uuid.uuid4()),
            "type": kind,
            "sub": person_id,
            "nbf": int(now),
            "exp": int(now + ttl),
            "identity_type": "person",
        }
        head = _b64(orjson.dumps({"alg": "HS256", "typ": "JWT"}))
        body = _b64(orjson.dumps(claims))
        signature = _b64(hmac.new(self._secret, f"{head}.{body}".encode(), hashlib.sha256).digest())
        value = f"{head}.{body}.{signature}"
        self.tokens.issue(self.name, ttl=ttl, kind=kind, subject=person_id, value=value)
        return value

    def _claims(self, value: str) -> dict[str, Any] | None:
        """The claims of a token this studio signed, or None."""
        parts = value.split(".")
        if len(parts) != 3:
            return None
        expected = _b64(hmac.new(self._secret, f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256).digest())
        if not hmac.compare_digest(expected, parts[2]):
            return None
        try:
            claims = orjson.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
        except (ValueError, orjson.JSONDecodeError):
            return None
        return claims if isinstance(claims, dict) else None
