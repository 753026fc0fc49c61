"""The image tables of ``catalog`` (sql/003_images.sql) as SQLModel classes, and their load specs.

Nekos images, artists, tags (Nekos categories) and the image ↔ character / image ↔ tag links.
Nekos characters load into ``catalog.characters`` (``pipeline.models.catalog``). The signed image
``url`` and its expiry change on every call, so they are volatile: left out of ``content_hash``.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any, ClassVar, Literal

from sqlalchemy import BigInteger, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from pipeline.models.catalog import (
    CHARACTER_REF,
    SCHEMA,
    EntityRow,
    LinkRow,
    TimestampTZ,
    entity_spec,
    link_spec,
)
from pipeline.tables import EntityTable, Ref

VOLATILE_IMAGE_COLUMNS = ("url", "url_expires_at")


def _text(*, nullable: bool = True) -> Any:
    return Field(default=None, sa_type=Text, nullable=nullable)


def _fk(target: str, ondelete: Literal["CASCADE", "SET NULL"]) -> Any:
    return Field(default=None, sa_type=BigInteger, foreign_key=target, ondelete=ondelete)


def _unique_source_id() -> tuple[Any, ...]:
    return (UniqueConstraint("source", "source_id"), {"schema": SCHEMA})


class Artist(EntityRow, table=True):
    __tablename__: ClassVar[str] = "artists"
    __table_args__ = _unique_source_id()

    name: str = _text(nullable=False)
    url: str | None = _text()


class Tag(EntityRow, table=True):
    __tablename__: ClassVar[str] = "tags"
    __table_args__ = _unique_source_id()

    name: str = _text(nullable=False)
    slug: str = _text(nullable=False)
    description: str | None = _text()
    is_nsfw: bool | None = None
    tag_type: str | None = _text()
    source_created_at: datetime | None = Field(default=None, sa_type=TimestampTZ)


class Image(EntityRow, table=True):
    __tablename__: ClassVar[str] = "images"
    __table_args__ = _unique_source_id()

    url: str | None = _text()
    url_expires_at: datetime | None = Field(default=None, sa_type=TimestampTZ)
    rating: str | None = _text()
    original: bool | None = None
    source_name: str | None = _text()
    source_url: str | None = _text()
    width: int | None = None
    height: int | None = None
    aspect_ratio: str | None = _text()
    orientation: str | None = _text()
    mimetype: str | None = _text()
    size_bytes: int | None = Field(default=None, sa_type=BigInteger)
    color: str | None = _text()
    etag: str | None = _text()
    artist_id: int | None = _fk("catalog.artists.id", "SET NULL")
    artist_source_id: str | None = _text()
    source_created_at: datetime | None = Field(default=None, sa_type=TimestampTZ)


class ImageCharacter(LinkRow, table=True):
    __tablename__: ClassVar[str] = "image_characters"
    __table_args__ = (
        UniqueConstraint("source", "image_source_id", "character_source_id"),
        {"schema": SCHEMA},
    )

    image_id: int | None = _fk("catalog.images.id", "CASCADE")
    image_source_id: str = _text(nullable=False)
    character_id: int | None = _fk("catalog.characters.id", "CASCADE")
    character_source_id: str = _text(nullable=False)


class ImageTag(LinkRow, table=True):
    __tablename__: ClassVar[str] = "image_tags"
    __table_args__ = (UniqueConstraint("source", "image_source_id", "tag_source_id"), {"schema": SCHEMA})

    image_id: int | None = _fk("catalog.images.id", "CASCADE")
    image_source_id: str = _text(nullable=False)
    tag_id: int | None = _fk("catalog.tags.id", "CASCADE")
    tag_source_id: str = _text(nullable=False)


# ---------------------------------------------------------------------------- load specs

ARTIST_REF = Ref("artist_id", "catalog.artists", "artist_source_id")
IMAGE_REF = Ref("image_id", "catalog.images", "image_source_id")
TAG_REF = Ref("tag_id", "catalog.tags", "tag_source_id")


def _image_spec() -> EntityTable:
    return replace(entity_spec(Image, ARTIST_REF), volatile=VOLATILE_IMAGE_COLUMNS)


MODELS: tuple[type[SQLModel], ...] = (Artist, Tag, Image, ImageCharacter, ImageTag)

SPECS = (
    entity_spec(Artist),
    entity_spec(Tag),
    _image_spec(),
    link_spec(ImageCharacter, IMAGE_REF, CHARACTER_REF),
    link_spec(ImageTag, IMAGE_REF, TAG_REF),
)
