"""Compare the shape of two JSON documents: same keys, same JSON types, same nesting.

``null`` on either side is compatible with any type (a real recording's null says nothing about the
type the field has elsewhere); an empty list matches any list; ints and floats are both numbers.
Keys named in ``maps`` hold data-keyed objects (titles by locale, counts by score): their keys may
differ, only their values are compared.
"""

from __future__ import annotations

from typing import Any


def json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "null"


def shape_diff(expected: Any, actual: Any, path: str = "$", maps: frozenset[str] = frozenset()) -> list[str]:
    """Every place where ``actual`` differs in shape from ``expected``, as readable lines."""
    if expected is None or actual is None:
        return []
    kind, got = json_type(expected), json_type(actual)
    if kind != got:
        return [f"{path}: expected {kind}, got {got}"]
    if kind == "array":
        if not expected or not actual:
            return []
        problems: list[str] = []
        for item in actual:
            problems += shape_diff(expected[0], item, f"{path}[]", maps)
        for item in expected[1:]:
            problems += shape_diff(item, actual[0], f"{path}[]", maps)
        return sorted(set(problems))
    if kind != "object":
        return []
    if path.rsplit(".", 1)[-1] in maps:
        values = [v for v in expected.values() if v is not None]
        return [
            p
            for v in actual.values()
            for p in (shape_diff(values[0], v, f"{path}.*", maps) if values else [])
        ]
    problems = [f"{path}.{key}: missing" for key in expected if key not in actual]
    problems += [f"{path}.{key}: unexpected" for key in actual if key not in expected]
    for key in expected.keys() & actual.keys():
        problems += shape_diff(expected[key], actual[key], f"{path}.{key}", maps)
    return problems
