"""JSON:API plumbing as jsonapi-resources 0.9 renders it: paging, links, errors, sparse fields.

Quirks kept from the real server: brackets in link query strings are percent-encoded and the
parameters sorted; ``last`` points at offset ``count - limit`` (not the last full page); ``prev``
and ``next`` are left out at the ends; ``meta.count`` is the total.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from pipeline.sandbox.core import json_response

CONTENT_TYPE = "application/vnd.api+json"
DEFAULT_LIMIT = 10
MAX_LIMIT = 20


class JsonApiError(Exception):
    """Raised by a handler; rendered as a JSON:API error document."""

    def __init__(self, status: int, title: str, detail: str, code: str | None = None) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail, self.code = status, title, detail, code or str(status)

    def response(self) -> web.Response:
        error = {"title": self.title, "detail": self.detail, "code": self.code, "status": str(self.status)}
        return document({"errors": [error]}, status=self.status)


def document(body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return json_response(body, status=status, headers=headers, content_type=CONTENT_TYPE)


def not_found(record_id: str) -> JsonApiError:
    return JsonApiError(404, "Record not found", f"The record identified by {record_id} could not be found.")


@dataclass(frozen=True)
class Page:
    limit: int
    offset: int


def parse_page(request: web.Request, max_limit: int | None = MAX_LIMIT) -> Page:
    """``page[limit]``/``page[offset]`` (or ``page[size]``/``page[number]``) with the server's checks."""
    query = request.query
    try:
        if "page[size]" in query or "page[number]" in query:
            limit = int(query.get("page[size]", DEFAULT_LIMIT))
            offset = (int(query.get("page[number]", 1)) - 1) * limit
        else:
            limit = int(query.get("page[limit]", DEFAULT_LIMIT))
            offset = int(query.get("page[offset]", 0))
    except ValueError:
        raise JsonApiError(400, "Invalid Page Value", "page values must be integers", "118") from None
    if limit < 1 or offset < 0:
        raise JsonApiError(
            400, "Invalid Page Value", f"{limit} is not a valid value for limit page parameter.", "118"
        )
    if max_limit is not None and limit > max_limit:
        raise JsonApiError(
            400, "Invalid Page Value", f"Limit exceeds maximum page size of {max_limit}.", "118"
        )
    return Page(limit=limit, offset=offset)


def page_links(request: web.Request, page: Page, count: int) -> dict[str, str]:
    """first/prev/next/last as absolute URLs, keeping the request's other parameters."""
    base = f"{request.scheme}://{request.host}{request.path}"
    others = {k: v for k, v in request.query.items() if not k.startswith("page[")}

    def at(offset: int) -> str:
        params = {**others, "page[limit]": str(page.limit), "page[offset]": str(offset)}
        return f"{base}?{urlencode(sorted(params.items()))}"

    links = {"first": at(0)}
    if page.offset > 0:
        links["prev"] = at(max(0, page.offset - page.limit))
    if page.offset + page.limit < count:
        links["next"] = at(page.offset + page.limit)
    links["last"] = at(max(0, count - page.limit))
    return links


def parse_list(request: web.Request, key: str) -> list[str]:
    raw = request.query.get(key, "")
    return [part.strip() for part in raw.split(",") if part.strip()]


def check_includes(includes: Sequence[str], allowed: Sequence[str], resource: str) -> None:
    for name in includes:
        if name.split(".")[0] not in allowed:
            raise JsonApiError(
                400, "Invalid field", f"{name} is not a valid relationship of {resource}", "112"
            )


def sparse(resource: dict[str, Any], request: web.Request) -> dict[str, Any]:
    """Apply ``fields[type]=a,b`` to one rendered resource."""
    wanted = request.query.get(f"fields[{resource['type']}]")
    if wanted is None:
        return resource
    keep = {name.strip() for name in wanted.split(",")}
    out = dict(resource)
    out["attributes"] = {k: v for k, v in resource.get("attributes", {}).items() if k in keep}
    if "relationships" in resource:
        out["relationships"] = {k: v for k, v in resource["relationships"].items() if k in keep}
    return out


def relationship_links(self_url: str, names: Sequence[str]) -> dict[str, Any]:
    """``{name: {links: {self, related}}}`` for each relationship, dasherised in the URL like Kitsu."""
    out = {}
    for name in names:
        path = "".join(f"-{c.lower()}" if c.isupper() else c for c in name)
        out[name] = {"links": {"self": f"{self_url}/relationships/{path}", "related": f"{self_url}/{path}"}}
    return out
