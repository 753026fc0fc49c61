"""Pure transforms: one fetched page (dict/list as decoded) → ``pipeline.records.Batch``.

``transform(kind, resource, doc, context)`` is the one entry point; the runner calls it for every
fetched page and ``pipeline replay`` for every chunk of raw payloads (``wrap`` turns them back into
a page document of the shape the transform reads). Neither goes through a connector, so replay
needs no client and no network.

``context`` carries what a page alone does not say: Zou's generic ``/data/entities`` rows name
their type only by id, so the entities transform takes ``entity_type_names``. A transform declares
what it needs as ``Lookup``\\ s, and the runner (sync and replay alike) builds the values from the
raw records already loaded for the same source (``pipeline.load.context``).

Values outside a vocabulary are stored as ``unknown`` and listed in ``Batch.unknown`` so the caller
can log them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipeline.errors import ConfigError
from pipeline.records import Batch
from pipeline.transform import anilist, anilist_v1, kitsu, nekos, zou_events
from pipeline.transform.common import collect_notes, collect_unknown
from pipeline.transform.resources import Lookup, Payloads, ResourceTransform

Context = Mapping[str, Any]

# Every built-in kind's resources, declared by its transform module (``TRANSFORMS``; Zou's live
# with its events log, which every Zou model stream lands too). Another kind adds its own with
# ``register``.
TRANSFORMS: dict[str, dict[str, ResourceTransform]] = {
    "kitsu": dict(kitsu.TRANSFORMS),
    "anilist": dict(anilist.TRANSFORMS),
    "anilist_v1": dict(anilist_v1.TRANSFORMS),
    "zou": dict(zou_events.TRANSFORMS),
    "nekos": dict(nekos.TRANSFORMS),
}
# Raw resources any stream of a kind may land (each Zou model stream stores the events about its
# model): replay rebuilds them once per source, after the source's streams.
SHARED_RAW: dict[str, tuple[str, ...]] = {"zou": zou_events.SHARED_RAW}


def register(kind: str, resources: Mapping[str, ResourceTransform]) -> None:
    """Add (or replace) the transforms of a connector kind."""
    TRANSFORMS.setdefault(kind, {}).update(resources)


def spec(kind: str, resource: str) -> ResourceTransform:
    """The transform of ``kind``/``resource``, or a ConfigError listing the known ones."""
    try:
        return TRANSFORMS[kind][resource]
    except KeyError:
        known = ", ".join(f"{k}/{r}" for k, resources in TRANSFORMS.items() for r in resources)
        raise ConfigError(f"no transform for {kind}/{resource}; known: {known}") from None


def transform(kind: str, resource: str, payload: Any, context: Context | None = None) -> Batch:
    """Transform one page of ``resource`` fetched from a source of connector ``kind``."""
    found = spec(kind, resource)
    given = context or {}
    with collect_unknown() as unknown, collect_notes() as notes:
        batch = found.function(payload, **{name: given.get(name) for name in found.context})
    batch.unknown.extend(pair for pair in unknown if pair not in batch.unknown)
    batch.notes.extend(pair for pair in notes if pair not in batch.notes)
    return batch


def wrap(kind: str, resource: str, payloads: Payloads) -> Any:
    """Raw payloads of ``resource`` as a page document its transform reads (for replay)."""
    return spec(kind, resource).wrap(payloads)


def lands(kind: str, resource: str) -> tuple[str, ...]:
    """The raw resources the pages of a ``kind``/``resource`` stream land, parents first."""
    return spec(kind, resource).lands or (resource,)


__all__ = [
    "SHARED_RAW",
    "TRANSFORMS",
    "Context",
    "Lookup",
    "ResourceTransform",
    "lands",
    "register",
    "spec",
    "transform",
    "wrap",
]
