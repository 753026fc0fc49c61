"""Redaction of secrets in URLs, headers and free text, applied wherever text leaves the process.

Two layers, both applied by ``redact_text``:

* **By value**: every secret the process knows — each ``SecretStr`` of the settings (passwords,
  tokens, client secrets, the database password), registered when the settings load, and the
  tokens obtained at run time — is masked wherever it appears, also in its URL-encoded and base64
  forms and inside a basic-auth ``user:secret`` base64 pair. A server that echoes a credential
  back ("invalid key hunter2") cannot make it leak.
* **By shape**: credential-shaped text that is not a known value (a token in an
  ``Authorization`` header, ``token=…``/``password=…`` query or form parameters, a
  ``"password": "…"`` JSON member, a JWT, the password of a URL's userinfo). Ordinary words such
  as "the bearer token was refused" are left alone.

Every exit point calls ``redact_text``: the structlog processor (both renderers), the CLI's error
lines, the run summary and ``status``/``runs`` output (table and JSON), and the writers of
``etl.runs``/``etl.stream_runs``/``etl.rejects`` error columns.
"""

from __future__ import annotations

import base64
import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, quote, quote_plus, urlencode, urlsplit, urlunsplit

MASK = "***"
SECRET_PARAMS = frozenset(
    {"access_token", "token", "password", "secret", "client_secret", "refresh_token", "api_key", "apikey"}
)
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key"})
# Below this length a secret is masked only as a whole word (a one-letter password must not turn
# every "a" of a message into ***).
MIN_SUBSTRING_SECRET = 4

_PARAM_NAMES = r"access_token|refresh_token|client_secret|password|passwd|secret|token|api_key|apikey"
_SHAPE_PATTERNS = (
    # Authorization / Proxy-Authorization header values, with or without a scheme word.
    re.compile(
        r"(?i)((?:proxy-)?authorization[\"']?\s*[:=]\s*[\"']?(?:(?:bearer|basic|token|jwt)\s+)?)"
        r"[^\s\"',}]+"
    ),
    # query / form parameters: token=…, password=… (up to & or whitespace or a quote)
    re.compile(rf"(?i)(\b(?:{_PARAM_NAMES})=)[^&\s\"',}}]+"),
    # JSON members: "password": "…", 'token': '…'
    re.compile(rf"(?i)([\"'](?:{_PARAM_NAMES})[\"']\s*:\s*[\"'])[^\"']*"),
    # JWT-shaped strings: header.payload.signature, base64url, header starting {"
    re.compile(r"()\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"),
    # URL userinfo: scheme://user:password@host
    re.compile(r"(?i)([a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@/\s]+(@)"),
)


class SecretRegistry:
    """The secret values of this process, each with its encoded forms, masked by ``redact_text``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: set[str] = set()
        self._short: set[str] = set()
        self._pattern: re.Pattern[str] | None = None

    def add(self, secret: Any, *, user: str | None = None) -> None:
        """Register ``secret`` (a ``SecretStr`` or text); with ``user`` also ``user:secret`` in base64."""
        value = secret.get_secret_value() if hasattr(secret, "get_secret_value") else secret
        if not isinstance(value, str) or not value:
            return
        forms = {value, quote(value, safe=""), quote_plus(value), quote(value)}
        raw = value.encode()
        forms |= {base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()}
        forms |= {f.rstrip("=") for f in list(forms) if f.endswith("=")}
        if user is not None:
            pair = f"{user}:{value}".encode()
            forms |= {base64.b64encode(pair).decode(), base64.urlsafe_b64encode(pair).decode()}
        with self._lock:
            for form in forms:
                (self._values if len(form) >= MIN_SUBSTRING_SECRET else self._short).add(form)
            self._pattern = None

    def clear(self) -> None:
        with self._lock:
            self._values.clear()
            self._short.clear()
            self._pattern = None

    def __len__(self) -> int:
        return len(self._values) + len(self._short)

    def pattern(self) -> re.Pattern[str] | None:
        with self._lock:
            if self._pattern is None and (self._values or self._short):
                longest_first = sorted(self._values, key=len, reverse=True)
                parts = [re.escape(v) for v in longest_first]
                parts += [
                    rf"(?<![\w]){re.escape(v)}(?![\w])" for v in sorted(self._short, key=len, reverse=True)
                ]
                self._pattern = re.compile("|".join(parts))
            return self._pattern


SECRETS = SecretRegistry()


def register_secret(secret: Any, *, user: str | None = None) -> None:
    """Add one secret value (and ``user:secret`` basic-auth forms when ``user`` is given)."""
    SECRETS.add(secret, user=user)


def register_secrets(values: Iterable[Any]) -> None:
    for value in values:
        SECRETS.add(value)


def redact_url(url: str) -> str:
    """Mask a password in the netloc and secret query parameters."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return redact_text(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user, colon, password = userinfo.partition(":")
        if colon and password:  # an empty password stays empty: the URL must keep working in psql
            userinfo = user + ":" + MASK
        netloc = f"{userinfo}@{host}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, MASK if k.lower() in SECRET_PARAMS else v) for k, v in pairs], safe="[]/:,")
    return redact_text(urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment)))


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {k: (MASK if k.lower() in SECRET_HEADERS else redact_text(v)) for k, v in headers.items()}


def redact_text(text: str) -> str:
    """Mask every registered secret value, then credential-shaped text (headers, params, JWTs, URLs)."""
    known = SECRETS.pattern()
    if known is not None:
        text = known.sub(MASK, text)
    for pattern in _SHAPE_PATTERNS:
        if pattern.groups == 2:
            text = pattern.sub(lambda m: m.group(1) + MASK + m.group(2), text)
        else:
            text = pattern.sub(lambda m: m.group(1) + MASK, text)
    return text


def redact_value(value: Any) -> Any:
    """``redact_text`` applied to every string inside dicts, lists and tuples (JSON output, log events)."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {k: redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(redact_value(v) for v in value)
    return value
