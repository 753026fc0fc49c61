"""Word pools and title/name makers for the generated world: romaji, English and Japanese together."""

from __future__ import annotations

import random
import re
import unicodedata

# (romaji, english, native) — titles are built from these so the three languages agree.
WORDS: tuple[tuple[str, str, str], ...] = (
    ("Sora", "Sky", "空"),
    ("Hoshi", "Star", "星"),
    ("Tsuki", "Moon", "月"),
    ("Yume", "Dream", "夢"),
    ("Sekai", "World", "世界"),
    ("Kaze", "Wind", "風"),
    ("Hana", "Flower", "花"),
    ("Kage", "Shadow", "影"),
    ("Hikari", "Light", "光"),
    ("Tenshi", "Angel", "天使"),
    ("Akuma", "Devil", "悪魔"),
    ("Majo", "Witch", "魔女"),
    ("Ryuu", "Dragon", "竜"),
    ("Neko", "Cat", "猫"),
    ("Koi", "Love", "恋"),
    ("Sakura", "Cherry Blossom", "桜"),
    ("Natsu", "Summer", "夏"),
    ("Fuyu", "Winter", "冬"),
    ("Umi", "Sea", "海"),
    ("Mirai", "Future", "未来"),
    ("Kioku", "Memory", "記憶"),
    ("Ginga", "Galaxy", "銀河"),
    ("Tantei", "Detective", "探偵"),
    ("Oukoku", "Kingdom", "王国"),
    ("Hime", "Princess", "姫"),
    ("Ken", "Sword", "剣"),
    ("Tsubasa", "Wings", "翼"),
    ("Kokoro", "Heart", "心"),
    ("Honoo", "Flame", "炎"),
    ("Kishi", "Knight", "騎士"),
    ("Senshi", "Warrior", "戦士"),
    ("Mahou", "Magic", "魔法"),
    ("Gakuen", "Academy", "学園"),
    ("Tokei", "Clock", "時計"),
    ("Kuro", "Black", "黒"),
    ("Shiro", "White", "白"),
    ("Ao", "Blue", "青"),
    ("Aka", "Red", "赤"),
    ("Yoru", "Night", "夜"),
    ("Asa", "Morning", "朝"),
)
GENRE_WORDS = (
    ("Monogatari", "Story", "物語"),
    ("Densetsu", "Legend", "伝説"),
    ("Senki", "War Chronicle", "戦記"),
    ("Nikki", "Diary", "日記"),
    ("Boukenki", "Adventures", "冒険記"),
    ("Gekijou", "Theatre", "劇場"),
)
SEQUELS = (("2nd Season", "Season 2", "第2期"), ("Zoku", "Continued", "続"), ("Final", "Final", "完結編"))
FIRST_NAMES = (
    ("Haruto", "陽翔"), ("Yui", "結衣"), ("Sora", "空"), ("Aoi", "葵"), ("Ren", "蓮"), ("Hina", "陽菜"),
    ("Kaito", "海斗"), ("Mio", "澪"), ("Sakura", "さくら"), ("Megumin", "めぐみん"), ("Kaguya", "かぐや"),
    ("Rin", "凛"), ("Takumi", "拓海"), ("Asuka", "明日香"), ("Shinji", "シンジ"), ("Misaki", "美咲"),
    ("Kenji", "健二"), ("Nanami", "七海"), ("Yuki", "雪"), ("Akira", "アキラ"), ("Emilia", "エミリア"),
    ("Léa", "レア"), ("Zoë", "ゾーイ"), ("Chloé", "クロエ"), ("Jun", "純"), ("Kotori", "ことり"),
)  # fmt: skip
LAST_NAMES = (
    ("Tanaka", "田中"), ("Suzuki", "鈴木"), ("Shinomiya", "四宮"), ("Hoshino", "星野"), ("Ayanami", "綾波"),
    ("Kirishima", "霧島"), ("Minato", "湊"), ("Takanashi", "小鳥遊"), ("Kurosaki", "黒崎"), ("Amano", "天野"),
    ("Fujiwara", "藤原"), ("Sakamoto", "坂本"), ("Kagami", "鏡"), ("Tsukishiro", "月城"), ("Mori", "森"),
)  # fmt: skip
SOURCES = ("MAL Rewrite", "Anime News Network", "Crunchyroll", "official site", "Wikipedia")
SENTENCES = (
    "{a} has always dreamed of the {w}, but life in {p} is anything but ordinary.",
    "When a strange {w} falls from the sky, {a} and {b} are pulled into a conflict older than memory.",
    "A quiet story about friendship, loss and the small miracles of everyday life.",
    "{a} must choose between duty and {b} — and the clock is already ticking.",
    "Based on the award-winning novel, this adaptation follows {a}’s last summer before graduation.",
    "Nobody at {p} believes {a}, except {b}, who has secrets of {s} own.",
)
PLACES = ("Tokyo", "Kyoto", "Neo-Osaka", "the floating city of Aeris", "Hokkaidō", "a seaside town")


def slugify(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-") or "untitled"


def make_title(rng: random.Random) -> tuple[str, str, str]:
    """A (romaji, english, native) title; some carry the special characters real titles have."""
    a, b = rng.sample(WORDS, 2)
    shape = rng.random()
    if shape < 0.35:
        g = rng.choice(GENRE_WORDS)
        title = (f"{a[0]} no {g[0]}", f"{a[1]} {g[1]}", f"{a[2]}の{g[2]}")
    elif shape < 0.6:
        title = (f"{a[0]} no {b[0]}", f"The {b[1]} of the {a[1]}", f"{a[2]}の{b[2]}")
    elif shape < 0.75:
        title = (f"{a[0]} {b[0]}", f"{a[1]} {b[1]}", f"{a[2]}{b[2]}")
    elif shape < 0.82:
        title = (
            f"Re:{a[0]} kara Hajimeru {b[0]}",
            f"Re:{a[1]} − Starting Life in {b[1]}",
            f"Re:{a[2]}から始める{b[2]}",
        )
    elif shape < 0.88:
        title = (f"{a[0]}/{b[0]}", f"{a[1]}/{b[1]}", f"{a[2]}/{b[2]}")
    elif shape < 0.93:
        title = (f"{a[0]} × {b[0]}", f"{a[1]} × {b[1]}", f"{a[2]}×{b[2]}")
    elif shape < 0.97:
        title = (f"{a[0]}!! ~{b[0]} no Uta~", f"{a[1]}!! Song of the {b[1]}", f"{a[2]}!! ～{b[2]}の歌～")
    else:
        title = (f"{a[0]} ☆ {b[0]}", f"{a[1]} ☆ {b[1]}", f"{a[2]}☆{b[2]}")
    if rng.random() < 0.12:
        s = rng.choice(SEQUELS)
        title = (f"{title[0]} {s[0]}", f"{title[1]} {s[1]}", f"{title[2]} {s[2]}")
    return title


def make_person(rng: random.Random) -> tuple[str, str, str]:
    """(first, last, native full name)."""
    r = rng.random
    first, last = FIRST_NAMES[int(r() * len(FIRST_NAMES))], LAST_NAMES[int(r() * len(LAST_NAMES))]
    return first[0], last[0], f"{last[1]}{first[1]}"


def synopsis_pool(rng: random.Random, size: int = 1024) -> list[str]:
    """Distinct plot blurbs to draw from: generating one per work would dominate large worlds."""
    pool = []
    for _ in range(size):
        (hero, _, _), (friend, _, _) = make_person(rng), make_person(rng)
        pool.append(make_synopsis(rng, hero, friend, rng.choice(WORDS)[1]))
    return pool


def make_synopsis(rng: random.Random, hero: str, friend: str, word: str) -> str:
    parts = rng.sample(SENTENCES, rng.randint(1, 3))
    pronoun = rng.choice(("her", "his", "their"))
    return " ".join(
        p.format(a=hero, b=friend, w=word.lower(), p=rng.choice(PLACES), s=pronoun) for p in parts
    )
