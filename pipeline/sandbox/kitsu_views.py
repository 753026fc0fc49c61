"""Kitsu's derived collections over the world (id-sorted lists, ranks, mappings, episodes), cached per
world version so a 100k-work catalogue is indexed once, not on every request."""

from __future__ import annotations

import bisect
from collections import Counter
from dataclasses import dataclass, field
from typing import NamedTuple

from pipeline.sandbox.world import Character, Work, World

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


def build_view(world: World) -> KitsuView:
    view = KitsuView()
    characters = world.characters
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
                view.media_characters.append(MediaCharacter(mc_id, w, characters[char_index], role.lower()))
    for cat in world.categories:
        if cat.parent_id is not None:
            view.child_counts[cat.parent_id] += 1
    view.mappings.sort(key=lambda m: m.id)
    view.media_characters.sort(key=lambda m: m.id)
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
