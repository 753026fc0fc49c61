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


def walk_plain(value: object, prefix: str, depth: int, out: set[str]) -> None:
    """The definition of a record's field paths, written plainly: the memoised walk must match it."""
    if isinstance(value, dict):
        if depth >= drift.MAX_DEPTH:
            return
        for key, item in value.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            out.add(path)
            walk_plain(item, path, depth + 1, out)
    elif isinstance(value, list):
        for item in value[: drift.LIST_ITEMS]:
            if isinstance(item, dict | list):
                walk_plain(item, f"{prefix}[]", depth, out)


def _all_real_records() -> list[object]:
    """Every record of the real recorded Kitsu and AniList responses (data and included)."""
    import json
    from pathlib import Path

    records: list[object] = []
    for path in sorted((Path(__file__).parents[1] / "fixtures" / "real").rglob("*.json")):
        body = json.loads(path.read_text())
        for part in ("data", "included"):
            value = body.get(part) if isinstance(body, dict) else None
            if isinstance(value, list):
                records += value
            elif isinstance(value, dict):
                records.append(value)
    return records


def test_the_shape_memo_finds_exactly_the_plain_walk_on_real_records_and_odd_ones() -> None:
    """The memoised walk is a cache, not a second definition: on every real recorded record and on
    shapes built to trip it (same keys with other value types, nested lists, depth at the edge,
    lists at the top, non-string keys) its paths are the plain walk's, again on a warm memo."""
    odd: list[object] = [
        {"a": 1, "b": {"c": 2}},
        {"a": {"x": 1}, "b": 2},  # same keys, other kinds: another shape
        {"a": [[{"q": 1}], [[{"r": 2}]]], "b": [1, {"s": {"t": {"u": {"v": 1}}}}]},
        {"d1": {"d2": {"d3": {"d4": {"d5": 1}}}}, "l": [{"d2": [{"d3": {"d4": {"d5": 1}}}]}]},
        [{"top": 1}, [{"nested": 2}]],
        {1: {2: "x"}, None: [{"k": 1}] * 5},
        {"many": [{"i": n, f"k{n}": n} for n in range(6)]},  # only the first LIST_ITEMS are read
        "scalar",
        {},
    ]
    records = _all_real_records()
    assert len(records) > 50, "the real fixtures were not found"
    shapes = drift._Shapes()
    for _ in range(2):  # cold, then warm
        for payload in [*records, *odd]:
            plain: set[str] = set()
            walk_plain(payload, "", 0, plain)
            assert drift.field_paths(payload, shapes) == plain, payload


def test_a_full_memo_is_cleared_not_grown() -> None:
    """Free-form maps keyed by ids make a new shape per record: the memo stays bounded."""
    shapes = drift._Shapes()
    for n in range(drift.MEMO_LIMIT + 10):
        assert drift.field_paths({"data": {f"id-{n}": 1}}, shapes) == {"data", f"data.id-{n}"}
    assert shapes.size <= drift.MEMO_LIMIT
    assert sum(len(names) for names in shapes.names.values()) + len(shapes.lists) <= drift.MEMO_LIMIT


def test_tally_counts_are_the_same_when_many_distinct_path_sets_are_folded() -> None:
    """Past SHAPES_KEPT distinct path sets a resource's sets are spread into per-path counts: the
    counts read are those of a plain per-record count either way."""
    from collections import Counter

    payloads = [{"id": n, "a": 1, f"k{n % 400}": {"x": n}} for n in range(1000)]
    tally = drift.FieldTally()
    for start in range(0, len(payloads), 100):
        tally.absorb(RawRecord("zou", str(n), p) for n, p in enumerate(payloads[start : start + 100]))
    expected: Counter[str] = Counter()
    for payload in payloads:
        plain: set[str] = set()
        walk_plain(payload, "", 0, plain)
        expected.update(plain)
    assert tally.records == {"zou": 1000}
    assert tally.paths == {"zou": expected}
    assert tally.paths == {"zou": expected}  # reading twice changes nothing
