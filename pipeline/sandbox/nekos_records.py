"""Writes to the Nekos tables for tests and benchmarks (core's ``RecordOps``: add, update, delete).

Records use the stored field names (``name``, ``artist_id``, ``category_ids``, ``nsfw`` …). An
update rewrites the row at the end of its table, as Postgres writes a new tuple, so an offset scan
running at that moment skips or repeats rows. Deleting an artist, character or category also
drops it from the images that referenced it.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from typing import Any

from pipeline.sandbox.nekos_data import (
    NekosData,
    artist_json,
    category_json,
    character_json,
    image_json,
    new_image,
)

_DEFAULTS: dict[str, dict[str, Any]] = {
    "artists": {"name": "New Artist", "url": "https://www.pixiv.net/en/users/1"},
    "characters": {
        "name": "New Character",
        "description": "",
        "source": None,
        "gender": None,
        "ages": [],
        "birth_date": None,
        "nationality": None,
        "occupations": [],
    },
    "categories": {"name": "new category", "description": "", "nsfw": False, "type": "tag"},
}


class NekosRecords:
    """``RecordOps`` over one ``NekosData``; returns objects shaped as the API shows them."""

    def __init__(self, data: NekosData, now: Callable[[], float]) -> None:
        self.data = data
        self._now = now
        self._rng = random.Random(0)

    def add(self, resource: str, record: dict[str, Any]) -> dict[str, Any]:
        table = self.data.table(resource)
        name = self._name(resource)
        record_id = str(record.get("id") or uuid.uuid4())
        if record_id in table:
            raise ValueError(f"nekos {name} {record_id} exists already; update it instead")
        if name == "images":
            row = new_image(
                self._rng,
                self._now(),
                list(self.data.artists),
                list(self.data.characters),
                list(self.data.categories),
            )
        else:
            row = {**_DEFAULTS[name], "created_at": self._now()}
        self._check(name, row, record)
        row.update({k: v for k, v in record.items() if k != "id"})
        table[record_id] = row
        return self._json(name, record_id)

    def update(self, resource: str, record_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        table = self.data.table(resource)
        name = self._name(resource)
        row = self._find(table, name, record_id)
        self._check(name, row, changes)
        row.update({k: v for k, v in changes.items() if k != "id"})
        del table[record_id]
        table[record_id] = row  # the new tuple goes to the end of the heap
        return self._json(name, record_id)

    def delete(self, resource: str, record_id: str) -> None:
        table = self.data.table(resource)
        name = self._name(resource)
        self._find(table, name, record_id)
        del table[record_id]
        for image in self.data.images.values():
            if name == "artists" and image["artist_id"] == record_id:
                image["artist_id"] = None
            elif name in ("characters", "categories"):
                key = "character_ids" if name == "characters" else "category_ids"
                if record_id in image[key]:
                    image[key] = [i for i in image[key] if i != record_id]

    def _name(self, resource: str) -> str:
        return {
            "image": "images",
            "artist": "artists",
            "character": "characters",
            "category": "categories",
        }.get(resource, resource)

    @staticmethod
    def _find(table: dict[str, dict[str, Any]], name: str, record_id: str) -> dict[str, Any]:
        try:
            return table[record_id]
        except KeyError:
            raise KeyError(f"nekos {name} has no record {record_id!r}") from None

    @staticmethod
    def _check(name: str, row: dict[str, Any], changes: dict[str, Any]) -> None:
        unknown = sorted(set(changes) - set(row) - {"id"})
        if unknown:
            raise ValueError(f"nekos {name} has no field(s) {unknown}; known: {sorted(row)}")

    def _json(self, name: str, record_id: str) -> dict[str, Any]:
        row = self.data.table(name)[record_id]
        if name == "images":
            return image_json(record_id, row, self.data, self._now(), "http://sandbox")
        maker = {"artists": artist_json, "characters": character_json, "categories": category_json}[name]
        return maker(record_id, row, None)
