"""The generated world: deterministic, sized, one world across sources, quirks planted on purpose."""

from __future__ import annotations

from collections import Counter

import pytest

from pipeline.sandbox.core import SandboxClock
from pipeline.sandbox.world import WorldRecords, generate_world


def test_same_seed_same_world_other_seed_other_world() -> None:
    """A size and a seed always give the same works; another seed gives different ones."""
    first = generate_world("small", 7, SandboxClock())
    again = generate_world("small", 7, SandboxClock())
    other = generate_world("small", 8, SandboxClock())
    assert [(w.kitsu_id, w.anilist_id, w.romaji) for w in first.works] == [
        (w.kitsu_id, w.anilist_id, w.romaji) for w in again.works
    ]
    assert [w.romaji for w in first.works] != [w.romaji for w in other.works]


def test_sizes() -> None:
    """small has a few hundred works, medium a few thousand (past AniList's 5,000-item depth)."""
    assert 300 <= len(generate_world("small", 1, SandboxClock()).works) <= 500
    assert 5000 < len(generate_world("medium", 1, SandboxClock()).works) <= 8000


@pytest.mark.slow
def test_large_has_over_100k_records() -> None:
    """large is a benchmark catalogue of at least 100k works."""
    assert len(generate_world("large", 1, SandboxClock()).works) >= 100_000


def test_quirks_are_present_in_the_medium_world() -> None:
    """Unmapped, source-only, ambiguous, R18, untitled and fuzzy-dated works all exist."""
    works = generate_world("medium", 3, SandboxClock()).works
    assert any(w.kitsu_id is None and w.anilist_id is not None for w in works)
    assert any(w.anilist_id is None and w.kitsu_id is not None for w in works)
    assert any(w.kitsu_id and w.anilist_id and not w.map_anilist and w.map_mal for w in works)
    assert any(w.kitsu_id and not w.map_anilist and not w.map_mal for w in works)
    assert any(w.adult for w in works)
    assert {w.english_style for w in works if w.english is None} == {"missing", "null", "empty"}
    assert any(w.start is not None and w.start[1] is not None and w.start[2] is None for w in works)
    assert any(w.start is not None and w.start[1] is None for w in works)
    assert any(w.status is None for w in works)
    assert any(w.legacy_v1 for w in works)


def test_ambiguous_titles_are_distinct_works() -> None:
    """Works sharing a romaji title keep their own ids, so nothing may merge them by title."""
    works = generate_world("medium", 3, SandboxClock()).works
    by_title = Counter(w.romaji for w in works)
    shared = [w for w in works if by_title[w.romaji] > 1]
    assert shared
    ids = [(w.kind, w.kitsu_id) for w in shared if w.kitsu_id is not None]
    assert len(ids) == len(set(ids))


def test_characters_are_shared_with_other_simulators() -> None:
    """Every cast member exists once and its name is exposed for other simulators to reuse."""
    world = generate_world("small", 1, SandboxClock())
    names = world.character_names()
    assert len(names) == len(world.characters) > 100
    cast = {index for w in world.works for index, _ in w.characters}
    assert cast <= set(range(len(world.characters)))


def test_records_add_update_delete_stamp_the_sandbox_clock() -> None:
    """Writes through WorldRecords stamp modified_at with sandbox time and move the version."""
    clock = SandboxClock(real=lambda: 2_000_000_000.0)
    world = generate_world("small", 1, clock)
    records = WorldRecords(world, "anilist")
    added = records.add("anime", {"romaji": "Sandbox Original", "english": None})
    assert added["title"] == "Sandbox Original"
    assert added["modified_at"] == 2_000_000_000.0
    clock.advance(60)
    version = world.version
    updated = records.update("anime", str(added["anilist_id"]), {"episodes": 13})
    assert updated["modified_at"] == 2_000_000_060.0
    assert world.version > version
    records.delete("anime", str(added["anilist_id"]))
    assert world.by_anilist(added["anilist_id"]) is None
    with pytest.raises(ValueError, match="unknown or read-only"):
        records.update("anime", "1", {"kitsu_id": 5})
