"""Kitsu's derived collections over the world (id-sorted lists, ranks, mappings, episodes), cached per
world version so a 100k-work catalogue is indexed once, not on every request."""

from __future__ import annotations

import bisect
from collections import Counter
from dataclasses import dataclass, field
from typing import NamedTuple

from pipeline.sandbox.world import Character, Company, Person, Work, World

MAX_EPISODES = 200
ANIME_SITES = (("anilist/anime", 0), ("myanimelist/anime", 1), ("anidb", 2))
MANGA_SITES = (("anilist/manga", 0), ("myanimelist/manga", 1), ("mangaupdates", 2))


class Mapping(NamedTuple):
    id: int
    site: str
    external_id: str
    work: Work


class MediaCharacter(NamedTuple):
    id: int
    work: Work
    character: Character
    role: str


class Staff(NamedTuple):  # media-staff
    id: int
    work: Work
    person: Person
    role: str


class Production(NamedTuple):  # media-productions
    id: int
    work: Work
    company: Company
    role: str  # producer | licensor | studio | serialization (MediaProduction's enum)


class Relation(NamedTuple):  # media-relationships: ``other`` is the ``role`` of ``work``
    id: int
    work: Work
    other: Work
    role: str


class StreamingLink(NamedTuple):
    id: int
    work: Work
    streamer: tuple[int, str]
    subs: list[str]
    dubs: list[str]


class Voice(NamedTuple):  # character-voices
    id: int
    appearance: MediaCharacter
    person: Person
    locale: str


STAFF_ROLES = ("Director", "Original Creator", "Series Composition", "Music", "Character Design", "Script")
ANIME_COMPANY_ROLES = ("studio", "producer", "licensor")
MANGA_COMPANY_ROLES = ("serialization", "licensor")
STREAMERS = (
    (1, "Hulu"),
    (2, "Funimation"),
    (3, "Crunchyroll"),
    (6, "Netflix"),
    (7, "HIDIVE"),
    (10, "YouTube"),
)
SUBTITLES = (["en"], ["en", "es", "pt"], ["en", "de"])
DUBS = (["ja"], ["ja", "en"])
SLOTS = 8  # credits of one kind per work that the id scheme leaves room for


def episode_count(work: Work) -> int:
    """Episode records Kitsu holds for an anime: the aired ones, capped for very long series."""
    if work.kind != "anime" or work.status in ("not_yet_released", None):
        return 0
    aired = work.episodes if work.episodes is not None else 1 + work.index % 20
    return min(aired, MAX_EPISODES)


@dataclass
class KitsuView:
    """Every list Kitsu serves, sorted by id; ``sfw`` variants are what anonymous clients see."""

    media: dict[str, list[Work]] = field(default_factory=dict)
    sfw: dict[str, list[Work]] = field(default_factory=dict)
    ranks: dict[tuple[str, int], tuple[int | None, int | None]] = field(default_factory=dict)
    category_counts: Counter[int] = field(default_factory=Counter)
    child_counts: Counter[int] = field(default_factory=Counter)
    mappings: list[Mapping] = field(default_factory=list)
    mapping_index: dict[tuple[str, str], list[Mapping]] = field(default_factory=dict)
    mappings_by_work: dict[int, list[Mapping]] = field(default_factory=dict)
    media_characters: list[MediaCharacter] = field(default_factory=list)
    staff: list[Staff] = field(default_factory=list)
    productions: list[Production] = field(default_factory=list)
    relations: list[Relation] = field(default_factory=list)
    streaming_links: list[StreamingLink] = field(default_factory=list)
    streamer_links: Counter[int] = field(default_factory=Counter)  # streamer id → its links
    voices: list[Voice] = field(default_factory=list)
    episode_owners: list[Work] = field(default_factory=list)
    episode_prefix: list[int] = field(default_factory=list)
    _by_updated: list[int] | None = None  # episode positions by (updatedAt, id), made on first use

    @property
    def episode_total(self) -> int:
        return self.episode_prefix[-1] if self.episode_prefix else 0

    def episode_at(self, position: int) -> tuple[Work, int]:
        """The (anime, number) of the episode at ``position`` in id order."""
        owner = bisect.bisect_right(self.episode_prefix, position) - 1
        return self.episode_owners[owner], position - self.episode_prefix[owner] + 1

    def episodes_by_updated(self) -> list[int]:
        """Episode positions in ``(updatedAt, id)`` order: what ``sort=updatedAt`` pages over."""
        if self._by_updated is None:
            stamps = [episode_updated_at(*self.episode_at(p)) for p in range(self.episode_total)]
            self._by_updated = sorted(range(self.episode_total), key=stamps.__getitem__)
        return self._by_updated


def episode_updated_at(work: Work, number: int) -> float:
    """An episode row's ``updated_at``: a day after it was created, or its anime's last edit of a field
    the row carries, whichever is later."""
    return max(work.created_at + number * 3600 + 86400, work.episodes_modified_at)


def episode_id(work: Work, number: int) -> int:
    assert work.kitsu_id is not None
    return work.kitsu_id * 1000 + number


def credit_id(work: Work, slot: int) -> int:
    """Id of a work's ``slot``-th credit of one kind (anime and manga numbered apart, like mappings)."""
    assert work.kitsu_id is not None
    return (work.kitsu_id * SLOTS + slot) * 2 + (work.kind == "manga")


def staff_of(world: World, work: Work) -> list[tuple[int, str]]:
    """(person index, role) credits: the work's own list, else 0-3 derived from its index."""
    if work.staff is not None:
        return [(int(p), str(r)) for p, r in work.staff][:SLOTS]
    if not world.people:
        return []
    n = len(world.people)
    return [
        ((work.index * 31 + slot * 17) % n, STAFF_ROLES[(work.index + slot) % len(STAFF_ROLES)])
        for slot in range(work.index % 4)
    ]


def productions_of(world: World, work: Work) -> list[tuple[int, str]]:
    """(company index, role): the work's own list, else 1-3 derived (studio first for anime)."""
    if work.productions is not None:
        return [(int(c), str(r)) for c, r in work.productions][:SLOTS]
    if not world.companies:
        return []
    roles = ANIME_COMPANY_ROLES if work.kind == "anime" else MANGA_COMPANY_ROLES
    n = len(world.companies)
    return [
        ((work.index * 13 + slot * 7) % n, roles[slot % len(roles)]) for slot in range(1 + work.index % 3)
    ]


def relations_of(world: World, work: Work, first_manga: int) -> list[tuple[int, str]]:
    """(work index, role) of the works related to ``work``: its own list, else a sequel chain
    (every fifth work continues the one before) and anime adapted from manga, both ways."""
    if work.relations is not None:
        return [(int(w), str(r)) for w, r in work.relations][:SLOTS]
    works, i, out = world.works, work.index, []
    if i % 5 == 1 and i > 0 and works[i - 1].kind == work.kind:
        out.append((i - 1, "prequel"))
    if (i + 1) % 5 == 1 and i + 1 < len(works) and works[i + 1].kind == work.kind:
        out.append((i + 1, "sequel"))
    if work.kind == "anime" and i % 7 == 3 and first_manga + i // 7 < len(works):
        out.append((first_manga + i // 7, "adaptation"))
    if work.kind == "manga" and first_manga <= i and (source := (i - first_manga) * 7 + 3) < first_manga:
        out.append((source, "adaptation"))
    return out


def streaming_of(work: Work) -> list[tuple[int, list[str], list[str]]]:
    """(streamer id, subs, dubs) of an anime: its own list, else 0-2 derived; manga stream nowhere."""
    if work.streaming is not None:
        return [(int(s), list(subs), list(dubs)) for s, subs, dubs in work.streaming][:SLOTS]
    if work.kind != "anime":
        return []
    return [
        (
            STREAMERS[(work.index + slot * 2) % len(STREAMERS)][0],
            SUBTITLES[(work.index + slot) % len(SUBTITLES)],
            DUBS[(work.index // 3 + slot) % len(DUBS)],
        )
        for slot in range(work.index % 3)
    ]


def build_view(world: World) -> KitsuView:
    view = KitsuView()
    characters = world.characters
    first_manga = next((w.index for w in world.works if w.kind == "manga"), len(world.works))
    for kind in ("anime", "manga"):
        works = [w for w in world.works if w.kind == kind and w.kitsu_id is not None and not w.deleted]
        works.sort(key=lambda w: w.kitsu_id or 0)
        view.media[kind] = works
        view.sfw[kind] = [w for w in works if not w.adult]
        by_popularity = sorted(works, key=lambda w: -w.popularity)
        by_score = sorted((w for w in works if w.score is not None), key=lambda w: -(w.score or 0))
        pop = {w.index: i + 1 for i, w in enumerate(by_popularity)}
        rated = {w.index: i + 1 for i, w in enumerate(by_score)}
        for w in works:
            assert w.kitsu_id is not None
            view.ranks[(kind, w.kitsu_id)] = (pop.get(w.index), rated.get(w.index))
            view.category_counts.update(w.categories)
            _add_mappings(view, w)
            for slot, (char_index, role) in enumerate(w.characters):
                mc_id = (w.kitsu_id * 16 + slot) * 2 + (kind == "manga")
                appearance = MediaCharacter(mc_id, w, characters[char_index], role.lower())
                view.media_characters.append(appearance)
                _add_voices(view, world, appearance)
            _add_credits(view, world, w, first_manga)
    for cat in world.categories:
        if cat.parent_id is not None:
            view.child_counts[cat.parent_id] += 1
    view.mappings.sort(key=lambda m: m.id)
    view.media_characters.sort(key=lambda m: m.id)
    for items in (view.staff, view.productions, view.relations, view.streaming_links, view.voices):
        items.sort(key=lambda item: item.id)
    total = 0
    for w in view.media["anime"]:
        count = episode_count(w)
        if count:
            view.episode_owners.append(w)
            view.episode_prefix.append(total)
            total += count
    view.episode_prefix.append(total)
    return view


def _add_mappings(view: KitsuView, work: Work) -> None:
    assert work.kitsu_id is not None
    sites = ANIME_SITES if work.kind == "anime" else MANGA_SITES
    base = work.kitsu_id * 8 + (4 if work.kind == "manga" else 0)
    for site, code in sites:
        if code == 0 and work.map_anilist:
            external = str(work.anilist_id)
        elif code == 1 and work.map_mal:
            external = str(work.mal_id)
        elif code == 2 and work.index % 3 == 0:
            external = str(work.index * 7 + 11)
        else:
            continue
        mapping = Mapping(base + code, site, external, work)
        view.mappings.append(mapping)
        view.mapping_index.setdefault((site, external), []).append(mapping)
        view.mappings_by_work.setdefault(work.index, []).append(mapping)


def _add_credits(view: KitsuView, world: World, work: Work, first_manga: int) -> None:
    people, companies, works = world.people, world.companies, world.works
    for slot, (person, role) in enumerate(staff_of(world, work)):
        if 0 <= person < len(people):
            view.staff.append(Staff(credit_id(work, slot), work, people[person], role))
    for slot, (company, role) in enumerate(productions_of(world, work)):
        if 0 <= company < len(companies):
            view.productions.append(Production(credit_id(work, slot), work, companies[company], role))
    for slot, (other, role) in enumerate(relations_of(world, work, first_manga)):
        if 0 <= other < len(works) and works[other].kitsu_id is not None and not works[other].deleted:
            view.relations.append(Relation(credit_id(work, slot), work, works[other], role))
    streamers = dict(STREAMERS)
    for slot, (streamer, subs, dubs) in enumerate(streaming_of(work)):
        site = streamers.get(streamer, f"Streamer {streamer}")
        view.streaming_links.append(StreamingLink(credit_id(work, slot), work, (streamer, site), subs, dubs))
        view.streamer_links[streamer] += 1


def _add_voices(view: KitsuView, world: World, appearance: MediaCharacter) -> None:
    """A Japanese voice for every anime appearance, an English one for every third."""
    if appearance.work.kind != "anime" or not world.people:
        return
    n = len(world.people)
    index = appearance.character.index
    view.voices.append(Voice(appearance.id * 2, appearance, world.people[(index * 7 + 3) % n], "ja_jp"))
    if appearance.id % 3 == 0:
        view.voices.append(
            Voice(appearance.id * 2 + 1, appearance, world.people[(index * 11 + 5) % n], "en_us")
        )
