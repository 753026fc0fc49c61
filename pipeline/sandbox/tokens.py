"""Tokens the simulators issue, judged against the sandbox clock so tests can make them expire."""

from __future__ import annotations

import secrets
import string
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

ALPHANUMERIC = string.ascii_letters + string.digits


class Clock(Protocol):
    def now(self) -> float: ...


class TokenState(Enum):
    VALID = "valid"
    EXPIRED = "expired"
    UNKNOWN = "unknown"


@dataclass
class Token:
    """One issued token; ``value`` is the secret, never shown in the repr."""

    service: str
    value: str
    kind: str
    subject: str
    issued_at: float
    expires_at: float | None
    scopes: frozenset[str] = frozenset()

    def __repr__(self) -> str:
        return f"Token(service={self.service!r}, kind={self.kind!r}, subject={self.subject!r})"

    @property
    def expires_in(self) -> int | None:
        return None if self.expires_at is None else round(self.expires_at - self.issued_at)


def random_token(length: int = 40) -> str:
    return "".join(secrets.choice(ALPHANUMERIC) for _ in range(length))


class TokenStore:
    """Issue and check bearer tokens per service; ``expire_all`` forces expiry (a fault)."""

    def __init__(self, clock: Clock, make_value: Callable[[int], str] = random_token) -> None:
        self._clock = clock
        self._make = make_value
        self._tokens: dict[str, Token] = {}

    def issue(
        self,
        service: str,
        *,
        ttl: float | None,
        kind: str = "access",
        subject: str = "",
        length: int = 40,
        scopes: frozenset[str] = frozenset(),
        value: str | None = None,
    ) -> Token:
        now = self._clock.now()
        token = Token(
            service=service,
            value=value or self._make(length),
            kind=kind,
            subject=subject,
            issued_at=now,
            expires_at=None if ttl is None else now + ttl,
            scopes=scopes,
        )
        self._tokens[token.value] = token
        return token

    def find(self, service: str, value: str, kind: str = "access") -> Token | None:
        token = self._tokens.get(value)
        if token is None or token.service != service or token.kind != kind:
            return None
        return token

    def check(self, service: str, value: str | None, kind: str = "access") -> TokenState:
        token = self.find(service, value, kind) if value else None
        if token is None:
            return TokenState.UNKNOWN
        if token.expires_at is not None and self._clock.now() >= token.expires_at:
            return TokenState.EXPIRED
        return TokenState.VALID

    def revoke(self, value: str) -> None:
        self._tokens.pop(value, None)

    def expire_all(self, service: str, kind: str | None = None) -> int:
        """Make every token of ``service`` (of ``kind`` if given) expired as of now; return how many."""
        now = self._clock.now()
        hit = 0
        for token in self._tokens.values():
            if token.service == service and (kind is None or token.kind == kind):
                token.expires_at = min(token.expires_at or now, now)
                hit += 1
        return hit

    def clear(self) -> None:
        self._tokens.clear()


def bearer(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer …`` header, or None."""
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None
