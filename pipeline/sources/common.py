"""Helpers the catalogue connectors share: bounded concurrent fetching, auth identity, option reading.

``completed(items, fetch, width)`` runs ``fetch`` over ``items`` with at most ``width`` calls in
flight and yields each result as soon as it is ready, so a slow page never holds back the pages
that finished after it (the runner commits pages by key, in any order). The client's own limiter
and in-flight cap still pace every request; ``width`` only bounds how far ahead we read.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from typing import Any, TypeVar

from pipeline.errors import ConfigError
from pipeline.http import RequestStats, ServiceClient
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
