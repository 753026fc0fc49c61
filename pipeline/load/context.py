"""Transform context from the database: what a page alone does not say, read from the raw records
already loaded for the same source (``pipeline.transform.Lookup``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import asyncpg

from pipeline.transform import Lookup


async def read_context(conn: asyncpg.Connection, source: str, needs: Mapping[str, Lookup]) -> dict[str, Any]:
    """``{name: {source_id: payload[field]}}`` for each lookup, over the live raw records (a dotted
    ``field`` is a path: ``attributes.siteName``)."""
    context: dict[str, Any] = {}
    for name, lookup in needs.items():
        rows = await conn.fetch(
            "SELECT source_id, payload #>> $3::text[] AS value FROM raw.records "
            "WHERE source = $1 AND resource = $2 AND deleted_at IS NULL",
            source,
            lookup.resource,
            lookup.field.split("."),
        )
        context[name] = {r["source_id"]: r["value"] for r in rows if r["value"] is not None}
    return context
