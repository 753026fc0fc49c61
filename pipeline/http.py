"""ServiceClient: one per configured source. Session, pacing, in-flight cap, retries, auth, stats.

Every *attempt* (retries and token calls included) passes, in this order: the service's pause
gate (closed after a 429 until the server's moment), the in-flight semaphore, the adaptive
limiter (``pipeline.ratelimit``, the in-process fast path), the shared budget of the source's
rate group when the runner gave one (``pipeline.budget``: one slot reserved in PostgreSQL per
request, so every process and machine of the group stays within one rate), then the wire.
``pipeline.responses.classify_response`` alone decides what the answer means; this module only
reacts: retry with full-jitter backoff (capped by ``backoff_max_seconds``), pause the group on a
429 (counted in the violation ledger, not in ``max_attempts``), renew the token once, defer the
source when the server asks for a wait beyond ``max_wait_seconds``, or raise a fatal error naming
source, redacted URL, status, a body excerpt and a fix.
"""

from __future__ import annotations

import asyncio
import random
import types
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NoReturn, Self

import aiohttp
import orjson

from pipeline.auth import AuthProvider, build_auth
from pipeline.clock import Clock, SystemClock
from pipeline.errors import (
    AuthError,
    ContractError,
    DeferredError,
    HTTPStatusError,
    TransientError,
    ViolationBudgetError,
)
from pipeline.log import get_logger
from pipeline.ratelimit import AdaptiveLimiter, PauseGate, Slot
from pipeline.redact import redact_text, redact_url
from pipeline.responses import BodyCheck, Outcome, Verdict, classify_response, read_quota
from pipeline.settings import SourceSettings

if TYPE_CHECKING:  # the shared budget needs the database driver: a connector never loads it
    from pipeline.budget import Reservation, SharedBudget

log = get_logger(__name__)

USER_AGENT = "pipeline/0.1 (+https://github.com/; data sync)"
READ_CHUNK_BYTES = 64 * 1024
TRANSPORT_ERRORS = (asyncio.TimeoutError, aiohttp.ClientConnectionError, aiohttp.ClientPayloadError)


@dataclass
class RequestStats:
    """Counters for one stream (or the whole service): pass one per call to attribute the work."""

    requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    wait_seconds: float = 0.0
    bytes: int = 0

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Response:
    """A successful response: parsed JSON, status, headers and the final (redacted) URL."""

    status: int
    data: Any
    headers: Mapping[str, str] = field(repr=False)
    url: str
    nbytes: int


class ServiceClient:
    """HTTP for one source; use ``async with ServiceClient(settings) as client:`` inside the loop."""

    def __init__(
        self,
        settings: SourceSettings,
        *,
        auth: AuthProvider | None = None,
        clock: Clock | None = None,
        body_check: BodyCheck | None = None,
        headers: Mapping[str, str] | None = None,
        session: aiohttp.ClientSession | None = None,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.settings = settings
        self.source = settings.name
        self.clock = clock or SystemClock()
        self.auth = auth if auth is not None else build_auth(settings, self.clock)
        self.body_check = body_check
        self.totals = RequestStats()
        self.violations = 0
        self.in_flight = 0
        self.peak_in_flight = 0
        self._headers = {"User-Agent": USER_AGENT, "Accept": "application/json", **(headers or {})}
        self._session = session
        self._owns_session = session is None
        self._jitter = jitter
        self._started = False
        self.budget: SharedBudget | None = None
        # Loop-bound objects are made in _start(), inside the running loop.
        self.limiter: AdaptiveLimiter
        self.gate: PauseGate
        self._semaphore: asyncio.Semaphore

    async def __aenter__(self) -> Self:
        self._start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def share_budget(self, budget: SharedBudget) -> None:
        """Draw every request from ``budget`` (the rate group's row in PostgreSQL) from now on."""
        self.budget = budget

    async def close(self) -> None:
        if self.budget is not None:
            await self.budget.close()
        if self._session is not None and self._owns_session:
            await self._session.close()
            self._session = None

    async def get_json(
        self,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        stats: RequestStats | None = None,
        body_check: BodyCheck | None = None,
    ) -> Any:
        """GET ``url`` (absolute, or a path under ``base_url``) and return the parsed JSON."""
        response = await self.request(
            "GET", url, params=params, headers=headers, stats=stats, body_check=body_check
        )
        return response.data

    async def post_json(
        self,
        url: str,
        *,
        json: Any,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        stats: RequestStats | None = None,
        body_check: BodyCheck | None = None,
    ) -> Any:
        """POST a JSON body (e.g. a GraphQL query) and return the parsed JSON answer."""
        response = await self.request(
            "POST", url, json=json, params=params, headers=headers, stats=stats, body_check=body_check
        )
        return response.data

    async def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        stats: RequestStats | None = None,
        body_check: BodyCheck | None = None,
    ) -> Response:
        """One logical request: retried, paced, authenticated; raises a ``PipelineError`` subclass."""
        self._start()
        full_url = self.url(url)
        check = body_check if body_check is not None else self.body_check
        renewed = False
        while True:
            credentials = await self.auth.credentials(self._auth_call)
            merged = {**self._headers, **(headers or {}), **credentials.headers}
            verdict, response = await self._perform(
                method, full_url, params, json, None, merged, stats, check
            )
            if response is not None:
                return response
            if verdict.outcome is Outcome.AUTH_EXPIRED:
                if renewed:
                    raise AuthError(
                        f"{self.source}: {method} {redact_url(full_url)} was refused with {verdict.status} "
                        f"even with a freshly renewed token: {verdict.reason}; the account lacks access "
                        f"to this resource, check its role/permissions"
                    )
                await self.auth.refresh(self._auth_call, credentials)
                renewed = True
                continue
            raise self._fatal(method, full_url, verdict)

    def url(self, path_or_url: str) -> str:
        if path_or_url.startswith(("http://", "https://")):
            return path_or_url
        return self.settings.base_url + "/" + path_or_url.lstrip("/")

    async def _auth_call(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        form: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[int, Any]:
        """Token endpoints: budgeted and retried, unauthenticated; the status is returned."""
        merged = {**self._headers, **(headers or {})}
        verdict, response = await self._perform(method, self.url(url), None, json, form, merged, None, None)
        return (response.status, response.data) if response is not None else (verdict.status, verdict.data)

    async def _perform(
        self,
        method: str,
        url: str,
        params: Mapping[str, Any] | None,
        json: Any,
        form: Mapping[str, str] | None,
        headers: Mapping[str, str],
        stats: RequestStats | None,
        body_check: BodyCheck | None,
    ) -> tuple[Verdict, Response | None]:
        """Attempt until success, a fatal/auth verdict, or the attempts run out (then raise)."""
        counters = [c for c in (stats, self.totals) if c is not None]
        attempt = 0
        tries = 0
        while attempt < self.settings.max_attempts:
            attempt += 1  # a 429 gives its attempt back: the violation budget governs those
            tries += 1
            if tries > 1:
                for c in counters:
                    c.retries += 1
            try:
                status, resp_headers, body, received = await self._send(
                    method, url, params, json, form, headers, counters
                )
            except TransientError as exc:
                await self._back_off(attempt, url, str(exc), None, counters)
                continue
            verdict = classify_response(
                status,
                resp_headers,
                body,
                now_wall=self.clock.wall(),
                body_check=body_check,
            )
            await self._observe_quota(resp_headers, received)
            if verdict.outcome is Outcome.RATE_LIMITED:
                attempt -= 1
                await self._on_rate_limited(verdict, url, received, counters)
                continue
            self.limiter.on_success()
            if verdict.outcome is Outcome.TRANSIENT:
                await self._back_off(attempt, url, verdict.reason, verdict.retry_after, counters)
                continue
            if verdict.outcome is Outcome.OK:
                return verdict, Response(status, verdict.data, resp_headers, redact_url(url), len(body))
            return verdict, None
        raise TransientError(
            f"{self.source}: {method} {redact_url(url)} still failing after {self.settings.max_attempts} "
            f"attempts; the API is unwell or unreachable: raise max_attempts or re-run later "
            f"(checkpoints resume where this stopped)"
        )

    async def _send(
        self,
        method: str,
        url: str,
        params: Mapping[str, Any] | None,
        json: Any,
        form: Mapping[str, str] | None,
        headers: Mapping[str, str],
        counters: list[RequestStats],
    ) -> tuple[int, Mapping[str, str], bytes, float]:
        """One attempt on the wire, after the gate, the semaphore and the limiter."""
        assert self._session is not None
        while True:
            waited = await self.gate.wait()
            async with self._semaphore:
                self._check_hold()
                slot, paced = await self.limiter.acquire()
                shared: Reservation | None = None
                if self.budget is not None:
                    started = self.clock.monotonic()
                    try:
                        shared = await self.budget.reserve()
                    except (DeferredError, ViolationBudgetError) as exc:
                        self.gate.stop(exc)
                        raise
                    paced += self.clock.monotonic() - started
                for c in counters:
                    c.wait_seconds += waited + paced
                if self.gate.is_paused():
                    # A 429 arrived while we waited for the slot: the slot is spent, wait again.
                    if shared is not None and self.budget is not None:
                        self.budget.release(shared)
                    continue
                self.gate.check()
                for c in counters:
                    c.requests += 1
                self.in_flight += 1
                self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
                try:
                    return await self._exchange(method, url, params, json, form, headers, slot, counters)
                finally:
                    self.in_flight -= 1
                    if shared is not None and self.budget is not None:
                        self.budget.release(shared)

    def _check_hold(self) -> None:
        """A header hold (Remaining at the reserve until Reset) longer than max_wait defers the source."""
        wait = self.limiter.held_until - self.clock.monotonic()
        if wait > self.settings.max_wait_seconds:
            self._defer(wait, "X-RateLimit-Remaining reached the reserve until X-RateLimit-Reset")

    async def _exchange(
        self,
        method: str,
        url: str,
        params: Mapping[str, Any] | None,
        json: Any,
        form: Mapping[str, str] | None,
        headers: Mapping[str, str],
        slot: Slot,
        counters: list[RequestStats],
    ) -> tuple[int, Mapping[str, str], bytes, float]:
        assert self._session is not None
        body_args: dict[str, Any] = {}
        if json is not None:
            body_args["data"] = orjson.dumps(json)
            headers = {**headers, "Content-Type": "application/json"}
        elif form is not None:
            body_args["data"] = dict(form)
        try:
            async with self._session.request(
                method, url, params=params, headers=headers, trace_request_ctx=slot, **body_args
            ) as resp:
                body = await self._read_capped(resp, url)
                received = self.clock.monotonic()
                for c in counters:
                    c.bytes += len(body)
                log.debug(
                    "http_response", method=method, url=redact_url(url), status=resp.status, bytes=len(body)
                )
                return resp.status, resp.headers, body, received
        except TRANSPORT_ERRORS as exc:
            reason = type(exc).__name__ + (": " + redact_text(str(exc)) if str(exc) else "")
            raise TransientError(f"{self.source}: {method} {redact_url(url)}: {reason}") from None

    async def _read_capped(self, resp: aiohttp.ClientResponse, url: str) -> bytes:
        limit = self.settings.max_body_bytes
        if resp.content_length is not None and resp.content_length > limit:
            raise self._too_large(url, resp.content_length)
        chunks: list[bytes] = []
        size = 0
        while chunk := await resp.content.read(READ_CHUNK_BYTES):
            size += len(chunk)
            if size > limit:
                raise self._too_large(url, size)
            chunks.append(chunk)
        return b"".join(chunks)

    def _too_large(self, url: str, size: int) -> ContractError:
        return ContractError(
            f"{self.source}: {redact_url(url)} sent a body of at least {size} bytes, above "
            f"max_body_bytes={self.settings.max_body_bytes}; lower page_size or raise "
            f"[sources.{self.source}].max_body_bytes"
        )

    async def _observe_quota(self, headers: Mapping[str, str], received: float) -> None:
        quota = read_quota(headers, now_wall=self.clock.wall())
        reset_at = received + quota.reset_in if quota.reset_in is not None else None
        if self.limiter.observe_quota(quota.limit, quota.remaining, reset_at):
            log.info(
                "rate_limit_reserve_hold",
                source=self.source,
                remaining=quota.remaining,
                until_in=quota.reset_in,
            )
            if self.budget is not None and quota.reset_in is not None and quota.reset_in > 0:
                await self.budget.hold(quota.reset_in)  # the other processes of the group hold too

    def _defer(self, wait: float, why: str) -> NoReturn:
        """Stop this source cleanly: the server wants a wait beyond max_wait_seconds."""
        resume_at = self.clock.wall() + wait
        moment = datetime.fromtimestamp(resume_at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        error = DeferredError(
            f"{self.source}: the API asked for a wait of {wait:,.0f} s ({why}), beyond "
            f"max_wait_seconds={self.settings.max_wait_seconds:g}; stopped this source, committed "
            f"pages are kept; it may resume after {moment}",
            resume_at=resume_at,
        )
        self.gate.stop(error)
        raise error

    async def _on_rate_limited(
        self, verdict: Verdict, url: str, received: float, counters: list[RequestStats]
    ) -> None:
        """Pause every worker of the group until the server's moment; stop at the violation budget.

        With a shared budget the 429 goes to the ledger and pauses every process of the rate group;
        the budget is counted over ``violation_window_seconds`` across processes and runs.
        """
        self.violations += 1
        for c in counters:
            c.rate_limited += 1
        self.limiter.on_rate_limited()
        wait = verdict.retry_after
        if wait is None:
            wait = min(
                self.settings.backoff_max_seconds, max(self.settings.rate.per_seconds, 2 * self.violations)
            )
        violations = self.violations
        free_at: float | None = None
        if self.budget is not None:
            state = await self.budget.record_violation(verdict.retry_after, wait + self.limiter.margin)
            violations, free_at = state.count, state.free_at
        if wait > self.settings.max_wait_seconds and violations < self.settings.violation_budget:
            self._defer(wait, f"a {verdict.status} with Retry-After/X-RateLimit-Reset")
        self.gate.pause_until(received + wait + self.limiter.margin)
        log.warning(
            "rate_limited",
            source=self.source,
            url=redact_url(url),
            retry_after=wait,
            violations=violations,
            budget=self.settings.violation_budget,
            rate=round(self.limiter.rate, 4),
            margin=round(self.limiter.margin, 4),
        )
        if violations >= self.settings.violation_budget:
            if self.budget is not None:
                from pipeline.budget import LedgerState  # loaded already: self.budget is a SharedBudget

                error = self.budget.spent_error(LedgerState(violations, free_at))
            else:
                error = ViolationBudgetError(
                    f"{self.source}: the API answered 429 {violations} times, reaching violation_budget="
                    f"{self.settings.violation_budget}; stopped this service before the API bans it. "
                    f"Lower [sources.{self.source}].rate or raise safety_margin_seconds, then re-run "
                    f"(checkpoints resume)"
                )
            self.gate.stop(error)
            raise error

    async def _back_off(
        self, attempt: int, url: str, reason: str, retry_after: float | None, counters: list[RequestStats]
    ) -> None:
        """Full-jitter exponential backoff capped by backoff_max (or the server's longer Retry-After).

        A Retry-After beyond ``max_wait_seconds`` defers the source instead of holding the run.
        """
        if retry_after is not None and retry_after > self.settings.max_wait_seconds:
            self._defer(retry_after, f"Retry-After on: {reason}")
        if attempt >= self.settings.max_attempts:
            raise TransientError(
                f"{self.source}: {redact_url(url)} failed {attempt} times, last: {reason}; the API is "
                f"unwell or unreachable: raise max_attempts or re-run later (checkpoints resume)"
            )
        ceiling = min(
            self.settings.backoff_max_seconds, self.settings.backoff_base_seconds * 2 ** (attempt - 1)
        )
        delay = max(self._jitter() * ceiling, retry_after or 0.0)
        log.warning(
            "http_retry", source=self.source, url=redact_url(url), attempt=attempt, delay=delay, reason=reason
        )
        for c in counters:
            c.wait_seconds += delay
        await self.clock.sleep(delay)

    def _fatal(self, method: str, url: str, verdict: Verdict) -> Exception:
        reason = redact_text(verdict.reason)
        message = (
            f"{self.source}: {method} {redact_url(url)} answered {verdict.status}: {reason}; "
            f"{verdict.hint or 'the API refused the request; retrying will not help'}"
        )
        if verdict.status >= 400:
            return HTTPStatusError(message, status=verdict.status)
        return ContractError(message)

    def _start(self) -> None:
        if self._started:
            return
        settings = self.settings
        self.limiter = AdaptiveLimiter(
            settings.rate.requests,
            settings.rate.per_seconds,
            clock=self.clock,
            margin=settings.safety_margin_seconds,
            reserve=settings.rate_limit_reserve,
        )
        self.gate = PauseGate(self.clock)
        self._semaphore = asyncio.Semaphore(settings.max_in_flight)
        if self._session is None:
            trace = aiohttp.TraceConfig()
            trace.on_request_headers_sent.append(self._on_headers_sent)
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=settings.timeout_seconds),
                connector=aiohttp.TCPConnector(limit=settings.max_in_flight),
                trace_configs=[trace],
            )
        self._started = True

    async def _on_headers_sent(
        self, _: aiohttp.ClientSession, context: types.SimpleNamespace, __: object
    ) -> None:
        slot = context.trace_request_ctx
        if isinstance(slot, Slot):
            slot.mark_sent(self.clock.monotonic())

    def __repr__(self) -> str:
        return f"ServiceClient(source={self.source!r}, base_url={redact_url(self.settings.base_url)!r})"
