-- Deletes only for records known to be gone, scans that say whether they saw everything, runs
-- that always end in the books, and rejects that keep payloads jsonb cannot hold.

-- A stream can end incomplete (its scan could not see every expected record: no deletes, the next
-- run scans again) or aborted (SIGTERM / SIGINT, or found running by a later run after a kill).
ALTER TABLE etl.stream_runs DROP CONSTRAINT stream_runs_status_check;
ALTER TABLE etl.stream_runs ADD CONSTRAINT stream_runs_status_check
    CHECK (status IN ('running', 'succeeded', 'failed', 'skipped', 'stopped', 'incomplete', 'aborted'));
COMMENT ON COLUMN etl.stream_runs.status IS
    'running, succeeded, failed, skipped (locked elsewhere), stopped (violation budget), incomplete (the scan could not see every expected record; nothing deleted) or aborted (signal, or killed and found by a later run).';
COMMENT ON COLUMN etl.stream_runs.deleted IS 'Records soft-deleted: verified gone (lookup by id) or missing from two consecutive complete scans, or tombstones.';

-- Where an API cannot look a record up by id, a record is deleted only when missing from two
-- consecutive complete scans: the first miss is remembered here.
CREATE TABLE etl.scan_missing (
    source     text        NOT NULL,
    resource   text        NOT NULL,
    source_id  text        NOT NULL,
    missed_at  timestamptz NOT NULL DEFAULT now(),
    run_id     bigint,
    PRIMARY KEY (source, resource, source_id)
);
COMMENT ON TABLE etl.scan_missing IS 'Records the last complete scan of a stream without lookup by id did not see; the next complete scan that also misses them soft-deletes them.';
COMMENT ON COLUMN etl.scan_missing.source IS 'Configured source name.';
COMMENT ON COLUMN etl.scan_missing.resource IS 'Resource name.';
COMMENT ON COLUMN etl.scan_missing.source_id IS 'The raw record''s source_id.';
COMMENT ON COLUMN etl.scan_missing.missed_at IS 'When a complete scan first missed it.';
COMMENT ON COLUMN etl.scan_missing.run_id IS 'Run of that scan.';

-- The last scan's outcome: an incomplete scan is never "recent enough" for min_rescan_minutes.
ALTER TABLE etl.checkpoints ADD COLUMN scan_incomplete_at timestamptz;
COMMENT ON COLUMN etl.checkpoints.scan_incomplete_at IS 'When the last scan ended without seeing every expected record (NULL once a scan completes); the next run scans again whatever min_rescan_minutes says.';

-- A record the database or the serializer refuses (NUL in a string, nesting past what JSON
-- encoders take) keeps its payload as text.
ALTER TABLE etl.rejects ADD COLUMN payload_text text;
ALTER TABLE etl.rejects ADD COLUMN url text;
COMMENT ON COLUMN etl.rejects.payload IS 'The record as fetched (NULL when jsonb cannot hold it: see payload_text).';
COMMENT ON COLUMN etl.rejects.payload_text IS 'The record as text when jsonb cannot hold it (NUL characters escaped as \\u0000, or nesting too deep for jsonb).';
COMMENT ON COLUMN etl.rejects.url IS 'The request URL of the page that held the record, when known.';
COMMENT ON TABLE etl.rejects IS 'Records that failed to transform or to load, with the reason; the rest of their page loaded.';
