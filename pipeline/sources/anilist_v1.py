"""Legacy AniList REST v1 connector: ``browse/{anime|manga}`` full re-scans, optional series pages.

``browse/{type}?sort=id&page=N`` answers a bare JSON array of at most 40 small series models and no
total, so the scan walks pages in order and stops on a short or empty page. Page keys are page
numbers: a crashed scan resumes at the first page it had not committed.

Deletes need a known total and v1 has none. A pass is orderly when every page held exactly the
records it should (ids ascending across pages, none twice: an insert during the scan shifts a
record onto the next page and shows up as a repeat); a pass that is not is followed by another,
up to ``MAX_PASSES``. The scan is complete when its last pass was orderly and not capped
(``max_pages``, else ``pagination.DEFAULT_MAX_PAGES``; a server ignoring ``?page`` repeats a page
and stops the scan with a ``ContractError``). Only then does it report ``expected_total`` = the
distinct ids seen; the runner looks each unseen record up (``GET {type}/{id}``) and deletes only
those that answer 404. A resumed scan starts from the ids its committed pages loaded.

``series_pages = true`` replaces each small model by its full ``{type}/{id}/page`` model
(characters, staff, …), ``max_in_flight`` of them at a time: one extra request per record.

Auth is the OAuth2 client-credentials grant from ``[sources.X.auth]`` (``kind =
"oauth_client_credentials"``); the provider renews the one-hour token before it expires.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipeline.connectors import ConnectorSpec
from pipeline.http import ServiceClient
from pipeline.log import get_logger
from pipeline.pagination import PageRequest, ShortPagePaginator
from pipeline.settings import SourceSettings
from pipeline.sources.common import (
    StreamBase,
    check_resource,
    completed,
    drive,
    option,
    still_there,
)
from pipeline.streams import Page, StreamState

log = get_logger(__name__)

# A since/until backfill cannot be honoured (``None`` = windows are honoured).
NO_TIME_WINDOW = "the AniList v1 API has no filter by update time"

TYPES = {"anime": "anime", "manga": "manga"}
MAX_PASSES = 3


@dataclass(slots=True)
class _Walk:
    """What passes over the listing learnt: ids seen (the whole scan), and the last pass's verdict."""

    seen: set[str] = field(default_factory=set)
    orderly: bool = True
    sorted: bool = True  # every page's ids ascending (else the server ignores sort=id)
    capped: bool = False


def client_options(source: SourceSettings) -> dict[str, Any]:
    """Nothing beyond the defaults: the client-credentials provider comes from ``auth``."""
    return {}


def main_tables(resource: str) -> tuple[str, ...]:
    """The tables a ``resource`` stream's inserted/updated/unchanged count (its other rows apart)."""
    return ("catalog.media",)


def build_stream(source: SourceSettings, resource: str, client: ServiceClient) -> AniListV1Stream:
    check_resource(source, resource, TYPES)
    return AniListV1Stream(source, resource, client)


class AniListV1Stream(StreamBase):
    """Anime or manga of one AniList v1 source (``streams.Stream``): a sequential full re-scan."""

    def __init__(self, source: SourceSettings, resource: str, client: ServiceClient) -> None:
        super().__init__(source, resource, client, main_tables(resource))
        self.series_pages = option(source, "series_pages", False, bool)

    def __repr__(self) -> str:
        return f"AniListV1Stream(source={self.source.name!r}, resource={self.resource!r})"

    async def pages(self, state: StreamState) -> AsyncIterator[Page]:
        walk = _Walk(seen=set(state.seen_ids))
        start = state.committed.first_missing(1)
        async for page in self._walk(start, walk, keyed=True):
            yield page
        passes = 1
        while not walk.orderly and walk.sorted and not walk.capped and passes < MAX_PASSES:
            # Membership moved under the walk (a repeat, ids out of order): read it all again,
            # unkeyed (the first pass's progress is committed), until one pass is orderly.
            passes += 1
            log.info("anilist_v1_reread", pass_number=passes)
            walk = _Walk(seen=walk.seen)
            async for page in self._walk(1, walk, keyed=False):
                yield page
        complete = walk.orderly and not walk.capped
        log.info("anilist_v1_scan_done", passes=passes, distinct=len(walk.seen), complete=complete)
        if not complete:
            log.warning("anilist_v1_scan_incomplete", passes=passes, capped=walk.capped)
        # v1 has no total: a complete scan expects what it saw; empty is a glitch, never a mass delete
        total = len(walk.seen) if complete and walk.seen else None
        yield Page([], expected_total=total, complete=complete)

    async def _walk(self, start: int, walk: _Walk, *, keyed: bool) -> AsyncIterator[Page]:
        """One pass from page ``start`` to a short or empty page (or the page cap)."""
        paginator = ShortPagePaginator(
            f"browse/{self.resource}",
            page_size=self.source.page_size,
            params={"sort": "id"},
            page=start,
            max_pages=self.source.max_pages,
        )
        mine: set[str] = set()
        last_id: int | None = None
        async for fetched in drive(paginator, self._get, start=start, keyed=keyed):
            number, doc, items = fetched.number, fetched.doc, fetched.items or []
            ids = [s.get("id") for s in items if isinstance(s, Mapping)]
            numeric = [i for i in ids if isinstance(i, int)]
            keys = {str(i) for i in ids if i is not None}
            if numeric != sorted(numeric):  # not sorted by id at all: reading again cannot help
                walk.orderly = walk.sorted = False
                log.warning("anilist_v1_page_unsorted", page=number, fix="the scan is incomplete")
            elif keys & mine or (last_id is not None and numeric and numeric[0] <= last_id):
                walk.orderly = False
                log.warning("anilist_v1_page_shifted", page=number, fix="the scan reads the listing again")
            mine |= keys
            walk.seen |= keys
            last_id = numeric[-1] if numeric else last_id
            if self.series_pages and items:
                doc = await self._details(items)
            url = fetched.request.full_url(self.source.base_url)
            yield Page(doc, key=fetched.key, nbytes=fetched.nbytes, url=url)
        walk.capped = paginator.capped

    async def lookup(self, ids: Sequence[str]) -> AsyncIterator[Page]:
        """Which of ``ids`` still exist (``GET {type}/{id}``: 200, or 404 when gone).

        The series model is not the browse model, so nothing is loaded from it: the ids that
        answer are reported ``present`` (kept) and the others are gone.
        """

        def detail(ident: str) -> Awaitable[Any]:
            return self._get(PageRequest(f"{self.resource}/{ident}"))

        yield Page([], present=await still_there(ids, detail, self.source.max_in_flight))

    async def _details(self, items: list[Any]) -> list[Any]:
        """The full ``{type}/{id}/page`` model of every series on a browse page (order kept)."""
        ids = [s["id"] for s in items if isinstance(s, Mapping) and s.get("id") is not None]

        async def fetch(ident: Any) -> tuple[Any, Any]:
            doc, _ = await self._get(PageRequest(f"{self.resource}/{ident}/page"))
            return ident, doc

        found = {ident: doc async for ident, doc in completed(ids, fetch, self.source.max_in_flight)}
        return [found.get(s.get("id"), s) if isinstance(s, Mapping) else s for s in items]

    async def _get(self, request: PageRequest) -> tuple[Any, int]:
        response = await self.client.request("GET", request.url, params=request.params, stats=self.stats)
        return response.data, response.nbytes


SPEC = ConnectorSpec(
    kind="anilist_v1",
    resources=tuple(TYPES),
    defaults={"rate": {"requests": 90, "per_seconds": 60.0}, "max_in_flight": 2, "page_size": 40},
    max_page_size=40,
    options={"series_pages": bool},
)


__all__ = ["AniListV1Stream", "build_stream", "client_options", "main_tables"]
