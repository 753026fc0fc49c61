"""Legacy AniList REST v1 connector: ``browse/{anime|manga}`` full re-scans, optional series pages.

``browse/{type}?sort=id&page=N`` answers a bare JSON array of at most 40 small series models and no
total, so the scan walks pages in order and stops on a short or empty page. Page keys are page
numbers: a crashed scan resumes at the first page it had not committed.

Deletes need a known total and v1 has none. The scan therefore reports ``expected_total`` only
when it ended normally (a short or empty page, no ``max_pages`` cap) and every page held exactly
the records it should (ids ascending across pages, none twice: an insert during the scan shifts a
record onto the next page and shows up as a repeat). It is then the number of distinct ids seen,
which the runner compares with what the scan committed before soft-deleting the rest.

``series_pages = true`` replaces each small model by its full ``{type}/{id}/page`` model
(characters, staff, …), ``max_in_flight`` of them at a time: one extra request per record.

Auth is the OAuth2 client-credentials grant from ``[sources.X.auth]`` (``kind =
"oauth_client_credentials"``); the provider renews the one-hour token before it expires.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

from pipeline.checkpoints import StreamState
from pipeline.http import RequestStats, ServiceClient
from pipeline.log import get_logger
from pipeline.models import catalog as _catalog  # noqa: F401  (registers the catalog table specs)
from pipeline.pagination import PageRequest, ShortPagePaginator
from pipeline.runner import Page
from pipeline.settings import SourceSettings
from pipeline.sources.common import auth_identity, check_resource, completed, option

log = get_logger(__name__)

TYPES = {"anime": "anime", "manga": "manga"}


def client_options(source: SourceSettings) -> dict[str, Any]:
    """Nothing beyond the defaults: the client-credentials provider comes from ``auth``."""
    return {}


def build_stream(source: SourceSettings, resource: str, client: ServiceClient) -> AniListV1Stream:
    check_resource(source, resource, TYPES)
    return AniListV1Stream(source, resource, client)


class AniListV1Stream:
    """Anime or manga of one AniList v1 source (``runner.Stream``): a sequential full re-scan."""

    incremental = False

    def __init__(self, source: SourceSettings, resource: str, client: ServiceClient) -> None:
        self.source = source
        self.resource = resource
        self.client = client
        self.owned_tables = ("catalog.media",)
        self.auth_identity = auth_identity(source)
        self.stats = RequestStats()
        self.series_pages = option(source, "series_pages", False, bool)

    def __repr__(self) -> str:
        return f"AniListV1Stream(source={self.source.name!r}, resource={self.resource!r})"

    async def pages(self, state: StreamState) -> AsyncIterator[Page]:
        start = state.committed.first_missing(1)
        paginator = ShortPagePaginator(
            f"browse/{self.resource}",
            page_size=self.source.page_size,
            params={"sort": "id"},
            page=start,
            max_pages=self.source.max_pages,
        )
        request: PageRequest | None = paginator.first_request()
        number = start
        seen: set[Any] = set()
        last_id: int | None = None
        orderly = True
        while request is not None:
            doc, nbytes = await self._get(request)
            items = paginator.update(doc)
            ids = [s.get("id") for s in items if isinstance(s, Mapping)]
            numeric = [i for i in ids if isinstance(i, int)]
            if (
                len(set(ids) & seen)
                or numeric != sorted(numeric)
                or (last_id is not None and numeric and numeric[0] <= last_id)
            ):
                orderly = False
                log.warning("anilist_v1_page_shifted", page=number, fix="the next complete scan settles it")
            seen.update(ids)
            last_id = numeric[-1] if numeric else last_id
            if self.series_pages and items:
                doc = await self._details(items)
            yield Page(doc, key=number, nbytes=nbytes)
            request = paginator.next_request() if paginator.has_next else None
            number += 1
        complete = orderly and not paginator.capped and len(seen) > 0  # empty: a glitch, never a mass delete
        log.info("anilist_v1_scan_done", pages=number - start, distinct=len(seen), complete=complete)
        yield Page([], expected_total=len(seen) if complete else None)

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


__all__ = ["AniListV1Stream", "build_stream", "client_options"]
