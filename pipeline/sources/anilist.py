"""AniList GraphQL v2 connector: anime and manga ``Media`` with titles, synonyms, genres and ``idMal``.

AniList's terms forbid mass collection without permission: ask AniList before a full scan of the
real service (the README says so too).

* **full** (first run, ``--full``, a full backfill): one query cannot page past item 5,000
  (``page × perPage``), so the scan is partitioned by start year (``partition_years`` boundaries,
  default from ``first_year``; one partition for everything earlier, one for everything later),
  each paged ``sort: ID`` on ``hasNextPage`` alone (``pageInfo.total`` is unreliable). Works
  without a start year match no date filter: they are read from both ends of a ``START_DATE``
  sort (wherever the server puts nulls) until the first dated work. Page keys are
  ``partition × 1000 + page``, so an interrupted scan resumes each partition where it stopped.
  A partition that reaches the depth cap makes the scan partial (no deletes) and says which
  boundaries to add. A complete scan reports the distinct ids it saw as ``expected_total`` and
  holds the newest ``updatedAt`` as the cursor for the nightly runs.
* **incremental**: ``sort: UPDATED_AT_DESC`` from the top until ``updatedAt`` < the checkpoint
  (already capped at the run start and lagged by the runner, minus ``cursor_lag_seconds``); the
  new cursor rides on the last page.
* **backfill** with a since/until window: the same walk, keeping what changed inside the window.

Defaults: 30 requests a minute (the headers claim 90), one in flight, ``X-RateLimit-Reset`` as an
epoch, and ``errors[]`` in a 200 body read by ``graphql_body_check``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise
from typing import Any

from pipeline.checkpoints import StreamState
from pipeline.errors import ConfigError, FatalError
from pipeline.http import RequestStats, ServiceClient
from pipeline.log import get_logger
from pipeline.models import catalog as _catalog  # noqa: F401  (registers the catalog table specs)
from pipeline.pagination import GraphQLPagePaginator, PageRequest
from pipeline.records import Batch
from pipeline.responses import graphql_body_check
from pipeline.runner import Page
from pipeline.settings import SourceSettings
from pipeline.sources.common import auth_identity, check_resource, option
from pipeline.transform import transform

log = get_logger(__name__)

TYPES = {"anime": "ANIME", "manga": "MANGA"}
DEPTH_CAP = 5000
KEY_STRIDE = 1000  # page keys: partition * KEY_STRIDE + page (≤ 100 pages fit under the depth cap)
DEFAULT_BOUNDARIES = (1990, 2000, 2005, 2010, 2013, 2016, 2018, 2020, 2022, 2024, 2026)

MEDIA_FIELDS = """
      id idMal type format status countryOfOrigin isAdult updatedAt
      title { romaji english native userPreferred }
      synonyms genres description
      startDate { year month day } endDate { year month day }
      season seasonYear episodes duration chapters volumes
      averageScore popularity
      coverImage { extraLarge large medium } bannerImage
"""
QUERY = (
    "query ($page: Int, $perPage: Int, $type: MediaType, $sort: [MediaSort],"
    " $startDate_greater: FuzzyDateInt, $startDate_lesser: FuzzyDateInt) {\n"
    "  Page(page: $page, perPage: $perPage) {\n"
    "    pageInfo { hasNextPage }\n"
    "    media(type: $type, sort: $sort, startDate_greater: $startDate_greater,"
    " startDate_lesser: $startDate_lesser) {" + MEDIA_FIELDS + "    }\n  }\n}"
)


def client_options(source: SourceSettings) -> dict[str, Any]:
    """GraphQL answers errors inside a 200 body (``Too Many Requests`` included)."""
    return {"body_check": graphql_body_check}


def build_stream(source: SourceSettings, resource: str, client: ServiceClient) -> AniListStream:
    check_resource(source, resource, TYPES)
    return AniListStream(source, resource, client)


@dataclass(frozen=True)
class Partition:
    """One slice of the catalogue a query can page through: a start-year range or the undated."""

    name: str
    variables: Mapping[str, Any]
    undated: bool = False


def partitions(boundaries: Sequence[int]) -> list[Partition]:
    """Year ranges split at ``boundaries`` (ascending), then the two undated walks."""
    years = sorted(set(boundaries))
    if not years:
        raise ConfigError("anilist partition_years is empty; give ascending years such as [2000, 2010]")
    out = [Partition(f"before {years[0]}", {"startDate_lesser": years[0] * 10000})]
    for lo, hi in pairwise(years):
        out.append(
            Partition(f"{lo}-{hi - 1}", {"startDate_greater": lo * 10000 - 1, "startDate_lesser": hi * 10000})
        )
    out.append(Partition(f"{years[-1]} on", {"startDate_greater": years[-1] * 10000 - 1}))
    out.append(Partition("undated (ascending)", {"sort": ["START_DATE", "ID"]}, undated=True))
    out.append(Partition("undated (descending)", {"sort": ["START_DATE_DESC", "ID"]}, undated=True))
    return out


def media_of(doc: Any) -> list[Mapping[str, Any]]:
    page = doc.get("data", {}).get("Page") if isinstance(doc, Mapping) else None
    media = page.get("media") if isinstance(page, Mapping) else None
    return [m for m in media if isinstance(m, Mapping)] if isinstance(media, list) else []


def dated(media: Mapping[str, Any]) -> bool:
    start = media.get("startDate")
    return isinstance(start, Mapping) and start.get("year") is not None


def updated_at(media: Mapping[str, Any]) -> int | None:
    value = media.get("updatedAt")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def with_media(doc: Mapping[str, Any], media: list[Mapping[str, Any]]) -> dict[str, Any]:
    """The same response envelope holding only ``media`` (the records themselves stay verbatim)."""
    data = doc.get("data")
    if not isinstance(data, Mapping) or not isinstance(data.get("Page"), Mapping):
        return dict(doc)
    page = {**data["Page"], "media": media}
    return {**doc, "data": {**data, "Page": page}}


class AniListStream:
    """Anime or manga of one AniList source (``runner.Stream``)."""

    incremental = True

    def __init__(self, source: SourceSettings, resource: str, client: ServiceClient) -> None:
        self.source = source
        self.resource = resource
        self.client = client
        self.owned_tables = ("catalog.media",)
        self.auth_identity = auth_identity(source)
        self.stats = RequestStats()
        boundaries = source.options.get("partition_years")
        if boundaries is None:
            first = option(source, "first_year", DEFAULT_BOUNDARIES[0], int)
            boundaries = [first, *(y for y in DEFAULT_BOUNDARIES if y > first)]
        self.partitions = partitions([int(y) for y in boundaries])
        self.extra_lag = option(source, "cursor_lag_seconds", 0, int)

    def __repr__(self) -> str:
        return f"AniListStream(source={self.source.name!r}, resource={self.resource!r})"

    def transform(self, doc: Any) -> Batch:
        return transform("anilist", self.resource, doc)

    def wrap_records(self, payloads: list[dict[str, Any]]) -> Any:
        return {"data": {"Page": {"pageInfo": {"hasNextPage": False}, "media": payloads}}}

    # -- pages -------------------------------------------------------------------------------------
    async def pages(self, state: StreamState) -> AsyncIterator[Page]:
        window = state.window
        if state.mode == "incremental":
            since = state.cursor
            threshold = since.timestamp() if isinstance(since, datetime) else since
            walk = self._recent(None if threshold is None else float(threshold) - self.extra_lag, None)
        elif state.mode == "backfill" and window is not None and not window.full:
            since = window.since.timestamp() if window.since else None
            until = window.until.timestamp() if window.until else None
            walk = self._recent(since, until)
        else:
            walk = self._scan(state)
        async for page in walk:
            yield page

    def paginator(self, variables: Mapping[str, Any], page: int = 1) -> GraphQLPagePaginator:
        return GraphQLPagePaginator(
            self.source.base_url,
            QUERY,
            field="media",
            per_page=self.source.page_size,
            variables={"type": TYPES[self.resource], "sort": ["ID"], **variables},
            page=page,
            max_pages=self.source.max_pages,
        )

    async def _scan(self, state: StreamState) -> AsyncIterator[Page]:
        seen: set[int] = set()
        newest: int | None = None
        complete = True
        for index, part in enumerate(self.partitions):
            base = index * KEY_STRIDE
            start = state.committed.first_missing(base + 1) - base
            paginator = self.paginator(part.variables, page=start)
            request: PageRequest | None = paginator.first_request()
            number = start
            while request is not None:
                doc, nbytes = await self._post(request)
                media = media_of(doc)
                paginator.update(doc)
                if part.undated:
                    undated = [m for m in media if not dated(m)]
                    stop = len(undated) < len(media)
                    doc, media = with_media(doc, undated), undated
                else:
                    stop = False
                seen.update(m["id"] for m in media if isinstance(m.get("id"), int))
                stamps = [t for m in media if (t := updated_at(m)) is not None]
                if stamps:
                    newest = max(stamps) if newest is None else max(newest, *stamps)
                yield Page(doc, key=base + number, cursor=newest, nbytes=nbytes)
                if stop:
                    break
                if number * paginator.per_page >= DEPTH_CAP and len(media) == paginator.per_page:
                    complete = False
                    log.warning(
                        "anilist_partition_capped",
                        partition=part.name,
                        fix="add partition_years boundaries inside this range",
                    )
                    break
                if paginator.capped:
                    complete = False
                request = paginator.next_request() if paginator.has_next else None
                number += 1
        complete = complete and len(seen) > 0  # an empty catalogue is a glitch, never a mass delete
        log.info("anilist_scan_done", distinct=len(seen), complete=complete)
        yield Page(self.wrap_records([]), cursor=newest, expected_total=len(seen) if complete else None)

    async def _recent(self, since: float | None, until: float | None) -> AsyncIterator[Page]:
        """Newest first until ``updatedAt`` drops below ``since``; only ``< until`` is kept."""
        paginator = self.paginator({"sort": ["UPDATED_AT_DESC", "ID_DESC"]})
        request: PageRequest | None = paginator.first_request()
        newest: int | None = None
        number, kept = 0, 0
        while request is not None:
            number += 1
            doc, nbytes = await self._post(request)
            media = media_of(doc)
            paginator.update(doc)
            stamps = [t for m in media if (t := updated_at(m)) is not None]
            if stamps and newest is None:
                newest = max(stamps)
            older = since is not None and any(t < since for t in stamps)
            wanted = [
                m
                for m in media
                if (t := updated_at(m)) is None
                or ((since is None or t >= since) and (until is None or t < until))
            ]
            kept += len(wanted)
            done = older or not paginator.has_next
            if not done and number * paginator.per_page >= DEPTH_CAP:
                raise FatalError(
                    f"{self.source.name}/{self.resource}: more than {DEPTH_CAP} media changed since the "
                    f"checkpoint, past AniList's paging depth; run 'pipeline sync --source "
                    f"{self.source.name} --full' (or a backfill) to re-scan by partition"
                )
            cursor = newest if done and until is None else None
            yield Page(with_media(doc, wanted), cursor=cursor, nbytes=nbytes)
            request = None if done else paginator.next_request()
        log.info("anilist_changes", changed=kept, pages=number)

    async def _post(self, request: PageRequest) -> tuple[Any, int]:
        response = await self.client.request("POST", request.url, json=request.json, stats=self.stats)
        return response.data, response.nbytes


__all__ = ["QUERY", "AniListStream", "Partition", "build_stream", "client_options", "partitions"]
