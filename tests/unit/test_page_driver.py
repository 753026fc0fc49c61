"""The one page driver (``sources.common.drive``) on a fake offset listing: planned pages fetched
``width`` at a time, links followed when there is no total or a walk must stop early, committed
pages skipped, the page cap, unkeyed re-read passes and a first page the caller already read."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from pipeline.errors import ContractError
from pipeline.pagination import JsonApiPaginator, PageRequest
from pipeline.sources.common import Fetched, drive
from pipeline.streams import PageSet

TOTAL, SIZE = 95, 10


class Listing:
    """A JSON:API offset listing of TOTAL records; counts requests and the most in flight."""

    def __init__(self, *, count: bool = True, delay: float = 0.0) -> None:
        self.count, self.delay = count, delay
        self.requests: list[int] = []
        self.in_flight = self.peak = 0

    async def get(self, request: PageRequest) -> tuple[Any, int]:
        params = dict(request.params)
        if not params and "?" in request.url:  # a links.next URL carries its own query
            params = dict(p.split("=", 1) for p in request.url.split("?", 1)[1].split("&"))
        offset = int(params["page[offset]"])
        self.requests.append(offset // SIZE)
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        await asyncio.sleep(self.delay)
        self.in_flight -= 1
        data = [{"type": "anime", "id": str(i)} for i in range(offset + 1, min(offset + SIZE, TOTAL) + 1)]
        doc: dict[str, Any] = {"data": data}
        if self.count:
            doc["meta"] = {"count": TOTAL}
        if offset + SIZE < TOTAL:
            doc["links"] = {"next": f"anime?page[limit]={SIZE}&page[offset]={offset + SIZE}"}
        return doc, 100


def paginator(max_pages: int | None = None) -> JsonApiPaginator:
    return JsonApiPaginator("anime", limit=SIZE, max_pages=max_pages)


async def collect(pages: Any) -> list[Fetched]:
    return [page async for page in pages]


def ids(fetched: list[Fetched]) -> set[str]:
    return {r["id"] for f in fetched for r in f.doc["data"]}


async def test_planned_pages_come_keyed_and_width_at_a_time() -> None:
    listing = Listing(delay=0.01)
    got = await collect(drive(paginator(), listing.get, width=3))
    assert sorted(f.key for f in got if f.key is not None) == list(range(10))
    assert ids(got) == {str(i) for i in range(1, TOTAL + 1)}
    assert listing.peak == 3  # never more than width in flight
    assert got[0].items is not None
    assert all(f.items is None for f in got[1:])


async def test_committed_pages_are_neither_fetched_nor_yielded_but_the_first_is_read() -> None:
    listing = Listing()
    done = PageSet([[0, 3], [7, 7]])
    got = await collect(drive(paginator(), listing.get, committed=done, width=2))
    assert sorted(f.key for f in got if f.key is not None) == [4, 5, 6, 8, 9]
    assert sorted(listing.requests) == [0, 4, 5, 6, 8, 9]  # page 0 again: it carries the total


async def test_without_a_total_links_are_followed_one_by_one() -> None:
    listing = Listing(count=False, delay=0.01)
    got = await collect(drive(paginator(), listing.get, width=4, committed=PageSet([[2, 2]])))
    assert listing.requests == list(range(10))
    assert listing.peak == 1
    assert [f.key for f in got] == [0, 1, 3, 4, 5, 6, 7, 8, 9]


async def test_follow_stops_where_the_caller_stops() -> None:
    listing = Listing()
    pages = drive(paginator(), listing.get, follow=True, keyed=False)
    seen = 0
    async for fetched in pages:
        assert fetched.key is None
        seen += 1
        if seen == 3:
            break
    assert listing.requests == [0, 1, 2]  # no page read ahead of the walk


async def test_the_page_cap_holds_and_marks_the_listing_capped() -> None:
    listing = Listing()
    cap = paginator(max_pages=4)
    got = await collect(drive(cap, listing.get, width=2))
    assert sorted(f.key for f in got if f.key is not None) == [0, 1, 2, 3]
    assert cap.capped


async def test_an_opened_first_page_is_not_read_again() -> None:
    listing = Listing()
    pages_of = paginator()
    first_request = pages_of.first_request()
    doc, _ = await listing.get(first_request)
    pages_of.update(doc)
    got = await collect(drive(pages_of, listing.get, opened=True, width=2))
    assert listing.requests.count(0) == 1
    assert sorted(f.key for f in got if f.key is not None) == list(range(1, 10))


async def test_the_loop_guard_stops_a_listing_that_ignores_the_page() -> None:
    async def same(request: PageRequest) -> tuple[Any, int]:
        return {"data": [{"type": "anime", "id": "1"}], "links": {"next": "anime?again=1"}}, 10

    with pytest.raises(ContractError, match="pagination loop"):
        await collect(drive(paginator(), same))
