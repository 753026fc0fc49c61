"""A sixth connector that lives only in the tests: a toy JSON API (served here on 127.0.0.1), its
declaration, transform and table, plugged in through the public registries alone.

The API: ``GET /api/items?limit=&offset=`` answers ``{"success": true, "data": [...],
"meta": {"pagination": {"total": N}}}`` (the envelope ``pagination.OffsetPaginator`` reads);
``fail_after`` makes every request after that many answer 500. Items are ``{id, name, size}``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from pipeline import tables, transform
from pipeline.connectors import ConnectorSpec, register_connector, unregister_connector
from pipeline.http import RequestStats, ServiceClient
from pipeline.pagination import OffsetPaginator, PageRequest
from pipeline.records import Batch
from pipeline.settings import SourceSettings
from pipeline.sources.common import drive, option
from pipeline.streams import Page, StreamState
from pipeline.tables import EntityTable
from pipeline.transform.common import PageBuilder

KIND = "toy"
TABLE = EntityTable("toy.items", columns=("name", "size"))
DDL = """
CREATE SCHEMA IF NOT EXISTS toy;
CREATE TABLE IF NOT EXISTS toy.items (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source            text        NOT NULL,
    source_id         text        NOT NULL,
    source_updated_at timestamptz,
    content_hash      bytea       NOT NULL,
    synced_at         timestamptz NOT NULL DEFAULT now(),
    deleted_at        timestamptz,
    run_id            bigint,
    name              text        NOT NULL,
    size              integer,
    UNIQUE (source, source_id)
);
"""
SPEC = ConnectorSpec(
    kind=KIND,
    module=__name__,
    resources=("items",),
    defaults={"rate": {"requests": 200, "per_seconds": 1.0}, "max_in_flight": 2, "page_size": 10},
    max_page_size=50,
    options={"width": int},
    option_ranges={"width": (1, 8)},
)


# -- connector ---------------------------------------------------------------------------------
def main_tables(resource: str) -> tuple[str, ...]:
    return (TABLE.name,)


def build_stream(source: SourceSettings, resource: str, client: ServiceClient) -> ToyStream:
    return ToyStream(source, resource, client)


class ToyStream:
    """A full re-scan through the shared page driver (the first page gives the total, the rest are
    planned and fetched ``width`` at a time, committed pages skipped on resume); no lookup, so
    deletes follow the two-scan rule."""

    incremental = False
    auth_identity = "anonymous"

    def __init__(self, source: SourceSettings, resource: str, client: ServiceClient) -> None:
        self.source, self.resource, self.client = source, resource, client
        self.owned_tables = self.main_tables = main_tables(resource)
        self.stats = RequestStats()
        self.width = option(source, "width", 2, int)

    async def pages(self, state: StreamState) -> AsyncIterator[Page]:
        paginator = OffsetPaginator(
            self.resource, limit=self.source.page_size, max_pages=self.source.max_pages
        )
        async for fetched in drive(paginator, self._get, committed=state.committed, width=self.width):
            yield Page(fetched.doc, key=fetched.key, nbytes=fetched.nbytes, total_hint=paginator.total)
        yield Page({"success": True, "data": []}, expected_total=paginator.total)

    async def _get(self, request: PageRequest) -> tuple[Any, int]:
        response = await self.client.request("GET", request.url, params=request.params, stats=self.stats)
        return response.data, response.nbytes


# -- transform ---------------------------------------------------------------------------------
def transform_items(payload: Any) -> Batch:
    builder = PageBuilder()
    for item in payload.get("data") or () if isinstance(payload, dict) else ():
        ident = str(item["id"]) if isinstance(item, dict) and "id" in item else None
        builder.record("items", item, ident, lambda item=item: _rows(item))
    return builder.batch


def _rows(item: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    if not isinstance(item.get("name"), str):
        raise ValueError(f"item {item.get('id')}: no name")
    row = {
        "source_id": str(item["id"]),
        "source_updated_at": None,
        "name": item["name"],
        "size": item.get("size"),
    }
    return [(TABLE.name, row)]


def plug_in() -> None:
    """Declaration, transform and table: everything the engine needs to know of this API."""
    register_connector(SPEC)
    transform.register(KIND, {"items": transform.ResourceTransform(transform_items)})
    tables.register(TABLE)


def unplug() -> None:
    unregister_connector(KIND)
    transform.TRANSFORMS.pop(KIND, None)
    tables.unregister(TABLE.name)


# -- the API -----------------------------------------------------------------------------------
@dataclass
class ToyApi:
    items: dict[int, dict[str, Any]] = field(default_factory=dict)
    requests: int = 0
    fail_after: int | None = None

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/api/items", self.listing)
        return app

    async def listing(self, request: web.Request) -> web.Response:
        self.requests += 1
        if self.fail_after is not None and self.requests > self.fail_after:
            return web.json_response({"success": False, "message": "unwell"}, status=500)
        limit, offset = int(request.query.get("limit", "10")), int(request.query.get("offset", "0"))
        ordered = [self.items[k] for k in sorted(self.items)]
        page = ordered[offset : offset + limit]
        return web.json_response(
            {"success": True, "data": page, "meta": {"pagination": {"total": len(ordered)}}}
        )
