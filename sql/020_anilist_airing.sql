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
