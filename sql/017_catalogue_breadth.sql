-- The catalogue beyond media, titles and genres: companies (studios, producers, licensors) and the
-- media they worked on, relations between media (sequel, adaptation, ...), streaming and info
-- links, tags with rank and spoiler flag, and the voice actors of a character's appearance.
--
-- Every table is an entity table with the common columns (id, source, source_id,
-- source_updated_at, content_hash, synced_at, deleted_at, run_id), unique on (source, source_id),
-- soft-deleted by the scan rules of its stream. References carry the surrogate id (NULL until the
-- target is loaded, SET NULL when it goes) and the target's natural key (*_source_id, same source),
-- as in sql/002_catalog.sql.

-- companies -------------------------------------------------------------------------------------

CREATE TABLE catalog.companies (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source              text        NOT NULL,
    source_id           text        NOT NULL,
    source_updated_at   timestamptz,
    content_hash        bytea       NOT NULL,
    synced_at           timestamptz NOT NULL DEFAULT now(),
    deleted_at          timestamptz,
    run_id              bigint,
    name                text        NOT NULL,
    site_url            text,
    is_animation_studio boolean,
    UNIQUE (source, source_id)
);
CREATE INDEX companies_name_lower_idx ON catalog.companies (lower(name));

COMMENT ON TABLE catalog.companies IS 'Companies credited on a media: animation studios, producers, licensors, publishers (Kitsu producers, AniList studios).';
COMMENT ON COLUMN catalog.companies.id IS 'Surrogate key.';
COMMENT ON COLUMN catalog.companies.source IS 'Configured source name.';
COMMENT ON COLUMN catalog.companies.source_id IS 'Company id in the source (Kitsu producer id, AniList studio id).';
COMMENT ON COLUMN catalog.companies.source_updated_at IS 'The source''s last-modified time, when it has one.';
COMMENT ON COLUMN catalog.companies.content_hash IS 'Hash of the normalised content.';
COMMENT ON COLUMN catalog.companies.synced_at IS 'When the row was last written.';
COMMENT ON COLUMN catalog.companies.deleted_at IS 'Set when a completed full scan no longer saw it.';
COMMENT ON COLUMN catalog.companies.run_id IS 'Run that last wrote the row.';
COMMENT ON COLUMN catalog.companies.name IS 'Company name as the source writes it (Sunrise, Aniplex of America).';
COMMENT ON COLUMN catalog.companies.site_url IS 'The company''s page on the source site (AniList siteUrl); NULL when the source has none (Kitsu).';
COMMENT ON COLUMN catalog.companies.is_animation_studio IS 'true for an animation studio (AniList isAnimationStudio); NULL when the source does not say (Kitsu: see media_companies.role).';

-- media_companies -------------------------------------------------------------------------------

CREATE TABLE catalog.media_companies (
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
    company_id          bigint      REFERENCES catalog.companies (id) ON DELETE SET NULL,
    company_source_id   text,
    role                text        CHECK (role IN ('studio', 'producer', 'licensor', 'serialization', 'unknown')),
    is_main             boolean,
    UNIQUE (source, source_id)
);
CREATE INDEX media_companies_media_idx ON catalog.media_companies (media_id);
CREATE INDEX media_companies_company_idx ON catalog.media_companies (company_id);
CREATE INDEX media_companies_media_source_idx ON catalog.media_companies (source, media_source_id);
CREATE INDEX media_companies_company_source_idx ON catalog.media_companies (source, company_source_id);

COMMENT ON TABLE catalog.media_companies IS 'A company''s part in a media, with its role (Kitsu media-productions, AniList studio edges).';
COMMENT ON COLUMN catalog.media_companies.id IS 'Surrogate key.';
COMMENT ON COLUMN catalog.media_companies.source IS 'Configured source name.';
COMMENT ON COLUMN catalog.media_companies.source_id IS 'Kitsu media-production id; AniList "<media id>:<studio id>".';
COMMENT ON COLUMN catalog.media_companies.source_updated_at IS 'The source''s last-modified time.';
COMMENT ON COLUMN catalog.media_companies.content_hash IS 'Hash of the normalised content.';
COMMENT ON COLUMN catalog.media_companies.synced_at IS 'When the row was last written.';
COMMENT ON COLUMN catalog.media_companies.deleted_at IS 'Set when a completed full scan no longer saw it.';
COMMENT ON COLUMN catalog.media_companies.run_id IS 'Run that last wrote the row.';
COMMENT ON COLUMN catalog.media_companies.media_id IS 'The media; NULL until it is loaded.';
COMMENT ON COLUMN catalog.media_companies.media_source_id IS 'The media''s source_id (anime/12 for Kitsu).';
COMMENT ON COLUMN catalog.media_companies.company_id IS 'The company; NULL until it is loaded.';
COMMENT ON COLUMN catalog.media_companies.company_source_id IS 'The company''s source_id.';
COMMENT ON COLUMN catalog.media_companies.role IS 'studio (animation studio), producer, licensor, serialization (the magazine a manga runs in); unknown = unrecognised value; NULL = not given. AniList studio edges are studio when isAnimationStudio, else producer.';
COMMENT ON COLUMN catalog.media_companies.is_main IS 'The main studio of the media (AniList isMain); NULL when the source does not say (Kitsu).';

-- media_relations -------------------------------------------------------------------------------

CREATE TABLE catalog.media_relations (
    id                      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source                  text        NOT NULL,
    source_id               text        NOT NULL,
    source_updated_at       timestamptz,
    content_hash            bytea       NOT NULL,
    synced_at               timestamptz NOT NULL DEFAULT now(),
    deleted_at              timestamptz,
    run_id                  bigint,
    media_id                bigint      REFERENCES catalog.media (id) ON DELETE SET NULL,
    media_source_id         text,
    related_media_id        bigint      REFERENCES catalog.media (id) ON DELETE SET NULL,
    related_media_source_id text,
    relation                text        CHECK (relation IN ('sequel', 'prequel', 'adaptation', 'source', 'side_story',
                                                            'parent', 'alternative', 'spin_off', 'summary',
                                                            'full_story', 'character', 'compilation', 'contains',
                                                            'other', 'unknown')),
    UNIQUE (source, source_id)
);
CREATE INDEX media_relations_media_idx ON catalog.media_relations (media_id);
CREATE INDEX media_relations_related_idx ON catalog.media_relations (related_media_id);
CREATE INDEX media_relations_media_source_idx ON catalog.media_relations (source, media_source_id);
CREATE INDEX media_relations_related_source_idx ON catalog.media_relations (source, related_media_source_id);

COMMENT ON TABLE catalog.media_relations IS 'A directed relation between two media of one source: related_media is the <relation> of media (media_id -> sequel -> related_media_id). Kitsu media-relationships, AniList relation edges.';
COMMENT ON COLUMN catalog.media_relations.id IS 'Surrogate key.';
COMMENT ON COLUMN catalog.media_relations.source IS 'Configured source name.';
COMMENT ON COLUMN catalog.media_relations.source_id IS 'Kitsu media-relationship id; AniList "<media id>:<related id>:<relation>".';
COMMENT ON COLUMN catalog.media_relations.source_updated_at IS 'The source''s last-modified time.';
COMMENT ON COLUMN catalog.media_relations.content_hash IS 'Hash of the normalised content.';
COMMENT ON COLUMN catalog.media_relations.synced_at IS 'When the row was last written.';
COMMENT ON COLUMN catalog.media_relations.deleted_at IS 'Set when a completed full scan no longer saw it.';
COMMENT ON COLUMN catalog.media_relations.run_id IS 'Run that last wrote the row.';
COMMENT ON COLUMN catalog.media_relations.media_id IS 'The media the relation starts from (Kitsu source); NULL until it is loaded.';
COMMENT ON COLUMN catalog.media_relations.media_source_id IS 'That media''s source_id.';
COMMENT ON COLUMN catalog.media_relations.related_media_id IS 'The related media (Kitsu destination); NULL until it is loaded, and while the source serves it to no scan (a related work missing from the catalogue).';
COMMENT ON COLUMN catalog.media_relations.related_media_source_id IS 'The related media''s source_id; set even when that media is not in the catalogue.';
COMMENT ON COLUMN catalog.media_relations.relation IS 'What the related media is to the media: sequel, prequel, adaptation, source, side_story, parent, alternative (Kitsu alternative_setting / alternative_version), spin_off, summary, full_story, character, compilation, contains, other; unknown = unrecognised value; NULL = not given.';

-- streaming_links -------------------------------------------------------------------------------

CREATE TABLE catalog.streaming_links (
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
    url               text        NOT NULL,
    kind              text        CHECK (kind IN ('streaming', 'info', 'social', 'other')),
    subtitles         text[],
    dubs              text[],
    UNIQUE (source, source_id)
);
CREATE INDEX streaming_links_media_idx ON catalog.streaming_links (media_id);
CREATE INDEX streaming_links_media_source_idx ON catalog.streaming_links (source, media_source_id);
CREATE INDEX streaming_links_site_idx ON catalog.streaming_links (site);

COMMENT ON TABLE catalog.streaming_links IS 'Where a media can be watched or read, and other external pages about it (Kitsu streaming-links with their streamer, AniList externalLinks).';
COMMENT ON COLUMN catalog.streaming_links.id IS 'Surrogate key.';
COMMENT ON COLUMN catalog.streaming_links.source IS 'Configured source name.';
COMMENT ON COLUMN catalog.streaming_links.source_id IS 'Kitsu streaming-link id; AniList external link id.';
COMMENT ON COLUMN catalog.streaming_links.source_updated_at IS 'The source''s last-modified time.';
COMMENT ON COLUMN catalog.streaming_links.content_hash IS 'Hash of the normalised content.';
COMMENT ON COLUMN catalog.streaming_links.synced_at IS 'When the row was last written.';
COMMENT ON COLUMN catalog.streaming_links.deleted_at IS 'Set when a completed full scan no longer saw it.';
COMMENT ON COLUMN catalog.streaming_links.run_id IS 'Run that last wrote the row.';
COMMENT ON COLUMN catalog.streaming_links.media_id IS 'The media; NULL until it is loaded.';
COMMENT ON COLUMN catalog.streaming_links.media_source_id IS 'The media''s source_id.';
COMMENT ON COLUMN catalog.streaming_links.site IS 'Name of the site as the source writes it (Kitsu streamer siteName, AniList site): Crunchyroll, Netflix, ...';
COMMENT ON COLUMN catalog.streaming_links.url IS 'Address of the media''s page on that site.';
COMMENT ON COLUMN catalog.streaming_links.kind IS 'streaming (watch or read there), info, social, other (AniList type STREAMING / INFO / SOCIAL); Kitsu streaming links are all streaming; NULL = not given.';
COMMENT ON COLUMN catalog.streaming_links.subtitles IS 'Subtitle languages offered, as the source writes them (Kitsu subs: en, es, ...); NULL when the source does not say.';
COMMENT ON COLUMN catalog.streaming_links.dubs IS 'Dub (audio) languages offered, as the source writes them (Kitsu dubs: ja, en, ...); NULL when the source does not say.';

-- media_tags ------------------------------------------------------------------------------------

CREATE TABLE catalog.media_tags (
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
    name              text        NOT NULL,
    category          text,
    rank              integer     CHECK (rank BETWEEN 0 AND 100),
    is_spoiler        boolean,
    UNIQUE (source, source_id)
);
CREATE INDEX media_tags_media_idx ON catalog.media_tags (media_id);
CREATE INDEX media_tags_media_source_idx ON catalog.media_tags (source, media_source_id);
CREATE INDEX media_tags_name_lower_idx ON catalog.media_tags (lower(name));

COMMENT ON TABLE catalog.media_tags IS 'Descriptive tags of a media, ranked by how well they fit (AniList tags); genres stay in media_genres.';
COMMENT ON COLUMN catalog.media_tags.id IS 'Surrogate key.';
COMMENT ON COLUMN catalog.media_tags.source IS 'Configured source name.';
COMMENT ON COLUMN catalog.media_tags.source_id IS 'AniList "<media id>:<tag id>".';
COMMENT ON COLUMN catalog.media_tags.source_updated_at IS 'The source''s last-modified time.';
COMMENT ON COLUMN catalog.media_tags.content_hash IS 'Hash of the normalised content.';
COMMENT ON COLUMN catalog.media_tags.synced_at IS 'When the row was last written.';
COMMENT ON COLUMN catalog.media_tags.deleted_at IS 'Set when a completed full scan no longer saw it.';
COMMENT ON COLUMN catalog.media_tags.run_id IS 'Run that last wrote the row.';
COMMENT ON COLUMN catalog.media_tags.media_id IS 'The media; NULL until it is loaded.';
COMMENT ON COLUMN catalog.media_tags.media_source_id IS 'The media''s source_id.';
COMMENT ON COLUMN catalog.media_tags.name IS 'Tag name (Time Travel, Female Protagonist).';
COMMENT ON COLUMN catalog.media_tags.category IS 'The source''s group of the tag (AniList category: Theme-Action, Cast-Main Cast, ...); NULL when none.';
COMMENT ON COLUMN catalog.media_tags.rank IS 'How well the tag fits this media, 0-100 (AniList rank: a percentage of votes); NULL when not given.';
COMMENT ON COLUMN catalog.media_tags.is_spoiler IS 'The tag reveals the plot of this media (AniList isMediaSpoiler or isGeneralSpoiler); NULL when not given.';

-- character_voices ------------------------------------------------------------------------------

CREATE TABLE catalog.character_voices (
    id                        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source                    text        NOT NULL,
    source_id                 text        NOT NULL,
    source_updated_at         timestamptz,
    content_hash              bytea       NOT NULL,
    synced_at                 timestamptz NOT NULL DEFAULT now(),
    deleted_at                timestamptz,
    run_id                    bigint,
    media_character_id        bigint      REFERENCES catalog.media_characters (id) ON DELETE SET NULL,
    media_character_source_id text,
    person_id                 bigint      REFERENCES catalog.people (id) ON DELETE SET NULL,
    person_source_id          text,
    language                  text,
    UNIQUE (source, source_id)
);
CREATE INDEX character_voices_media_character_idx ON catalog.character_voices (media_character_id);
CREATE INDEX character_voices_media_character_source_idx ON catalog.character_voices (source, media_character_source_id);
CREATE INDEX character_voices_person_idx ON catalog.character_voices (person_id);

COMMENT ON TABLE catalog.character_voices IS 'Who voices a character in one media (one row per voice actor and language): a person on a media_characters row (Kitsu character-voices, AniList voiceActors).';
COMMENT ON COLUMN catalog.character_voices.id IS 'Surrogate key.';
COMMENT ON COLUMN catalog.character_voices.source IS 'Configured source name.';
COMMENT ON COLUMN catalog.character_voices.source_id IS 'Kitsu character-voice id; AniList "<media id>:<character id>:<staff id>".';
COMMENT ON COLUMN catalog.character_voices.source_updated_at IS 'The source''s last-modified time.';
COMMENT ON COLUMN catalog.character_voices.content_hash IS 'Hash of the normalised content.';
COMMENT ON COLUMN catalog.character_voices.synced_at IS 'When the row was last written.';
COMMENT ON COLUMN catalog.character_voices.deleted_at IS 'Set when a completed full scan no longer saw it.';
COMMENT ON COLUMN catalog.character_voices.run_id IS 'Run that last wrote the row.';
COMMENT ON COLUMN catalog.character_voices.media_character_id IS 'The character''s appearance in a media (catalog.media_characters.id); NULL until it is loaded.';
COMMENT ON COLUMN catalog.character_voices.media_character_source_id IS 'That media_characters row''s source_id.';
COMMENT ON COLUMN catalog.character_voices.person_id IS 'The voice actor (catalog.people.id); NULL until it is loaded.';
COMMENT ON COLUMN catalog.character_voices.person_source_id IS 'The voice actor''s source_id.';
COMMENT ON COLUMN catalog.character_voices.language IS 'Language of the voice as the source writes it (Kitsu locale ja_jp / en_us, AniList JAPANESE / English); NULL when not given.';
