-- The unified anime/manga catalogue (Kitsu, AniList v2, legacy AniList v1) and the catalog.works view.
--
-- Entity tables carry the common columns (id, source, source_id, source_updated_at, content_hash,
-- synced_at, deleted_at, run_id) and are unique on (source, source_id). Link tables (media_titles,
-- media_genres) hold the child rows of one media and are replaced as a set whenever that media is
-- loaded again. References carry both the surrogate id (NULL until the target is loaded) and the
-- target's natural key (*_source_id, same source), so a row can arrive before its parent.

-- media ------------------------------------------------------------------------------------------

CREATE TABLE catalog.media (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source            text        NOT NULL,
    source_id         text        NOT NULL,
    source_updated_at timestamptz,
    content_hash      bytea       NOT NULL,
    synced_at         timestamptz NOT NULL DEFAULT now(),
    deleted_at        timestamptz,
    run_id            bigint,
    source_kind       text        NOT NULL CHECK (source_kind IN ('kitsu', 'anilist', 'anilist_v1')),
    kind              text        NOT NULL CHECK (kind IN ('anime', 'manga')),
    format            text        CHECK (format IN ('tv', 'tv_short', 'movie', 'special', 'ova', 'ona', 'music',
                                                    'manga', 'novel', 'one_shot', 'doujin', 'manhua', 'manhwa',
                                                    'oel', 'unknown')),
    title             text        NOT NULL,
    title_romaji      text,
    title_english     text,
    title_native      text,
    synopsis          text,
    status            text        CHECK (status IN ('finished', 'releasing', 'not_yet_released', 'cancelled',
                                                    'hiatus', 'unknown')),
    start_date        date,
    start_precision   text        CHECK (start_precision IN ('day', 'month', 'year')),
    end_date          date,
    end_precision     text        CHECK (end_precision IN ('day', 'month', 'year')),
    season            text        CHECK (season IN ('winter', 'spring', 'summer', 'fall')),
    season_year       integer,
    episode_count     integer     CHECK (episode_count > 0),
    episode_minutes   integer     CHECK (episode_minutes > 0),
    chapter_count     integer     CHECK (chapter_count > 0),
    volume_count      integer     CHECK (volume_count > 0),
    average_score     numeric(5, 2) CHECK (average_score BETWEEN 0 AND 100),
    popularity        integer     CHECK (popularity >= 0),
    age_rating        text,
    is_adult          boolean,
    poster_url        text,
    banner_url        text,
    UNIQUE (source, source_id),
    CHECK ((start_date IS NULL) = (start_precision IS NULL)),
    CHECK ((end_date IS NULL) = (end_precision IS NULL)),
    CHECK ((season IS NULL) = (season_year IS NULL))
);
CREATE INDEX media_format_idx ON catalog.media (format);
CREATE INDEX media_status_idx ON catalog.media (status);
CREATE INDEX media_season_idx ON catalog.media (season_year, season);
CREATE INDEX media_start_date_idx ON catalog.media (start_date);
CREATE INDEX media_title_lower_idx ON catalog.media (lower(title));
CREATE INDEX media_kind_source_kind_idx ON catalog.media (kind, source_kind);
CREATE INDEX media_average_score_idx ON catalog.media (average_score DESC NULLS LAST);

COMMENT ON TABLE catalog.media IS 'One anime or manga as one source describes it (a work seen by two sources is two rows; see catalog.works).';
COMMENT ON COLUMN catalog.media.id IS 'Surrogate key.';
COMMENT ON COLUMN catalog.media.source IS 'Configured source name (e.g. kitsu, anilist).';
COMMENT ON COLUMN catalog.media.source_id IS 'Id in the source. Kitsu numbers anime and manga separately, so Kitsu ids are prefixed with the type (anime/12, manga/3250); AniList ids are global and kept as is (5114).';
COMMENT ON COLUMN catalog.media.source_updated_at IS 'The source''s last-modified time (Kitsu updatedAt is bumped every 6 h by a server job: not a change signal).';
COMMENT ON COLUMN catalog.media.content_hash IS 'Hash of the normalised content; a row is rewritten only when it changes.';
COMMENT ON COLUMN catalog.media.synced_at IS 'When the row was last written.';
COMMENT ON COLUMN catalog.media.deleted_at IS 'Set when a completed full scan no longer saw the record; NULL while it exists.';
COMMENT ON COLUMN catalog.media.run_id IS 'Run that last wrote the row (etl.runs.id).';
COMMENT ON COLUMN catalog.media.source_kind IS 'Connector kind of the source (kitsu, anilist, anilist_v1); source is a free name, this says how to read source_id (catalog.works uses it).';
COMMENT ON COLUMN catalog.media.kind IS 'anime or manga.';
COMMENT ON COLUMN catalog.media.format IS 'tv, tv_short, movie, special, ova, ona, music, manga, novel, one_shot, doujin, manhua, manhwa, oel; unknown = the source sent a value not in this list; NULL = the source gave none. AniList MANGA from Korea/China/Taiwan is manhwa/manhua.';
COMMENT ON COLUMN catalog.media.title IS 'Best display title: English, else romaji, else native, else the source''s canonical title, else its slug.';
COMMENT ON COLUMN catalog.media.title_romaji IS 'Romanised title (Kitsu en_jp / en_cn / en_kr, AniList romaji).';
COMMENT ON COLUMN catalog.media.title_english IS 'English title; NULL when missing or empty (AniList v1 copies of the romaji title are stored as NULL).';
COMMENT ON COLUMN catalog.media.title_native IS 'Title in its original script (Kitsu ja_jp / zh_cn / ko_kr, AniList native); v1 copies of the romaji are NULL.';
COMMENT ON COLUMN catalog.media.synopsis IS 'Synopsis as plain text: <br> becomes a line break, other HTML tags are removed, entities decoded, blank lines collapsed.';
COMMENT ON COLUMN catalog.media.status IS 'finished, releasing, not_yet_released (Kitsu tba/unreleased/upcoming), cancelled, hiatus; unknown = unrecognised value; NULL = the source gave none.';
COMMENT ON COLUMN catalog.media.start_date IS 'First release date; with month or year precision the day (and month) are set to 1 and must not be read.';
COMMENT ON COLUMN catalog.media.start_precision IS 'day, month or year: how much of start_date the source knows.';
COMMENT ON COLUMN catalog.media.end_date IS 'Last release date, same convention as start_date.';
COMMENT ON COLUMN catalog.media.end_precision IS 'day, month or year: how much of end_date the source knows.';
COMMENT ON COLUMN catalog.media.season IS 'Broadcast season (winter, spring, summer, fall): the source''s own, else derived from a start date with a known month (Dec-Feb winter, Dec counts toward the next year).';
COMMENT ON COLUMN catalog.media.season_year IS 'Year of the season (December of Y belongs to winter of Y+1 when derived).';
COMMENT ON COLUMN catalog.media.episode_count IS 'Number of episodes; NULL when unknown (a source 0 means unknown).';
COMMENT ON COLUMN catalog.media.episode_minutes IS 'Typical episode length in minutes; NULL when unknown.';
COMMENT ON COLUMN catalog.media.chapter_count IS 'Number of chapters (manga); NULL when unknown.';
COMMENT ON COLUMN catalog.media.volume_count IS 'Number of volumes (manga); NULL when unknown.';
COMMENT ON COLUMN catalog.media.average_score IS 'Average user score on a 0-100 scale (Kitsu averageRating, AniList averageScore, v1 average_score); NULL = no score yet.';
COMMENT ON COLUMN catalog.media.popularity IS 'Number of users with the title on a list (Kitsu userCount, AniList popularity).';
COMMENT ON COLUMN catalog.media.age_rating IS 'Age rating as the source writes it (Kitsu G/PG/R/R18, v1 classification text); NULL when none.';
COMMENT ON COLUMN catalog.media.is_adult IS 'Adult (hentai/R18) title per the source (Kitsu nsfw or R18, AniList isAdult, v1 adult).';
COMMENT ON COLUMN catalog.media.poster_url IS 'Largest poster/cover image URL.';
COMMENT ON COLUMN catalog.media.banner_url IS 'Banner (wide cover) image URL.';

-- media_titles (link) ---------------------------------------------------------------------------

CREATE TABLE catalog.media_titles (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source          text        NOT NULL,
    media_id        bigint      REFERENCES catalog.media (id) ON DELETE CASCADE,
    media_source_id text        NOT NULL,
    locale          text,
    title           text        NOT NULL,
    is_synonym      boolean     NOT NULL DEFAULT false,
    synced_at       timestamptz NOT NULL DEFAULT now(),
    run_id          bigint,
    UNIQUE NULLS NOT DISTINCT (source, media_source_id, locale, title, is_synonym)
);
CREATE INDEX media_titles_media_idx ON catalog.media_titles (media_id);
CREATE INDEX media_titles_title_lower_idx ON catalog.media_titles (lower(title));

COMMENT ON TABLE catalog.media_titles IS 'Every title of a media: one per locale, plus synonyms and abbreviations. Replaced as a set when the media is loaded.';
COMMENT ON COLUMN catalog.media_titles.id IS 'Surrogate key.';
COMMENT ON COLUMN catalog.media_titles.source IS 'Configured source name (same as the media).';
COMMENT ON COLUMN catalog.media_titles.media_id IS 'The media (catalog.media.id); NULL until it is loaded.';
COMMENT ON COLUMN catalog.media_titles.media_source_id IS 'The media''s source_id.';
COMMENT ON COLUMN catalog.media_titles.locale IS 'Kitsu-style locale (en, en_us, en_jp = romaji, ja_jp = Japanese script, zh_cn, ko_kr, ...); NULL for synonyms.';
COMMENT ON COLUMN catalog.media_titles.title IS 'The title text.';
COMMENT ON COLUMN catalog.media_titles.is_synonym IS 'true for synonyms / abbreviated titles (no locale).';
COMMENT ON COLUMN catalog.media_titles.synced_at IS 'When the row was written.';
COMMENT ON COLUMN catalog.media_titles.run_id IS 'Run that wrote the row.';

-- genres + media_genres -------------------------------------------------------------------------

CREATE TABLE catalog.genres (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source            text        NOT NULL,
    source_id         text        NOT NULL,
    source_updated_at timestamptz,
    content_hash      bytea       NOT NULL,
    synced_at         timestamptz NOT NULL DEFAULT now(),
    deleted_at        timestamptz,
    run_id            bigint,
    name              text        NOT NULL,
    slug              text        NOT NULL,
    description       text,
    is_adult          boolean,
    UNIQUE (source, source_id)
);
CREATE INDEX genres_slug_idx ON catalog.genres (slug);

COMMENT ON TABLE catalog.genres IS 'Genres and categories: Kitsu categories, AniList genre names.';
COMMENT ON COLUMN catalog.genres.id IS 'Surrogate key.';
COMMENT ON COLUMN catalog.genres.source IS 'Configured source name.';
COMMENT ON COLUMN catalog.genres.source_id IS 'Kitsu category id; for AniList (no genre ids) the slug of the name (sci-fi).';
COMMENT ON COLUMN catalog.genres.source_updated_at IS 'The source''s last-modified time, when it has one.';
COMMENT ON COLUMN catalog.genres.content_hash IS 'Hash of the normalised content.';
COMMENT ON COLUMN catalog.genres.synced_at IS 'When the row was last written.';
COMMENT ON COLUMN catalog.genres.deleted_at IS 'Set when a completed full scan no longer saw it.';
COMMENT ON COLUMN catalog.genres.run_id IS 'Run that last wrote the row.';
COMMENT ON COLUMN catalog.genres.name IS 'Display name (Bounty Hunter, Sci-Fi).';
COMMENT ON COLUMN catalog.genres.slug IS 'Lower-case dashed name, comparable across sources (bounty-hunter, sci-fi).';
COMMENT ON COLUMN catalog.genres.description IS 'Description, when the source has one.';
COMMENT ON COLUMN catalog.genres.is_adult IS 'Adult-only category (Kitsu nsfw); NULL when the source does not say.';

CREATE TABLE catalog.media_genres (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source          text        NOT NULL,
    media_id        bigint      REFERENCES catalog.media (id) ON DELETE CASCADE,
    media_source_id text        NOT NULL,
    genre_id        bigint      REFERENCES catalog.genres (id) ON DELETE CASCADE,
    genre_source_id text        NOT NULL,
    synced_at       timestamptz NOT NULL DEFAULT now(),
    run_id          bigint,
    UNIQUE (source, media_source_id, genre_source_id)
);
CREATE INDEX media_genres_media_idx ON catalog.media_genres (media_id);
CREATE INDEX media_genres_genre_idx ON catalog.media_genres (genre_id);

COMMENT ON TABLE catalog.media_genres IS 'Which genres a media has. Replaced as a set when the media is loaded with its genres (Kitsu: anime pages fetched with include=categories).';
COMMENT ON COLUMN catalog.media_genres.id IS 'Surrogate key.';
COMMENT ON COLUMN catalog.media_genres.source IS 'Configured source name.';
COMMENT ON COLUMN catalog.media_genres.media_id IS 'The media; NULL until it is loaded.';
COMMENT ON COLUMN catalog.media_genres.media_source_id IS 'The media''s source_id.';
COMMENT ON COLUMN catalog.media_genres.genre_id IS 'The genre; NULL until it is loaded.';
COMMENT ON COLUMN catalog.media_genres.genre_source_id IS 'The genre''s source_id.';
COMMENT ON COLUMN catalog.media_genres.synced_at IS 'When the row was written.';
COMMENT ON COLUMN catalog.media_genres.run_id IS 'Run that wrote the row.';

-- episodes --------------------------------------------------------------------------------------

CREATE TABLE catalog.episodes (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source            text        NOT NULL,
    source_id         text        NOT NULL,
    source_updated_at timestamptz,
    content_hash      bytea       NOT NULL,
    synced_at         timestamptz NOT NULL DEFAULT now(),
    deleted_at        timestamptz,
    run_id            bigint,
    media_id          bigint      REFERENCES catalog.media (id) ON DELETE SET NULL,
    media_source_id   text,
    number            integer,
    season_number     integer,
    relative_number   integer,
    title             text,
    titles            jsonb,
    synopsis          text,
    air_date          date,
    length_minutes    integer     CHECK (length_minutes > 0),
    thumbnail_url     text,
    UNIQUE (source, source_id)
);
CREATE INDEX episodes_media_idx ON catalog.episodes (media_id, number);
CREATE INDEX episodes_media_source_idx ON catalog.episodes (source, media_source_id);
CREATE INDEX episodes_air_date_idx ON catalog.episodes (air_date);

COMMENT ON TABLE catalog.episodes IS 'Episodes of an anime (Kitsu episodes).';
COMMENT ON COLUMN catalog.episodes.id IS 'Surrogate key.';
COMMENT ON COLUMN catalog.episodes.source IS 'Configured source name.';
COMMENT ON COLUMN catalog.episodes.source_id IS 'Episode id in the source.';
COMMENT ON COLUMN catalog.episodes.source_updated_at IS 'The source''s last-modified time.';
COMMENT ON COLUMN catalog.episodes.content_hash IS 'Hash of the normalised content.';
COMMENT ON COLUMN catalog.episodes.synced_at IS 'When the row was last written.';
COMMENT ON COLUMN catalog.episodes.deleted_at IS 'Set when a completed full scan no longer saw it.';
COMMENT ON COLUMN catalog.episodes.run_id IS 'Run that last wrote the row.';
COMMENT ON COLUMN catalog.episodes.media_id IS 'The media; NULL until it is loaded or when the page carried no media linkage.';
COMMENT ON COLUMN catalog.episodes.media_source_id IS 'The media''s source_id (anime/12 for Kitsu).';
COMMENT ON COLUMN catalog.episodes.number IS 'Episode number across the series (0 is a real number: prologues).';
COMMENT ON COLUMN catalog.episodes.season_number IS 'Season number, when the source splits seasons.';
COMMENT ON COLUMN catalog.episodes.relative_number IS 'Number within its season.';
COMMENT ON COLUMN catalog.episodes.title IS 'Display title: English, else romaji, else native, else canonical.';
COMMENT ON COLUMN catalog.episodes.titles IS 'Every non-empty title by locale, as the source gives them (JSON object).';
COMMENT ON COLUMN catalog.episodes.synopsis IS 'Synopsis as plain text (same HTML rule as media.synopsis).';
COMMENT ON COLUMN catalog.episodes.air_date IS 'Air date.';
COMMENT ON COLUMN catalog.episodes.length_minutes IS 'Length in minutes; NULL when unknown.';
COMMENT ON COLUMN catalog.episodes.thumbnail_url IS 'Largest thumbnail URL.';

-- characters + media_characters -----------------------------------------------------------------

CREATE TABLE catalog.characters (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source            text        NOT NULL,
    source_id         text        NOT NULL,
    source_updated_at timestamptz,
    content_hash      bytea       NOT NULL,
    synced_at         timestamptz NOT NULL DEFAULT now(),
    deleted_at        timestamptz,
    run_id            bigint,
    name              text        NOT NULL,
    name_native       text,
    other_names       jsonb,
    description       text,
    image_url         text,
    UNIQUE (source, source_id)
);
CREATE INDEX characters_name_lower_idx ON catalog.characters (lower(name));

COMMENT ON TABLE catalog.characters IS 'Fictional characters (Kitsu characters, AniList characters).';
COMMENT ON COLUMN catalog.characters.id IS 'Surrogate key.';
COMMENT ON COLUMN catalog.characters.source IS 'Configured source name.';
COMMENT ON COLUMN catalog.characters.source_id IS 'Character id in the source.';
COMMENT ON COLUMN catalog.characters.source_updated_at IS 'The source''s last-modified time.';
COMMENT ON COLUMN catalog.characters.content_hash IS 'Hash of the normalised content.';
COMMENT ON COLUMN catalog.characters.synced_at IS 'When the row was last written.';
COMMENT ON COLUMN catalog.characters.deleted_at IS 'Set when a completed full scan no longer saw it.';
COMMENT ON COLUMN catalog.characters.run_id IS 'Run that last wrote the row.';
COMMENT ON COLUMN catalog.characters.name IS 'Display name (canonical / full name).';
COMMENT ON COLUMN catalog.characters.name_native IS 'Name in its original script.';
COMMENT ON COLUMN catalog.characters.other_names IS 'Other names and aliases (JSON array of strings).';
COMMENT ON COLUMN catalog.characters.description IS 'Description as plain text (same HTML rule as media.synopsis).';
COMMENT ON COLUMN catalog.characters.image_url IS 'Largest image URL.';

CREATE TABLE catalog.media_characters (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source              text        NOT NULL,
    source_id           text        NOT NULL,
    source_updated_at   timestamptz,
    content_hash        bytea       NOT NULL,
    synced_at           timestamptz NOT NULL DEFAULT now(),
    deleted_at          timestamptz,
    run_id              bigint,
    media_id            bigint      REFERENCES catalog.media (id) ON DELETE SET NULL,
    media_source_id     text,
    character_id        bigint      REFERENCES catalog.characters (id) ON DELETE SET NULL,
    character_source_id text,
    role                text        CHECK (role IN ('main', 'supporting', 'background', 'unknown')),
    UNIQUE (source, source_id)
);
CREATE INDEX media_characters_media_idx ON catalog.media_characters (media_id);
CREATE INDEX media_characters_character_idx ON catalog.media_characters (character_id);
CREATE INDEX media_characters_media_source_idx ON catalog.media_characters (source, media_source_id);

COMMENT ON TABLE catalog.media_characters IS 'A character''s appearance in a media, with its role.';
COMMENT ON COLUMN catalog.media_characters.id IS 'Surrogate key.';
COMMENT ON COLUMN catalog.media_characters.source IS 'Configured source name.';
COMMENT ON COLUMN catalog.media_characters.source_id IS 'Kitsu media-character id; AniList "<media id>:<character id>".';
COMMENT ON COLUMN catalog.media_characters.source_updated_at IS 'The source''s last-modified time.';
COMMENT ON COLUMN catalog.media_characters.content_hash IS 'Hash of the normalised content.';
COMMENT ON COLUMN catalog.media_characters.synced_at IS 'When the row was last written.';
COMMENT ON COLUMN catalog.media_characters.deleted_at IS 'Set when a completed full scan no longer saw it.';
COMMENT ON COLUMN catalog.media_characters.run_id IS 'Run that last wrote the row.';
COMMENT ON COLUMN catalog.media_characters.media_id IS 'The media; NULL until it is loaded.';
COMMENT ON COLUMN catalog.media_characters.media_source_id IS 'The media''s source_id.';
COMMENT ON COLUMN catalog.media_characters.character_id IS 'The character; NULL until it is loaded.';
COMMENT ON COLUMN catalog.media_characters.character_source_id IS 'The character''s source_id.';
COMMENT ON COLUMN catalog.media_characters.role IS 'main, supporting, background; unknown = unrecognised value; NULL = not given.';

-- people + media_staff --------------------------------------------------------------------------

CREATE TABLE catalog.people (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source            text        NOT NULL,
    source_id         text        NOT NULL,
    source_updated_at timestamptz,
    content_hash      bytea       NOT NULL,
    synced_at         timestamptz NOT NULL DEFAULT now(),
    deleted_at        timestamptz,
    run_id            bigint,
    name              text        NOT NULL,
    name_native       text,
    language          text,
    description       text,
    image_url         text,
    UNIQUE (source, source_id)
);
CREATE INDEX people_name_lower_idx ON catalog.people (lower(name));

COMMENT ON TABLE catalog.people IS 'Real people credited on a media: staff and voice actors.';
COMMENT ON COLUMN catalog.people.id IS 'Surrogate key.';
COMMENT ON COLUMN catalog.people.source IS 'Configured source name.';
COMMENT ON COLUMN catalog.people.source_id IS 'Person (staff) id in the source.';
COMMENT ON COLUMN catalog.people.source_updated_at IS 'The source''s last-modified time.';
COMMENT ON COLUMN catalog.people.content_hash IS 'Hash of the normalised content.';
COMMENT ON COLUMN catalog.people.synced_at IS 'When the row was last written.';
COMMENT ON COLUMN catalog.people.deleted_at IS 'Set when a completed full scan no longer saw it.';
COMMENT ON COLUMN catalog.people.run_id IS 'Run that last wrote the row.';
COMMENT ON COLUMN catalog.people.name IS 'Display (full) name.';
COMMENT ON COLUMN catalog.people.name_native IS 'Name in its original script.';
COMMENT ON COLUMN catalog.people.language IS 'Working language as the source writes it (JAPANESE, Japanese, ...).';
COMMENT ON COLUMN catalog.people.description IS 'Description as plain text.';
COMMENT ON COLUMN catalog.people.image_url IS 'Largest image URL.';

CREATE TABLE catalog.media_staff (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source            text        NOT NULL,
    source_id         text        NOT NULL,
    source_updated_at timestamptz,
    content_hash      bytea       NOT NULL,
    synced_at         timestamptz NOT NULL DEFAULT now(),
    deleted_at        timestamptz,
    run_id            bigint,
    media_id          bigint      REFERENCES catalog.media (id) ON DELETE SET NULL,
    media_source_id   text,
    person_id         bigint      REFERENCES catalog.people (id) ON DELETE SET NULL,
    person_source_id  text,
    role              text,
    UNIQUE (source, source_id)
);
CREATE INDEX media_staff_media_idx ON catalog.media_staff (media_id);
CREATE INDEX media_staff_person_idx ON catalog.media_staff (person_id);
CREATE INDEX media_staff_media_source_idx ON catalog.media_staff (source, media_source_id);

COMMENT ON TABLE catalog.media_staff IS 'A person''s credit on a media, with the role as the source writes it.';
COMMENT ON COLUMN catalog.media_staff.id IS 'Surrogate key.';
COMMENT ON COLUMN catalog.media_staff.source IS 'Configured source name.';
COMMENT ON COLUMN catalog.media_staff.source_id IS 'AniList staff edge id; v1 "<media id>:<person id>:<role>".';
COMMENT ON COLUMN catalog.media_staff.source_updated_at IS 'The source''s last-modified time.';
COMMENT ON COLUMN catalog.media_staff.content_hash IS 'Hash of the normalised content.';
COMMENT ON COLUMN catalog.media_staff.synced_at IS 'When the row was last written.';
COMMENT ON COLUMN catalog.media_staff.deleted_at IS 'Set when a completed full scan no longer saw it.';
COMMENT ON COLUMN catalog.media_staff.run_id IS 'Run that last wrote the row.';
COMMENT ON COLUMN catalog.media_staff.media_id IS 'The media; NULL until it is loaded.';
COMMENT ON COLUMN catalog.media_staff.media_source_id IS 'The media''s source_id.';
COMMENT ON COLUMN catalog.media_staff.person_id IS 'The person; NULL until it is loaded.';
COMMENT ON COLUMN catalog.media_staff.person_source_id IS 'The person''s source_id.';
COMMENT ON COLUMN catalog.media_staff.role IS 'Credit as the source writes it (Director, ADR Director (English), ...).';

-- external_ids ----------------------------------------------------------------------------------

CREATE TABLE catalog.external_ids (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source            text        NOT NULL,
    source_id         text        NOT NULL,
    source_updated_at timestamptz,
    content_hash      bytea       NOT NULL,
    synced_at         timestamptz NOT NULL DEFAULT now(),
    deleted_at        timestamptz,
    run_id            bigint,
    media_id          bigint      REFERENCES catalog.media (id) ON DELETE SET NULL,
    media_source_id   text,
    site              text        NOT NULL,
    external_id       text        NOT NULL,
    UNIQUE (source, source_id)
);
CREATE INDEX external_ids_media_idx ON catalog.external_ids (source, media_source_id, site);
CREATE INDEX external_ids_site_idx ON catalog.external_ids (site, external_id);

COMMENT ON TABLE catalog.external_ids IS 'Ids of a media on other sites: Kitsu mappings, AniList idMal and AniList''s own id.';
COMMENT ON COLUMN catalog.external_ids.id IS 'Surrogate key.';
COMMENT ON COLUMN catalog.external_ids.source IS 'Configured source name (the source that states the mapping).';
COMMENT ON COLUMN catalog.external_ids.source_id IS 'Kitsu mapping id; AniList "<media id>:<site>" (5114:myanimelist/anime).';
COMMENT ON COLUMN catalog.external_ids.source_updated_at IS 'The source''s last-modified time.';
COMMENT ON COLUMN catalog.external_ids.content_hash IS 'Hash of the normalised content.';
COMMENT ON COLUMN catalog.external_ids.synced_at IS 'When the row was last written.';
COMMENT ON COLUMN catalog.external_ids.deleted_at IS 'Set when a completed full scan no longer saw it.';
COMMENT ON COLUMN catalog.external_ids.run_id IS 'Run that last wrote the row.';
COMMENT ON COLUMN catalog.external_ids.media_id IS 'The media; NULL until it is loaded.';
COMMENT ON COLUMN catalog.external_ids.media_source_id IS 'The media''s source_id.';
COMMENT ON COLUMN catalog.external_ids.site IS 'Kitsu externalSite vocabulary: myanimelist/anime, myanimelist/manga, anilist/anime, anilist/manga, anidb, thetvdb, ...';
COMMENT ON COLUMN catalog.external_ids.external_id IS 'The id on that site, as text.';

-- works -----------------------------------------------------------------------------------------

CREATE VIEW catalog.works AS
WITH ids AS (
    SELECT source, media_source_id, site, min(external_id) AS external_id
      FROM catalog.external_ids
     WHERE deleted_at IS NULL
       AND site IN ('anilist/anime', 'anilist/manga', 'myanimelist/anime', 'myanimelist/manga')
     GROUP BY source, media_source_id, site
), live AS (
    SELECT m.id, m.source, m.source_kind, m.source_id, m.kind, m.format, m.title, m.title_romaji,
           m.title_english, m.status, m.start_date, m.start_precision, m.season, m.season_year,
           m.episode_count, m.chapter_count, m.average_score, m.popularity, m.is_adult,
           al.external_id AS mapped_anilist_id, mal.external_id AS mal_id
      FROM catalog.media m
      LEFT JOIN ids al ON al.source = m.source AND al.media_source_id = m.source_id
                      AND al.site = 'anilist/' || m.kind
      LEFT JOIN ids mal ON mal.source = m.source AND mal.media_source_id = m.source_id
                       AND mal.site = 'myanimelist/' || m.kind
     WHERE m.deleted_at IS NULL
), anilist_by_mal AS (
    -- The AniList media that state a MAL id: the bridge for Kitsu rows without an anilist mapping.
    SELECT kind, mal_id, min(source_id) AS anilist_id
      FROM live
     WHERE source_kind IN ('anilist', 'anilist_v1') AND mal_id IS NOT NULL
     GROUP BY kind, mal_id
), anchored AS (
    SELECT l.*,
           CASE WHEN l.source_kind IN ('anilist', 'anilist_v1') THEN l.source_id
                ELSE coalesce(l.mapped_anilist_id, b.anilist_id)
           END AS anilist_id
      FROM live l
      LEFT JOIN anilist_by_mal b ON b.kind = l.kind AND b.mal_id = l.mal_id
), keyed AS (
    SELECT a.*,
           CASE WHEN a.anilist_id IS NOT NULL THEN 'anilist:' || a.kind || ':' || a.anilist_id
                WHEN a.mal_id IS NOT NULL THEN 'myanimelist:' || a.kind || ':' || a.mal_id
                ELSE 'media:' || a.source || ':' || a.source_id
           END AS work_id
      FROM anchored a
)
SELECT work_id,
       CASE WHEN source_kind IN ('anilist', 'anilist_v1') THEN 'anilist_id'
            WHEN mapped_anilist_id IS NOT NULL THEN 'anilist_mapping'
            WHEN mal_id IS NOT NULL THEN 'myanimelist_id'
            ELSE 'unmatched'
       END AS matched_by,
       id AS media_id, source, source_kind, source_id, kind, format, title, title_romaji, title_english,
       status, start_date, start_precision, season, season_year, episode_count, chapter_count,
       average_score, popularity, is_adult, anilist_id, mal_id AS myanimelist_id,
       count(*) OVER (PARTITION BY work_id) AS member_count
  FROM keyed;

COMMENT ON VIEW catalog.works IS 'One row per live media, with the work it belongs to: rows of one work across sources share work_id. A Kitsu media joins an AniList media through its anilist/<kind> mapping, else through a MyAnimeList id shared with an AniList media (Kitsu myanimelist/<kind> mapping = AniList idMal). Kinds never mix; a shared title alone never merges.';
COMMENT ON COLUMN catalog.works.work_id IS 'Stable work key: anilist:<kind>:<AniList id> when an AniList id is known, else myanimelist:<kind>:<MAL id>, else media:<source>:<source_id> (a work seen by one row only).';
COMMENT ON COLUMN catalog.works.matched_by IS 'Why the row is in its work: anilist_id (an AniList row), anilist_mapping (Kitsu anilist/<kind> mapping), myanimelist_id (shared MAL id), unmatched.';
COMMENT ON COLUMN catalog.works.media_id IS 'catalog.media.id of this member.';
COMMENT ON COLUMN catalog.works.source IS 'Configured source name of this member.';
COMMENT ON COLUMN catalog.works.source_kind IS 'Connector kind of this member (kitsu, anilist, anilist_v1).';
COMMENT ON COLUMN catalog.works.source_id IS 'The member''s source_id.';
COMMENT ON COLUMN catalog.works.kind IS 'anime or manga (identical within a work).';
COMMENT ON COLUMN catalog.works.format IS 'The member''s format.';
COMMENT ON COLUMN catalog.works.title IS 'The member''s display title.';
COMMENT ON COLUMN catalog.works.title_romaji IS 'The member''s romaji title.';
COMMENT ON COLUMN catalog.works.title_english IS 'The member''s English title.';
COMMENT ON COLUMN catalog.works.status IS 'The member''s status.';
COMMENT ON COLUMN catalog.works.start_date IS 'The member''s start date.';
COMMENT ON COLUMN catalog.works.start_precision IS 'Precision of start_date.';
COMMENT ON COLUMN catalog.works.season IS 'The member''s season.';
COMMENT ON COLUMN catalog.works.season_year IS 'The member''s season year.';
COMMENT ON COLUMN catalog.works.episode_count IS 'The member''s episode count.';
COMMENT ON COLUMN catalog.works.chapter_count IS 'The member''s chapter count.';
COMMENT ON COLUMN catalog.works.average_score IS 'The member''s score (0-100); compare sources by self-joining on work_id.';
COMMENT ON COLUMN catalog.works.popularity IS 'The member''s popularity.';
COMMENT ON COLUMN catalog.works.is_adult IS 'The member''s adult flag.';
COMMENT ON COLUMN catalog.works.anilist_id IS 'AniList id the member is anchored to (own id, mapping, or via MAL), if any.';
COMMENT ON COLUMN catalog.works.myanimelist_id IS 'MyAnimeList id the member states, if any.';
COMMENT ON COLUMN catalog.works.member_count IS 'Number of live media rows in this work.';
