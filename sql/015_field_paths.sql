-- Schema drift: the field paths each stream's raw records carry (pipeline/drift.py).

CREATE TABLE etl.field_paths (
    source        text        NOT NULL,
    resource      text        NOT NULL,
    path          text        NOT NULL,
    baseline      boolean     NOT NULL,
    first_seen_at timestamptz NOT NULL DEFAULT now(),
    last_seen_at  timestamptz NOT NULL DEFAULT now(),
    first_run_id  bigint,
    last_run_id   bigint,
    seen_records  bigint      NOT NULL CHECK (seen_records >= 0),
    last_share    real        NOT NULL CHECK (last_share >= 0 AND last_share <= 1),
    vanished_at   timestamptz,
    PRIMARY KEY (source, resource, path)
);

COMMENT ON TABLE etl.field_paths IS 'Every field path seen in a stream''s raw records (dotted keys, [] for list items, 4 keys deep): when first and last seen, by how many records. New paths and vanished ones are schema drift (pipeline status lists them).';
COMMENT ON COLUMN etl.field_paths.source IS 'Configured source name.';
COMMENT ON COLUMN etl.field_paths.resource IS 'Raw resource the records were landed under (raw.records.resource).';
COMMENT ON COLUMN etl.field_paths.path IS 'Field path, e.g. attributes.titles.en_jp or relationships.genres.data[].id.';
COMMENT ON COLUMN etl.field_paths.baseline IS 'True when the path was in the stream''s first tally (not drift); false for a path that appeared later.';
COMMENT ON COLUMN etl.field_paths.first_seen_at IS 'When a run first saw the path.';
COMMENT ON COLUMN etl.field_paths.last_seen_at IS 'When a run last saw the path.';
COMMENT ON COLUMN etl.field_paths.first_run_id IS 'etl.runs.id of the run that first saw the path.';
COMMENT ON COLUMN etl.field_paths.last_run_id IS 'etl.runs.id of the run that last saw the path.';
COMMENT ON COLUMN etl.field_paths.seen_records IS 'Records that carried the path, summed over runs.';
COMMENT ON COLUMN etl.field_paths.last_share IS 'Share of the last run''s records (of that resource) that carried the path; a path carried by half or more is expected.';
COMMENT ON COLUMN etl.field_paths.vanished_at IS 'When an expected path was missing from a whole run (reported once); NULL while it is seen.';
