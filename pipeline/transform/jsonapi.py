"""JSON:API documents (Kitsu): primary data, included resources and relationship linkage.

A compound document carries resources in ``data`` and the ones they reference in ``included``;
a relationship names its targets by ``{type, id}`` under ``data`` (its *linkage*), present only
when the request asked for it (``include=`` or the server always sends it). Three states matter:

* no ``data`` key in the relationship: not loaded, say nothing about it (``linkage`` → None);
* ``data`` null or ``[]``: loaded and empty;
* a target named but missing from ``included`` (sparse include, hidden R18 item): not an error,
  ``related`` skips it.

Types are compared in one spelling: ``mediaCharacters``, ``media_characters`` and
``media-characters`` are all ``media-characters``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pipeline.errors import ContractError, SkippableRecordError

Resource = Mapping[str, Any]
Identifier = tuple[str, str]

_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


_TYPES: dict[str, str] = {}  # type name as sent → normalised: a page names a handful of types
_TYPES_KEPT = 1024


def normalise_type(value: str) -> str:
    """``mediaCharacters`` / ``media_characters`` → ``media-characters``."""
    found = _TYPES.get(value)
    if found is None:
        found = _CAMEL_BOUNDARY.sub("-", value).replace("_", "-").lower()
        if len(_TYPES) < _TYPES_KEPT:
            _TYPES[value] = found
    return found


def identify(resource: Any) -> Identifier:
    """The (normalised type, id) of a resource or resource identifier."""
    # A parsed page holds plain dicts: test for one first, the Mapping ABC check costs more.
    if type(resource) is not dict and not isinstance(resource, Mapping):
        raise SkippableRecordError(f"resource {resource!r}: expected an object with type and id")
    kind, ident = resource.get("type"), resource.get("id")
    if isinstance(ident, str):
        text = ident.strip()
    elif isinstance(ident, int) and not isinstance(ident, bool):
        text = str(ident)
    else:
        text = None
    if not isinstance(kind, str) or not kind or text is None:
        raise SkippableRecordError(f"resource type={kind!r} id={ident!r}: a JSON:API resource needs both")
    if not text:
        raise SkippableRecordError(f"resource type={kind!r}: empty id")
    return normalise_type(kind), text


def attributes(resource: Resource) -> Mapping[str, Any]:
    attrs = resource.get("attributes")
    if attrs is None:
        return {}
    if not isinstance(attrs, Mapping):
        raise SkippableRecordError(f"attributes = {attrs!r}: expected an object")
    return attrs


def linkage(resource: Resource, name: str) -> list[Identifier] | None:
    """Targets of relationship ``name``; None when the document does not carry its linkage."""
    relationships = resource.get("relationships")
    if not isinstance(relationships, Mapping):
        return None
    relationship = relationships.get(name)
    if not isinstance(relationship, Mapping) or "data" not in relationship:
        return None
    data = relationship["data"]
    if data is None:
        return []
    items = data if isinstance(data, list) else [data]
    return [identify(item) for item in items]


@dataclass(frozen=True, slots=True)
class Document:
    """A parsed document: primary resources (always a list) and an index of included ones."""

    data: list[Resource]
    included: list[Resource]
    single: bool
    index: Mapping[Identifier, Resource]

    def find(self, identifier: Identifier) -> Resource | None:
        return self.index.get(identifier)

    def related(self, resource: Resource, name: str) -> list[Resource]:
        """The resources relationship ``name`` points at that the document includes."""
        found = (self.find(target) for target in linkage(resource, name) or [])
        return [target for target in found if target is not None]


def parse_document(payload: Any, where: str) -> Document:
    """Check the top-level shape; a page we cannot read at all is a broken contract, not a reject."""
    if not isinstance(payload, Mapping):
        raise ContractError(f"{where}: expected a JSON:API document (object), got {type(payload).__name__}")
    if "errors" in payload and "data" not in payload:
        raise ContractError(f"{where}: the API answered with errors {payload['errors']!r}")
    if "data" not in payload:
        raise ContractError(f"{where}: JSON:API document without 'data'; keys are {sorted(payload)}")
    data = payload["data"]
    single = not isinstance(data, list)
    records = [] if data is None else ([data] if single else list(data))
    included = payload.get("included")
    included = [] if included is None else included
    if not isinstance(included, list):
        raise ContractError(f"{where}: 'included' must be a list, got {type(included).__name__}")
    index: dict[Identifier, Resource] = {}
    for resource in [*records, *included]:
        try:
            index.setdefault(identify(resource), resource)
        except SkippableRecordError:
            continue  # reported when the record itself is transformed
    return Document(records, included, single, index)
