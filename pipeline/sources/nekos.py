"""Nekos API v1 connector: images, artists, characters and categories (image tags), full re-scans.

Each resource is ``/<singular>?limit=L&offset=O`` with ``meta.pagination.total``. The server has no
ORDER BY, so a scan sees duplicates on one page and misses on another. The connector keeps the
distinct ids it has seen; after the first pass it re-reads pages, those next to a duplicate first
(a row that moved there left a gap on its neighbour), until it has seen ``total`` distinct ids or
spent ``MAX_EXTRA_PASSES`` passes. Only then does its last page carry ``expected_total``, the
runner's permission to delete the rows the scan did not see once ``lookup`` (``GET /<singular>/<id>``
answering 404) has confirmed them gone; otherwise the scan is ``complete = False`` and the stream
ends ``incomplete``. A resumed scan (pages committed by a run that stopped) starts from the ids
those pages loaded (``state.seen_ids``) and does everything a fresh scan does: the pages left,
then the re-read passes. Every loop is bounded (``max_pages``, else ``default_max_pages``).

The 1 req/s limit is the ``ServiceClient``'s business (limiter, pause on 429, violation budget
that stops the service with the committed pages saved); the kind defaults set ``max_in_flight=1``.
Image ``url`` and ``meta.expires`` change on every call and are volatile in the transforms, so an
unchanged image is never rewritten.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Mapping, Sequence
from typing import Any

from pipeline.connectors import ConnectorSpec
from pipeline.errors import ConfigError, ContractError
from pipeline.http import ServiceClient
from pipeline.log import get_logger
from pipeline.pagination import OffsetPaginator, PageRequest, default_max_pages
from pipeline.settings import BearerAuth, SourceSettings
from pipeline.sources.common import StreamBase, drive, still_there
from pipeline.streams import Page, StreamState
from pipeline.transform.nekos import page_items

log = get_logger(__name__)

# A since/until backfill cannot be honoured (``None`` = windows are honoured).
NO_TIME_WINDOW = "Nekos API v1 records carry no update time to select a window by"

PATHS = {"images": "image", "artists": "artist", "characters": "character", "categories": "category"}
OWNED = {
    "images": ("catalog.images",),
    "artists": ("catalog.artists",),
    "characters": ("catalog.characters",),
    "categories": ("catalog.tags",),
}
MAX_EXTRA_PASSES = 3


def main_tables(resource: str) -> tuple[str, ...]:
    """The tables a ``resource`` stream's inserted/updated/unchanged count (its other rows apart)."""
    return OWNED[resource]


def build_stream(source: SourceSettings, resource: str, client: ServiceClient) -> NekosStream:
    if resource not in PATHS:
        raise ConfigError(
            f"[sources.{source.name}] resource {resource!r} is not a Nekos v1 listing; use some of "
            f"{', '.join(PATHS)}"
        )
    return NekosStream(source, resource, client)


def _total(body: Any) -> int | None:
    pagination = body.get("meta", {}).get("pagination", {}) if isinstance(body, Mapping) else {}
    total = pagination.get("total") if isinstance(pagination, Mapping) else None
    return total if isinstance(total, int) and not isinstance(total, bool) else None


class NekosStream(StreamBase):
    """One Nekos listing (``streams.Stream``)."""

    def __init__(self, source: SourceSettings, resource: str, client: ServiceClient) -> None:
        super().__init__(source, resource, client, main_tables(resource))
        # The token's scopes decide what is listed: a scan made without one never deletes after one with.
        self.auth_identity = "bearer" if isinstance(source.auth, BearerAuth) else "anonymous"
        self.path = PATHS[resource]
        self.limit = source.page_size

    async def pages(self, state: StreamState) -> AsyncIterator[Page]:
        # A resumed scan starts from the ids its committed pages loaded, and then does everything
        # a fresh scan does: the pages left, then re-reads until every expected record was seen.
        seen: set[str] = set(state.seen_ids)
        holders: dict[str, int] = {}  # id → the page it was first seen on (this run)
        suspects: set[int] = set()  # pages next to a duplicate: where a missed row most likely sits
        cap = self.source.max_pages
        paginator = OffsetPaginator(self.path, limit=self.limit, max_pages=cap)
        requests = 0
        pages = drive(paginator, self._get, committed=state.committed, width=self.source.max_in_flight)
        async for fetched in pages:
            requests += 1
            n = fetched.number
            fresh = self._absorb(n, fetched.doc, seen, holders, suspects)
            url = fetched.request.full_url(self.source.base_url)
            hint = paginator.total or None
            yield Page(self._with(fetched.doc, fresh), key=n, nbytes=fetched.nbytes, url=url, total_hint=hint)
        total = paginator.total or 0
        count = min(-(-total // self.limit), paginator.page_cap()) if total else 1
        budget = cap or default_max_pages(total, self.limit) * (MAX_EXTRA_PASSES + 1)
        passes = 0
        while len(seen) < total and passes < MAX_EXTRA_PASSES and requests < budget:
            passes += 1
            first = sorted(p for p in suspects if 0 <= p < count)
            order = first + [n for n in range(count) if n not in suspects]
            log.info("nekos_reread", missing=total - len(seen), pass_number=passes, suspects=len(suspects))
            for n in order:
                if len(seen) >= total or requests >= budget:
                    break
                page = self._page(n)
                body, nbytes = await self._get(page)
                requests += 1
                total = _total(body) or total
                count = max(count, min(-(-total // self.limit), paginator.page_cap()))
                fresh = self._absorb(n, body, seen, holders, suspects)
                if fresh:
                    url = page.full_url(self.source.base_url)
                    yield Page(self._with(body, fresh), nbytes=nbytes, url=url)
        complete = len(seen) >= total
        if not complete:
            log.warning("nekos_scan_incomplete", seen=len(seen), total=total, passes=passes)
        empty = {"success": True, "data": [], "meta": {"pagination": {"total": total}}}
        yield Page(empty, expected_total=total if complete else None, complete=complete)

    async def lookup(self, ids: Sequence[str]) -> AsyncIterator[Page]:
        """Which of ``ids`` still exist (``GET /<singular>/<id>``: 200 or 404), one request each.

        The detail model differs from the listing's, so nothing is loaded from it: the ids that
        answer are reported ``present`` (kept, never deleted) and the rest are gone.
        """

        def detail(rid: str) -> Awaitable[Any]:
            return self.client.request("GET", f"{self.path}/{rid}", stats=self.stats)

        present = await still_there(ids, detail, self.source.max_in_flight)
        empty = {"success": True, "data": [], "meta": {"pagination": {"total": 0}}}
        yield Page(empty, present=present)

    def _absorb(
        self, n: int, body: Any, seen: set[str], holders: dict[str, int], suspects: set[int]
    ) -> list[Any]:
        """The page's records not seen before; a duplicate marks both pages and their neighbours."""
        fresh = []
        for record in page_items(body, self.resource):
            rid = str(record.get("id")) if isinstance(record, Mapping) else None
            if rid is None:
                fresh.append(record)  # the transform rejects it with its reason
            elif rid not in seen:
                seen.add(rid)
                holders[rid] = n
                fresh.append(record)
            elif holders.get(rid, n) != n:  # a resumed scan does not know where earlier ids were
                for page in (holders[rid], n):
                    suspects.update((page - 1, page, page + 1))
        return fresh

    @staticmethod
    def _with(body: Any, records: list[Any]) -> dict[str, Any]:
        return {**body, "data": records}

    def _page(self, n: int) -> PageRequest:
        """Page ``n`` of the listing (a re-read of one page)."""
        return PageRequest(self.path, {"limit": self.limit, "offset": n * self.limit})

    async def _get(self, request: PageRequest) -> tuple[Any, int]:
        response = await self.client.request("GET", request.url, params=request.params, stats=self.stats)
        if not isinstance(response.data, Mapping):
            raise ContractError(
                f"nekos {self.resource}: {response.url} answered {type(response.data).__name__}, not an "
                "envelope; check base_url (the v1 API root, e.g. https://v1.nekosapi.com/api)"
            )
        page_items(response.data, self.resource)  # an error envelope names itself before paging on
        return response.data, response.nbytes


SPEC = ConnectorSpec(
    kind="nekos",
    resources=tuple(PATHS),
    defaults={
        "rate": {"requests": 1, "per_seconds": 1.0},
        "max_in_flight": 1,
        "page_size": 25,
        "violation_budget": 2,
        "safety_margin_seconds": 0.03,
    },
    max_page_size=25,
)


__all__ = ["OWNED", "PATHS", "NekosStream", "build_stream", "main_tables"]
