"""Raw content hashes from one serialisation: cutting volatile keys out of the stored text gives the
same hash as serialising the payload without them, wherever the key sits and whatever it holds."""

from __future__ import annotations

import random
from typing import Any

import orjson

from pipeline.load.hashing import HASH_OPTS, blake, raw_digest, strip_paths, without_paths
from pipeline.records import RawRecord


def reference(payload: dict[str, Any], volatile: tuple[str, ...]) -> bytes:
    """The hash's definition: the sorted serialisation of the payload without its volatile paths."""
    return blake(orjson.dumps(strip_paths(payload, volatile), option=HASH_OPTS))


def test_cut_matches_serialising_the_stable_part() -> None:
    volatile = ("attributes.updatedAt", "links.expires", "meta")
    cases = [
        {"attributes": {"updatedAt": "2024-01-01T00:00:00.000Z"}},  # the only key
        {"attributes": {"aa": 1, "updatedAt": "x", "zz": [1, {"k": None}]}},  # in the middle
        {"attributes": {"updatedAt": "x", "zz": 2}, "id": "1"},  # first
        {"attributes": {"a": 1, "updatedAt": {"nested": ["v", 1.5]}}},  # last, an object value
        {"links": {"expires": 5, "self": 'ショー\\n"q"'}, "meta": {"a": [1, 2]}, "z": True},
        {"attributes": "not an object", "links": [], "id": 3},  # paths that lead nowhere
        {"id": 4},
    ]
    for payload in cases:
        record = RawRecord("r", "1", payload, volatile)
        assert raw_digest(record)[0] == reference(payload, volatile), payload


def test_random_payloads() -> None:
    rng = random.Random(7)

    def value(depth: int) -> Any:
        pick = rng.randrange(6 if depth < 3 else 4)
        if pick == 0:
            return rng.randrange(-5, 5)
        if pick == 1:
            return rng.choice(["x", "updatedAt", "", 'é\\"', None, True])
        if pick == 2:
            return rng.random()
        if pick == 3:
            return None
        if pick == 4:
            return [value(depth + 1) for _ in range(rng.randrange(3))]
        return {rng.choice("abuz"): value(depth + 1) for _ in range(rng.randrange(4))}

    for _ in range(500):
        payload = {k: value(1) for k in rng.sample(["a", "attributes", "u", "z"], rng.randrange(1, 4))}
        if rng.random() < 0.7:
            payload.setdefault("attributes", {})
            if isinstance(payload["attributes"], dict):
                payload["attributes"]["updatedAt"] = rng.choice(["t1", "t2", 0, None, {"a": 1}])
        volatile = ("attributes.updatedAt", "u")
        assert raw_digest(RawRecord("r", "1", payload, volatile))[0] == reference(payload, volatile)


def test_ambiguous_cut_falls_back() -> None:
    """The same key and value twice in the text: no cut (None), the stable part is serialised."""
    payload = {"attributes": {"updatedAt": "t"}, "copy": {"updatedAt": "t"}}
    text = orjson.dumps(payload, option=HASH_OPTS)
    assert without_paths(text, payload, ("attributes.updatedAt",)) is None
    record = RawRecord("r", "1", payload, ("attributes.updatedAt",))
    assert raw_digest(record)[0] == reference(payload, ("attributes.updatedAt",))


def test_volatile_change_keeps_the_hash_and_the_text_is_stored_whole() -> None:
    one = {"attributes": {"title": "A", "updatedAt": "2024-01-01"}}
    two = {"attributes": {"title": "A", "updatedAt": "2025-06-01"}}
    volatile = ("attributes.updatedAt",)
    d1, t1 = raw_digest(RawRecord("r", "1", one, volatile))
    d2, t2 = raw_digest(RawRecord("r", "1", two, volatile))
    assert d1 == d2
    assert t1 != t2
    assert orjson.loads(t2) == two
