-- Stream counts that add up: inserted + updated + unchanged are the rows of the stream's main
-- tables (catalog.media for an anime stream); what includes and nested objects wrote elsewhere
-- (the anime of an episodes page, a media's studios and staff, link rows) is counted apart.
ALTER TABLE etl.stream_runs ADD COLUMN other_rows integer NOT NULL DEFAULT 0;
COMMENT ON COLUMN etl.stream_runs.inserted IS 'Rows inserted into the stream''s main tables (catalog.media for anime, production.tasks for tasks).';
COMMENT ON COLUMN etl.stream_runs.updated IS 'Rows of the stream''s main tables whose content changed.';
COMMENT ON COLUMN etl.stream_runs.unchanged IS 'Rows of the stream''s main tables fetched again with identical content (not rewritten); inserted + updated + unchanged = main-table rows the stream wrote or confirmed.';
COMMENT ON COLUMN etl.stream_runs.other_rows IS 'Rows inserted or updated in other tables (records an include or a nested object brought: genres, studios, staff, the media of an episode) plus link rows written.';
