"""AniList GraphQL v2 connector: anime and manga ``Media`` with titles, synonyms, genres and ``idMal``.

AniList's terms forbid mass collection without permission: ask AniList before a full scan of the
real service (the README says so too).

* **full** (first run, ``--full``, a full backfill): one query cannot page past item 5,000
  (``page × perPage``), so the scan is partitioned by start date: ranges cut at the
  ``partition_years`` boundaries (default from ``first_year``), each paged ``sort: ID`` on
  ``hasNextPage`` alone (``pageInfo.total`` is unreliable). A range whose first page is full is
  probed at the cap's last page; if that is full too the range is halved (at a year, else a
  month, else a day boundary) until each half fits. Works without a start year match no date
  filter: they are read from both ends of a ``START_DATE`` sort (wherever the server puts nulls)
  until the first dated work. Page keys are a stable per-range base + the page number, so an
  interrupted scan resumes each range, splits included, where it stopped. A range that cannot be
  split any further makes the scan partial (no deletes). A complete scan reports the distinct
  ids it saw as ``expected_total`` and holds the newest ``updatedAt`` as the nightly cursor; the
  runner then looks the unseen records up with ``Media(id_in: …)`` (``lookup``) and deletes only
  those that do not answer.
* **incremental**: ``sort: UPDATED_AT_DESC`` from the top until ``updatedAt`` < the checkpoint
  (already capped at the run start and lagged by the runner, minus ``cursor_lag_seconds``); the
  new cursor rides on the last page.
* **backfill** with a since/until window: the same walk, keeping what changed inside the window.

Defaults: 30 requests a minute (the headers claim 90), one in flight, ``X-RateLimit-Reset`` as an
epoch, and ``errors[]`` in a 200 body read by ``graphql_body_check``.

**What one query brings** (``MEDIA_FIELDS``): each media with its characters (role, the character,
its voice actors with their language), staff (role), studios (``isMain``, ``isAnimationStudio``),
relations (``relationType(version: 2)``), tags (rank, spoilers), ``nextAiringEpisode``
(``airingAt`` and ``episode``; never ``timeUntilAiring``, a countdown) and ``externalLinks`` (site,
url, type STREAMING / INFO / SOCIAL, language). No extra request: the nightly and scan request
counts are those of the media pages alone.

**Query complexity.** AniList refuses a query whose complexity passes 500 with HTTP 400
``{"errors": [{"message": "Max query complexity should be 500 but got 525.", "status": 400}],
"data": null}`` and no partial data. Public measurements show the cost model: 1 per selected field
plus what it selects (15 aliased ``Media`` of 35 → 525; a ``Page(perPage: 50)`` of airing
schedules costs its fields once, not 50 times). How a *nested* connection is charged is not
published, so ``query_complexity`` (and the simulator) charge a nested connection's ``edges`` once
per ``perPage``, an upper bound. With ``P`` = ``characters_per_page`` and ``S`` =
``staff_per_page``::

    Page 1 + pageInfo 2 + media 1 + the media's own fields 67           =  71
      (scalars 20, title 5, dates 8, coverImage 4, nextAiringEpisode 3,
       tags 7, studios 8, relations 6, externalLinks 6)
    characters 1 + pageInfo 2 + P x edges 19  (role 1, node 9, voiceActors 8, edges 1)
    staff      1 + pageInfo 2 + S x edges 11  (id 1, role 1, node 8, edges 1)
    total = 77 + 19 P + 11 S   →   defaults P = S = 12: 437 ≤ 500 (P = 15, S = 12: 494)

The page size of the media list does not enter the total (a ``Page`` list is charged once). The
recordings' own website query (``characters(perPage: 6)``, ``staff(perPage: 8)``, reviews and
recommendations) costs 442 by the same count, and the real server answers it.
``build_stream`` refuses options whose total passes 500. A nested page also holds at most 25.

**Known limit:** one nested page per media. A media keeps the first ``P`` characters
(``sort: [ROLE, RELEVANCE, ID]``: main cast first) and the first ``S`` staff (``[RELEVANCE, ID]``)
of each fetch; a long-running show with 80 characters and 200 staff holds 12 of each. The rows are
the complete set *of that page*: a character or staff credit that drops out of it on a re-fetch is
soft-deleted (``Batch.replaced``), like one AniList removed; the stream logs
``anilist_nested_pages_truncated`` with how many media had more than one page. Studios, relations,
tags and links are not paged by AniList and arrive whole. A nested change is seen when its media
is fetched again: at night only if AniList moved the media's ``updatedAt``, else at the next full
scan. A deleted media takes its nested rows along (trigger of migration 020).
"""

from __future__ import annotations

import zlib
from collections import deque
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise
from typing import Any

from pipeline.connectors import ConnectorSpec
from pipeline.errors import ConfigError, FatalError
from pipeline.http import ServiceClient
from pipeline.log import get_logger
from pipeline.pagination import GraphQLPagePaginator, PageRequest
from pipeline.responses import graphql_body_check
from pipeline.settings import SourceSettings
from pipeline.sources.common import StreamBase, check_resource, drive, option
from pipeline.streams import Page, StreamState

log = get_logger(__name__)

# since/until backfills are honoured: the UPDATED_AT_DESC walk keeps what changed inside the window.
NO_TIME_WINDOW = None

TYPES = {"anime": "ANIME", "manga": "MANGA"}
DEPTH_CAP = 5000
KEY_STRIDE = 1000  # page keys: partition key base + page (≤ 100 pages fit under the depth cap)
DEFAULT_BOUNDARIES = (1990, 2000, 2005, 2010, 2013, 2016, 2018, 2020, 2022, 2024, 2026)

COMPLEXITY_LIMIT = 500  # AniList's maximum query complexity
NESTED_MAX = 25  # entries a nested connection page holds at most
DEFAULT_CHARACTERS, DEFAULT_STAFF = 12, 12
# query_complexity = BASE + per character edge x P + per staff edge x S (module docstring)
COST_BASE, COST_CHARACTER, COST_STAFF = 77, 19, 11

MEDIA_FIELDS = """
      id idMal type format status countryOfOrigin isAdult updatedAt
      title { romaji english native userPreferred }
      synonyms genres description
      startDate { year month day } endDate { year month day }
      season seasonYear episodes duration chapters volumes
      averageScore popularity
      coverImage { extraLarge large medium } bannerImage
      nextAiringEpisode { airingAt episode }
      tags { id name category rank isMediaSpoiler isGeneralSpoiler }
      studios { edges { isMain node { id name isAnimationStudio siteUrl } } }
      relations { edges { relationType(version: 2) node { id type } } }
      externalLinks { id site url type language }
      characters(perPage: $characters, sort: [ROLE, RELEVANCE, ID]) {
        pageInfo { hasNextPage }
        edges {
          role
          node { id name { full native alternative } gender image { large } }
          voiceActors(sort: [RELEVANCE, ID]) { id name { full native } languageV2 image { large } }
        }
      }
      staff(perPage: $staff, sort: [RELEVANCE, ID]) {
        pageInfo { hasNextPage }
        edges { id role node { id name { full native } languageV2 image { large } } }
      }
"""
NESTED_VARIABLES = "$characters: Int, $staff: Int"
QUERY = (
    "query ($page: Int, $perPage: Int, $type: MediaType, $sort: [MediaSort],"
    " $startDate_greater: FuzzyDateInt, $startDate_lesser: FuzzyDateInt, " + NESTED_VARIABLES + ") {\n"
    "  Page(page: $page, perPage: $perPage) {\n"
    "    pageInfo { hasNextPage }\n"
    "    media(type: $type, sort: $sort, startDate_greater: $startDate_greater,"
    " startDate_lesser: $startDate_lesser) {" + MEDIA_FIELDS + "    }\n  }\n}"
)


LOOKUP_QUERY = (
    "query ($page: Int, $perPage: Int, $type: MediaType, $ids: [Int], " + NESTED_VARIABLES + ") {\n"
    "  Page(page: $page, perPage: $perPage) {\n"
    "    pageInfo { hasNextPage }\n"
    "    media(type: $type, id_in: $ids, sort: [ID]) {" + MEDIA_FIELDS + "    }\n  }\n}"
)


def client_options(source: SourceSettings) -> dict[str, Any]:
    """GraphQL answers errors inside a 200 body (``Too Many Requests`` included)."""
    return {"body_check": graphql_body_check}


def main_tables(resource: str) -> tuple[str, ...]:
    """The tables a ``resource`` stream's inserted/updated/unchanged count (its other rows apart)."""
    return ("catalog.media",)


def build_stream(source: SourceSettings, resource: str, client: ServiceClient) -> AniListStream:
    check_resource(source, resource, TYPES)
    return AniListStream(source, resource, client)


def query_complexity(characters: int, staff: int) -> int:
    """What AniList charges ``QUERY`` (or ``LOOKUP_QUERY``) with these nested page sizes (docstring)."""
    return COST_BASE + COST_CHARACTER * characters + COST_STAFF * staff


def nested_sizes(source: SourceSettings) -> dict[str, int]:
    """``$characters``/``$staff`` from the options, refused when the query would pass the limit."""
    sizes = {
        "characters": option(source, "characters_per_page", DEFAULT_CHARACTERS, int),
        "staff": option(source, "staff_per_page", DEFAULT_STAFF, int),
    }
    for key, size in sizes.items():
        if not 1 <= size <= NESTED_MAX:
            raise ConfigError(
                f"[sources.{source.name}].{key}_per_page = {size}: a nested AniList page holds 1 to "
                f"{NESTED_MAX}; fix the value"
            )
    cost = query_complexity(sizes["characters"], sizes["staff"])
    if cost > COMPLEXITY_LIMIT:
        raise ConfigError(
            f"[sources.{source.name}]: characters_per_page = {sizes['characters']} and staff_per_page = "
            f"{sizes['staff']} make a query of complexity {cost}, above AniList's {COMPLEXITY_LIMIT} "
            f"({COST_BASE} + {COST_CHARACTER} per character + {COST_STAFF} per staff); lower them"
        )
    return sizes


FIRST_FUZZY, LAST_FUZZY = 10_000_000, 30_000_000  # year 1000 and year 3000: the open ends, closed


@dataclass(frozen=True)
class Partition:
    """A slice one query can page through: fuzzy start dates ``above < d < below``, or the undated.

    Adjacent ranges share a boundary ``B`` (``below = B``, next ``above = B - 1``), so every fuzzy
    date (``20170000`` year-only, ``20170700`` month-only, ``20170715``) lands in exactly one.
    """

    above: int = FIRST_FUZZY - 1
    below: int = LAST_FUZZY
    sort: tuple[str, ...] = ()  # the undated walks: both ends of a START_DATE sort

    @property
    def undated(self) -> bool:
        return bool(self.sort)

    @property
    def name(self) -> str:
        return f"undated {self.sort[0]}" if self.sort else f"{self.above + 1}..{self.below - 1}"

    @property
    def variables(self) -> dict[str, Any]:
        if self.sort:
            return {"sort": list(self.sort)}
        return {"startDate_greater": self.above, "startDate_lesser": self.below}

    @property
    def key_base(self) -> int:
        """A stable page-key base for this range, so resumed scans find their pages after splits too."""
        return zlib.crc32(f"{self.above}:{self.below}:{self.sort}".encode()) * KEY_STRIDE

    def split(self) -> tuple[Partition, Partition] | None:
        """Halves at a year, else a month, else a day boundary; None when one day is already too much."""
        if self.sort:
            return None
        low, high = self.above + 1, self.below - 1
        ceilings = {10000: high // 10000, 100: low // 10000 * 100 + 12, 1: low // 100 * 100 + 31}
        for unit, ceiling in ceilings.items():  # months end at 12, days at 31: no cut in empty space
            first, last = low // unit, min(high // unit, ceiling)
            if last > first:
                cut = (first + last + 1) // 2 * unit
                return Partition(self.above, cut), Partition(cut - 1, self.below)
        return None


def partitions(boundaries: Sequence[int]) -> list[Partition]:
    """Start-year ranges cut at ``boundaries`` (years), then the two undated walks."""
    years = sorted(set(boundaries))
    if not years:
        raise ConfigError("anilist partition_years is empty; give ascending years such as [2000, 2010]")
    cuts = [FIRST_FUZZY, *(y * 10000 for y in years), LAST_FUZZY]
    out = [Partition(lo - 1, hi) for lo, hi in pairwise(cuts)]
    return [*out, Partition(sort=("START_DATE", "ID")), Partition(sort=("START_DATE_DESC", "ID"))]


def media_of(doc: Any) -> list[Mapping[str, Any]]:
    page = doc.get("data", {}).get("Page") if isinstance(doc, Mapping) else None
    media = page.get("media") if isinstance(page, Mapping) else None
    return [m for m in media if isinstance(m, Mapping)] if isinstance(media, list) else []


def more_nested(media: Mapping[str, Any], name: str) -> bool:
    """Whether a nested connection has entries past the one page the query asked for."""
    connection = media.get(name)
    info = connection.get("pageInfo") if isinstance(connection, Mapping) else None
    return isinstance(info, Mapping) and info.get("hasNextPage") is True


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


def empty_page() -> dict[str, Any]:
    """A page with no media: the document a walk's closing ``Page`` carries."""
    return {"data": {"Page": {"pageInfo": {"hasNextPage": False}, "media": []}}}


class AniListStream(StreamBase):
    """Anime or manga of one AniList source (``streams.Stream``)."""

    incremental = True

    def __init__(self, source: SourceSettings, resource: str, client: ServiceClient) -> None:
        super().__init__(source, resource, client, main_tables(resource))
        boundaries = source.options.get("partition_years")
        if boundaries is None:
            first = option(source, "first_year", DEFAULT_BOUNDARIES[0], int)
            boundaries = [first, *(y for y in DEFAULT_BOUNDARIES if y > first)]
        self.partitions = partitions([int(y) for y in boundaries])
        self.extra_lag = option(source, "cursor_lag_seconds", 0, int)
        self.nested = nested_sizes(source)
        self.truncated = {"characters": 0, "staff": 0}  # media of the last walk with more than a page

    def __repr__(self) -> str:
        return f"AniListStream(source={self.source.name!r}, resource={self.resource!r})"

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
        more: dict[str, set[int]] = {"characters": set(), "staff": set()}
        async for page in walk:
            for media in media_of(page.doc):
                for name, ids in more.items():
                    if more_nested(media, name) and isinstance(media.get("id"), int):
                        ids.add(media["id"])
            yield page
        self.truncated = {name: len(ids) for name, ids in more.items()}
        if any(self.truncated.values()):  # the known limit, counted (module docstring)
            log.info("anilist_nested_pages_truncated", media=self.truncated, kept=self.nested)

    def paginator(self, variables: Mapping[str, Any], page: int = 1) -> GraphQLPagePaginator:
        return GraphQLPagePaginator(
            self.source.base_url,
            QUERY,
            field="media",
            per_page=self.source.page_size,
            variables={"type": TYPES[self.resource], "sort": ["ID"], **self.nested, **variables},
            page=page,
            max_pages=self.source.max_pages,
        )

    async def _scan(self, state: StreamState) -> AsyncIterator[Page]:
        seen: set[int] = set()
        newest: int | None = None
        complete = True
        todo = deque(self.partitions)
        while todo:
            part = todo.popleft()
            outcome = "done"
            async for page, ids, status in self._partition(part, state):
                outcome = status
                seen.update(ids)
                stamps = [t for m in media_of(page.doc) if (t := updated_at(m)) is not None]
                if stamps:
                    newest = max(stamps) if newest is None else max(newest, *stamps)
                page.cursor = newest
                yield page
            if outcome == "capped":
                halves = part.split()
                if halves is None:
                    complete = False
                    log.warning("anilist_partition_capped", partition=part.name, split=False)
                else:  # self-healing, but partition_years boundaries here would save the probes
                    log.info("anilist_partition_capped", partition=part.name, split=True)
                    todo.extendleft(reversed(halves))
            elif outcome == "limited":
                complete = False
        log.info("anilist_scan_done", distinct=len(seen), complete=complete)
        if not complete:
            log.warning("anilist_scan_incomplete", distinct=len(seen))
        total = (
            len(seen) if complete and seen else None
        )  # an empty catalogue is a glitch, never a mass delete
        yield Page(empty_page(), cursor=newest, expected_total=total, complete=complete)

    async def lookup(self, ids: Sequence[str]) -> AsyncIterator[Page]:
        """The media among ``ids`` that still exist, ``Media(id_in: …)`` a page size at a time.

        They are the same documents a scan page holds, so they load as pages (a targeted re-read).
        """
        numeric = [int(i) for i in ids if i.isdigit()]
        size = self.source.page_size
        for start in range(0, len(numeric), size):
            chunk = numeric[start : start + size]
            variables = {
                "page": 1,
                "perPage": size,
                "type": TYPES[self.resource],
                "ids": chunk,
                **self.nested,
            }
            request = PageRequest(self.source.base_url, {}, {"query": LOOKUP_QUERY, "variables": variables})
            doc, nbytes = await self._post(request)
            yield Page(doc, nbytes=nbytes)

    async def _partition(
        self, part: Partition, state: StreamState
    ) -> AsyncIterator[tuple[Page, list[int], str]]:
        """One partition's pages, resumed after its committed ones; the last says done/capped/limited.

        A dated partition whose first page is full and has more behind it is probed at the depth
        cap's last page (one request): full there means it holds more than a query can reach, so
        it is split at once instead of after a hundred pages.
        """
        base, per_page = part.key_base, self.source.page_size
        number = state.committed.first_missing(base + 1) - base
        last_page = DEPTH_CAP // per_page
        if number > last_page:  # a scan before this one already read this partition to the cap
            yield Page(empty_page()), [], "capped"
            return
        paginator = self.paginator(part.variables, page=number)
        probed = part.undated
        async for fetched in drive(paginator, self._post, start=number):
            number, doc, nbytes = fetched.number, fetched.doc, fetched.nbytes
            media = media_of(doc)
            outcome = "more"
            if part.undated:  # keep the undated head of the sort; the first dated work ends the walk
                undated = [m for m in media if not dated(m)]
                doc, outcome = with_media(doc, undated), "done" if len(undated) < len(media) else "more"
                media = undated
            elif not probed and paginator.has_next and number < last_page:
                probed = True
                probe, _ = await self._post(self.paginator(part.variables, page=last_page).first_request())
                if len(media_of(probe)) >= per_page:
                    outcome = "capped"
            if outcome == "more" and number >= last_page and len(media) >= per_page:
                outcome = "capped"
            elif outcome == "more" and not paginator.has_next:
                outcome = "limited" if paginator.capped else "done"
            ids = [m["id"] for m in media if isinstance(m.get("id"), int)]
            yield Page(doc, key=base + number, nbytes=nbytes), ids, outcome
            if outcome != "more":
                return

    async def _recent(self, since: float | None, until: float | None) -> AsyncIterator[Page]:
        """Newest first until ``updatedAt`` drops below ``since``; only ``< until`` is kept."""
        paginator = self.paginator({"sort": ["UPDATED_AT_DESC", "ID_DESC"]})
        newest: int | None = None
        number, kept = 0, 0
        async for fetched in drive(paginator, self._post, start=1):
            number, doc, nbytes = fetched.number, fetched.doc, fetched.nbytes
            media = media_of(doc)
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
            if done:
                break
        log.info("anilist_changes", changed=kept, pages=number)

    async def _post(self, request: PageRequest) -> tuple[Any, int]:
        response = await self.client.request("POST", request.url, json=request.json, stats=self.stats)
        return response.data, response.nbytes


YEARS = (1900, 2100)  # start years a partition boundary may name


def _partition_years_problem(value: list[Any] | tuple[Any, ...]) -> str | None:
    bad = [y for y in value if not isinstance(y, int) or isinstance(y, bool) or not YEARS[0] <= y <= YEARS[1]]
    if bad:
        return (
            f"holds {bad}, not years; give ascending start years between {YEARS[0]} and {YEARS[1]}, "
            "e.g. [2000, 2010, 2020]"
        )
    if not value:
        return "is empty; give ascending start years such as [2000, 2010], or remove the key"
    if list(value) != sorted(set(value)):
        return "must be ascending without repeats, e.g. [2000, 2010, 2020]"
    return None


SPEC = ConnectorSpec(
    kind="anilist",
    resources=tuple(TYPES),
    defaults={
        "rate": {"requests": 30, "per_seconds": 60.0},
        "max_in_flight": 1,
        "page_size": 50,
        "rate_limit_reserve": 0,
    },
    max_page_size=50,
    options={
        "partition_years": (list, tuple),
        "first_year": int,
        "cursor_lag_seconds": int,
        "characters_per_page": int,
        "staff_per_page": int,
    },
    option_ranges={
        "first_year": YEARS,
        "cursor_lag_seconds": (0, None),
        "characters_per_page": (1, NESTED_MAX),  # build_stream checks the query's complexity
        "staff_per_page": (1, NESTED_MAX),
    },
    option_checks={"partition_years": _partition_years_problem},
    windowed=True,  # backfills select by updatedAt
)


__all__ = [
    "LOOKUP_QUERY",
    "QUERY",
    "SPEC",
    "AniListStream",
    "Partition",
    "build_stream",
    "client_options",
    "main_tables",
    "nested_sizes",
    "partitions",
    "query_complexity",
]
