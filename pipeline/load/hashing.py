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
    """(content hash, stored text) from one serialisation: the hash is of exactly the stored bytes.

    A record with volatile paths (signed URLs) is hashed without them, so only its stable part is
    serialised a second time; every other record is serialised once.
    """
    text = raw_text(record)
    if record.volatile:
        stable = strip_paths(record.payload, record.volatile)
        return blake(orjson.dumps(stable, option=HASH_OPTS, default=json_default)), text
    return blake(text), text


def json_text(value: Any) -> str:
    return orjson.dumps(value, default=json_default).decode()
