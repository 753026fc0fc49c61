"""The ``catalog`` schema (sql/002_catalog.sql) as SQLModel classes, and its load specs.

The classes give typed Python access to the tables; the specs (``pipeline.tables``) tell the
generic loader how to upsert what the transforms emit. Spec columns are read off the classes, so
the two cannot drift apart, and tests/integration/test_catalog_schema.py proves the classes match
the migrated database.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any, ClassVar, Literal

from sqlalchemy import BigInteger, Date, DateTime, LargeBinary, Text, UniqueConstraint, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

from pipeline.tables import COMMON_COLUMNS, EntityTable, LinkTable, Ref

SCHEMA = "catalog"


class TimestampTZ(TypeDecorator[datetime]):
    """``timestamptz``: SQLModel maps ``datetime`` to a naive timestamp by default."""

    impl = DateTime(timezone=True)
    cache_ok = True


def _now() -> Any:
    default = {"server_default": text("now()")}
    return Field(default=None, sa_type=TimestampTZ, nullable=False, sa_column_kwargs=default)


def _text(*, nullable: bool = True) -> Any:
    return Field(default=None, sa_type=Text, nullable=nullable)


def _fk(target: str, ondelete: Literal["CASCADE", "SET NULL"]) -> Any:
    return Field(default=None, sa_type=BigInteger, foreign_key=target, ondelete=ondelete)


class EntityRow(SQLModel):
    """The columns every entity table carries (DESIGN §4)."""

    id: int | None = Field(default=None, primary_key=True, sa_type=BigInteger)
    source: str = _text(nullable=False)
    source_id: str = _text(nullable=False)
    source_updated_at: datetime | None = Field(default=None, sa_type=TimestampTZ)
    content_hash: bytes = Field(sa_type=LargeBinary, nullable=False)
    synced_at: datetime | None = _now()
    deleted_at: datetime | None = Field(default=None, sa_type=TimestampTZ)
    run_id: int | None = Field(default=None, sa_type=BigInteger)


class LinkRow(SQLModel):
    """The columns every link table carries: its rows are replaced per owner."""

    id: int | None = Field(default=None, primary_key=True, sa_type=BigInteger)
    source: str = _text(nullable=False)
    synced_at: datetime | None = _now()
    run_id: int | None = Field(default=None, sa_type=BigInteger)


def _unique_source_id() -> tuple[Any, ...]:
    return (UniqueConstraint("source", "source_id"), {"schema": SCHEMA})


class Media(EntityRow, table=True):
    __tablename__: ClassVar[str] = "media"
    __table_args__ = _unique_source_id()

    source_kind: str = _text(nullable=False)
    kind: str = _text(nullable=False)
    format: str | None = _text()
    title: str = _text(nullable=False)
    title_romaji: str | None = _text()
    title_english: str | None = _text()
    title_native: str | None = _text()
    synopsis: str | None = _text()
    status: str | None = _text()
    start_date: date | None = Field(default=None, sa_type=Date)
    start_precision: str | None = _text()
    end_date: date | None = Field(default=None, sa_type=Date)
    end_precision: str | None = _text()
    season: str | None = _text()
    season_year: int | None = None
    episode_count: int | None = None
    episode_minutes: int | None = None
    chapter_count: int | None = None
    volume_count: int | None = None
    average_score: Decimal | None = Field(default=None, max_digits=5, decimal_places=2)
    popularity: int | None = None
    age_rating: str | None = _text()
    is_adult: bool | None = None
    poster_url: str | None = _text()
    banner_url: str | None = _text()


class MediaTitle(LinkRow, table=True):
    __tablename__: ClassVar[str] = "media_titles"
    __table_args__ = (
        UniqueConstraint(
            "source", "media_source_id", "locale", "title", "is_synonym", postgresql_nulls_not_distinct=True
        ),
        {"schema": SCHEMA},
    )

    media_id: int | None = _fk("catalog.media.id", "CASCADE")
    media_source_id: str = _text(nullable=False)
    locale: str | None = _text()
    title: str = _text(nullable=False)
    is_synonym: bool = Field(
        default=False, nullable=False, sa_column_kwargs={"server_default": text("false")}
    )


class Genre(EntityRow, table=True):
    __tablename__: ClassVar[str] = "genres"
    __table_args__ = _unique_source_id()

    name: str = _text(nullable=False)
    slug: str = _text(nullable=False)
    description: str | None = _text()
    is_adult: bool | None = None


class MediaGenre(LinkRow, table=True):
    __tablename__: ClassVar[str] = "media_genres"
    __table_args__ = (UniqueConstraint("source", "media_source_id", "genre_source_id"), {"schema": SCHEMA})

    media_id: int | None = _fk("catalog.media.id", "CASCADE")
    media_source_id: str = _text(nullable=False)
    genre_id: int | None = _fk("catalog.genres.id", "CASCADE")
    genre_source_id: str = _text(nullable=False)


class Episode(EntityRow, table=True):
    __tablename__: ClassVar[str] = "episodes"
    __table_args__ = _unique_source_id()

    media_id: int | None = _fk("catalog.media.id", "SET NULL")
    media_source_id: str | None = _text()
    number: int | None = None
    season_number: int | None = None
    relative_number: int | None = None
    title: str | None = _text()
    titles: dict[str, str] | None = Field(default=None, sa_type=JSONB)
    synopsis: str | None = _text()
    air_date: date | None = Field(default=None, sa_type=Date)
    length_minutes: int | None = None
    thumbnail_url: str | None = _text()


class Character(EntityRow, table=True):
    __tablename__: ClassVar[str] = "characters"
    __table_args__ = _unique_source_id()

    name: str = _text(nullable=False)
    name_native: str | None = _text()
    other_names: list[str] | None = Field(default=None, sa_type=JSONB)
    description: str | None = _text()
    image_url: str | None = _text()
    gender: str | None = _text()
    ages: list[float] | None = Field(default=None, sa_type=JSONB)
    birth_date: str | None = _text()
    nationality: str | None = _text()
    occupations: list[str] | None = Field(default=None, sa_type=JSONB)
    origin: str | None = _text()


class MediaCharacter(EntityRow, table=True):
    __tablename__: ClassVar[str] = "media_characters"
    __table_args__ = _unique_source_id()

    media_id: int | None = _fk("catalog.media.id", "SET NULL")
    media_source_id: str | None = _text()
    character_id: int | None = _fk("catalog.characters.id", "SET NULL")
    character_source_id: str | None = _text()
    role: str | None = _text()


class Person(EntityRow, table=True):
    __tablename__: ClassVar[str] = "people"
    __table_args__ = _unique_source_id()

    name: str = _text(nullable=False)
    name_native: str | None = _text()
    language: str | None = _text()
    description: str | None = _text()
    image_url: str | None = _text()


class MediaStaff(EntityRow, table=True):
    __tablename__: ClassVar[str] = "media_staff"
    __table_args__ = _unique_source_id()

    media_id: int | None = _fk("catalog.media.id", "SET NULL")
    media_source_id: str | None = _text()
    person_id: int | None = _fk("catalog.people.id", "SET NULL")
    person_source_id: str | None = _text()
    role: str | None = _text()


class ExternalId(EntityRow, table=True):
    __tablename__: ClassVar[str] = "external_ids"
    __table_args__ = _unique_source_id()

    media_id: int | None = _fk("catalog.media.id", "SET NULL")
    media_source_id: str | None = _text()
    site: str = _text(nullable=False)
    external_id: str = _text(nullable=False)


class Company(EntityRow, table=True):
    __tablename__: ClassVar[str] = "companies"
    __table_args__ = _unique_source_id()

    name: str = _text(nullable=False)
    site_url: str | None = _text()
    is_animation_studio: bool | None = None


class MediaCompany(EntityRow, table=True):
    __tablename__: ClassVar[str] = "media_companies"
    __table_args__ = _unique_source_id()

    media_id: int | None = _fk("catalog.media.id", "SET NULL")
    media_source_id: str | None = _text()
    company_id: int | None = _fk("catalog.companies.id", "SET NULL")
    company_source_id: str | None = _text()
    role: str | None = _text()
    is_main: bool | None = None


class MediaRelation(EntityRow, table=True):
    __tablename__: ClassVar[str] = "media_relations"
    __table_args__ = _unique_source_id()

    media_id: int | None = _fk("catalog.media.id", "SET NULL")
    media_source_id: str | None = _text()
    related_media_id: int | None = _fk("catalog.media.id", "SET NULL")
    related_media_source_id: str | None = _text()
    relation: str | None = _text()


class StreamingLink(EntityRow, table=True):
    __tablename__: ClassVar[str] = "streaming_links"
    __table_args__ = _unique_source_id()

    media_id: int | None = _fk("catalog.media.id", "SET NULL")
    media_source_id: str | None = _text()
    site: str = _text(nullable=False)
    url: str = _text(nullable=False)
    kind: str | None = _text()
    subtitles: list[str] | None = Field(default=None, sa_type=ARRAY(Text))
    dubs: list[str] | None = Field(default=None, sa_type=ARRAY(Text))


class NextEpisode(EntityRow, table=True):
    """sql/020: the next episode of an airing media and when it airs (one row per media)."""

    __tablename__: ClassVar[str] = "next_episodes"
    __table_args__ = _unique_source_id()

    media_id: int | None = _fk("catalog.media.id", "SET NULL")
    media_source_id: str | None = _text()
    episode: int | None = None
    airing_at: datetime = Field(sa_type=TimestampTZ, nullable=False)


class MediaTag(EntityRow, table=True):
    __tablename__: ClassVar[str] = "media_tags"
    __table_args__ = _unique_source_id()

    media_id: int | None = _fk("catalog.media.id", "SET NULL")
    media_source_id: str | None = _text()
    name: str = _text(nullable=False)
    category: str | None = _text()
    rank: int | None = None
    is_spoiler: bool | None = None


class CharacterVoice(EntityRow, table=True):
    __tablename__: ClassVar[str] = "character_voices"
    __table_args__ = _unique_source_id()

    media_character_id: int | None = _fk("catalog.media_characters.id", "SET NULL")
    media_character_source_id: str | None = _text()
    person_id: int | None = _fk("catalog.people.id", "SET NULL")
    person_source_id: str | None = _text()
    language: str | None = _text()


# ---------------------------------------------------------------------------- load specs

MEDIA_REF = Ref("media_id", "catalog.media", "media_source_id")
GENRE_REF = Ref("genre_id", "catalog.genres", "genre_source_id")
CHARACTER_REF = Ref("character_id", "catalog.characters", "character_source_id")
PERSON_REF = Ref("person_id", "catalog.people", "person_source_id")
COMPANY_REF = Ref("company_id", "catalog.companies", "company_source_id")
RELATED_MEDIA_REF = Ref("related_media_id", "catalog.media", "related_media_source_id")
MEDIA_CHARACTER_REF = Ref("media_character_id", "catalog.media_characters", "media_character_source_id")

_LINK_COMMON = ("id", "source", "synced_at", "run_id")


def _payload_columns(model: type[SQLModel], skip: tuple[str, ...]) -> tuple[str, ...]:
    """The model's columns a transformed row supplies: all but the common ones and the references."""
    table = model.__table__  # type: ignore[attr-defined]
    return tuple(column.name for column in table.columns if column.name not in skip)


def _ref_columns(refs: tuple[Ref, ...]) -> tuple[str, ...]:
    return tuple(name for ref in refs for name in (ref.column, ref.key))


def _json_columns(model: type[SQLModel]) -> tuple[str, ...]:
    table = model.__table__  # type: ignore[attr-defined]
    return tuple(column.name for column in table.columns if isinstance(column.type, JSONB))


def entity_spec(model: type[SQLModel], *refs: Ref) -> EntityTable:
    """The loader spec of an entity table, read off its model."""
    skip = ("id", *COMMON_COLUMNS, *_ref_columns(refs))
    return EntityTable(
        name=f"{SCHEMA}.{model.__tablename__}",
        columns=_payload_columns(model, skip),
        refs=refs,
        json_columns=_json_columns(model),
    )


def link_spec(model: type[SQLModel], owner: Ref, *refs: Ref) -> LinkTable:
    """The loader spec of a link table, read off its model."""
    skip = (*_LINK_COMMON, *_ref_columns((owner, *refs)))
    return LinkTable(
        name=f"{SCHEMA}.{model.__tablename__}",
        owner=owner,
        columns=_payload_columns(model, skip),
        refs=refs,
        json_columns=_json_columns(model),
    )


MODELS: tuple[type[SQLModel], ...] = (
    Media,
    MediaTitle,
    Genre,
    MediaGenre,
    Episode,
    Character,
    MediaCharacter,
    Person,
    MediaStaff,
    ExternalId,
    Company,
    MediaCompany,
    MediaRelation,
    StreamingLink,
    MediaTag,
    CharacterVoice,
    NextEpisode,
)

SPECS: tuple[EntityTable | LinkTable, ...] = (
    entity_spec(Media),
    link_spec(MediaTitle, MEDIA_REF),
    entity_spec(Genre),
    link_spec(MediaGenre, MEDIA_REF, GENRE_REF),
    entity_spec(Episode, MEDIA_REF),
    entity_spec(Character),
    entity_spec(MediaCharacter, MEDIA_REF, CHARACTER_REF),
    entity_spec(Person),
    entity_spec(MediaStaff, MEDIA_REF, PERSON_REF),
    entity_spec(ExternalId, MEDIA_REF),
    entity_spec(Company),
    entity_spec(MediaCompany, MEDIA_REF, COMPANY_REF),
    entity_spec(MediaRelation, MEDIA_REF, RELATED_MEDIA_REF),
    entity_spec(StreamingLink, MEDIA_REF),
    entity_spec(MediaTag, MEDIA_REF),
    entity_spec(CharacterVoice, MEDIA_CHARACTER_REF, PERSON_REF),
    entity_spec(NextEpisode, MEDIA_REF),
)
