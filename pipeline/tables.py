"""Specs of the unified tables: what the generic loader needs to upsert each one.

Two shapes:

* ``EntityTable`` — a row per (source, source_id), upserted, hashed, soft-deletable. Every such
  table has the common columns ``id`` (identity), ``source``, ``source_id``,
  ``source_updated_at``, ``content_hash``, ``synced_at``, ``deleted_at``, ``run_id``; ``columns``
  lists the others.
* ``LinkTable`` — child rows of an owner (``media_titles`` of a media, ``task_assignees`` of a
  task). When an owner appears in a batch its links are *replaced* by the batch's set.

A ``Ref`` fills a surrogate foreign key from a natural key in the row: the row carries
``row[ref.key]`` = the target's ``source_id`` (same ``source``); the loader writes the target's
``id`` into ``ref.column``, or NULL when the target is not loaded yet (``load.resolve_refs``
fills it later). Tables are registered in dependency order: parents first. The built-in ones are
declared by ``pipeline.models`` (``SPECS``) and read on first use; another connector passes its
own to ``register``.
"""

from __future__ import annotations

from dataclasses import dataclass

COMMON_COLUMNS = (
    "source",
    "source_id",
    "source_updated_at",
    "content_hash",
    "synced_at",
    "deleted_at",
    "run_id",
)


@dataclass(frozen=True, slots=True)
class Ref:
    column: str  # surrogate FK column in this table, e.g. "media_id"
    table: str  # target entity table, e.g. "catalog.media"
    key: str  # key in the transformed row holding the target's source_id, e.g. "media_source_id"
    keep_natural: bool = True  # the natural key is also stored in a column named ``key``


@dataclass(frozen=True, slots=True)
class EntityTable:
    name: str
    columns: tuple[str, ...]
    refs: tuple[Ref, ...] = ()
    volatile: tuple[str, ...] = ()  # columns left out of content_hash
    json_columns: tuple[str, ...] = ()  # jsonb columns (values are dicts/lists)


@dataclass(frozen=True, slots=True)
class LinkTable:
    name: str
    owner: Ref  # links are replaced per owner present in the batch
    columns: tuple[str, ...]
    refs: tuple[Ref, ...] = ()
    json_columns: tuple[str, ...] = ()


TableSpec = EntityTable | LinkTable

_REGISTRY: dict[str, TableSpec] = {}
_BUILTINS_LOADED = False


def _with_builtins() -> dict[str, TableSpec]:
    """The registry, with the built-in unified tables (``pipeline.models.SPECS``: the catalogue,
    images and production schemas) first, read the first time any spec is asked for."""
    global _BUILTINS_LOADED
    if not _BUILTINS_LOADED:
        from pipeline.models import SPECS  # the models import this module: read them lazily

        others = dict(_REGISTRY)
        _REGISTRY.clear()
        _REGISTRY.update({spec.name: spec for spec in SPECS})
        _REGISTRY.update(others)
        _BUILTINS_LOADED = True
    return _REGISTRY


def register(*specs: TableSpec) -> None:
    """Add specs in dependency order (parents before children): a plugin's own tables, after the
    built-in ones."""
    for spec in specs:
        _REGISTRY[spec.name] = spec


def unregister(*names: str) -> None:
    """Drop specs (a plugin or a test that registered its own tables and is done with them)."""
    for name in names:
        _with_builtins().pop(name, None)


def spec(name: str) -> TableSpec:
    try:
        return _with_builtins()[name]
    except KeyError:
        raise KeyError(
            f"no table spec registered for {name!r}; register it with pipeline.tables.register "
            "(the built-in ones live in pipeline/models/)"
        ) from None


def registered() -> list[TableSpec]:
    """All specs, parents first."""
    return list(_with_builtins().values())
