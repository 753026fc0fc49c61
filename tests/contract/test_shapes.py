"""The shape comparer used by the sandbox contract tests."""

from __future__ import annotations

from tests.contract.shapes import shape_diff


def test_identical_shapes_have_no_difference() -> None:
    """Same keys, same JSON types, different values: no difference."""
    assert (
        shape_diff({"a": 1, "b": ["x"], "c": {"d": True}}, {"a": 2.5, "b": ["y", "z"], "c": {"d": False}})
        == []
    )


def test_missing_extra_and_retyped_keys_are_reported() -> None:
    """A missing key, an extra key and a string where a number was are each named with their path."""
    problems = shape_diff({"a": 1, "b": {"c": "s"}}, {"a": "1", "b": {"d": "s"}})
    assert sorted(problems) == ["$.a: expected number, got string", "$.b.c: missing", "$.b.d: unexpected"]


def test_null_matches_anything_and_empty_lists_match_lists() -> None:
    """null on either side and empty arrays never count as differences."""
    assert (
        shape_diff({"a": None, "b": [], "c": {"x": 1}}, {"a": {"deep": 1}, "b": [{"k": 1}], "c": None}) == []
    )


def test_map_objects_compare_values_only() -> None:
    """Objects keyed by data (locales) compare their values, not their keys."""
    maps = frozenset({"titles"})
    assert shape_diff({"titles": {"en": "A"}}, {"titles": {"ja_jp": "B"}}, maps=maps) == []
    assert shape_diff({"titles": {"en": "A"}}, {"titles": {"ja_jp": 1}}, maps=maps) == [
        "$.titles.*: expected string, got number"
    ]
