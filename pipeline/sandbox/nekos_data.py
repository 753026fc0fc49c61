"""Seeded Nekos API v1 data (images, artists, characters, categories) and its JSON as the server shows it.

Tables are insertion-ordered dicts: that order is the "physical" order a ``SELECT … LIMIT … OFFSET``
without ``ORDER BY`` tends to follow, and an update moves the row to the end, as a new heap tuple
does in Postgres. Object shapes follow ``src/utils/db/parsers.js`` (api-notes §4): no
``updatedAt`` anywhere; the image ``url`` is signed with a fresh expiry on every call.
"""

from __future__ import annotations

import hashlib
import math
import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pipeline.sandbox.names import make_person

DATA_EPOCH = 1_640_995_200.0  # 2022-01-01T00:00:00Z: Nekos API v1 went public in 2022
URL_EXPIRY_SECONDS = 3600


@dataclass(frozen=True)
class NekosSize:
    images: int
    artists: int
    characters: int
    categories: int


NEKOS_SIZES = {
    "small": NekosSize(images=120, artists=12, characters=16, categories=14),
    "medium": NekosSize(images=1500, artists=80, characters=120, categories=40),
    "large": NekosSize(images=10_000, artists=400, characters=600, categories=80),
}
CATEGORY_NAMES = (
    ("catgirl", "character"),
    ("maid", "clothing"),
    ("school uniform", "clothing"),
    ("kimono", "clothing"),
    ("sword", "object"),
    ("flowers", "setting"),
    ("night", "setting"),
    ("rain", "setting"),
    ("smile", "expression"),
    ("blush", "expression"),
    ("landscape", "setting"),
    ("fantasy", "genre"),
    ("sci-fi", "genre"),
    ("cozy", "mood"),
    ("swimsuit", "clothing"),
    ("glasses", "accessory"),
    ("headphones", "accessory"),
    ("city", "setting"),
)
SOURCE_SITES = ("Pixiv", "Twitter", "DeviantArt", "ArtStation", None)
MIMETYPES = (("image/png", "png"), ("image/jpeg", "jpg"), ("image/webp", "webp"))
OCCUPATIONS = (
    "Student",
    "Maid",
    "Knight",
    "Idol",
    "Detective",
    "Witch",
    "Pilot",
    "Baker",
    "Student council president",
)
NATIONALITIES = ("Japanese", "Japanese", "Japanese", "French", "American", None)


@dataclass
class NekosData:
    """The four tables, keyed by uuid, in physical order."""

    images: dict[str, dict[str, Any]] = field(default_factory=dict)
    artists: dict[str, dict[str, Any]] = field(default_factory=dict)
    characters: dict[str, dict[str, Any]] = field(default_factory=dict)
    categories: dict[str, dict[str, Any]] = field(default_factory=dict)

    def table(self, resource: str) -> dict[str, dict[str, Any]]:
        name = {
            "image": "images",
            "artist": "artists",
            "character": "characters",
            "category": "categories",
        }.get(resource, resource)
        if name not in ("images", "artists", "characters", "categories"):
            raise KeyError(
                f"nekos has no resource {resource!r}; known: images, artists, characters, categories"
            )
        table: dict[str, dict[str, Any]] = getattr(self, name)
        return table

    def counts(self) -> dict[str, int]:
        return {name: len(self.table(name)) for name in ("images", "artists", "characters", "categories")}


def iso_millis(epoch: float) -> str:
    """A JavaScript ``Date`` in JSON: ``2022-10-26T21:29:13.517Z``."""
    moment = datetime.fromtimestamp(epoch, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def generate_nekos(size: str, seed: int, character_names: list[str] | None = None) -> NekosData:
    """The Nekos dataset for one size and seed; characters reuse the shared world's names when given."""
    if size not in NEKOS_SIZES:
        raise ValueError(f"nekos dataset size {size!r}: use one of {', '.join(NEKOS_SIZES)}")
    rng = random.Random(f"nekos:{seed}")
    counts = NEKOS_SIZES[size]
    data = NekosData()
    moment = DATA_EPOCH

    def new_id() -> str:
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))

    def tick() -> float:
        nonlocal moment
        moment += rng.uniform(60, 86_400 * 400 / max(counts.images, 1))
        return moment

    for index in range(counts.categories):
        name, kind = CATEGORY_NAMES[index % len(CATEGORY_NAMES)]
        name = name if index < len(CATEGORY_NAMES) else f"{name} {index // len(CATEGORY_NAMES) + 1}"
        data.categories[new_id()] = {
            "name": name,
            "description": f"Images with {name}.",
            "nsfw": rng.random() < 0.1,
            "type": kind,
            "created_at": tick(),
        }
    names = list(character_names or [])
    for index in range(counts.characters):
        first, last, _ = make_person(rng)
        name = names[index % len(names)] if names else f"{first} {last}"
        data.characters[new_id()] = {
            "name": name,
            "description": f"{name} is a character.",
            "source": f"Series {index % 37 + 1}",
            "gender": rng.choice(("female", "female", "male", None)),
            "ages": sorted(rng.sample(range(12, 30), 2)),
            "birth_date": rng.choice((None, f"{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}")),
            "nationality": rng.choice(NATIONALITIES),
            "occupations": rng.sample(OCCUPATIONS, rng.randint(0, 2)),
            "created_at": tick(),
        }
    for index in range(counts.artists):
        first, last, _ = make_person(rng)
        handle = f"{first}{last}{index}".lower()
        data.artists[new_id()] = {
            "name": f"{first} {last}",
            "url": f"https://www.pixiv.net/en/users/{10_000 + index}"
            if index % 3
            else f"https://twitter.com/{handle}",
            "created_at": tick(),
        }
    artist_ids, character_ids, category_ids = list(data.artists), list(data.characters), list(data.categories)
    for _ in range(counts.images):
        data.images[new_id()] = new_image(rng, tick(), artist_ids, character_ids, category_ids)
    return data


def new_image(
    rng: random.Random, created: float, artists: list[str], characters: list[str], categories: list[str]
) -> dict[str, Any]:
    width, height = rng.choice(
        ((1920, 1080), (1080, 1920), (1000, 1000), (2480, 3508), (1280, 720), (850, 1200))
    )
    mimetype, ext = rng.choice(MIMETYPES)
    site = rng.choice(SOURCE_SITES)
    digest = hashlib.md5(f"{created}:{width}:{ext}".encode(), usedforsecurity=False).hexdigest()
    return {
        "artist_id": rng.choice(artists) if artists and rng.random() < 0.7 else None,
        "source_name": site,
        "source_url": f"https://{site.lower()}.example/art/{rng.randint(1, 10**8)}" if site else None,
        "original": rng.choice((True, False, None)),
        "nsfw": rng.choices(("sfw", "questionable", "nsfw"), (80, 15, 5))[0],
        "category_ids": rng.sample(categories, min(len(categories), rng.randint(0, 4))),
        "character_ids": rng.sample(characters, min(len(characters), rng.choice((0, 0, 1, 1, 2)))),
        "created_at": created,
        "mimetype": mimetype,
        "ext": ext,
        "size": rng.randint(40_000, 6_000_000),
        "etag": f'"{digest}"',
        "color": f"#{rng.randint(0, 0xFFFFFF):06x}",
        "width": width,
        "height": height,
    }


# -- JSON as the API shows it --------------------------------------------------------------------
def artist_json(artist_id: str, row: dict[str, Any], images: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"id": artist_id, "name": row["name"], "url": row["url"]}
    if images is not None:
        out["images"] = images
    return out


def category_json(category_id: str, row: dict[str, Any], images: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": category_id,
        "name": row["name"],
        "description": row["description"],
        "nsfw": row["nsfw"],
        "type": row["type"],
    }
    if images is not None:
        out["images"] = images
    out["createdAt"] = iso_millis(row["created_at"])
    return out


def character_json(character_id: str, row: dict[str, Any], images: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"id": character_id}
    out.update(
        {
            key: row[key]
            for key in (
                "name",
                "description",
                "source",
                "gender",
                "ages",
                "birth_date",
                "nationality",
                "occupations",
            )
        }
    )
    out["createdAt"] = iso_millis(row["created_at"])
    if images is not None:
        out["images"] = images
    return out


def image_json(
    image_id: str, row: dict[str, Any], data: NekosData, now: float, base_url: str
) -> dict[str, Any]:
    """One image, its ``url`` signed until ``now + URL_EXPIRY_SECONDS`` (so it changes on every call)."""
    expires = now + URL_EXPIRY_SECONDS
    signature = hashlib.sha256(f"{image_id}:{now}".encode()).hexdigest()[:48]
    artist = data.artists.get(row["artist_id"]) if row["artist_id"] else None
    width, height = row["width"], row["height"]
    divisor = math.gcd(width, height)
    orientation = "square" if width == height else "landscape" if width > height else "portrait"
    return {
        "id": image_id,
        "url": f"{base_url}/storage/v1/object/sign/nekos-api/images/{image_id}.{row['ext']}"
        f"?token={signature}&expires={int(expires)}",
        "artist": artist_json(row["artist_id"], artist) if artist else None,
        "source": {"name": row["source_name"], "url": row["source_url"]},
        "original": row["original"],
        "nsfw": row["nsfw"],
        "categories": [
            category_json(c, data.categories[c]) for c in row["category_ids"] if c in data.categories
        ],
        "characters": [
            character_json(c, data.characters[c]) for c in row["character_ids"] if c in data.characters
        ],
        "createdAt": iso_millis(row["created_at"]),
        "meta": {
            "eTag": row["etag"],
            "size": row["size"],
            "mimetype": row["mimetype"],
            "color": row["color"],
            "expires": iso_millis(expires),
            "dimens": {
                "height": height,
                "width": width,
                "aspectRatio": f"{width // divisor}:{height // divisor}",
                "orientation": orientation,
            },
        },
    }
