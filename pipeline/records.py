"""The contract between transform and load: what one transformed page hands to the loader.

Transforms (``pipeline.transform``) are pure: ``payload dict -> Batch``. The loader
(``pipeline.load``) writes a ``Batch`` in one transaction, guided by the table specs in
``pipeline.tables``.

Rows are plain dicts keyed by column names of the unified table. References to other unified
rows are given by *natural key* (the target's ``source_id``, under the key named by the
``Ref``); the loader turns them into surrogate ids. ``source`` is set by the loader from the
source name, so transforms need not repeat it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class RawRecord:
    """One record exactly as fetched; lands in ``raw.records``."""

    resource: str
    source_id: str
    payload: dict[str, Any]
    # Top-level keys (or dotted paths, e.g. "meta.expires") left out of the content hash
    # because the API changes them on every call.
    volatile: tuple[str, ...] = ()


@dataclass(slots=True)
class Reject:
    """One record that could not be transformed; lands in ``etl.rejects``."""

    resource: str
    source_id: str | None
    payload: Any
    error: str
    url: str | None = None  # the request URL of the page that held it, when known


@dataclass(slots=True)
class Batch:
    """Everything one page produced. ``rows`` maps a table name (``catalog.media``) to rows."""

    raw: list[RawRecord] = field(default_factory=list)
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    rejects: list[Reject] = field(default_factory=list)
    # (field, value) pairs outside a unified vocabulary, stored as "unknown"; the runner logs them.
    unknown: list[tuple[str, str]] = field(default_factory=list)
    # (field, note) pairs for values a data-quality rule stored as NULL; the runner logs each once.
    notes: list[tuple[str, str]] = field(default_factory=list)
    # Entity table -> owner source ids whose complete set of rows in that table this batch holds
    # (an AniList media's studios, tags, ...): the loader soft-deletes the owner's other live rows.
    # The owner is named by the table's first ``Ref``.
    replaced: dict[str, set[str]] = field(default_factory=dict)

    def add(self, table: str, row: dict[str, Any]) -> None:
        self.rows.setdefault(table, []).append(row)

    def extend(self, other: Batch) -> None:
        self.raw.extend(other.raw)
        self.rejects.extend(other.rejects)
        self.unknown.extend(pair for pair in other.unknown if pair not in self.unknown)
        self.notes.extend(pair for pair in other.notes if pair not in self.notes)
        for table, rows in other.rows.items():
            self.rows.setdefault(table, []).extend(rows)
        for table, owners in other.replaced.items():
            self.replaced.setdefault(table, set()).update(owners)

    def __len__(self) -> int:
        return len(self.raw)
