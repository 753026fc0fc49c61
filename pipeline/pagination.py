"""Paginators: small pure objects, one per paging style; no HTTP, no clock, tested on dicts.

Contract (sequential use)::

    paginator = OffsetPaginator("image", limit=25)
    request = paginator.first_request()
    while True:
        page = await client.get_json(request.url, params=request.params)   # or post_json(json=...)
        items = paginator.update(page)          # read page → update state
        ...
        if not paginator.has_next:
            break
        request = paginator.next_request()      # build next request

Every paginator refuses to hand out the same request twice, or to read the same page content
twice (the same ids in the same order: a server ignoring the page parameter), with a
``ContractError`` (the API is looping), and stops after ``max_pages`` pages with ``capped = True``
so callers know the scan is partial. Without a configured ``max_pages`` the cap is derived from
the total when the API gives one (``default_max_pages``: twice the pages it implies, plus slack for
churn) and is ``DEFAULT_MAX_PAGES`` otherwise: no paging loop is unbounded.
Offset-style paginators also give ``plan()``: every remaining page's request once the total is
known, so several pages can be in flight.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from pipeline.errors import ContractError
from pipeline.redact import redact_url

DEFAULT_MAX_PAGES = 50_000  # without a total: generous (a million records at 20 a page), but finite


def default_max_pages(total: int | None, page_size: int) -> int:
    """The page cap when none is configured: twice the pages ``total`` implies + slack, else a default."""
    if total is None:
        return DEFAULT_MAX_PAGES
    return 2 * -(-max(total, 0) // max(page_size, 1)) + 10


def page_fingerprint(items: list[Any]) -> tuple[str, ...] | None:
    """The ids of a page's records in order (None when the page has no ids to compare)."""
    ids = tuple(str(i["id"]) for i in items if isinstance(i, Mapping) and i.get("id") is not None)
    return ids or None


@dataclass(frozen=True)
class PageRequest:
    """What to fetch next: a path or absolute URL, query parameters, and a JSON body for POSTs."""

    url: str
    params: Mapping[str, Any] = field(default_factory=dict)
    json: Any = None

    def full_url(self, base_url: str) -> str:
        """The URL this request fetches (relative paths joined to ``base_url``), redacted, for messages."""
        url = self.url if "://" in self.url else f"{base_url.rstrip('/')}/{self.url.lstrip('/')}"
        if self.params:
            url += ("&" if "?" in url else "?") + urlencode([(k, str(v)) for k, v in self.params.items()])
        return redact_url(url)

    def token(self) -> str:
        """A stable identity for loop detection."""
        return repr((self.url, sorted((k, str(v)) for k, v in self.params.items()), repr(self.json)))


class Paginator:
    """Shared state: pages read, the next request, loop guard and page cap."""

    def __init__(self, *, max_pages: int | None = None) -> None:
        self.max_pages = max_pages
        self.pages_read = 0
        self.capped = False
        self._next: PageRequest | None = None
        self._issued: set[str] = set()
        self._contents: dict[tuple[str, ...], int] = {}  # page fingerprint → the page that had it

    def first_request(self) -> PageRequest:
        request = self._first()
        self._issued.add(request.token())
        return request

    def update(self, page: Any) -> list[Any]:
        """Read one page, advance the state, and return the page's records."""
        items = self.items(page)
        self.pages_read += 1
        fingerprint = page_fingerprint(items)
        if fingerprint is not None and fingerprint in self._contents:
            raise ContractError(
                f"pagination loop: {type(self).__name__} read page {self.pages_read} with exactly the "
                f"records of page {self._contents[fingerprint]} ({len(fingerprint)} ids, first "
                f"{fingerprint[0]}); the API ignores the page parameter, so the scan stops here "
                "(check base_url and the API version)"
            )
        if fingerprint is not None:
            self._contents[fingerprint] = self.pages_read
        following = self._following(page, items)
        if following is not None and following.token() in self._issued:
            raise ContractError(
                f"pagination loop: {type(self).__name__} was asked for {redact_url(following.url)} "
                f"{dict(following.params)} a second time after {self.pages_read} pages; the API keeps "
                f"returning the same cursor, so the scan stops here (raise page_size or event_limit, "
                f"or check the API version)"
            )
        if following is not None and self.pages_read >= self.page_cap():
            self.capped = True
            following = None
        self._next = following
        return items

    def page_cap(self) -> int:
        """``max_pages`` when configured, else derived from the total the API gave (if any)."""
        if self.max_pages is not None:
            return self.max_pages
        return default_max_pages(*self._size_hint())

    def _size_hint(self) -> tuple[int | None, int]:
        """(total records if the API told, page size) for the default cap."""
        return None, 1

    @property
    def has_next(self) -> bool:
        return self._next is not None

    def next_request(self) -> PageRequest:
        if self._next is None:
            raise ValueError(f"{type(self).__name__}: no next page (check has_next first)")
        self._issued.add(self._next.token())
        return self._next

    def items(self, page: Any) -> list[Any]:
        raise NotImplementedError

    def _first(self) -> PageRequest:
        raise NotImplementedError

    def _following(self, page: Any, items: list[Any]) -> PageRequest | None:
        raise NotImplementedError


def _dig(page: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(page, Mapping):
            return None
        page = page.get(key)
    return page


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise ContractError(
            f"expected a JSON array at {where}, got {type(value).__name__}; the API shape changed"
        )
    return value


def offset_plan(
    path: str, params: Mapping[str, Any], total: int, size: int, start: int, keys: tuple[str, str]
) -> list[PageRequest]:
    """Requests for every offset from ``start`` up to ``total``, ``size`` apart (parallel fetching)."""
    limit_key, offset_key = keys
    return [
        PageRequest(path, {**params, limit_key: size, offset_key: off}) for off in range(start, total, size)
    ]


class JsonApiPaginator(Paginator):
    """Kitsu JSON:API: ``page[limit]``/``page[offset]``, ``sort=id``; ``links.next``, ``meta.count``."""

    def __init__(
        self,
        path: str,
        *,
        limit: int,
        params: Mapping[str, Any] | None = None,
        offset: int = 0,
        max_pages: int | None = None,
    ) -> None:
        super().__init__(max_pages=max_pages)
        self.path = path
        self.limit = limit
        self.offset = offset
        self.params = {"sort": "id", **(params or {})}
        self.total: int | None = None

    def _first(self) -> PageRequest:
        return PageRequest(self.path, {**self.params, "page[limit]": self.limit, "page[offset]": self.offset})

    def items(self, page: Any) -> list[Any]:
        return _list(_dig(page, "data"), "data")

    def _following(self, page: Any, items: list[Any]) -> PageRequest | None:
        count = _dig(page, "meta", "count")
        if isinstance(count, int):
            self.total = count
        link = _dig(page, "links", "next")
        return PageRequest(link) if isinstance(link, str) and link and items else None

    def _size_hint(self) -> tuple[int | None, int]:
        return self.total, self.limit

    def plan(self) -> list[PageRequest]:
        """After the first page: one request per remaining offset, to fetch them concurrently."""
        if self.total is None:
            raise ValueError("plan() needs meta.count: call update() with the first page first")
        keys = ("page[limit]", "page[offset]")
        return offset_plan(self.path, self.params, self.total, self.limit, self.offset + self.limit, keys)


class OffsetPaginator(Paginator):
    """Nekos v1: ``limit``/``offset`` with ``{success, data, meta.pagination.total}``."""

    def __init__(
        self,
        path: str,
        *,
        limit: int,
        params: Mapping[str, Any] | None = None,
        offset: int = 0,
        max_pages: int | None = None,
    ) -> None:
        super().__init__(max_pages=max_pages)
        self.path = path
        self.limit = limit
        self.offset = offset
        self.params = dict(params or {})
        self.total: int | None = None

    def _first(self) -> PageRequest:
        return PageRequest(self.path, {**self.params, "limit": self.limit, "offset": self.offset})

    def items(self, page: Any) -> list[Any]:
        return _list(_dig(page, "data"), "data")

    def _following(self, page: Any, items: list[Any]) -> PageRequest | None:
        total = _dig(page, "meta", "pagination", "total")
        if isinstance(total, int):
            self.total = total
        self.offset += self.limit
        if not items or (self.total is not None and self.offset >= self.total):
            return None
        if self.total is None and len(items) < self.limit:
            return None
        return PageRequest(self.path, {**self.params, "limit": self.limit, "offset": self.offset})

    def _size_hint(self) -> tuple[int | None, int]:
        return self.total, self.limit

    def plan(self) -> list[PageRequest]:
        """After the first page: every remaining offset up to ``meta.pagination.total``."""
        if self.total is None:
            raise ValueError("plan() needs meta.pagination.total: call update() with the first page first")
        return offset_plan(self.path, self.params, self.total, self.limit, self.offset, ("limit", "offset"))


class PageNumberPaginator(Paginator):
    """Zou ``/data/<model>?page=N&limit=L`` → ``{data, total, nb_pages, limit, offset, page}``."""

    def __init__(
        self,
        path: str,
        *,
        limit: int,
        params: Mapping[str, Any] | None = None,
        page: int = 1,
        max_pages: int | None = None,
    ) -> None:
        super().__init__(max_pages=max_pages)
        self.path = path
        self.limit = limit
        self.page = page
        self.first_page = page
        self.params = dict(params or {})
        self.nb_pages: int | None = None
        self.total: int | None = None

    def _first(self) -> PageRequest:
        return PageRequest(self.path, {**self.params, "page": self.page, "limit": self.limit})

    def items(self, page: Any) -> list[Any]:
        return _list(_dig(page, "data"), "data")

    def _following(self, page: Any, items: list[Any]) -> PageRequest | None:
        nb_pages, total = _dig(page, "nb_pages"), _dig(page, "total")
        self.nb_pages = nb_pages if isinstance(nb_pages, int) else self.nb_pages
        self.total = total if isinstance(total, int) else self.total
        if not items or (self.nb_pages is not None and self.page >= self.nb_pages):
            return None
        self.page += 1
        return PageRequest(self.path, {**self.params, "page": self.page, "limit": self.limit})

    def _size_hint(self) -> tuple[int | None, int]:
        if self.nb_pages is not None:
            return self.nb_pages, 1
        return self.total, self.limit

    def plan(self) -> list[PageRequest]:
        """After the first page: one request per remaining page (``nb_pages``, else the total's)."""
        if self.total is None and self.nb_pages is None:
            raise ValueError("plan() needs total or nb_pages: call update() with the first page first")
        last = self.nb_pages if self.nb_pages is not None else -(-(self.total or 0) // self.limit)
        return [
            PageRequest(self.path, {**self.params, "page": n, "limit": self.limit})
            for n in range(self.first_page + 1, last + 1)
        ]


class ShortPagePaginator(Paginator):
    """AniList v1 ``browse/<type>?page=N``: a bare JSON array; a short or empty page is the last."""

    def __init__(
        self,
        path: str,
        *,
        page_size: int,
        params: Mapping[str, Any] | None = None,
        page: int = 1,
        max_pages: int | None = None,
    ) -> None:
        super().__init__(max_pages=max_pages)
        self.path = path
        self.page_size = page_size
        self.page = page
        self.params = dict(params or {})

    def _first(self) -> PageRequest:
        return PageRequest(self.path, {**self.params, "page": self.page})

    def items(self, page: Any) -> list[Any]:
        return _list(page, "the response root")

    def _following(self, page: Any, items: list[Any]) -> PageRequest | None:
        if len(items) < self.page_size:
            return None
        self.page += 1
        return PageRequest(self.path, {**self.params, "page": self.page})


class GraphQLPagePaginator(Paginator):
    """AniList v2 ``Page(page, perPage){pageInfo{hasNextPage} <field>{…}}``: only hasNextPage is trusted."""

    def __init__(
        self,
        url: str,
        query: str,
        *,
        field: str,
        per_page: int,
        variables: Mapping[str, Any] | None = None,
        page: int = 1,
        max_pages: int | None = None,
    ) -> None:
        super().__init__(max_pages=max_pages)
        self.url = url
        self.query = query
        self.field = field
        self.per_page = per_page
        self.page = page
        self.variables = dict(variables or {})

    def _request(self) -> PageRequest:
        variables = {**self.variables, "page": self.page, "perPage": self.per_page}
        return PageRequest(self.url, {}, {"query": self.query, "variables": variables})

    def _first(self) -> PageRequest:
        return self._request()

    def items(self, page: Any) -> list[Any]:
        return _list(_dig(page, "data", "Page", self.field), f"data.Page.{self.field}")

    def _following(self, page: Any, items: list[Any]) -> PageRequest | None:
        if _dig(page, "data", "Page", "pageInfo", "hasNextPage") is not True or not items:
            return None
        self.page += 1
        return self._request()


ZOU_EVENTS_SERVER_CAP = 1000  # zou: ``limit = min(args["limit"], 1000)`` in the events resource


class ZouEventsPaginator(Paginator):
    """Zou ``/data/events/last``: newest first, strictly ``after`` the watermark, walking back in time.

    New servers page with ``cursor_event_id`` (events older than that id). Old servers only have
    ``before`` (strict, second precision), so the next page asks for ``before = oldest + 1 s`` and
    drops the events it already returned: nothing sharing the boundary second is skipped.

    The requested ``limit`` is never trusted as the page size: a cursor-paging server caps a page at
    1,000 whatever was asked, so a page is the last one only when it is shorter than
    ``min(limit, 1000)``; a page shorter than asked but exactly that long means "capped, read on"
    (``server_cap`` records the size the server really served). Old servers have no cap: there the
    extra request after a page of exactly 1,000 only returns events already seen.
    """

    def __init__(
        self,
        path: str = "data/events/last",
        *,
        after: str | None,
        limit: int,
        cursor: bool = True,
        params: Mapping[str, Any] | None = None,
        max_pages: int | None = None,
    ) -> None:
        super().__init__(max_pages=max_pages)
        self.path = path
        self.limit = limit
        self.cursor = cursor
        self.params = {**(params or {}), **({"after": after} if after else {})}
        self.server_cap: int | None = None  # the page size the server enforced, once detected
        self._seen: set[str] = set()

    def full_page(self) -> int:
        """The length a page must reach to mean "more may follow": the limit, or the server's cap."""
        return min(self.limit, ZOU_EVENTS_SERVER_CAP)

    def _first(self) -> PageRequest:
        return PageRequest(self.path, {**self.params, "limit": self.limit})

    def items(self, page: Any) -> list[Any]:
        events = _list(page, "the events list")
        return [e for e in events if not (isinstance(e, Mapping) and e.get("id") in self._seen)]

    def _following(self, page: Any, items: list[Any]) -> PageRequest | None:
        events = _list(page, "the events list")
        if len(events) < self.full_page():
            return None
        if len(events) < self.limit:
            self.server_cap = len(events)  # shorter than asked, yet a full 1,000: capped, read on
        oldest = events[-1]
        if not isinstance(oldest, Mapping) or "id" not in oldest or "created_at" not in oldest:
            raise ContractError("a Zou event lacks 'id' or 'created_at'; the events API shape changed")
        if self.cursor:
            return PageRequest(
                self.path, {**self.params, "limit": self.limit, "cursor_event_id": oldest["id"]}
            )
        self._seen = {e["id"] for e in events if isinstance(e, Mapping) and "id" in e}
        before = datetime.fromisoformat(str(oldest["created_at"])[:19]) + timedelta(seconds=1)
        return PageRequest(
            self.path, {**self.params, "limit": self.limit, "before": before.strftime("%Y-%m-%dT%H:%M:%S")}
        )
