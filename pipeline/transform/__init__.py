"""Pure transforms: one fetched page (dict/list as decoded) → ``pipeline.records.Batch``.

``transform(kind, resource, payload)`` is the one entry point the runner and ``pipeline replay``
call; each connector kind registers its per-resource functions in ``TRANSFORMS``. Values outside
a vocabulary are stored as ``unknown`` and listed in ``Batch.unknown`` so the caller can log them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pipeline.errors import ConfigError
from pipeline.records import Batch
from pipeline.transform import anilist, anilist_v1, kitsu, nekos, zou, zou_events
from pipeline.transform.common import collect_notes, collect_unknown

Transform = Callable[[Any], Batch]

TRANSFORMS: dict[str, dict[str, Transform]] = {
    "kitsu": {
        "anime": kitsu.transform_anime,
        "manga": kitsu.transform_manga,
        "episodes": kitsu.transform_episodes,
        "categories": kitsu.transform_categories,
        "mappings": kitsu.transform_mappings,
        "characters": kitsu.transform_characters,
        "media-characters": kitsu.transform_media_characters,
        "media-relationships": kitsu.transform_media_relationships,
    },
    "anilist": {"anime": anilist.transform_anime, "manga": anilist.transform_manga},
    "anilist_v1": {"anime": anilist_v1.transform_anime, "manga": anilist_v1.transform_manga},
    "zou": {
        "projects": zou.transform_projects,
        "persons": zou.transform_persons,
        "entity_types": zou.transform_entity_types,
        "task_types": zou.transform_task_types,
        "task_statuses": zou.transform_task_statuses,
        "entities": zou.transform_entities,
        "tasks": zou.transform_tasks,
        "comments": zou.transform_comments,
        "time_spents": zou.transform_time_spents,
        "events": zou_events.transform_events,
    },
    "nekos": {
        "images": nekos.transform_images,
        "artists": nekos.transform_artists,
        "characters": nekos.transform_characters,
        "categories": nekos.transform_categories,
    },
}


def transform(kind: str, resource: str, payload: Any) -> Batch:
    """Transform one page of ``resource`` fetched from a source of connector ``kind``."""
    try:
        function = TRANSFORMS[kind][resource]
    except KeyError:
        known = ", ".join(f"{k}/{r}" for k, resources in TRANSFORMS.items() for r in resources)
        raise ConfigError(f"no transform for {kind}/{resource}; known: {known}") from None
    with collect_unknown() as unknown, collect_notes() as notes:
        batch = function(payload)
    batch.unknown.extend(pair for pair in unknown if pair not in batch.unknown)
    batch.notes.extend(pair for pair in notes if pair not in batch.notes)
    return batch


__all__ = ["TRANSFORMS", "Transform", "transform"]
