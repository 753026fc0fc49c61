"""The Nekos stream's bookkeeping: dedupe by id, suspect pages next to duplicates, envelopes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pipeline.errors import ConfigError
from pipeline.settings import parse_settings
from pipeline.sources.nekos import NekosStream, build_stream
from pipeline.transform import transform, wrap


def stream(resource: str = "images") -> NekosStream:
    raw = {"sources": {"nekos": {"kind": "nekos", "base_url": "http://127.0.0.1:9/api"}}}
    source = parse_settings(raw, Path("t.toml"), {}).sources["nekos"]
    return build_stream(source, resource, client=None)  # type: ignore[arg-type]


def envelope(*ids: str) -> dict[str, Any]:
    return {
        "success": True,
        "data": [{"id": i, "name": i} for i in ids],
        "meta": {"pagination": {"total": 9}},
    }


def test_absorb_keeps_first_sightings_and_marks_pages_around_a_duplicate() -> None:
    """A row seen on two pages is kept once; both pages and their neighbours become suspects."""
    s = stream()
    seen: set[str] = set()
    holders: dict[str, int] = {}
    suspects: set[int] = set()
    assert [r["id"] for r in s._absorb(0, envelope("a", "b", "c"), seen, holders, suspects)] == [
        "a",
        "b",
        "c",
    ]
    assert [r["id"] for r in s._absorb(1, envelope("c", "e", "f"), seen, holders, suspects)] == ["e", "f"]
    assert suspects == {-1, 0, 1, 2}
    assert seen == {"a", "b", "c", "e", "f"}


def test_wrap_records_builds_an_envelope_the_transform_reads() -> None:
    """Replay wraps raw payloads into a v1 envelope that transforms back into the same records."""
    payloads = [{"id": "3b6a1c9e-0000-4000-8000-000000000001", "name": "Ann"}]
    batch = transform("nekos", "artists", wrap("nekos", "artists", payloads))
    assert [r.source_id for r in batch.raw] == ["3b6a1c9e-0000-4000-8000-000000000001"]
    assert batch.rows["catalog.artists"][0]["name"] == "Ann"


def test_unknown_resource_is_a_config_error() -> None:
    """Asking for a listing Nekos v1 does not have names the ones it has."""
    with pytest.raises(ConfigError, match="images"):
        stream("tags")
