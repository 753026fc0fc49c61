"""One generated anime/manga world that every catalogue simulator serves from its own angle.

A ``Work`` exists once; Kitsu shows it with its Kitsu id, AniList (v2 and v1) with its AniList id,
and both carry the same MyAnimeList id. The generator is seeded, so a size and a seed always give
the same world. Quirks of the real data are planted on purpose, in stable shares:

- ~4 % AniList-only works (no Kitsu id) and ~4 % Kitsu-only works (no AniList id);
- ~5 % Kitsu works without an ``anilist/*`` mapping (linkable only through MAL), ~3 % without any;
- ~2 % "ambiguous" works: a distinct work that copies another's titles (different year, ids);
- R18 works (Kitsu hides them from anonymous clients), missing/null/empty English titles,
  month- or year-only dates, null status, null scores, HTML and unicode in descriptions.

Times are anchored at ``DATA_EPOCH`` so the data does not depend on when it is generated; a
change made through the control API stamps ``modified_at`` with the sandbox clock.
"""

from __future__ import annotations

import gc
import random
from dataclasses import dataclass, field, fields
from typing import Any, Protocol

from pipeline.sandbox.names import SOURCES, WORDS, make_person, make_title, slugify, synopsis_pool

DATA_EPOCH = 1_722_470_400.0  # 2024-08-01T00:00:00Z
KITSU_START = 1_361_376_000.0  # 2013-02-20, when Kitsu's catalogue was first imported
SIZE_WORKS = {"small": (240, 120), "medium": (4000, 2000), "large": (80_000, 40_000)}

ANIME_FORMATS = (
    ("tv", 45),
    ("movie", 12),
    ("ova", 10),
    ("ona", 10),
    ("special", 10),
    ("tv_short", 8),
    ("music", 5),
)
MANGA_FORMATS = (
    ("manga", 70),
    ("novel", 10),
    ("one_shot", 6),
    ("manhwa", 6),
    ("manhua", 4),
    ("doujin", 2),
    ("oel", 2),
)
GENRES = (
    "Action", "Adventure", "Comedy", "Drama", "Ecchi", "Fantasy", "Horror", "Mahou Shoujo", "Mecha", "Music",
    "Mystery", "Psychological", "Romance", "Sci-Fi", "Slice of Life", "Sports", "Supernatural", "Thriller",
)  # fmt: skip


class Clock(Protocol):
    def now(self) -> float: ...


@dataclass(slots=True)
class Category:
    id: int
    slug: str
    title: str
    description: str
    nsfw: bool
    parent_id: int | None
    genre: str | None  # the AniList genre it corresponds to, if any
    created_at: float


@dataclass(slots=True)
class Character:
    index: int
    kitsu_id: int
    anilist_id: int
    mal_id: int | None
    first: str
    last: str
    native: str
    description: str
    created_at: float

    @property
    def name(self) -> str:
        return f"{self.first} {self.last}"


@dataclass(slots=True)
class Person:
    """A staff member or voice actor (Kitsu ``people``)."""

    index: int
    first: str
    last: str
    native: str
    created_at: float

    @property
    def kitsu_id(self) -> int:
        return self.index + 1

    @property
    def name(self) -> str:
        return f"{self.first} {self.last}"


@dataclass(slots=True)
class Company:
    """A studio, producer, licensor or magazine (Kitsu ``producers``)."""

    index: int
    name: str
    created_at: float

    @property
    def kitsu_id(self) -> int:
        return self.index + 1


@dataclass(slots=True)
class Work:
    """One anime or manga, with every source's id and the facts each source renders."""

    index: int
    kind: str  # anime | manga
    kitsu_id: int | None
    anilist_id: int | None
    mal_id: int | None
    map_anilist: bool  # Kitsu carries an anilist/<kind> mapping
    map_mal: bool  # Kitsu carries a myanimelist/<kind> mapping
    romaji: str
    english: str | None
    english_style: str  # how Kitsu shows a missing English title: present | missing | null | empty
    native: str | None
    synonyms: list[str]
    slug: str
    synopsis: str | None
    source_credit: str
    format: str | None
    status: str | None  # finished | releasing | not_yet_released | cancelled | hiatus | None
    start: tuple[int, int | None, int | None] | None  # (year, month, day)
    end: tuple[int, int | None, int | None] | None
    episodes: int | None
    duration: int | None
    chapters: int | None
    volumes: int | None
    score: float | None  # 0–100 with decimals; None = too few ratings
    rating_count: int
    popularity: int
    favourites: int
    age_rating: str | None
    adult: bool
    genres: list[str]
    categories: list[int]
    characters: list[tuple[int, str]]  # (character index, role MAIN|SUPPORTING)
    country: str
    created_at: float
    modified_at: float  # last real change (AniList updatedAt, v1 updated_at)
    legacy_v1: bool  # old v1 record: ISO datetimes in start_date, string average_score
    deleted: bool = False
    # Last edit of a field Kitsu's episode rows carry (title, length, airdates, count): their
    # updated_at moves then, and only then (episodes are not re-stamped by the six-hourly job).
    episodes_modified_at: float = 0.0
    # Credits, relations and streaming links: ``None`` = derived from the work's index
    # (``sandbox.kitsu_views``); the control API sets them to change one work's credits.
    staff: list[tuple[int, str]] | None = None  # (person index, role)
    productions: list[tuple[int, str]] | None = None  # (company index, role)
    relations: list[tuple[int, str]] | None = None  # (work index, role: what that work is to this one)
    streaming: list[tuple[int, list[str], list[str]]] | None = None  # (streamer id, subs, dubs)
    # When the rows of each Kitsu join kind were last edited (their ``updatedAt`` moves then).
    links_modified_at: dict[str, float] | None = None

    def links_stamp(self, kind: str, made: float) -> float:
        """``updatedAt`` of this work's join rows of ``kind`` made at ``made``: their last edit."""
        edited = self.links_modified_at.get(kind, 0.0) if self.links_modified_at else 0.0
        return max(made, edited)

    @property
    def season(self) -> tuple[str, int] | None:
        """(SEASON, year) from the start month; December counts toward next year's winter."""
        if self.start is None or self.start[1] is None or self.kind != "anime":
            return None
        year, month = self.start[0], self.start[1]
        if month == 12:
            return "WINTER", year + 1
        return ("WINTER", "SPRING", "SUMMER", "FALL")[(month % 12) // 3], year


EDITABLE = frozenset(f.name for f in fields(Work)) - {
    "index",
    "kind",
    "kitsu_id",
    "anilist_id",
    "deleted",
    "episodes_modified_at",
    "links_modified_at",
}
# Work fields an episode row is rendered from (sandbox.kitsu._episode).
EPISODE_FIELDS = frozenset({"romaji", "duration", "start", "episodes", "status"})
# Work fields each kind of Kitsu join row is rendered from: editing one moves those rows' updatedAt.
LINK_FIELDS = {
    "mappings": frozenset({"map_anilist", "map_mal", "mal_id"}),
    "characters": frozenset({"characters"}),  # media-characters and their voices
    "staff": frozenset({"staff"}),
    "productions": frozenset({"productions"}),
    "relations": frozenset({"relations"}),
    "streaming": frozenset({"streaming"}),
}


@dataclass
class World:
    """The works, characters and categories, plus lookups rebuilt whenever ``version`` moves."""

    size: str
    seed: int
    clock: Clock
    works: list[Work] = field(default_factory=list)
    characters: list[Character] = field(default_factory=list)
    categories: list[Category] = field(default_factory=list)
    people: list[Person] = field(default_factory=list)
    companies: list[Company] = field(default_factory=list)
    version: int = 0
    _index_version: int = -1
    _kitsu: dict[tuple[str, int], Work] = field(default_factory=dict)
    _anilist: dict[int, Work] = field(default_factory=dict)

    def character_names(self) -> list[str]:
        """Names other simulators (Nekos) reuse so the world stays one world."""
        return [c.name for c in self.characters]

    def live(self) -> list[Work]:
        return [w for w in self.works if not w.deleted]

    def _reindex(self) -> None:
        if self._index_version == self.version:
            return
        self._kitsu = {
            (w.kind, w.kitsu_id): w for w in self.works if w.kitsu_id is not None and not w.deleted
        }
        self._anilist = {w.anilist_id: w for w in self.works if w.anilist_id is not None and not w.deleted}
        self._index_version = self.version

    def by_kitsu(self, kind: str, kitsu_id: int) -> Work | None:
        self._reindex()
        return self._kitsu.get((kind, kitsu_id))

    def by_anilist(self, anilist_id: int) -> Work | None:
        self._reindex()
        return self._anilist.get(anilist_id)

    def touch(self) -> None:
        self.version += 1

    def replace_with(self, other: World) -> None:
        self.works, self.characters, self.categories = other.works, other.characters, other.categories
        self.people, self.companies = other.people, other.companies
        self.touch()

    # -- writes (the control API's records) ------------------------------------------------------
    def add_work(self, kind: str, values: dict[str, Any]) -> Work:
        if kind not in ("anime", "manga"):
            raise ValueError(f"resource {kind!r}: add works as 'anime' or 'manga'")
        rng = random.Random(f"{self.seed}-added-{len(self.works)}")
        base = _make_work(rng, len(self.works), kind, _Pools(rng, self.categories), DATA_EPOCH)
        base.kitsu_id = max((w.kitsu_id or 0 for w in self.works if w.kind == kind), default=0) + 1
        base.anilist_id = max((w.anilist_id or 0 for w in self.works), default=0) + 1
        base.mal_id = None
        base.map_mal = False
        base.created_at = base.modified_at = self.clock.now()
        self.works.append(base)
        return self.update_work(base, values)

    def update_work(self, work: Work, values: dict[str, Any]) -> Work:
        unknown = sorted(set(values) - EDITABLE)
        if unknown:
            raise ValueError(
                f"unknown or read-only field(s) {unknown}; editable: {', '.join(sorted(EDITABLE))}"
            )
        for key, value in values.items():
            setattr(work, key, tuple(value) if key in ("start", "end") and value is not None else value)
        work.modified_at = self.clock.now()
        if EPISODE_FIELDS & set(values):
            work.episodes_modified_at = work.modified_at
        for kind, names in LINK_FIELDS.items():
            if names & set(values):
                work.links_modified_at = {**(work.links_modified_at or {}), kind: work.modified_at}
        self.touch()
        return work

    def delete_work(self, work: Work) -> None:
        work.deleted = True
        self.touch()


class WorldRecords:
    """``RecordOps`` over the world for one id space (``kitsu`` or ``anilist``)."""

    def __init__(self, world: World, id_space: str) -> None:
        self.world = world
        self.id_space = id_space

    def _find(self, resource: str, record_id: str) -> Work:
        if resource not in ("anime", "manga"):
            raise ValueError(f"resource {resource!r}: records are 'anime' or 'manga'")
        key = int(record_id)
        work = self.world.by_kitsu(resource, key) if self.id_space == "kitsu" else self.world.by_anilist(key)
        if work is None or work.kind != resource:
            raise KeyError(f"{resource} {record_id} not found in the {self.id_space} id space")
        return work

    def add(self, resource: str, record: dict[str, Any]) -> dict[str, Any]:
        return describe(self.world.add_work(resource, record))

    def update(self, resource: str, record_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        return describe(self.world.update_work(self._find(resource, record_id), changes))

    def delete(self, resource: str, record_id: str) -> None:
        self.world.delete_work(self._find(resource, record_id))


def describe(work: Work) -> dict[str, Any]:
    return {
        "kind": work.kind,
        "kitsu_id": work.kitsu_id,
        "anilist_id": work.anilist_id,
        "mal_id": work.mal_id,
        "title": work.romaji,
        "modified_at": work.modified_at,
    }


def generate_world(size: str, seed: int, clock: Clock) -> World:
    """Build the world for ``size`` deterministically from ``seed``."""
    try:
        n_anime, n_manga = SIZE_WORKS[size]
    except KeyError:
        raise ValueError(f"dataset size {size!r}: use one of {', '.join(SIZE_WORKS)}") from None
    enabled = gc.isenabled()
    gc.disable()  # hundreds of thousands of small objects: cyclic GC passes would double the time
    try:
        return _generate(n_anime, n_manga, size, seed, clock)
    finally:
        if enabled:
            gc.enable()


def _generate(n_anime: int, n_manga: int, size: str, seed: int, clock: Clock) -> World:
    rng = random.Random(seed)
    world = World(size=size, seed=seed, clock=clock)
    world.categories = _make_categories()
    pools = _Pools(rng, world.categories)
    ids = _IdSeq(rng)
    for kind, count in (("anime", n_anime), ("manga", n_manga)):
        for _ in range(count):
            work = _make_work(rng, len(world.works), kind, pools, DATA_EPOCH)
            _assign_ids(rng, ids, work)
            _plant_ambiguity(rng, world.works, work)
            _cast(rng, world, work)
            world.works.append(work)
    _unique_slugs(world.works)
    _credit_pools(world, seed)
    return world


COMPANY_WORDS = ("Studio", "Pictures", "Animation", "Works", "Entertainment", "Publishing", "Films")


def _credit_pools(world: World, seed: int) -> None:
    """The people and companies credited on works, from their own generator: the works (and so
    every other simulator's data) are the same with or without them."""
    rng = random.Random(f"{seed}-credits")
    n_works = len(world.works)
    for index in range(max(40, n_works // 2)):
        first, last, native = make_person(rng)
        created = KITSU_START + rng.random() * (DATA_EPOCH - KITSU_START)
        world.people.append(Person(index, first, last, native, created))
    for index in range(max(20, n_works // 20)):
        word = WORDS[index % len(WORDS)][1]
        name = f"{word} {COMPANY_WORDS[(index // len(WORDS)) % len(COMPANY_WORDS)]}"
        if index >= len(WORDS) * len(COMPANY_WORDS):
            name = f"{name} {index // (len(WORDS) * len(COMPANY_WORDS)) + 1}"
        created = KITSU_START + rng.random() * (DATA_EPOCH - KITSU_START)
        world.companies.append(Company(index, name, created))


class _IdSeq:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.next = {
            "kitsu/anime": 1,
            "kitsu/manga": 1,
            "anilist": 1,
            "mal/anime": 1,
            "mal/manga": 1,
            "char": 1,
        }

    def take(self, space: str, max_gap: int) -> int:
        value = self.next[space]
        self.next[space] = value + 1 + int(self.rng.random() * max_gap)
        return value


def _assign_ids(rng: random.Random, ids: _IdSeq, work: Work) -> None:
    r = rng.random
    roll = r()
    on_kitsu, on_anilist = roll >= 0.04, not 0.04 <= roll < 0.08
    work.kitsu_id = ids.take(f"kitsu/{work.kind}", 3) if on_kitsu else None
    work.anilist_id = ids.take("anilist", 4) if on_anilist else None
    work.mal_id = ids.take(f"mal/{work.kind}", 3) if r() >= 0.06 else None
    unmapped = r()
    work.map_anilist = work.anilist_id is not None and unmapped >= 0.08
    work.map_mal = work.mal_id is not None and unmapped >= 0.03


def _plant_ambiguity(rng: random.Random, works: list[Work], work: Work) -> None:
    """Now and then, a distinct work takes an earlier work's titles (a remake, a namesake)."""
    if len(works) < 10 or rng.random() >= 0.02:
        return
    twin = works[rng.randrange(len(works))]
    if twin.kind != work.kind:
        return
    work.romaji, work.english, work.native = twin.romaji, twin.english, twin.native
    if work.start and twin.start and work.start[0] == twin.start[0]:
        work.start = (work.start[0] + rng.randint(2, 12), work.start[1], work.start[2])


def _cast(rng: random.Random, world: World, work: Work) -> None:
    cast: list[tuple[int, str]] = []
    if world.works and rng.random() < 0.2:  # sequels and spin-offs share characters
        prior = world.works[-1].characters[:2]
        cast.extend(prior)
    r = rng.random
    for slot in range(_pick(r, (0, 1, 1, 2, 2, 3, 4))):
        first, last, native = make_person(rng)
        index = len(world.characters)
        world.characters.append(
            Character(
                index=index,
                kitsu_id=index + 1,
                anilist_id=index * 3 + 1,
                mal_id=index * 2 + 1 if r() > 0.1 else None,
                first=first,
                last=last,
                native=native,
                description=f"{first} is a character in <i>{work.romaji}</i>.",
                created_at=work.created_at,
            )
        )
        cast.append((index, "MAIN" if slot < 2 else "SUPPORTING"))
    work.characters = cast


def _unique_slugs(works: list[Work]) -> None:
    seen: dict[str, int] = {}
    for work in works:
        slug = work.slug
        if slug in seen and work.start is not None:
            slug = f"{slug}-{work.start[0]}"
        while slug in seen:
            seen[slug] += 1
            slug = f"{work.slug}-{seen[slug]}"
        seen[slug] = 1
        work.slug = slug


def _make_categories() -> list[Category]:
    cats: list[Category] = []
    created = KITSU_START + 4 * 365 * 86400.0
    for i, genre in enumerate(GENRES):
        cats.append(
            Category(
                id=i * 3 + 2,
                slug=slugify(genre),
                title=genre,
                description=f"Works where {genre.lower()} is central to the story.",
                nsfw=genre == "Ecchi",
                parent_id=None,
                genre=genre,
                created_at=created + i * 11.7,
            )
        )
    for j, (romaji, english, _) in enumerate(WORDS[:24]):
        cats.append(
            Category(
                id=100 + j * 7,
                slug=slugify(english),
                title=english,
                description=f"Stories featuring a {english.lower()} ({romaji}).",
                nsfw=False,
                parent_id=cats[j % len(GENRES)].id,
                genre=None,
                created_at=created + 400 + j * 9.3,
            )
        )
    return cats


class _Pools:
    """Per-world lookups drawn from while generating, precomputed once."""

    def __init__(self, rng: random.Random, cats: list[Category]) -> None:
        self.synopses = synopsis_pool(rng)
        self.genre_cats = {c.genre: c.id for c in cats if c.genre}
        self.theme_cats = [c.id for c in cats if c.genre is None]
        self.anime_formats = _expand(ANIME_FORMATS)
        self.manga_formats = _expand(MANGA_FORMATS)


def _expand(table: tuple[tuple[str, int], ...]) -> list[str]:
    return [value for value, weight in table for _ in range(weight)]


def _pick(r: Any, seq: Any) -> Any:
    return seq[int(r() * len(seq))]


def _make_work(rng: random.Random, index: int, kind: str, pools: _Pools, epoch: float) -> Work:
    r = rng.random
    romaji, english, native = make_title(rng)
    year = min(2026, int(rng.triangular(1965, 2026, 2020)))
    precision = r()
    month = 1 + int(r() * 12) if precision < 0.96 else None
    day = 1 + int(r() * 28) if precision < 0.86 else None
    start: tuple[int, int | None, int | None] | None = (year, month, day) if precision < 0.985 else None
    fmt: str | None = _pick(r, pools.anime_formats if kind == "anime" else pools.manga_formats)
    if r() < 0.01:
        fmt = None
    episodes = duration = chapters = volumes = None
    if kind == "anime":
        episodes = 1 if fmt in ("movie", "music") else _pick(r, (1, 2, 6, 10, 12, 12, 13, 24, 25, 26, 50))
        duration = {
            "movie": 60 + int(r() * 80),
            "music": 3 + int(r() * 4),
            "tv_short": 2 + int(r() * 10),
        }.get(fmt or "", _pick(r, (23, 24, 24, 25, 30)))
    else:
        chapters = 1 + int(r() * 300)
        volumes = max(1, chapters // 9)
    status = _status(r, start)
    end = _end(start, episodes or (chapters or 1) * 2) if status == "finished" else None
    if status in ("releasing", "not_yet_released"):
        episodes, chapters, volumes = (episodes if r() < 0.4 else None), None, None
    created = KITSU_START + r() * (epoch - 86400 - KITSU_START)
    rated = r() < 0.85
    adult = r() < (0.03 if kind == "anime" else 0.04)
    genres = sorted({_pick(r, GENRES) for _ in range(1 + int(r() * 4))})
    cat_ids = sorted({pools.genre_cats[g] for g in genres} | {_pick(r, pools.theme_cats) for _ in range(2)})
    return Work(
        index=index,
        kind=kind,
        kitsu_id=None,
        anilist_id=None,
        mal_id=None,
        map_anilist=False,
        map_mal=False,
        romaji=romaji,
        english=english if r() < 0.7 else None,
        english_style=_pick(r, ("missing", "null", "empty")),
        native=native if r() < 0.95 else None,
        synonyms=[s for s in (english.upper(), romaji.split(" ")[0]) if r() < 0.3],
        slug=slugify(romaji),
        synopsis=_pick(r, pools.synopses) if r() < 0.95 else None,
        source_credit=_pick(r, SOURCES),
        format=fmt,
        status=status,
        start=start,
        end=end,
        episodes=episodes,
        duration=duration,
        chapters=chapters,
        volumes=volumes,
        score=round(45 + r() * 47, 2) if rated else None,
        rating_count=50 + int(r() * 90_000) if rated else int(r() * 50),
        popularity=int(rng.paretovariate(1.2) * 100),
        favourites=int(r() * 5000),
        age_rating="R18" if adult else _pick(r, ("G", "PG", "PG", "R", None)),
        adult=adult,
        genres=genres,
        categories=cat_ids,
        characters=[],
        country=_pick(r, ("JP",) * 18 + ("KR", "CN")),
        created_at=created,
        modified_at=created + r() * (epoch - created),
        legacy_v1=start is not None and start[0] < 2005 and r() < 0.6,
    )


def _end(
    start: tuple[int, int | None, int | None] | None, weeks: int
) -> tuple[int, int | None, int | None] | None:
    """An end date ``weeks`` after the start, as precise as the start."""
    if start is None:
        return None
    year, month, day = start
    if month is None:
        return (year + weeks // 52, None, None)
    months = month - 1 + max(0, weeks - 1) // 4
    return (year + months // 12, months % 12 + 1, day)


def _status(r: Any, start: tuple[int, int | None, int | None] | None) -> str | None:
    roll = r()
    if roll < 0.005:
        return None
    if roll < 0.015:
        return "cancelled"
    if roll < 0.02:
        return "hiatus"
    if start is None or start[0] > 2024:
        return "not_yet_released"
    if start[0] >= 2022 and r() < 0.5:
        return "releasing"
    return "finished"
