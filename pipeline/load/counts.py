"""What a load did: rows inserted, updated, unchanged and written per table."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class LoadCounts:
    """What one batch (or a whole stream, summed) did to the database."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    raw_written: int = 0
    links_written: int = 0
    rejected: int = 0
    tables: dict[str, int] = field(default_factory=dict)  # rows written per table

    def add(self, other: LoadCounts) -> None:
        self.inserted += other.inserted
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.raw_written += other.raw_written
        self.links_written += other.links_written
        self.rejected += other.rejected
        for name, n in other.tables.items():
            self.tables[name] = self.tables.get(name, 0) + n
