"""What a load did: rows inserted, updated, unchanged and written per table."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field


@dataclass(slots=True)
class TableChange:
    """What one batch did to one entity table."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0

    def add(self, other: TableChange) -> None:
        self.inserted += other.inserted
        self.updated += other.updated
        self.unchanged += other.unchanged


@dataclass(slots=True)
class LoadCounts:
    """What one batch (or a whole stream, summed) did to the database.

    ``inserted``/``updated``/``unchanged`` are the stream's main tables (``Loader.owned_tables``;
    every entity table when a loader has none), so they add up to the main-table rows the batch
    carried. Rows an include or a nested object brought into other tables (a page of episodes
    brings its anime, a media its studios) and link rows are ``other_rows``: written elsewhere.
    """

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    other_rows: int = 0  # rows inserted or updated in other entity tables, plus link rows written
    raw_written: int = 0
    links_written: int = 0
    rejected: int = 0
    retired: int = 0  # nested rows an owner's re-fetched document no longer holds (``load.children``)
    tables: dict[str, int] = field(default_factory=dict)  # rows written per table
    changes: dict[str, TableChange] = field(default_factory=dict)  # per entity table

    def change(self, table: str) -> TableChange:
        return self.changes.setdefault(table, TableChange())

    def settle(self, main: Collection[str] | None) -> None:
        """Split the per-table changes into the main tables' figures and ``other_rows``."""
        mine, others = TableChange(), 0
        for name, c in self.changes.items():
            if main is None or name in main:
                mine.add(c)
            else:
                others += c.inserted + c.updated
        self.inserted, self.updated, self.unchanged = mine.inserted, mine.updated, mine.unchanged
        self.other_rows = others + self.links_written

    def add(self, other: LoadCounts) -> None:
        self.inserted += other.inserted
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.other_rows += other.other_rows
        self.raw_written += other.raw_written
        self.links_written += other.links_written
        self.rejected += other.rejected
        self.retired += other.retired
        for name, n in other.tables.items():
            self.tables[name] = self.tables.get(name, 0) + n
        for name, c in other.changes.items():
            self.change(name).add(c)
