"""Kitsu JSON:API connector: full re-scans of ``/anime``, ``/manga``, ``/episodes``, ``/categories``,
``/mappings``, ``/media-characters`` and the join resources ``/media-staff``, ``/media-productions``,
``/media-relationships``, ``/streaming-links`` and ``/character-voices``, several pages in flight.

Kitsu's ``updatedAt`` is rewritten on every row every six hours by a server job, so it is not a
change feed: every run re-scans and the loader's content hashes keep unchanged rows untouched.
Paging is ``sort=id`` with ``page[offset]``: the first page gives ``meta.count``, then every other
page is planned (``JsonApiPaginator.plan``) and fetched ``parallel_pages`` at a time (default
``max_in_flight``), each yielded as soon as it arrives with ``key`` = its page number, so an
interrupted scan resumes with exactly the pages it lacks. A count that moves during a pass means
membership changed under it: the listing is read again (``MAX_PASSES``) until a pass sees one
count; a scan that never settles (or hits the page cap) ends ``complete = False``, the stream
``incomplete``. A complete scan ends with ``expected_total`` = the settled count, and the runner
looks every record it did not see up with ``filter[id]=…`` (``lookup``, page-size batches): those
that answer are loaded (a targeted re-read), only the others are soft-deleted.

Compound documents: ``include=`` asks for the linkage each unified table needs (``categories`` on
media → ``media_genres``, ``media`` on episodes, ``item`` on mappings, ``character,media`` on
media-characters, ``person,media`` on media-staff, ...). Included copies of records another stream owns
(the categories on an anime page, the media on an episode page) are dropped by the transform
(``transform.kitsu.stream_page``): their stream lands them. They are asked for with a sparse
fieldset (``fields[anime]=slug``), which cuts an episodes or mappings page to a fraction of its
size. Characters, people and producers exist only as includes, so the join streams keep them
(``characters``, ``media-staff``, ``character-voices``, ``media-productions``); a scan counts and
marks seen only its listed records (``Route.records``: media-characters for ``characters``), and a
verified delete reaches the rows keyed by them (``Route.counted``), never the included records.

Episodes, mappings, media-characters and the join resources (``Route.walks``) are walked
newest-updated-first at night: Kitsu's ``updatedAt`` is a real change time on their rows (the
six-hourly job rewrites only anime and manga), and ``sort=-updatedAt`` is served
by every resource (BaseResource declares ``createdAt``/``updatedAt``; jsonapi-resources sorts on
attributes), evidence in docs/KITSU-API.md. Once a complete scan holds a watermark (the newest
``updatedAt`` it saw), a nightly run reads ``sort=-updatedAt`` pages from the top until one holds a
record older than the watermark (capped at the run start, lagged by ``cursor_lag_seconds``). The
first ``SORT_PROBE_PAGES`` pages must come newest first: if they do not (or the server refuses the
sort), the run falls back to the full listing and says so. A full scan (with its delete
detection) still runs every ``full_scan_hours`` (default 168; 0 = every run), or on ``--full``.
``incremental = false`` keeps them on full scans, ``full_scan_hours`` sets the period
(``episodes_incremental`` / ``episodes_full_scan_hours`` win for episodes where set).

Media raw records are stored under the unified key (``anime/12``, by the transform): Kitsu numbers
anime and manga separately, and a complete scan's soft delete then reaches ``catalog.media`` too.

R18 titles are visible only to an authenticated client: with ``auth`` configured (and
``include_r18`` not false) the stream's ``auth_identity`` is ``user:<name>``, else ``anonymous``;
deletes only follow a previous complete scan of the same identity.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import pairwise
from typing import Any

from pipeline.auth import NoAuth
from pipeline.connectors import ConnectorSpec
from pipeline.errors import HTTPStatusError
from pipeline.http import ServiceClient
from pipeline.log import get_logger
from pipeline.pagination import JsonApiPaginator, PageRequest
from pipeline.settings import OAuthPasswordAuth, SourceSettings
from pipeline.sources.common import (
    StreamBase,
    auth_identity,
    check_resource,
    completed,
    drive,
    option,
)
from pipeline.streams import Page, StreamState
from pipeline.transform.kitsu import MEDIA_TYPES

log = get_logger(__name__)

# A since/until backfill cannot be honoured: Kitsu's updatedAt is rewritten on every record every six
# hours by a server job, so it selects nothing (``None`` = windows are honoured).
NO_TIME_WINDOW = (
    "Kitsu's updatedAt is rewritten on every record every six hours, so it cannot select a window"
)

JSONAPI = "application/vnd.api+json"
MAX_PASSES = 3
SORT_PROBE_PAGES = 2  # pages of a newest-first walk that must prove the server sorts by updatedAt
FULL_SCAN_HOURS = 168  # episodes: a full scan (deletes) at least this often; 0 = every run
# The one attribute a slimmed included type keeps (``fields[type]=…`` must name a real field).
SLIM_FIELDS = {"mediaCharacters": "role"}


@dataclass(frozen=True)
class Route:
    """How one resource is fetched: path, owned tables, ``include=``, and whether scans may delete."""

    path: str
    owned: tuple[str, ...]
    include: str | None = None
    deletes: bool = True
    slim: tuple[
        str, ...
    ] = ()  # included types cut to one field (``fields[anime]=slug``): only linkage is read
    main: tuple[str, ...] | None = None  # what the counts are about, when not every owned table
    record: str | None = None  # raw resource of the listed records, when not the path's
    # ``updatedAt`` is a change time (no job rewrites the rows): nights walk ``sort=-updatedAt``
    # to the watermark, with a periodic full scan for deletes.
    walks: bool = False

    @property
    def counted(self) -> tuple[str, ...]:
        return self.owned if self.main is None else self.main

    @property
    def records(self) -> str:
        """The raw resource the listing's own records land under (what a scan counts and deletes)."""
        return self.record or self.path


def _join(
    path: str, table: str, include: str, stored: str | None = None, slim: tuple[str, ...] = MEDIA_TYPES
) -> Route:
    """A join resource: its rows in ``table`` (what it counts and deletes), the records no stream
    lists that it includes and stores in ``stored`` (people, producers), media linkage slimmed."""
    owned = (stored, table) if stored else (table,)
    return Route(path, owned, include=include, slim=slim, main=(table,), walks=True)


ROUTES: dict[str, Route] = {
    "anime": Route("anime", ("catalog.media",), include="categories", slim=("categories",)),
    "manga": Route("manga", ("catalog.media",), include="categories", slim=("categories",)),
    "episodes": Route("episodes", ("catalog.episodes",), include="media", slim=("anime",), walks=True),
    "categories": Route("categories", ("catalog.genres",)),
    "mappings": Route("mappings", ("catalog.external_ids",), include="item", slim=MEDIA_TYPES, walks=True),
    # media-characters with their characters (a character in two media is included twice)
    "characters": _join(
        "media-characters", "catalog.media_characters", "character,media", "catalog.characters"
    ),
    "media-staff": _join("media-staff", "catalog.media_staff", "person,media", "catalog.people"),
    "media-productions": _join(
        "media-productions", "catalog.media_companies", "company,media", "catalog.companies"
    ),
    "media-relationships": _join("media-relationships", "catalog.media_relations", "source,destination"),
    "streaming-links": _join("streaming-links", "catalog.streaming_links", "streamer,media"),
    "character-voices": _join(
        "character-voices",
        "catalog.character_voices",
        "person,mediaCharacter",
        "catalog.people",
        slim=("mediaCharacters",),
    ),
}


def r18_enabled(source: SourceSettings) -> bool:
    """R18 titles need an authenticated client; ``include_r18 = false`` scans anonymously anyway."""
    return isinstance(source.auth, OAuthPasswordAuth) and option(source, "include_r18", True, bool)


def client_options(source: SourceSettings) -> dict[str, Any]:
    """JSON:API media type; no credentials at all when R18 titles are not wanted."""
    options: dict[str, Any] = {"headers": {"Accept": JSONAPI}}
    if not r18_enabled(source):
        options["auth"] = NoAuth(source.name)
    return options


def main_tables(resource: str) -> tuple[str, ...]:
    """The tables a ``resource`` stream's inserted/updated/unchanged count (its other rows apart)."""
    return ROUTES[resource].counted


def build_stream(source: SourceSettings, resource: str, client: ServiceClient) -> KitsuStream:
    check_resource(source, resource, ROUTES)
    return KitsuStream(source, resource, client)


class KitsuStream(StreamBase):
    """One Kitsu resource of one source (``streams.Stream``): a parallel full re-scan; episodes
    nightly by ``sort=-updatedAt`` to the watermark."""

    incremental = False

    def __init__(self, source: SourceSettings, resource: str, client: ServiceClient) -> None:
        self.route = ROUTES[resource]
        super().__init__(source, resource, client, self.route.owned)
        self.main_tables = self.route.counted
        self.record_resource = self.route.records
        self.auth_identity = auth_identity(source, enabled=r18_enabled(source))
        self.width = option(source, "parallel_pages", source.max_in_flight, int)
        self.full_scan_hours: int | None = None
        if self.route.walks:
            walk = option(source, "incremental", True, bool)
            hours = option(source, "full_scan_hours", FULL_SCAN_HOURS, int)
            if resource == "episodes":  # the episodes-only names win where they are set
                walk = option(source, "episodes_incremental", walk, bool)
                hours = option(source, "episodes_full_scan_hours", hours, int)
            if walk:
                self.incremental, self.full_scan_hours = True, hours

    # -- pages -------------------------------------------------------------------------------------
    def paginator(self) -> JsonApiPaginator:
        params = {"include": self.route.include} if self.route.include else {}
        params |= {f"fields[{kind}]": SLIM_FIELDS.get(kind, "slug") for kind in self.route.slim}
        return JsonApiPaginator(
            self.route.path, limit=self.source.page_size, params=params, max_pages=self.source.max_pages
        )

    async def pages(self, state: StreamState) -> AsyncIterator[Page]:
        if self.incremental and state.mode == "incremental" and isinstance(state.cursor, datetime):
            async for page in self._recent(state.cursor):
                if page is FALLBACK:
                    async for fallback in self._scan(state):  # every record, no deletes
                        fallback.key, fallback.expected_total, fallback.complete = None, None, None
                        yield fallback
                    return
                yield page
            return
        async for page in self._scan(state):
            yield page

    async def _recent(self, since: datetime) -> AsyncIterator[Page]:
        """``sort=-updatedAt`` pages from the top until one holds a record older than ``since``.

        Yields ``FALLBACK`` instead when the first pages show the order is not honoured (or the
        sort is refused): the caller then reads the whole listing.
        """
        params = {**self.paginator().params, "sort": "-updatedAt"}
        size, number = self.source.page_size, 0
        paginator = JsonApiPaginator(
            self.route.path, limit=size, params=params, max_pages=self.source.max_pages
        )
        newest: datetime | None = None
        previous: datetime | None = None
        try:
            async for fetched in drive(paginator, self._get, keyed=False, follow=True):
                records = fetched.items or []
                stamps = [updated_at(r) for r in records]
                if number < SORT_PROBE_PAGES and not newest_first(stamps, previous):
                    log.warning(
                        "kitsu_sort_not_honoured",
                        resource=self.resource,
                        page=number + 1,
                        fix="reading the whole listing this run (the server ignored sort=-updatedAt)",
                    )
                    yield FALLBACK
                    return
                known = [t for t in stamps if t is not None]
                if known and newest is None:
                    newest = max(known)
                number += 1
                older = any(t < since for t in known)
                capped = paginator.capped  # the page cap: max_pages, else derived from meta.count
                done = len(records) < size or older or capped or not paginator.has_next
                if capped and not older:
                    log.warning("kitsu_walk_capped", resource=self.resource, pages=number)
                url = self._url(fetched.request)
                yield Page(fetched.doc, cursor=newest if done else None, nbytes=fetched.nbytes, url=url)
                if done:
                    log.info("kitsu_changes", resource=self.resource, pages=number, since=since.isoformat())
                    return
                previous = known[-1] if known else previous
        except HTTPStatusError as exc:
            if exc.status != 400 or number:
                raise
            log.warning("kitsu_sort_refused", resource=self.resource, error=str(exc), fix="full scan")
            yield FALLBACK

    async def _scan(self, state: StreamState) -> AsyncIterator[Page]:
        """The whole listing by ``sort=id``; with the newest ``updatedAt`` as the held watermark
        when the stream walks by it at night."""
        newest: datetime | None = None
        async for page in self._listing(state):
            if self.incremental:
                data = page.doc.get("data") if isinstance(page.doc, Mapping) else None
                known = [t for r in data or () if (t := updated_at(r)) is not None]
                if known:
                    newest = max(known) if newest is None else max(newest, *known)
                page.cursor = newest
            yield page

    async def _listing(self, state: StreamState) -> AsyncIterator[Page]:
        paginator = self.paginator()
        opening = paginator.first_request()
        first, nbytes = await self._get(opening)
        paginator.update(first)
        total = paginator.total
        if 0 not in state.committed:
            yield Page(first, key=0, nbytes=nbytes, url=self._url(opening), total_hint=total)
        if total is None:  # no meta.count: walk links.next, one page at a time
            pages = drive(paginator, self._get, committed=state.committed, follow=True, opened=True)
            async for fetched in pages:
                yield Page(
                    fetched.doc, key=fetched.key, nbytes=fetched.nbytes, url=self._url(fetched.request)
                )
            complete = not paginator.capped
            if paginator.capped:
                log.warning("kitsu_scan_capped", pages=paginator.pages_read, max_pages=paginator.max_pages)
            yield Page({"data": []}, complete=complete)
            return
        # The scan pages by offset over ``sort=id``: a record deleted below an offset already read
        # shifts the rest left and one record slips between two pages; an insert shifts them right
        # (a duplicate, harmless). A count that moved during a pass means membership changed under
        # it, so the whole listing is read again (pages keyed None: progress is already committed)
        # until one pass sees a stable count, at most MAX_PASSES passes. A stable count can still
        # hide a delete plus an insert: the runner then looks every unseen record up by id.
        passes, stable = 0, False
        while not stable and passes < MAX_PASSES:
            passes += 1
            first_pass = passes == 1
            log.info(
                "kitsu_scan_planned",
                total=total,
                pages=min(len(paginator.plan()) + 1, paginator.page_cap()),
                committed=len(state.committed) if first_pass else 0,
                width=self.width,
                pass_number=passes,
            )
            counts: set[int] = {total}
            pages = drive(
                paginator,
                self._get,
                committed=state.committed if first_pass else (),
                width=self.width,
                keyed=first_pass,
                opened=True,
            )
            async for fetched in pages:
                hint = _count(fetched.doc)
                if hint is not None:
                    counts.add(hint)
                url = self._url(fetched.request)
                yield Page(fetched.doc, key=fetched.key, nbytes=fetched.nbytes, url=url, total_hint=hint)
            stable = len(counts) == 1
            if not stable:
                log.warning(
                    "kitsu_scan_churned", counts=sorted(counts), pass_number=passes, fix="reading again"
                )
                again, size = await self._get(opening)
                total = _count(again) or max(counts)
                paginator.total = total
                yield Page(again, nbytes=size, url=self._url(opening))
        capped = paginator.capped
        complete = stable and not capped
        if not complete:
            log.warning("kitsu_scan_incomplete", passes=passes, capped=capped, total=total)
        deletes = complete and self.route.deletes and total > 0  # an empty catalogue is a glitch
        yield Page({"data": []}, expected_total=total if deletes else None, complete=complete)

    async def lookup(self, ids: Sequence[str]) -> AsyncIterator[Page]:
        """The records among ``ids`` (raw keys) that still exist, ``filter[id]`` in page-size batches."""
        plain = [i.split("/", 1)[1] if self.resource in MEDIA_TYPES and "/" in i else i for i in ids]
        size = self.source.page_size
        base = self.paginator()
        chunks = [plain[i : i + size] for i in range(0, len(plain), size)]

        async def fetch(chunk: list[str]) -> Page:
            params = {**base.params, "filter[id]": ",".join(chunk), "page[limit]": size, "page[offset]": 0}
            request = PageRequest(self.route.path, params)
            doc, nbytes = await self._get(request)
            return Page(doc, nbytes=nbytes, url=self._url(request))

        async for page in completed(chunks, fetch, self.width):
            yield page

    def _url(self, request: PageRequest) -> str:
        return request.full_url(self.source.base_url)

    async def _get(self, request: PageRequest) -> tuple[Any, int]:
        response = await self.client.request("GET", request.url, params=request.params, stats=self.stats)
        return response.data, response.nbytes


FALLBACK = Page({"data": []})  # marker from ``_recent``: read the whole listing instead


def _count(doc: Any) -> int | None:
    """A page's ``meta.count`` (the listing's total as the server saw it then), or None."""
    count = doc.get("meta", {}).get("count") if isinstance(doc, Mapping) else None
    return count if isinstance(count, int) and not isinstance(count, bool) else None


def updated_at(record: Any) -> datetime | None:
    """A JSON:API resource's ``attributes.updatedAt`` (``2013-02-20T16:00:13.609Z``), or None."""
    attributes = record.get("attributes") if isinstance(record, Mapping) else None
    text = attributes.get("updatedAt") if isinstance(attributes, Mapping) else None
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def newest_first(stamps: Sequence[datetime | None], previous: datetime | None) -> bool:
    """Whether a page's ``updatedAt`` values run newest first, after ``previous`` (nulls last)."""
    known = [t for t in stamps if t is not None]
    if any(t is None for t in stamps[: len(known)]):
        return False  # a null before a dated record: not ``updated_at DESC NULLS LAST``
    if previous is not None and known and known[0] > previous:
        return False
    return all(a >= b for a, b in pairwise(known))


SPEC = ConnectorSpec(
    kind="kitsu",
    resources=tuple(ROUTES),
    defaults={"rate": {"requests": 4, "per_seconds": 1.0}, "max_in_flight": 4, "page_size": 20},
    max_page_size=20,  # jsonapi-resources maximum_page_size (docs/KITSU-API.md)
    options={
        "include_r18": bool,
        "parallel_pages": int,
        "episodes_incremental": bool,
        "episodes_full_scan_hours": int,
        "incremental": bool,
        "full_scan_hours": int,
    },
    option_ranges={
        "parallel_pages": (1, None),
        "episodes_full_scan_hours": (0, None),
        "full_scan_hours": (0, None),
    },
    stream_deps={
        "episodes": ("anime",),
        "mappings": ("anime", "manga"),
        "characters": ("anime", "manga"),
        "media-staff": ("anime", "manga"),
        "media-productions": ("anime", "manga"),
        "media-relationships": ("anime", "manga"),
        "streaming-links": ("anime",),
        "character-voices": ("characters", "media-staff"),  # voice actors may be staff too
    },
)


__all__ = [
    "ROUTES",
    "SPEC",
    "KitsuStream",
    "build_stream",
    "client_options",
    "main_tables",
    "newest_first",
    "updated_at",
]
