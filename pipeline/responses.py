"""What an HTTP response means: the one function that decides, its status sets, and header parsing.

``classify_response`` turns (status, headers, body) into a ``Verdict``: ``ok``, ``rate_limited``,
``transient``, ``auth_expired`` or ``fatal``. Sources refine it with a *body check* (e.g. GraphQL
``errors[]`` on an HTTP 200), called with the status and the parsed JSON; ``graphql_body_check``
is the AniList one.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import orjson

from pipeline.redact import redact_text

RATE_LIMIT_STATUSES = frozenset({429})
RETRY_STATUSES = frozenset({408, 425, 500, 502, 503, 504, 520, 521, 522, 523, 524})
AUTH_STATUSES = frozenset({401})
AUTH_EXPIRED_MARKERS = ("signature has expired", "token has expired", "token expired")
RATE_LIMIT_MARKERS = ("too many requests", "rate limit")
EXCERPT_CHARS = 300


class Outcome(enum.StrEnum):
    OK = "ok"
    RATE_LIMITED = "rate_limited"
    TRANSIENT = "transient"
    AUTH_EXPIRED = "auth_expired"
    FATAL = "fatal"


@dataclass(frozen=True, slots=True)
class Verdict:
    """The meaning of one response; ``retry_after`` is seconds from now when the server said so."""

    outcome: Outcome
    status: int
    reason: str = ""
    data: Any = None
    retry_after: float | None = None
    hint: str = ""


@dataclass(frozen=True, slots=True)
class Quota:
    """``X-RateLimit-*`` as read from one response; ``reset_in`` is seconds from now."""

    limit: int | None = None
    remaining: int | None = None
    reset_in: float | None = None


BodyCheck = Callable[[int, Any], Verdict | None]

_STATUS_HINTS = {
    400: "the API rejected the request's parameters; check page_size and the resource's filters",
    401: "credentials are missing or were refused; check this source's [auth] settings",
    403: "access is forbidden; check the account's permissions or whether the API is disabled",
    404: "not found; check base_url (these APIs have moved domains before) and the resource path",
    405: "method not allowed; the API version at base_url may differ from the expected one",
    410: "the endpoint is gone; the API version at base_url was probably retired",
    413: "request too large; lower page_size",
    422: "the API could not process the request; check the parameters it names",
}


def classify_response(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now_wall: float,
    body_check: BodyCheck | None = None,
) -> Verdict:
    """Decide what one response means (the only place that does)."""
    data, parsed = _parse_json(body)
    if body_check is not None and parsed:
        refined = body_check(status, data)
        if refined is not None and refined.outcome is Outcome.RATE_LIMITED and refined.retry_after is None:
            wait = wait_from_headers(headers, now_wall=now_wall)
            return dataclasses.replace(refined, retry_after=wait)
        if refined is not None:
            return refined
    if status in RATE_LIMIT_STATUSES:
        return Verdict(
            Outcome.RATE_LIMITED,
            status,
            "rate limited",
            data,
            retry_after=wait_from_headers(headers, now_wall=now_wall),
        )
    if status in RETRY_STATUSES:
        retry_after = parse_retry_after(headers.get("Retry-After"), now_wall)
        return Verdict(Outcome.TRANSIENT, status, f"server error {status}", data, retry_after=retry_after)
    if 200 <= status < 300:
        if not parsed and body.strip():
            return Verdict(Outcome.TRANSIENT, status, "invalid or truncated JSON body: " + excerpt(body))
        return Verdict(Outcome.OK, status, data=data)
    if status in AUTH_STATUSES or (status == 422 and _mentions(body, AUTH_EXPIRED_MARKERS)):
        return Verdict(Outcome.AUTH_EXPIRED, status, excerpt(body), data, hint=_STATUS_HINTS[401])
    hint = _STATUS_HINTS.get(status, "the API refused the request; retrying will not help")
    return Verdict(Outcome.FATAL, status, excerpt(body), data, hint=hint)


def graphql_body_check(status: int, data: Any) -> Verdict | None:
    """AniList: ``errors[]`` means failure even on HTTP 200; "Too Many Requests" inside is a 429."""
    if not isinstance(data, dict) or not data.get("errors"):
        return None
    errors = data["errors"] if isinstance(data["errors"], list) else [data["errors"]]
    messages = "; ".join(str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in errors)
    statuses = {e.get("status") for e in errors if isinstance(e, dict)}
    text = messages.lower()
    if status == 429 or 429 in statuses or any(m in text for m in RATE_LIMIT_MARKERS):
        return Verdict(Outcome.RATE_LIMITED, 429, "GraphQL: " + messages, data)
    if "temporarily disabled" in text:
        hint = "the API is disabled by its operators; try again later, nothing is wrong with this config"
        return Verdict(Outcome.FATAL, status, "GraphQL: " + messages, data, hint=hint)
    if status >= 500 or any(isinstance(s, int) and s >= 500 for s in statuses):
        return Verdict(Outcome.TRANSIENT, status, "GraphQL: " + messages, data)
    hint = "the query was rejected; check the query and its variables against the API schema"
    return Verdict(Outcome.FATAL, status, "GraphQL: " + messages, data, hint=hint)


def read_quota(headers: Mapping[str, str], *, now_wall: float) -> Quota:
    """Read ``X-RateLimit-Limit/-Remaining/-Reset``; unparsable values count as absent."""
    reset = _number(headers.get("X-RateLimit-Reset"))
    return Quota(
        limit=_integer(headers.get("X-RateLimit-Limit")),
        remaining=_integer(headers.get("X-RateLimit-Remaining")),
        reset_in=reset_seconds(reset, now_wall),
    )


def wait_from_headers(headers: Mapping[str, str], *, now_wall: float) -> float | None:
    """Seconds to wait after a 429: the later of ``Retry-After`` and ``X-RateLimit-Reset``."""
    candidates = [
        parse_retry_after(headers.get("Retry-After"), now_wall),
        reset_seconds(_number(headers.get("X-RateLimit-Reset")), now_wall),
    ]
    known = [c for c in candidates if c is not None]
    return max(known) if known else None


def parse_retry_after(value: str | None, now_wall: float) -> float | None:
    """``Retry-After`` as delta-seconds or an HTTP date; seconds from now, never negative."""
    if value is None or not value.strip():
        return None
    seconds = _number(value)
    if seconds is not None:
        return max(0.0, seconds)
    try:
        moment = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:  # an HTTP date is GMT by definition
        return None
    return max(0.0, moment.timestamp() - now_wall)


EPOCH_THRESHOLD = 1e9  # 2001-09-09 as an epoch, 31.7 years as a delta: nothing real is in between


def reset_seconds(value: float | None, now_wall: float) -> float | None:
    """``X-RateLimit-Reset`` to seconds from now, read by magnitude, never a wait of years.

    A value of at least ``EPOCH_THRESHOLD`` is a unix timestamp, a smaller one a delta in seconds:
    APIs differ (AniList sends a timestamp, Nekos and Kitsu a delta), and the magnitude tells them
    apart without a setting. (The former ``rate_limit_reset`` source key is ignored with a warning:
    an epoch read as a delta would hold for 55 years, a delta read as an epoch would mean "1970".)
    """
    if value is None:
        return None
    return max(0.0, value - now_wall) if value >= EPOCH_THRESHOLD else max(0.0, value)


def excerpt(body: bytes, limit: int = EXCERPT_CHARS) -> str:
    """A short, redacted, single-line excerpt of a body for error messages."""
    text = body[: limit * 4].decode("utf-8", errors="replace")
    text = redact_text(" ".join(text.split()))  # masked before the cut, so no half secret survives
    if len(text) > limit:
        text = text[:limit] + "…"
    return text if text else "(empty body)"


def _parse_json(body: bytes) -> tuple[Any, bool]:
    if not body.strip():
        return None, False
    try:
        return orjson.loads(body), True
    except orjson.JSONDecodeError:
        return None, False


def _mentions(body: bytes, markers: tuple[str, ...]) -> bool:
    text = body[:4096].decode("utf-8", errors="replace").lower()
    return any(m in text for m in markers)


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value.strip())
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _integer(value: str | None) -> int | None:
    number = _number(value)
    return int(number) if number is not None else None
