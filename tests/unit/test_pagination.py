"""Paginators as pure objects: each style's stop rule, plans for parallel pages, loop guard, page cap."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline.errors import ContractError
from pipeline.pagination import (
    DEFAULT_MAX_PAGES,
    GraphQLPagePaginator,
    JsonApiPaginator,
    OffsetPaginator,
    PageNumberPaginator,
    PageRequest,
    Paginator,
    ShortPagePaginator,
    ZouEventsPaginator,
    default_max_pages,
)


def walk(paginator: Paginator, pages: dict[str, Any]) -> tuple[list[Any], list[PageRequest]]:
    """Drive a paginator over canned pages keyed by request token; return records and requests."""
    requests = [paginator.first_request()]
    records: list[Any] = []
    while True:
        records += paginator.update(pages[requests[-1].token()])
        if not paginator.has_next:
            return records, requests
        requests.append(paginator.next_request())


def kitsu_page(ids: list[int], nxt: str | None, count: int = 5) -> dict[str, Any]:
    links = {"first": "https://k.test/api/edge/anime?page%5Blimit%5D=2&page%5Boffset%5D=0"}
    if nxt:
        links["next"] = nxt
    return {"data": [{"id": str(i), "type": "anime"} for i in ids], "meta": {"count": count}, "links": links}


def test_jsonapi_follows_links_next_and_plans_offsets() -> None:
    """Kitsu: links.next is followed until absent; meta.count yields a plan of the remaining offsets."""
    paginator = JsonApiPaginator("anime", limit=2)
    first = paginator.first_request()
    assert first.params == {"sort": "id", "page[limit]": 2, "page[offset]": 0}
    second = "https://k.test/api/edge/anime?page%5Blimit%5D=2&page%5Boffset%5D=2&sort=id"
    third = "https://k.test/api/edge/anime?page%5Blimit%5D=2&page%5Boffset%5D=4&sort=id"
    pages = {
        first.token(): kitsu_page([1, 2], second),
        PageRequest(second).token(): kitsu_page([3, 4], third),
        PageRequest(third).token(): kitsu_page([5], None),
    }
    records, requests = walk(paginator, pages)
    assert [r["id"] for r in records] == ["1", "2", "3", "4", "5"]
    assert [r.url for r in requests[1:]] == [second, third]
    assert paginator.total == 5
    planner = JsonApiPaginator("anime", limit=2, params={"include": "categories"})
    planner.update(kitsu_page([1, 2], second))
    assert [dict(r.params) for r in planner.plan()] == [
        {"sort": "id", "include": "categories", "page[limit]": 2, "page[offset]": 2},
        {"sort": "id", "include": "categories", "page[limit]": 2, "page[offset]": 4},
    ]


def test_same_next_link_twice_is_a_loop() -> None:
    """A server that keeps returning the same links.next raises ContractError instead of spinning."""
    paginator = JsonApiPaginator("anime", limit=2)
    paginator.first_request()
    loop = "https://k.test/api/edge/anime?page%5Boffset%5D=2"
    paginator.update(kitsu_page([1, 2], loop))
    paginator.next_request()
    with pytest.raises(ContractError, match="pagination loop"):
        paginator.update(kitsu_page([3, 4], loop))


def test_max_pages_caps_the_scan_and_says_so() -> None:
    """max_pages stops after that many pages and marks the scan as capped (partial)."""
    paginator = ShortPagePaginator("browse/anime", page_size=2, max_pages=2)
    paginator.first_request()
    paginator.update([{"id": 1}, {"id": 2}])
    assert paginator.has_next
    paginator.next_request()
    paginator.update([{"id": 3}, {"id": 4}])
    assert not paginator.has_next
    assert paginator.capped
    with pytest.raises(ValueError, match="no next page"):
        paginator.next_request()


def test_nekos_offset_limit_stops_at_total_and_plans() -> None:
    """Nekos: offsets advance by limit until meta.pagination.total; plan() lists the rest."""
    paginator = OffsetPaginator("image", limit=25)
    assert paginator.first_request().params == {"limit": 25, "offset": 0}
    envelope = {"success": True, "data": [{"id": "a"}] * 25, "meta": {"pagination": {"total": 60}}}
    assert len(paginator.update(envelope)) == 25
    assert [dict(r.params) for r in paginator.plan()] == [
        {"limit": 25, "offset": 25},
        {"limit": 25, "offset": 50},
    ]
    assert paginator.next_request().params == {"limit": 25, "offset": 25}
    paginator.update({**envelope, "data": [{"id": f"b{i}"} for i in range(25)]})  # pages hold distinct ids
    paginator.next_request()
    paginator.update({"success": True, "data": [{"id": "z"}] * 10, "meta": {"pagination": {"total": 60}}})
    assert not paginator.has_next


def test_nekos_empty_page_stops_even_if_total_says_more() -> None:
    """An empty data array ends the scan (Nekos' total can disagree with the rows served)."""
    paginator = OffsetPaginator("artist", limit=25)
    paginator.first_request()
    paginator.update({"data": [], "meta": {"pagination": {"total": 100}}})
    assert not paginator.has_next


def test_zou_page_numbers_until_nb_pages() -> None:
    """Zou: page increments until nb_pages; a page past the end (empty data) also stops."""
    paginator = PageNumberPaginator("data/tasks", limit=2, params={"relations": "true"})
    assert paginator.first_request().params == {"relations": "true", "page": 1, "limit": 2}
    paginator.update({"data": [{"id": "t1"}, {"id": "t2"}], "total": 3, "nb_pages": 2, "page": 1})
    assert paginator.next_request().params == {"relations": "true", "page": 2, "limit": 2}
    paginator.update({"data": [{"id": "t3"}], "total": 3, "nb_pages": 2, "page": 2})
    assert not paginator.has_next
    assert paginator.total == 3
    shifted = PageNumberPaginator("data/tasks", limit=2)
    shifted.first_request()
    shifted.update({"data": [], "total": 0, "nb_pages": 2, "page": 1})
    assert not shifted.has_next


def test_anilist_v1_bare_array_until_short_page() -> None:
    """AniList v1: full pages of 40 continue, a short page is the last."""
    paginator = ShortPagePaginator("browse/anime", page_size=40, params={"sort": "id"})
    assert paginator.first_request().params == {"sort": "id", "page": 1}
    paginator.update([{"id": n} for n in range(40)])
    assert paginator.next_request().params == {"sort": "id", "page": 2}
    paginator.update([{"id": n} for n in range(39)])
    assert not paginator.has_next
    with pytest.raises(ContractError, match="expected a JSON array"):
        ShortPagePaginator("browse/anime", page_size=40).update({"error": "nope"})


def test_anilist_graphql_trusts_only_has_next_page() -> None:
    """AniList v2: pages advance while pageInfo.hasNextPage is true; total/lastPage are ignored."""
    paginator = GraphQLPagePaginator(
        "https://graphql.test", "query($page:Int){…}", field="media", per_page=50, variables={"type": "ANIME"}
    )
    first = paginator.first_request()
    assert first.json["variables"] == {"type": "ANIME", "page": 1, "perPage": 50}
    page = {
        "data": {"Page": {"pageInfo": {"hasNextPage": True, "total": 5000, "lastPage": 100}, "media": [1]}}
    }
    assert paginator.update(page) == [1]
    assert paginator.next_request().json["variables"]["page"] == 2
    last = {
        "data": {"Page": {"pageInfo": {"hasNextPage": False, "total": 5000, "lastPage": 100}, "media": [2]}}
    }
    paginator.update(last)
    assert not paginator.has_next


def events(*pairs: tuple[str, str]) -> list[dict[str, Any]]:
    return [{"id": i, "created_at": at, "name": "task:update", "data": {}} for i, at in pairs]


def test_zou_events_cursor_mode_walks_back_by_event_id() -> None:
    """New Zou: after=<watermark>, then cursor_event_id=<oldest id of the page> while pages are full."""
    paginator = ZouEventsPaginator(after="2024-05-01T00:00:00", limit=2)
    assert paginator.first_request().params == {"after": "2024-05-01T00:00:00", "limit": 2}
    paginator.update(events(("e4", "2024-05-02T10:00:04"), ("e3", "2024-05-02T10:00:03")))
    assert paginator.next_request().params == {
        "after": "2024-05-01T00:00:00",
        "limit": 2,
        "cursor_event_id": "e3",
    }
    paginator.update(events(("e2", "2024-05-02T10:00:02")))
    assert not paginator.has_next


def test_zou_events_before_mode_keeps_the_boundary_second() -> None:
    """Old Zou: before=<oldest + 1 s> re-reads the boundary second and drops events already returned."""
    paginator = ZouEventsPaginator(after=None, limit=3, cursor=False)
    paginator.first_request()
    first = paginator.update(
        events(("e5", "2024-05-02T10:00:09"), ("e4", "2024-05-02T10:00:07"), ("e3", "2024-05-02T10:00:07"))
    )
    assert [e["id"] for e in first] == ["e5", "e4", "e3"]
    assert paginator.next_request().params == {"limit": 3, "before": "2024-05-02T10:00:08"}
    second = paginator.update(
        events(("e4", "2024-05-02T10:00:07"), ("e3", "2024-05-02T10:00:07"), ("e2", "2024-05-02T10:00:06"))
    )
    assert [e["id"] for e in second] == ["e2"]  # the boundary second was re-read, duplicates dropped
    assert paginator.next_request().params == {"limit": 3, "before": "2024-05-02T10:00:07"}


def test_zou_events_more_than_a_page_in_one_second_is_reported() -> None:
    """Old Zou: a full page inside one second cannot be walked past with before=; it raises, not loops."""
    paginator = ZouEventsPaginator(after=None, limit=2, cursor=False)
    paginator.first_request()
    paginator.update(events(("e9", "2024-05-02T10:00:07"), ("e8", "2024-05-02T10:00:07")))
    paginator.next_request()
    with pytest.raises(ContractError, match="pagination loop"):
        paginator.update(events(("e9", "2024-05-02T10:00:07"), ("e8", "2024-05-02T10:00:07")))


def test_zou_events_page_capped_by_the_server_is_not_the_last() -> None:
    """Zou serves at most 1,000 events whatever limit is asked: a page of 1,000 for limit=2000 reads on."""
    paginator = ZouEventsPaginator(after="2024-05-01T00:00:00", limit=2000)
    paginator.first_request()
    capped = [(f"e{n:04d}", "2024-05-02T10:00:00") for n in range(1191, 191, -1)]
    paginator.update(events(*capped))
    assert paginator.has_next
    assert paginator.server_cap == 1000
    assert paginator.next_request().params["cursor_event_id"] == "e0192"
    paginator.update(events(*[(f"e{n:04d}", "2024-05-02T09:00:00") for n in range(191, 0, -1)]))
    assert not paginator.has_next


def test_zou_events_short_page_below_the_cap_is_the_last() -> None:
    """A page shorter than both the limit and the cap ends the walk (no extra request)."""
    paginator = ZouEventsPaginator(after=None, limit=2000)
    paginator.first_request()
    paginator.update(events(*[(f"e{n}", "2024-05-02T10:00:00") for n in range(999)]))
    assert not paginator.has_next
    assert paginator.server_cap is None


def test_same_page_content_twice_is_a_loop_even_with_new_urls() -> None:
    """A server ignoring the page parameter answers new URLs with the same records: stopped at page 2."""
    paginator = ShortPagePaginator("browse/anime", page_size=2)
    paginator.first_request()
    same = [{"id": 1}, {"id": 2}]
    paginator.update(same)
    paginator.next_request()
    with pytest.raises(ContractError, match="ignores the page parameter"):
        paginator.update(same)


def test_without_max_pages_the_cap_is_finite() -> None:
    """An endless links.next with fresh records stops at the default cap; a known total caps lower."""
    assert default_max_pages(100, 20) == 2 * 5 + 10
    assert default_max_pages(None, 20) == DEFAULT_MAX_PAGES
    paginator = JsonApiPaginator("anime", limit=1)
    paginator.first_request()
    pages = 0
    while True:
        pages += 1
        paginator.update({"data": [{"id": str(pages)}], "links": {"next": f"anime?page[offset]={pages}"}})
        if not paginator.has_next:
            break
        paginator.next_request()
    assert paginator.capped
    assert pages == DEFAULT_MAX_PAGES
