"""Nekos API v1 envelopes → catalog rows: images (+ character and tag links), artists, characters, tags.

Every function takes one page as fetched, ``{"success": true, "data": [...], "meta": {...}}``
(a single-object ``data`` is a page of one). Nekos categories are image tags (``catalog.tags``);
Nekos characters join the other sources' characters in ``catalog.characters``. An image's signed
``url`` and its ``meta.expires`` change on every call: they are volatile in ``raw`` (``RawRecord.volatile``)
and in ``catalog.images`` (``url``/``url_expires_at``, see ``pipeline.models.images``), so an
unchanged image is never rewritten. Nekos has no last-modified time. Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from pipeline.errors import ContractError, SkippableRecordError
from pipeline.records import Batch
from pipeline.transform.common import (
    PageBuilder,
    Row,
    Rows,
    integer,
    plain_text,
    require_id,
    slugify,
    text,
    timestamp,
)
from pipeline.transform.resources import ResourceTransform

IMAGE_VOLATILE = ("url", "meta.expires")
RATINGS = ("sfw", "questionable", "nsfw")
ORIENTATIONS = ("landscape", "portrait", "square")


def page_items(payload: Any, resource: str) -> list[Any]:
    """The records of one envelope; an error envelope or another shape is a contract break."""
    if not isinstance(payload, Mapping) or payload.get("success") is False:
        message = payload.get("message") if isinstance(payload, Mapping) else type(payload).__name__
        raise ContractError(
            f"nekos {resource}: expected a {{success: true, data: ...}} envelope, got {message!r}; "
            "check the base URL (v1) and the token's scopes"
        )
    data = payload.get("data")
    if isinstance(data, list):
        return data
    if isinstance(data, Mapping):
        return [data]
    raise ContractError(
        f"nekos {resource}: envelope without a data list; check the API version (v1 expected)"
    )


def _object(value: Any, field: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return value
    raise SkippableRecordError(f"{field} = {value!r}: expected an object")


def _bool(value: Any, field: str) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise SkippableRecordError(f"{field} = {value!r}: expected true, false or null")


def _ref_id(value: Any, field: str) -> str | None:
    """An embedded object's id, or the bare id string older docs show (``artist: "<uuid>"``)."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        return require_id(value.get("id"), f"{field}.id")
    return require_id(value, field)


def _ref_ids(value: Any, field: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise SkippableRecordError(f"{field} = {value!r}: expected a list")
    return sorted({_ref_id(item, field) or "" for item in value} - {""})


def _rating(value: Any) -> str | None:
    """``sfw``/``questionable``/``nsfw``; the boolean of early v1 servers maps to sfw/nsfw."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "nsfw" if value else "sfw"
    if isinstance(value, str) and value.strip().lower() in RATINGS:
        return value.strip().lower()
    raise SkippableRecordError(f"nsfw = {value!r}: expected one of {', '.join(RATINGS)}")


def _orientation(value: Any, width: int | None, height: int | None) -> str | None:
    given = text(value, "meta.dimens.orientation")
    if given is not None:
        if given.lower() not in ORIENTATIONS:
            raise SkippableRecordError(
                f"meta.dimens.orientation = {value!r}: expected {', '.join(ORIENTATIONS)}"
            )
        return given.lower()
    if width is None or height is None:
        return None
    return "square" if width == height else "landscape" if width > height else "portrait"


def _aspect_ratio(value: Any) -> str | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return text(value, "meta.dimens.aspectRatio")


def _size(value: Any, field: str) -> int | None:
    number = integer(value, field)
    if number is not None and number < 0:
        raise SkippableRecordError(f"{field} = {value!r}: expected a size >= 0")
    return number


def _image_rows(rec: Mapping[str, Any], source_id: str) -> Rows:
    meta = _object(rec.get("meta"), "meta")
    dimens = _object(meta.get("dimens"), "meta.dimens")
    source = _object(rec.get("source"), "source")
    width = _size(dimens.get("width"), "meta.dimens.width")
    height = _size(dimens.get("height"), "meta.dimens.height")
    image: Row = {
        "source_id": source_id,
        "url": text(rec.get("url"), "url"),
        "url_expires_at": timestamp(meta.get("expires"), "meta.expires"),
        "rating": _rating(rec.get("nsfw")),
        "original": _bool(rec.get("original"), "original"),
        "source_name": text(source.get("name"), "source.name"),
        "source_url": text(source.get("url"), "source.url"),
        "width": width,
        "height": height,
        "aspect_ratio": _aspect_ratio(dimens.get("aspectRatio")),
        "orientation": _orientation(dimens.get("orientation"), width, height),
        "mimetype": text(meta.get("mimetype"), "meta.mimetype"),
        "size_bytes": _size(meta.get("size"), "meta.size"),
        "color": text(meta.get("color"), "meta.color"),
        "etag": text(meta.get("eTag"), "meta.eTag"),
        "artist_source_id": _ref_id(rec.get("artist"), "artist"),
        "source_created_at": timestamp(rec.get("createdAt"), "createdAt"),
        "source_updated_at": None,
    }
    characters = _ref_ids(rec.get("characters"), "characters")
    tags = _ref_ids(rec.get("categories"), "categories")
    return [
        ("catalog.images", image),
        *(
            ("catalog.image_characters", {"image_source_id": source_id, "character_source_id": c})
            for c in characters
        ),
        *(("catalog.image_tags", {"image_source_id": source_id, "tag_source_id": t}) for t in tags),
    ]


def _artist_rows(rec: Mapping[str, Any], source_id: str) -> Rows:
    name = text(rec.get("name"), "name")
    if name is None:
        raise SkippableRecordError("name is missing or empty: an artist needs a name")
    return [("catalog.artists", {"source_id": source_id, "name": name, "url": text(rec.get("url"), "url")})]


def _character_rows(rec: Mapping[str, Any], source_id: str) -> Rows:
    name = text(rec.get("name"), "name")
    if name is None:
        raise SkippableRecordError("name is missing or empty: a character needs a name")
    row: Row = {
        "source_id": source_id,
        "name": name,
        "name_native": None,
        "other_names": None,
        "description": plain_text(rec.get("description"), "description"),
        "image_url": None,
        "gender": text(rec.get("gender"), "gender"),
        "ages": _numbers(rec.get("ages"), "ages"),
        "birth_date": text(rec.get("birth_date"), "birth_date"),
        "nationality": text(rec.get("nationality"), "nationality"),
        "occupations": _strings(rec.get("occupations"), "occupations"),
        "origin": text(rec.get("source"), "source"),
    }
    return [("catalog.characters", row)]


def _numbers(value: Any, field: str) -> list[float] | None:
    """A JSON array of numbers, or None; anything else is a bad record."""
    if value is None:
        return None
    if not isinstance(value, list) or not all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in value
    ):
        raise SkippableRecordError(f"{field} = {value!r}: expected a list of numbers")
    return list(value) or None


def _strings(value: Any, field: str) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise SkippableRecordError(f"{field} = {value!r}: expected a list of strings")
    return [v.strip() for v in value if v.strip()] or None


def _category_rows(rec: Mapping[str, Any], source_id: str) -> Rows:
    name = text(rec.get("name"), "name")
    if name is None:
        raise SkippableRecordError("name is missing or empty: a category needs a name")
    row: Row = {
        "source_id": source_id,
        "name": name,
        "slug": slugify(name) or source_id,
        "description": plain_text(rec.get("description"), "description"),
        "is_nsfw": _bool(rec.get("nsfw"), "nsfw"),
        "tag_type": text(rec.get("type"), "type"),
        "source_created_at": timestamp(rec.get("createdAt"), "createdAt"),
    }
    return [("catalog.tags", row)]


Builder = Callable[[Mapping[str, Any], str], Rows]


def _transform(payload: Any, resource: str, build: Builder, volatile: tuple[str, ...] = ()) -> Batch:
    """One envelope → Batch; a bad record becomes a Reject and the rest of the page still loads."""
    page = PageBuilder()
    for record in page_items(payload, resource):
        if not isinstance(record, Mapping):
            page.reject(resource, None, record, f"nekos {resource}: record is not a JSON object")
            continue
        try:
            source_id = require_id(record.get("id"), "id")
        except SkippableRecordError as exc:
            page.reject(resource, None, record, f"nekos {resource}: {exc}")
            continue
        page.record(resource, dict(record), source_id, partial(build, record, source_id), volatile=volatile)
    return page.batch


def transform_images(payload: Any) -> Batch:
    """``/image`` pages → ``catalog.images`` + ``image_characters`` + ``image_tags`` (natural keys)."""
    return _transform(payload, "images", _image_rows, IMAGE_VOLATILE)


def transform_artists(payload: Any) -> Batch:
    """``/artist`` pages → ``catalog.artists`` (the ``images`` count is not stored: it is derivable)."""
    return _transform(payload, "artists", _artist_rows)


def transform_characters(payload: Any) -> Batch:
    """``/character`` pages → ``catalog.characters``, shared with the other sources' characters."""
    return _transform(payload, "characters", _character_rows)


def transform_categories(payload: Any) -> Batch:
    """``/category`` pages → ``catalog.tags`` (Nekos categories are image tags)."""
    return _transform(payload, "categories", _category_rows)


def _page(payloads: list[dict[str, Any]]) -> Any:
    return {"success": True, "data": payloads, "meta": {"pagination": {"total": len(payloads)}}}


TRANSFORMS: dict[str, ResourceTransform] = {
    "images": ResourceTransform(transform_images, _page),
    "artists": ResourceTransform(transform_artists, _page),
    "characters": ResourceTransform(transform_characters, _page),
    "categories": ResourceTransform(transform_categories, _page),
}
