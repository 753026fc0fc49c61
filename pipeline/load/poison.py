"""Poison records: what the database or the JSON encoder would refuse, isolated before a batch loads.

PostgreSQL's ``text`` and ``jsonb`` cannot hold the NUL character (``\\u0000``), and orjson
refuses to encode nesting deeper than 254 levels (the loader hashes and COPYs payloads with it).
One such record would fail its whole batch on every run, so ``screen`` takes it out of the page
first: its raw record and every unified row keyed by its id (and any other row of the page that
carries the same poison, e.g. an embedded artist) leave the batch, and a ``Reject`` naming source,
resource, id and the page URL takes their place. The rest of the page loads.

NUL characters are **rejected**, not stripped: stripping would store a value the source never had
and hash it as if it had. The reject keeps the payload as text (``etl.rejects.payload_text``, NUL
written as the six characters ``\\u0000``) since jsonb cannot hold it.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

from pipeline import tables
from pipeline.load.hashing import json_default
from pipeline.records import Batch, Reject
from pipeline.tables import LinkTable

NUL_ESCAPE = b"\\u0000"


def refusal(value: Any) -> str | None:
    """Why the database or the encoder would refuse ``value``, or None when it is fine."""
    try:
        encoded = orjson.dumps(value, default=json_default)
    except (orjson.JSONEncodeError, RecursionError) as exc:
        return f"cannot be encoded as JSON ({exc}); nesting deeper than 254 levels is refused"
    if NUL_ESCAPE in encoded:
        return "holds a NUL character (\\u0000), which PostgreSQL text and jsonb cannot store"
    return None


def screen(batch: Batch, source: str, url: str | None) -> Batch:
    """``batch`` without its poison records (and their rows), each turned into a ``Reject``."""
    poison: dict[tuple[str, str], str] = {}
    for record in batch.raw:
        why = refusal(record.payload)
        if why is not None:
            poison[(record.resource, str(record.source_id))] = why
    if not poison:
        return batch
    ids = {source_id for _, source_id in poison}
    kept = [r for r in batch.raw if (r.resource, str(r.source_id)) not in poison]
    rejects = list(batch.rejects)
    for record in batch.raw:
        why = poison.get((record.resource, str(record.source_id)))
        if why is not None:
            where = f" at {url}" if url else ""
            rejects.append(
                Reject(
                    record.resource,
                    str(record.source_id),
                    record.payload,
                    f"{source}/{record.resource} id {record.source_id}{where}: the record {why}; "
                    "it was left out of the load (the rest of its page loaded)",
                    url=url,
                )
            )
    rows: dict[str, list[dict[str, Any]]] = {}
    for name, table_rows in batch.rows.items():
        key = _key_column(name)
        rows[name] = [
            row
            for row in table_rows
            if (key is None or str(row.get(key)) not in ids) and refusal(row) is None
        ]
    return Batch(raw=kept, rows=rows, rejects=rejects, unknown=batch.unknown)


def _key_column(table: str) -> str | None:
    """The column holding the owning record's id: ``source_id``, or a link table's owner key."""
    try:
        spec = tables.spec(table)
    except KeyError:
        return None
    return spec.owner.key if isinstance(spec, LinkTable) else "source_id"


def reject_payload(payload: Any) -> tuple[str | None, str | None]:
    """(jsonb text, plain text) for a reject's payload: jsonb when it can hold it, else text."""
    why = refusal(payload)
    if why is None:
        return orjson.dumps(payload, default=json_default).decode(), None
    try:
        return None, orjson.dumps(payload, default=json_default).decode()  # NUL escaped as \u0000
    except (orjson.JSONEncodeError, RecursionError):
        try:
            return None, json.dumps(payload, default=str)  # the stdlib encoder goes deeper
        except (RecursionError, ValueError, TypeError):
            return None, repr(payload)[:1_000_000]
