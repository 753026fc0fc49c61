"""Content hashes of rows and raw payloads, and the JSON encoding they share with the loader."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson

from pipeline.records import RawRecord

HASH_OPTS = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS


def json_default(value: Any) -> Any:
    return str(value)  # Decimal, UUID and friends hash by their text form


def blake(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=16).digest()


def row_hash(values: Sequence[Any]) -> bytes:
    """Stable 16-byte hash of a row's values (key order of nested objects does not matter)."""
    return blake(orjson.dumps(values, option=HASH_OPTS, default=json_default))


def strip_paths(payload: Mapping[str, Any], paths: Iterable[str]) -> dict[str, Any]:
    """A copy of ``payload`` without the dotted ``paths``; only the touched dicts are copied."""
    out = dict(payload)
    for path in paths:
        head, _, rest = path.partition(".")
        if head not in out:
            continue
        if not rest:
            del out[head]
        elif isinstance(out[head], Mapping):
            out[head] = strip_paths(out[head], (rest,))
    return out


def raw_hash(record: RawRecord) -> tuple[bytes, str]:
    """(content hash minus volatile paths, payload JSON text to store)."""
    digest, text = raw_digest(record)
    return digest, text.decode()


def raw_text(record: RawRecord) -> bytes:
    """The payload as raw.records stores it: orjson, sorted keys (the same bytes every run)."""
    return orjson.dumps(record.payload, option=HASH_OPTS, default=json_default)


def raw_digest(record: RawRecord) -> tuple[bytes, bytes]:
    """(content hash, stored text) from one serialisation of the record.

    The hash is of the stored bytes; for a record with volatile paths (Kitsu's ``updatedAt``,
    signed URLs) it is of those bytes with each volatile key cut out of the text (``without_paths``),
    which is byte for byte the serialisation of the payload without them.
    """
    text = raw_text(record)
    if not record.volatile:
        return blake(text), text
    stable = without_paths(text, record.payload, record.volatile)
    if stable is None:  # the text cannot be cut safely: serialise the stable part instead
        stable = orjson.dumps(
            strip_paths(record.payload, record.volatile), option=HASH_OPTS, default=json_default
        )
    return blake(stable), text


def without_paths(text: bytes, payload: Mapping[str, Any], paths: Iterable[str]) -> bytes | None:
    """``text`` (the sorted, compact serialisation of ``payload``) minus the dotted ``paths``.

    Each present path's ``"key":value`` is cut out with the comma that joins it to its neighbour,
    which leaves exactly what serialising the payload without it gives. None when a pair is not
    found exactly once in the text (the same key and value elsewhere): the caller serialises.
    """
    for path in paths:
        *parents, key = path.split(".")
        node: Any = payload
        for part in parents:
            node = node.get(part) if isinstance(node, Mapping) else None
        if not isinstance(node, Mapping) or key not in node:
            continue  # nothing to strip, as strip_paths
        pair = orjson.dumps(key) + b":" + orjson.dumps(node[key], option=HASH_OPTS, default=json_default)
        at = text.find(pair)
        if at < 0 or text.find(pair, at + 1) >= 0:
            return None
        end = at + len(pair)
        if text[at - 1 : at] == b",":
            text = text[: at - 1] + text[end:]
        elif text[end : end + 1] == b",":
            text = text[:at] + text[end + 1 :]
        else:
            text = text[:at] + text[end:]
    return text


def json_text(value: Any) -> str:
    return orjson.dumps(value, default=json_default).decode()
