"""The migrated catalog schema, the SQLModel classes and the load specs agree; catalog.works groups works."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy.dialects import postgresql

from pipeline import db
from pipeline.load import Loader
from pipeline.models import catalog
from pipeline.tables import COMMON_COLUMNS, EntityTable, registered
from pipeline.transform import transform

pytestmark = pytest.mark.db

REAL = Path(__file__).resolve().parents[1] / "fixtures" / "real"
DIALECT = postgresql.dialect()  # type: ignore[no-untyped-call]


def _sql_type(name: str) -> str:
    return name.lower().replace(", ", ",")


async def _columns(conn: asyncpg.Connection, table: str) -> dict[str, tuple[str, bool]]:
    rows = await conn.fetch(
        """
        SELECT a.attname, format_type(a.atttypid, a.atttypmod) AS type, NOT a.attnotnull AS nullable
          FROM pg_attribute a
         WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped
        """,
        table,
    )
    return {r["attname"]: (r["type"], r["nullable"]) for r in rows}


async def test_models_match_migrated_tables(db_url: str) -> None:
    """Every catalog table has exactly the model's columns, with the same types and nullability."""
    conn = await db.connect(db_url)
    try:
        tables = {
            r["t"]
            for r in await conn.fetch(
                "SELECT table_schema || '.' || table_name AS t FROM information_schema.tables "
                "WHERE table_schema = 'catalog' AND table_type = 'BASE TABLE'"
            )
        }
        mine = {f"catalog.{model.__tablename__}" for model in catalog.MODELS}
        assert mine <= tables
        for model in catalog.MODELS:
            table = model.__table__  # type: ignore[attr-defined]
            expected = {
                column.name: (_sql_type(column.type.compile(dialect=DIALECT)), bool(column.nullable))
                for column in table.columns
            }
            actual = await _columns(conn, f"catalog.{table.name}")
            assert {name: (_sql_type(t), n) for name, (t, n) in actual.items()} == expected, table.name
            identity = await conn.fetchval(
                "SELECT attidentity::text FROM pg_attribute WHERE attrelid = $1::regclass AND attname = 'id'",
                f"catalog.{table.name}",
            )
            assert identity == "a", f"{table.name}.id must be GENERATED ALWAYS AS IDENTITY"
    finally:
        await conn.close()


async def test_specs_name_existing_columns(db_url: str) -> None:
    """Every registered catalog spec's columns, refs and natural keys exist in its table."""
    conn = await db.connect(db_url)
    try:
        mine = {spec.name for spec in catalog.SPECS}
        specs = [spec for spec in registered() if spec.name in mine]
        assert specs == list(catalog.SPECS), "catalog specs are registered, parents first"
        for spec in specs:
            actual = set(await _columns(conn, spec.name))
            needed = set(spec.columns) | {name for ref in spec.refs for name in (ref.column, ref.key)}
            if isinstance(spec, EntityTable):
                needed |= set(COMMON_COLUMNS) | {"id"}
            else:
                needed |= {spec.owner.column, spec.owner.key, "source"}
            assert needed <= actual, f"{spec.name} lacks {needed - actual}"
            assert set(spec.json_columns) <= set(spec.columns)
    finally:
        await conn.close()


async def test_every_catalog_column_is_documented(db_url: str) -> None:
    """COMMENT ON covers every catalog table, view and column."""
    conn = await db.connect(db_url)
    try:
        missing = await conn.fetch(
            """
            SELECT c.relname, a.attname
              FROM pg_class c
              JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'catalog'
              JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
             WHERE c.relkind IN ('r', 'v') AND c.relname = ANY($1::text[])
               AND (col_description(c.oid, a.attnum) IS NULL OR obj_description(c.oid, 'pg_class') IS NULL)
            """,
            [model.__tablename__ for model in catalog.MODELS] + ["works"],
        )
        assert [(r["relname"], r["attname"]) for r in missing] == []
    finally:
        await conn.close()


async def _media(
    conn: asyncpg.Connection, source: str, kind_: str, source_id: str, kind: str, score: int
) -> None:
    await conn.execute(
        "INSERT INTO catalog.media (source, source_id, content_hash, source_kind, kind, title, "
        "average_score) VALUES ($1, $2, '\\x00', $3, $4, $2, $5)",
        source,
        source_id,
        kind_,
        kind,
        score,
    )


async def _external(conn: asyncpg.Connection, source: str, media: str, site: str, external: str) -> None:
    await conn.execute(
        "INSERT INTO catalog.external_ids (source, source_id, content_hash, media_source_id, site, "
        "external_id) VALUES ($1, $2, '\\x00', $3, $4, $5)",
        source,
        f"{media}:{site}",
        media,
        site,
        external,
    )


async def test_works_groups_by_anilist_mapping_and_mal_id_never_by_title(db_url: str) -> None:
    """Kitsu rows join AniList rows via anilist/<kind> or a shared MAL id, same kind only."""
    conn = await db.connect(db_url)
    try:
        await _media(conn, "anilist", "anilist", "1", "anime", 86)  # Cowboy Bebop on AniList
        await _external(conn, "anilist", "1", "myanimelist/anime", "1")
        await _media(conn, "kitsu", "kitsu", "anime/1", "anime", 82)  # mapped directly
        await _external(conn, "kitsu", "anime/1", "anilist/anime", "1")
        await _media(conn, "anilist_v1", "anilist_v1", "1", "anime", 87)  # same AniList id, v1 API
        await _media(conn, "anilist", "anilist", "30", "anime", 80)  # reached through MAL only
        await _external(conn, "anilist", "30", "myanimelist/anime", "30")
        await _media(conn, "kitsu", "kitsu", "anime/21", "anime", 79)
        await _external(conn, "kitsu", "anime/21", "myanimelist/anime", "30")
        await _media(conn, "kitsu", "kitsu", "manga/21", "manga", 70)  # same MAL number, other kind
        await _external(conn, "kitsu", "manga/21", "myanimelist/manga", "30")
        await _media(conn, "kitsu", "kitsu", "anime/99", "anime", 60)  # shares only a title
        rows = await conn.fetch(
            "SELECT source, source_id, work_id, matched_by, member_count FROM catalog.works"
        )
        by = {(r["source"], r["source_id"]): r for r in rows}
        assert by["kitsu", "anime/1"]["work_id"] == by["anilist", "1"]["work_id"] == "anilist:anime:1"
        assert by["anilist_v1", "1"]["work_id"] == "anilist:anime:1"
        assert by["anilist", "1"]["member_count"] == 3
        assert by["kitsu", "anime/1"]["matched_by"] == "anilist_mapping"
        assert by["kitsu", "anime/21"]["work_id"] == "anilist:anime:30"
        assert by["kitsu", "anime/21"]["matched_by"] == "myanimelist_id"
        assert by["kitsu", "manga/21"]["work_id"] == "myanimelist:manga:30"
        assert by["kitsu", "anime/99"]["work_id"] == "media:kitsu:anime/99"
        assert by["kitsu", "anime/99"]["member_count"] == 1
        side_by_side = await conn.fetch(
            """
            SELECT k.work_id, k.average_score AS kitsu, a.average_score AS anilist
              FROM catalog.works k JOIN catalog.works a USING (work_id)
             WHERE k.source_kind = 'kitsu' AND a.source_kind = 'anilist'
             ORDER BY k.work_id
            """
        )
        assert [(r["work_id"], int(r["kitsu"]), int(r["anilist"])) for r in side_by_side] == [
            ("anilist:anime:1", 82, 86),
            ("anilist:anime:30", 79, 80),
        ]
    finally:
        await conn.close()


def _fixture(name: str) -> Any:
    return json.loads((REAL / name).read_text(encoding="utf-8"))


async def test_real_recordings_load_and_meet_in_works(db_url: str) -> None:
    """Kitsu and AniList Cowboy Bebop load through the loader, resolve their refs and form one work."""
    kitsu_page = _fixture("kitsu/anime-tags-1.json")
    # The mapping arrives on its own stream's page (/mappings?include=item), as a sync fetches it.
    mappings_page = {
        "data": [
            {
                "id": "m1",
                "type": "mappings",
                "attributes": {"externalSite": "anilist/anime", "externalId": "1"},
                "relationships": {"item": {"data": {"type": "anime", "id": "1"}}},
            }
        ]
    }
    conn = await db.connect(db_url)
    try:
        kitsu_loader = Loader(conn, "kitsu", run_id=None)
        anilist_loader = Loader(conn, "anilist", run_id=None)
        await kitsu_loader.load(transform("kitsu", "anime", kitsu_page))
        await kitsu_loader.load(transform("kitsu", "mappings", mappings_page))
        await kitsu_loader.load(transform("kitsu", "categories", _fixture("kitsu/anime-tags-1_tags.json")))
        bebop = _fixture("anilist-graphql/media-status-finished.json")
        first = await anilist_loader.load(transform("anilist", "anime", bebop))
        assert first.inserted > 0
        again = await anilist_loader.load(transform("anilist", "anime", bebop))
        assert (again.inserted, again.updated) == (0, 0)
        works = await conn.fetch(
            "SELECT source, source_id, work_id, average_score FROM catalog.works ORDER BY source"
        )
        assert [(r["source"], r["source_id"], r["work_id"], str(r["average_score"])) for r in works] == [
            ("anilist", "1", "anilist:anime:1", "86.00"),
            ("kitsu", "anime/1", "anilist:anime:1", "81.99"),
        ]
        unresolved = await conn.fetchval(
            "SELECT count(*) FROM catalog.media_characters WHERE media_id IS NULL OR character_id IS NULL"
        )
        assert unresolved == 0
        assert await conn.fetchval("SELECT count(*) FROM catalog.external_ids WHERE media_id IS NULL") == 0
        titles = await conn.fetchval(
            "SELECT count(*) FROM catalog.media_titles t JOIN catalog.media m ON m.id = t.media_id "
            "WHERE m.source = 'kitsu'"
        )
        assert titles == 4
        row = await conn.fetchrow(
            "SELECT start_date, start_precision, season, season_year FROM catalog.media "
            "WHERE source = 'anilist'"
        )
        assert (str(row["start_date"]), row["start_precision"], row["season"], row["season_year"]) == (
            "1998-04-03",
            "day",
            "spring",
            1998,
        )
    finally:
        await conn.close()


async def test_work_candidates_pair_unlinked_namesakes_and_never_merge(db_url: str) -> None:
    """Same normalised title across sources: a scored candidate pair; linked rows and other kinds are not."""
    conn = await db.connect(db_url)
    try:
        rows = [
            # (source, kind_, source_id, kind, title, start, format, episodes)
            ("anilist", "anilist", "5", "anime", "Sora no Woto!", "2010-01-05", "tv", 12),
            ("kitsu", "kitsu", "anime/5", "anime", "sora no woto", "2010-01-05", "tv", 12),  # same work
            ("kitsu", "kitsu", "anime/6", "anime", "Sora-no-Woto", "2010-01-20", "ova", 2),  # weaker
            ("kitsu", "kitsu", "manga/5", "manga", "Sora no Woto", "2010-01-05", "manga", None),  # kind
            ("anilist", "anilist", "7", "anime", "Other", "2001-01-01", "tv", 1),
            ("kitsu", "kitsu", "anime/7", "anime", "Other", "2001-01-01", "tv", 1),  # linked by id
        ]
        for source, kind_, source_id, kind, title, start, fmt, episodes in rows:
            await conn.execute(
                "INSERT INTO catalog.media (source, source_id, content_hash, source_kind, kind, title, "
                "start_date, start_precision, format, episode_count) "
                "VALUES ($1, $2, '\\x00', $3, $4, $5, $6::text::date, 'day', $7, $8)",
                source, source_id, kind_, kind, title, start, fmt, episodes,
            )  # fmt: skip
        await _external(conn, "kitsu", "anime/7", "anilist/anime", "7")
        found = await conn.fetch(
            "SELECT source, other_source, title, other_title, score, same_start, work_id, other_work_id "
            "FROM catalog.work_candidates ORDER BY score DESC"
        )
        pairs = [(r["work_id"], r["other_work_id"], float(r["score"])) for r in found]
        assert pairs == [
            ("anilist:anime:5", "media:kitsu:anime/5", 1.0),
            ("anilist:anime:5", "media:kitsu:anime/6", 0.6),
        ]
        works = await conn.fetchval("SELECT count(DISTINCT work_id) FROM catalog.works")
        assert works == 5  # nothing merged: each candidate keeps its own work
    finally:
        await conn.close()


QUERY_06 = (Path(__file__).resolve().parents[2] / "sql" / "queries" / "06_images_per_artist.sql").read_text()


async def test_images_per_artist_query_keeps_namesakes_apart(db_url: str) -> None:
    """sql/queries/06 groups by artist, not by name: two artists called the same are two rows."""
    query = QUERY_06
    conn = await db.connect(db_url)
    try:
        for artist, name in (("a1", "Mika"), ("a2", "Mika")):
            await conn.execute(
                "INSERT INTO catalog.artists (source, source_id, content_hash, name) "
                "VALUES ('nekos', $1, '\\x00', $2)",
                artist,
                name,
            )
        for image, artist, rating in (("i1", "a1", "sfw"), ("i2", "a1", "nsfw"), ("i3", "a2", "sfw")):
            await conn.execute(
                "INSERT INTO catalog.images (source, source_id, content_hash, rating, artist_id) "
                "SELECT 'nekos', $1, '\\x00', $3, id FROM catalog.artists WHERE source_id = $2",
                image,
                artist,
                rating,
            )
        rows = await conn.fetch(query)
        assert [(r["artist"], r["artist_id"], r["images"], r["sfw"]) for r in rows] == [
            ("Mika", "a1", 2, 1),
            ("Mika", "a2", 1, 1),
        ]
    finally:
        await conn.close()


async def test_breadth_tables_load_resolve_late_refs_and_keep_arrays(db_url: str) -> None:
    """Companies, relations, links, tags and voices load before their targets, resolve once the
    targets arrive, keep text[] languages, and an unchanged reload writes nothing."""
    from pipeline.load import resolve_refs
    from pipeline.records import Batch

    def batch(rows: dict[str, list[dict[str, Any]]]) -> Batch:
        made = Batch()
        for table, items in rows.items():
            for item in items:
                made.add(table, dict(item))
        return made

    children = {
        "catalog.media_companies": [
            {"source_id": "p1", "media_source_id": "anime/1", "company_source_id": "14", "role": "studio"},
        ],
        "catalog.media_relations": [
            {
                "source_id": "r1",
                "media_source_id": "anime/1",
                "related_media_source_id": "anime/2",
                "relation": "sequel",
            },
            {
                "source_id": "r2",
                "media_source_id": "anime/1",
                "related_media_source_id": "anime/404",
                "relation": "side_story",
            },
        ],
        "catalog.streaming_links": [
            {
                "source_id": "s1",
                "media_source_id": "anime/1",
                "site": "Crunchyroll",
                "url": "https://www.crunchyroll.com/cowboy-bebop",
                "kind": "streaming",
                "subtitles": ["en", "es"],
                "dubs": ["ja"],
            },
        ],
        "catalog.media_tags": [
            {
                "source_id": "1:83",
                "media_source_id": "anime/1",
                "name": "Space",
                "category": "Setting",
                "rank": 94,
                "is_spoiler": False,
            },
        ],
        "catalog.character_voices": [
            {
                "source_id": "v1",
                "media_character_source_id": "mc1",
                "person_source_id": "p9",
                "language": "ja_jp",
            },
        ],
    }
    parents = {
        "catalog.media": [
            {"source_id": sid, "source_kind": "kitsu", "kind": "anime", "title": title}
            for sid, title in (("anime/1", "Cowboy Bebop"), ("anime/2", "Cowboy Bebop: The Movie"))
        ],
        "catalog.companies": [{"source_id": "14", "name": "Sunrise", "is_animation_studio": None}],
        "catalog.characters": [{"source_id": "c1", "name": "Spike Spiegel"}],
        "catalog.media_characters": [
            {"source_id": "mc1", "media_source_id": "anime/1", "character_source_id": "c1", "role": "main"}
        ],
        "catalog.people": [{"source_id": "p9", "name": "Kouichi Yamadera"}],
    }
    conn = await db.connect(db_url)
    try:
        loader = Loader(conn, "kitsu", run_id=None)
        first = await loader.load(batch(children))
        assert first.inserted == 6
        await loader.load(batch(parents))
        await resolve_refs(conn, "kitsu")
        relations = await conn.fetch(
            "SELECT r.source_id, m.source_id AS media, d.source_id AS related, r.related_media_source_id "
            "FROM catalog.media_relations r LEFT JOIN catalog.media m ON m.id = r.media_id "
            "LEFT JOIN catalog.media d ON d.id = r.related_media_id ORDER BY r.source_id"
        )
        assert [tuple(r) for r in relations] == [
            ("r1", "anime/1", "anime/2", "anime/2"),
            ("r2", "anime/1", None, "anime/404"),  # a related work the catalogue lacks keeps its key
        ]
        voiced = await conn.fetchrow(
            "SELECT c.name AS character, p.name AS actor, v.language FROM catalog.character_voices v "
            "JOIN catalog.media_characters mc ON mc.id = v.media_character_id "
            "JOIN catalog.characters c ON c.id = mc.character_id JOIN catalog.people p ON p.id = v.person_id"
        )
        assert tuple(voiced) == ("Spike Spiegel", "Kouichi Yamadera", "ja_jp")
        studio = await conn.fetchval(
            "SELECT c.name FROM catalog.media_companies mc JOIN catalog.companies c ON c.id = mc.company_id "
            "JOIN catalog.media m ON m.id = mc.media_id WHERE m.source_id = 'anime/1' AND mc.role = 'studio'"
        )
        assert studio == "Sunrise"
        link = await conn.fetchrow(
            "SELECT subtitles, dubs, media_id IS NOT NULL AS linked FROM catalog.streaming_links"
        )
        assert (link["subtitles"], link["dubs"], link["linked"]) == (["en", "es"], ["ja"], True)
        assert await conn.fetchval("SELECT count(*) FROM catalog.media_tags WHERE media_id IS NOT NULL") == 1
        again = await loader.load(batch(children))
        assert (again.inserted, again.updated) == (0, 0)
        changed = {
            "catalog.streaming_links": [{**children["catalog.streaming_links"][0], "dubs": ["ja", "en"]}]
        }
        assert (await loader.load(batch(changed))).updated == 1
        assert await conn.fetchval("SELECT dubs FROM catalog.streaming_links") == ["ja", "en"]
        bad = {"catalog.media_relations": [{"source_id": "r3", "relation": "remake"}]}
        with pytest.raises(asyncpg.CheckViolationError):
            await loader.load(batch(bad))
    finally:
        await conn.close()
