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

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from pipeline.errors import ConfigError
from pipeline.records import Batch
from pipeline.transform import anilist, anilist_v1, kitsu, nekos, zou, zou_events, zou_studio
from pipeline.transform.common import collect_notes, collect_unknown

Context = Mapping[str, Any]
Payloads = list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Lookup:
    """A context value: ``{source_id: payload[field]}`` over the live raw records of ``resource`` of
    the same source (e.g. entity type id → name); a dotted ``field`` is a path into the payload."""

    resource: str
    field: str


def data_envelope(payloads: Payloads) -> Any:
    return {"data": payloads}


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


def _kitsu(resource: str) -> ResourceTransform:
    return ResourceTransform(partial(kitsu.stream_page, resource=resource))


def _kitsu_joins(resource: str, included: str) -> ResourceTransform:
    """A Kitsu join stream that also stores its included records (people, producers): replay
    rebuilds those first, then the joins."""
    return ResourceTransform(partial(kitsu.stream_page, resource=resource), lands=(included, resource))


def _anilist_page(payloads: Payloads) -> Any:
    return {"data": {"Page": {"pageInfo": {"hasNextPage": False}, "media": payloads}}}


def _nekos_page(payloads: Payloads) -> Any:
    return {"success": True, "data": payloads, "meta": {"pagination": {"total": len(payloads)}}}


def _zou(function: Callable[..., Batch], **context: Lookup) -> ResourceTransform:
    return ResourceTransform(partial(zou_events.model_page, function), context=context)


def _as_list(payloads: Payloads) -> Any:
    return payloads


TRANSFORMS: dict[str, dict[str, ResourceTransform]] = {
    "kitsu": {
        **{r: _kitsu(r) for r in ("anime", "manga", "episodes", "categories", "mappings")},
        "characters": ResourceTransform(
            partial(kitsu.stream_page, resource="characters"), lands=("characters", "media-characters")
        ),
        "media-characters": ResourceTransform(kitsu.transform_media_characters),
        "media-relationships": _kitsu("media-relationships"),
        # A link's site is its included streamer's name; replay (no includes) reads it from the
        # streamers the stream landed.
        "streaming-links": ResourceTransform(
            partial(kitsu.stream_page, resource="streaming-links"),
            context={"streamer_names": Lookup("streamers", "attributes.siteName")},
            lands=("streamers", "streaming-links"),
        ),
        # People, producers and streamers land only as includes of the join streams; replay reads
        # them back.
        **{r: _kitsu(r) for r in ("people", "producers", "streamers")},
        "media-staff": _kitsu_joins("media-staff", "people"),
        "media-productions": _kitsu_joins("media-productions", "producers"),
        "character-voices": _kitsu_joins("character-voices", "people"),
    },
    "anilist": {
        "anime": ResourceTransform(anilist.transform_anime, _anilist_page),
        "manga": ResourceTransform(anilist.transform_manga, _anilist_page),
    },
    "anilist_v1": {
        "anime": ResourceTransform(anilist_v1.transform_anime, _as_list),
        "manga": ResourceTransform(anilist_v1.transform_manga, _as_list),
    },
    "zou": {
        "projects": _zou(zou.transform_projects),
        "persons": _zou(zou.transform_persons),
        "entity_types": _zou(zou.transform_entity_types),
        "task_types": _zou(zou.transform_task_types),
        "task_statuses": _zou(zou.transform_task_statuses),
        "entities": _zou(zou.transform_entities, entity_type_names=Lookup("entity_types", "name")),
        "tasks": _zou(zou.transform_tasks),
        "comments": _zou(zou.transform_comments),
        "time_spents": _zou(zou.transform_time_spents),
        "departments": _zou(zou_studio.transform_departments),
        "project_statuses": _zou(zou_studio.transform_project_statuses),
        "metadata_descriptors": _zou(zou_studio.transform_metadata_descriptors),
        "entity_links": _zou(zou_studio.transform_entity_links),
        "preview_files": _zou(zou_studio.transform_preview_files),
        "playlists": _zou(zou_studio.transform_playlists),
        "schedule_items": _zou(zou_studio.transform_schedule_items),
        "milestones": _zou(zou_studio.transform_milestones),
        "events": ResourceTransform(zou_events.transform_events, _as_list),
    },
    "nekos": {
        "images": ResourceTransform(nekos.transform_images, _nekos_page),
        "artists": ResourceTransform(nekos.transform_artists, _nekos_page),
        "characters": ResourceTransform(nekos.transform_characters, _nekos_page),
        "categories": ResourceTransform(nekos.transform_categories, _nekos_page),
    },
}

# Raw resources any stream of a kind may land (each Zou model stream stores the events about its
# model): replay rebuilds them once per source, after the source's streams.
SHARED_RAW: dict[str, tuple[str, ...]] = {"zou": ("events",)}


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
