"""What connectors share: the page driver, bounded concurrent fetching, the stream base, auth
identity and option reading.

``drive(paginator, get, ...)`` is the one way a listing is paged: the first page, then every
remaining page planned from the total the first page gave (``paginator.plan()``) and fetched
``width`` at a time, or, without a total, the next links / cursors followed one by one; pages a
resumed scan already committed are skipped (the first one is always read: it carries the total),
and the paginator's loop guard and page cap hold throughout. A connector adds only what its API
needs on top (Kitsu's churn passes, Nekos's re-reads, AniList v1's order checks).

``completed(items, fetch, width)`` runs ``fetch`` over ``items`` with at most ``width`` calls in
flight and yields each result as soon as it is ready, so a slow page never holds back the pages
that finished after it (the runner commits pages by key, in any order). The client's own limiter
and in-flight cap still pace every request; ``width`` only bounds how far ahead we read.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Container, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from pipeline.errors import ConfigError, HTTPStatusError
from pipeline.http import RequestStats, ServiceClient
from pipeline.pagination import PageRequest, Paginator
from pipeline.settings import OAuthClientCredentialsAuth, OAuthPasswordAuth, SourceSettings

T = TypeVar("T")
R = TypeVar("R")

_DONE = object()


def first_error(exc: BaseException) -> BaseException:
    """The first leaf of an exception group: what a TaskGroup failure really was."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


async def completed(items: Iterable[T], fetch: Callable[[T], Awaitable[R]], width: int) -> AsyncIterator[R]:
    """``fetch(item)`` for every item, ``width`` at a time, results in completion order."""
    pending = iter(items)
    results: asyncio.Queue[Any] = asyncio.Queue(maxsize=max(1, width))

    async def worker() -> None:
        for item in pending:  # the shared iterator hands each item to exactly one worker
            await results.put(await fetch(item))
        await results.put(_DONE)

    try:
        async with asyncio.TaskGroup() as tasks:
            for _ in range(max(1, width)):
                tasks.create_task(worker())
            running = max(1, width)
            while running:
                result = await results.get()
                if result is _DONE:
                    running -= 1
                    continue
                yield result
    except BaseExceptionGroup as group:
        raise first_error(group) from None


@dataclass(frozen=True, slots=True)
class Fetched:
    """One page the driver read: its number in the pass (counting from ``start``), its key (the
    number; ``None`` on an unkeyed pass), body, size and request."""

    number: int
    keyed: bool
    doc: Any
    nbytes: int
    request: PageRequest
    items: list[Any] | None = None  # what the paginator read off the page (None: a planned page)

    @property
    def key(self) -> int | None:
        return self.number if self.keyed else None


Getter = Callable[[PageRequest], Awaitable[tuple[Any, int]]]


async def drive(
    paginator: Paginator,
    get: Getter,
    *,
    committed: Container[int] = (),
    width: int = 1,
    start: int = 0,
    keyed: bool = True,
    follow: bool = False,
    opened: bool = False,
) -> AsyncIterator[Fetched]:
    """Every page of one listing pass (see the module docstring); keys count up from ``start``.

    A paginator that can ``plan()`` (an offset listing whose first page gave a total) has its pages
    fetched ``width`` at a time and yielded as they arrive; any other is followed page by page.
    ``committed`` keys are not yielded again (nor fetched, when planned). With ``keyed = False``
    (a re-read pass whose progress is already committed) every page is read and yielded unkeyed.
    ``follow = True`` never plans (a walk that stops early: newest-first to a watermark).
    ``opened``: the caller already read the first page and gave it to the paginator.
    """
    if not opened:
        request = paginator.first_request()
        doc, nbytes = await get(request)
        items = paginator.update(doc)
        if not keyed or start not in committed:
            yield Fetched(start, keyed, doc, nbytes, request, items)
    plan = None if follow else getattr(paginator, "plan", None)
    if plan is not None and getattr(paginator, "total", None) is not None:
        planned: list[PageRequest] = plan()
        cap = paginator.page_cap()
        if len(planned) + 1 > cap:
            planned, paginator.capped = planned[: max(0, cap - 1)], True
        todo = [(n, r) for n, r in enumerate(planned, start=start + 1) if not keyed or n not in committed]

        async def fetch(item: tuple[int, PageRequest]) -> Fetched:
            number, planned_request = item
            body, size = await get(planned_request)
            return Fetched(number, keyed, body, size, planned_request)

        async for fetched in completed(todo, fetch, width):
            yield fetched
        return
    number = start
    while paginator.has_next:
        number += 1
        request = paginator.next_request()
        doc, nbytes = await get(request)
        items = paginator.update(doc)
        if not keyed or number not in committed:
            yield Fetched(number, keyed, doc, nbytes, request, items)


async def still_there(
    ids: Iterable[str], fetch: Callable[[str], Awaitable[object]], width: int
) -> tuple[str, ...]:
    """The ids whose ``fetch`` (a detail request) answers, ``width`` at a time; a 404 means gone,
    any other error fails the lookup (nothing is deleted on a guess)."""

    async def probe(ident: str) -> str | None:
        try:
            await fetch(ident)
        except HTTPStatusError as exc:
            if exc.status == 404:
                return None
            raise
        return ident

    answered = [ident async for ident in completed(list(ids), probe, width)]
    return tuple(ident for ident in answered if ident is not None)


def auth_identity(source: SourceSettings, *, enabled: bool = True) -> str:
    """``user:<name>`` when the source authenticates as someone, else ``anonymous``.

    Deletes are only allowed between scans of the same identity, so a scan that sees less (an
    anonymous Kitsu scan hides R18 titles) never soft-deletes what an authenticated one saw.
    """
    auth = source.auth
    if not enabled:
        return "anonymous"
    if isinstance(auth, OAuthPasswordAuth):
        return f"user:{auth.username.lower()}"
    if isinstance(auth, OAuthClientCredentialsAuth):
        return f"client:{auth.client_id}"
    return "anonymous"


def option(source: SourceSettings, key: str, default: T, kind: type[T]) -> T:
    """A connector option with its default; a wrong type names the key and the fix."""
    value: Any = source.options.get(key, default)
    if kind is int and isinstance(value, bool):
        value = None
    if not isinstance(value, kind):
        raise ConfigError(
            f"[sources.{source.name}].{key} = {value!r}: expected {kind.__name__}; fix the value"
        )
    return value


def check_resource(source: SourceSettings, resource: str, known: Mapping[str, Any]) -> None:
    if resource not in known:
        raise ConfigError(
            f"[sources.{source.name}] resource {resource!r} is not a {source.kind} resource; "
            f"use some of {', '.join(known)}"
        )


class StreamBase:
    """What every connector's stream holds (``streams.Stream``): its source, resource and client,
    its own request counters, the tables it owns and counts (``main_tables`` may narrow them), and
    the identity it reads as (subclasses that see more or less per credential override it)."""

    incremental = False

    def __init__(
        self, source: SourceSettings, resource: str, client: ServiceClient, tables: tuple[str, ...]
    ) -> None:
        self.source = source
        self.resource = resource
        self.client = client
        self.stats = RequestStats()
        self.owned_tables: tuple[str, ...] = tables
        self.main_tables: tuple[str, ...] = tables
        self.auth_identity = auth_identity(source)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(source={self.source.name!r}, resource={self.resource!r})"
