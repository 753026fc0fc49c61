"""Schema drift: field paths of a record, tallies per resource, the report's wording."""

from __future__ import annotations

from pipeline import drift
from pipeline.records import RawRecord


def test_field_paths_are_dotted_keys_with_list_items_and_a_depth_limit() -> None:
    """Keys nest with dots, list items under ``[]``; scalars in lists add nothing; depth is bounded."""
    payload = {
        "id": "1",
        "attributes": {"titles": {"en": "A", "ja_jp": None}, "tags": ["x", "y"]},
        "relationships": {"genres": {"data": [{"type": "genres", "id": "3"}]}},
        "deep": {"a": {"b": {"c": {"d": {"e": 1}}}}},
    }
    assert drift.field_paths(payload) == {
        "id",
        "attributes",
        "attributes.titles",
        "attributes.titles.en",
        "attributes.titles.ja_jp",
        "attributes.tags",
        "relationships",
        "relationships.genres",
        "relationships.genres.data",
        "relationships.genres.data[].type",
        "relationships.genres.data[].id",
        "deep",
        "deep.a",
        "deep.a.b",
        "deep.a.b.c",  # four keys deep, no further
    }


def test_tally_counts_records_per_resource_and_path() -> None:
    tally = drift.FieldTally()
    tally.absorb([RawRecord("anime", "1", {"a": 1, "b": 2}), RawRecord("anime", "2", {"a": 1})])
    tally.absorb([RawRecord("mappings", "9", {"c": 1})])
    assert tally.records == {"anime": 2, "mappings": 1}
    assert tally.paths["anime"] == {"a": 2, "b": 1}
    assert tally.paths["mappings"] == {"c": 1}


def test_report_is_falsy_when_nothing_changed_and_describes_both_kinds() -> None:
    assert not drift.DriftReport()
    report = drift.DriftReport(new=(("anime", "attributes.x"),), vanished=(("anime", "attributes.y"),))
    assert report
    assert report.describe() == "1 new field(s): anime:attributes.x; 1 vanished field(s): anime:attributes.y"
    many = drift.DriftReport(new=tuple(("anime", f"p{i}") for i in range(12)))
    assert many.describe(limit=2) == "12 new field(s): anime:p0, anime:p1 (+10 more)"
