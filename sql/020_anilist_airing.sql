-- The next episode of an airing media and when it airs (AniList nextAiringEpisode).
--
-- A table of its own rather than columns on catalog.media: one row per media that has an episode
-- scheduled (source_id = the media's source_id), soft-deleted when its media's document no longer
-- schedules one (the show ended, or the schedule was withdrawn), so sources that state no schedule
-- (Kitsu, AniList v1) leave catalog.media as it is. The air time is absolute: timeUntilAiring, a
-- countdown that changes on every call, is never fetched, so the row's content hash moves only
-- when the schedule does (about once a week for an airing show).

CREATE TABLE catalog.next_episodes (
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
    episode           integer     CHECK (episode >= 0),
    airing_at         timestamptz NOT NULL,
    UNIQUE (source, source_id)
);
CREATE INDEX next_episodes_media_idx ON catalog.next_episodes (media_id);
CREATE INDEX next_episodes_media_source_idx ON catalog.next_episodes (source, media_source_id);
CREATE INDEX next_episodes_airing_at_idx ON catalog.next_episodes (airing_at);

COMMENT ON TABLE catalog.next_episodes IS 'The next episode of an airing media and when it airs (AniList nextAiringEpisode), as of the media''s last fetch: the nightly walk re-reads only media whose updatedAt moved, a full scan refreshes every one. One row per media with an episode scheduled.';
COMMENT ON COLUMN catalog.next_episodes.id IS 'Surrogate key.';
COMMENT ON COLUMN catalog.next_episodes.source IS 'Configured source name.';
COMMENT ON COLUMN catalog.next_episodes.source_id IS 'The media''s source_id (AniList media id): one row per media.';
COMMENT ON COLUMN catalog.next_episodes.source_updated_at IS 'The source''s last-modified time; NULL (AniList gives none for a schedule).';
COMMENT ON COLUMN catalog.next_episodes.content_hash IS 'Hash of the normalised content.';
COMMENT ON COLUMN catalog.next_episodes.synced_at IS 'When the row was last written.';
COMMENT ON COLUMN catalog.next_episodes.deleted_at IS 'Set when the media''s re-fetched document schedules no episode any more, or the media itself is gone.';
COMMENT ON COLUMN catalog.next_episodes.run_id IS 'Run that last wrote the row.';
COMMENT ON COLUMN catalog.next_episodes.media_id IS 'The media; NULL until it is loaded.';
COMMENT ON COLUMN catalog.next_episodes.media_source_id IS 'The media''s source_id.';
COMMENT ON COLUMN catalog.next_episodes.episode IS 'Number of the episode that airs next (AniList nextAiringEpisode.episode); NULL when not given.';
COMMENT ON COLUMN catalog.next_episodes.airing_at IS 'When it airs (AniList nextAiringEpisode.airingAt, unix seconds, stored as an absolute time).';

-- An AniList GraphQL media document carries its nested rows (characters, credits, studios,
-- relations, tags, links, external ids, next episode): a re-fetch replaces them (the loader's
-- Batch.replaced), and a media that is gone takes them with it. Sources whose nested rows come
-- from streams of their own (Kitsu's credits, productions, relations, streaming links) delete
-- those by their own scans and are left alone here. They come back when the media does (its
-- document is loaded again).

CREATE FUNCTION catalog.retire_nested_rows() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE catalog.character_voices v SET deleted_at = NEW.deleted_at
      FROM catalog.media_characters c
     WHERE c.source = NEW.source AND c.media_source_id = NEW.source_id
       AND v.source = c.source AND v.media_character_source_id = c.source_id AND v.deleted_at IS NULL;
    UPDATE catalog.media_characters SET deleted_at = NEW.deleted_at
     WHERE source = NEW.source AND media_source_id = NEW.source_id AND deleted_at IS NULL;
    UPDATE catalog.media_staff SET deleted_at = NEW.deleted_at
     WHERE source = NEW.source AND media_source_id = NEW.source_id AND deleted_at IS NULL;
    UPDATE catalog.media_companies SET deleted_at = NEW.deleted_at
     WHERE source = NEW.source AND media_source_id = NEW.source_id AND deleted_at IS NULL;
    UPDATE catalog.media_relations SET deleted_at = NEW.deleted_at
     WHERE source = NEW.source AND media_source_id = NEW.source_id AND deleted_at IS NULL;
    UPDATE catalog.media_tags SET deleted_at = NEW.deleted_at
     WHERE source = NEW.source AND media_source_id = NEW.source_id AND deleted_at IS NULL;
    UPDATE catalog.streaming_links SET deleted_at = NEW.deleted_at
     WHERE source = NEW.source AND media_source_id = NEW.source_id AND deleted_at IS NULL;
    UPDATE catalog.external_ids SET deleted_at = NEW.deleted_at
     WHERE source = NEW.source AND media_source_id = NEW.source_id AND deleted_at IS NULL;
    UPDATE catalog.next_episodes SET deleted_at = NEW.deleted_at
     WHERE source = NEW.source AND media_source_id = NEW.source_id AND deleted_at IS NULL;
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION catalog.retire_nested_rows() IS
    'Soft-deletes the nested rows of an AniList GraphQL media that was just soft-deleted (characters and their voices, staff, studios, relations, tags, links, external ids, next episode).';

CREATE TRIGGER media_retire_nested_rows
    AFTER UPDATE OF deleted_at ON catalog.media
    FOR EACH ROW
    WHEN (OLD.deleted_at IS NULL AND NEW.deleted_at IS NOT NULL AND NEW.source_kind = 'anilist')
    EXECUTE FUNCTION catalog.retire_nested_rows();
COMMENT ON TRIGGER media_retire_nested_rows ON catalog.media IS
    'Cascades an AniList GraphQL media''s soft delete to the rows nested in its document.';
