"""How the pages of one resource become a ``Batch`` (``ResourceTransform``) and the context values
a transform may ask for (``Lookup``). Each transform module declares its kind's resources with
these (``TRANSFORMS``); ``pipeline.transform`` collects them."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pipeline.records import Batch

Payloads = list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Lookup:
    """A context value: ``{source_id: payload[field]}`` over the live raw records of ``resource`` of
    the same source (e.g. entity type id → name); a dotted ``field`` is a path into the payload."""

    resource: str
    field: str


def data_envelope(payloads: Payloads) -> Any:
    return {"data": payloads}


def as_list(payloads: Payloads) -> Any:
    return payloads


@dataclass(frozen=True, slots=True)
class ResourceTransform:
    """How the pages of one resource become a ``Batch``.

    ``function(doc, **context)`` maps a page; ``wrap(payloads)`` rebuilds a page from raw payloads
    (replay); ``context`` names the keyword arguments ``function`` takes and where they are found;
    ``lands`` lists the raw resources the stream's pages land (replay reads those; default: the
    resource itself).
    """

    function: Callable[..., Batch]
    wrap: Callable[[Payloads], Any] = data_envelope
    context: Mapping[str, Lookup] = field(default_factory=dict)
    lands: tuple[str, ...] = ()


__all__ = ["Lookup", "Payloads", "ResourceTransform", "as_list", "data_envelope"]
