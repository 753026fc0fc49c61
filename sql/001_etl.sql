-- Schemas, run bookkeeping, checkpoints, backfills, rejects and the raw landing zone.
-- etl.schema_migrations is created by the migration runner itself (pipeline/db.py).

CREATE SCHEMA IF NOT EXISTS etl;
CREATE SCHEMA IF NOT EXISTS raw;
CREATE SCHEMA IF NOT EXISTS catalog;
CREATE SCHEMA IF NOT EXISTS production;

COMMENT ON SCHEMA etl IS 'Pipeline bookkeeping: runs, per-stream results, checkpoints, backfills, rejects, migrations.';
COMMENT ON SCHEMA raw IS 'Every record exactly as fetched from a source API (for replay and audit).';
COMMENT ON SCHEMA catalog IS 'Unified anime/manga catalogue across Kitsu, AniList (v1 and v2) and Nekos.';
COMMENT ON SCHEMA production IS 'Unified production-tracking data from Zou (CGWire Kitsu) servers.';

CREATE TABLE etl.runs (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    command       text        NOT NULL,
    started_at    timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz,
    status        text        NOT NULL DEFAULT 'running'
                  CHECK (status IN ('running', 'succeeded', 'failed', 'partial', 'aborted')),
    config_path   text,
    args          jsonb       NOT NULL DEFAULT '{}'::jsonb,
    host          text,
    pid           integer,
    error         text
);
COMMENT ON TABLE etl.runs IS 'One row per pipeline invocation (sync, backfill, replay).';
COMMENT ON COLUMN etl.runs.id IS 'Run id; every loaded row carries it in run_id.';
COMMENT ON COLUMN etl.runs.command IS 'sync, backfill or replay.';
COMMENT ON COLUMN etl.runs.started_at IS 'When the run started.';
COMMENT ON COLUMN etl.runs.finished_at IS 'When the run ended; NULL while running or after a crash.';
COMMENT ON COLUMN etl.runs.status IS 'running, succeeded (all streams ok), partial (some failed), failed, aborted.';
COMMENT ON COLUMN etl.runs.config_path IS 'Config file the run used.';
COMMENT ON COLUMN etl.runs.args IS 'Command-line selection (sources, resources, window), secrets never included.';
COMMENT ON COLUMN etl.runs.host IS 'Host name of the machine that ran it.';
COMMENT ON COLUMN etl.runs.pid IS 'Process id of the run.';
COMMENT ON COLUMN etl.runs.error IS 'Run-level error, if any.';

CREATE TABLE etl.stream_runs (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id              bigint      NOT NULL REFERENCES etl.runs (id) ON DELETE CASCADE,
    source              text        NOT NULL,
    resource            text        NOT NULL,
    mode                text        NOT NULL CHECK (mode IN ('full', 'incremental', 'backfill', 'replay')),
    backfill_id         bigint,
    started_at          timestamptz NOT NULL DEFAULT now(),
    finished_at         timestamptz,
    status              text        NOT NULL DEFAULT 'running'
                        CHECK (status IN ('running', 'succeeded', 'failed', 'skipped', 'stopped')),
    pages               integer     NOT NULL DEFAULT 0,
    records             integer     NOT NULL DEFAULT 0,
    inserted            integer     NOT NULL DEFAULT 0,
    updated             integer     NOT NULL DEFAULT 0,
    unchanged           integer     NOT NULL DEFAULT 0,
    deleted             integer     NOT NULL DEFAULT 0,
    rejected            integer     NOT NULL DEFAULT 0,
    requests            integer     NOT NULL DEFAULT 0,
    retries             integer     NOT NULL DEFAULT 0,
    rate_limited        integer     NOT NULL DEFAULT 0,
    limiter_wait_seconds double precision NOT NULL DEFAULT 0,
    bytes               bigint      NOT NULL DEFAULT 0,
    duration_seconds    double precision,
    error               text
);
CREATE INDEX stream_runs_stream_idx ON etl.stream_runs (source, resource, started_at DESC);
COMMENT ON TABLE etl.stream_runs IS 'One row per (run, source, resource): what that stream did.';
COMMENT ON COLUMN etl.stream_runs.run_id IS 'The run (etl.runs.id).';
COMMENT ON COLUMN etl.stream_runs.source IS 'Configured source name.';
COMMENT ON COLUMN etl.stream_runs.resource IS 'Resource of that source (anime, tasks, images, …).';
COMMENT ON COLUMN etl.stream_runs.mode IS 'full (re-scan), incremental (cursor/events), backfill or replay.';
COMMENT ON COLUMN etl.stream_runs.backfill_id IS 'etl.backfills.id when mode = backfill.';
COMMENT ON COLUMN etl.stream_runs.started_at IS 'When the stream started.';
COMMENT ON COLUMN etl.stream_runs.finished_at IS 'When the stream ended.';
COMMENT ON COLUMN etl.stream_runs.status IS 'running, succeeded, failed, skipped (locked elsewhere) or stopped (violation budget).';
COMMENT ON COLUMN etl.stream_runs.pages IS 'Pages committed.';
COMMENT ON COLUMN etl.stream_runs.records IS 'Records fetched.';
COMMENT ON COLUMN etl.stream_runs.inserted IS 'Unified rows inserted.';
COMMENT ON COLUMN etl.stream_runs.updated IS 'Unified rows whose content changed.';
COMMENT ON COLUMN etl.stream_runs.unchanged IS 'Unified rows seen with identical content (not rewritten).';
COMMENT ON COLUMN etl.stream_runs.deleted IS 'Rows soft-deleted (deleted_at set).';
COMMENT ON COLUMN etl.stream_runs.rejected IS 'Records that failed to transform (see etl.rejects).';
COMMENT ON COLUMN etl.stream_runs.requests IS 'HTTP requests sent (every attempt).';
COMMENT ON COLUMN etl.stream_runs.retries IS 'Attempts that were retries.';
COMMENT ON COLUMN etl.stream_runs.rate_limited IS 'HTTP 429 answers received.';
COMMENT ON COLUMN etl.stream_runs.limiter_wait_seconds IS 'Seconds spent waiting for the rate limiter or a 429 pause.';
COMMENT ON COLUMN etl.stream_runs.bytes IS 'Response bytes received.';
COMMENT ON COLUMN etl.stream_runs.duration_seconds IS 'Wall-clock duration.';
COMMENT ON COLUMN etl.stream_runs.error IS 'Why the stream failed or was skipped.';

CREATE TABLE etl.checkpoints (
    source          text        NOT NULL,
    resource        text        NOT NULL,
    cursor          text,
    cursor_kind     text,
    scan            jsonb       NOT NULL DEFAULT '{}'::jsonb,
    scan_completed_at timestamptz,
    scan_auth       text,
    scan_seen       integer,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    run_id          bigint,
    PRIMARY KEY (source, resource)
);
COMMENT ON TABLE etl.checkpoints IS 'Nightly state per (source, resource), advanced in the same transaction as the data.';
COMMENT ON COLUMN etl.checkpoints.source IS 'Configured source name.';
COMMENT ON COLUMN etl.checkpoints.resource IS 'Resource name.';
COMMENT ON COLUMN etl.checkpoints.cursor IS 'Incremental cursor (e.g. an AniList updatedAt or a Zou event timestamp), already capped and lagged.';
COMMENT ON COLUMN etl.checkpoints.cursor_kind IS 'What the cursor holds (epoch, timestamp, event_id).';
COMMENT ON COLUMN etl.checkpoints.scan IS 'Progress of the full re-scan in flight: scan id, pages committed (ranges), expected total, auth identity, held cursor.';
COMMENT ON COLUMN etl.checkpoints.scan_completed_at IS 'When the last full re-scan completed; records not soft-deleted were seen by it.';
COMMENT ON COLUMN etl.checkpoints.scan_auth IS 'Auth identity of the last completed scan (anonymous, user:NAME); a scan with another identity deletes nothing.';
COMMENT ON COLUMN etl.checkpoints.scan_seen IS 'Distinct records the last completed scan saw.';
COMMENT ON COLUMN etl.checkpoints.updated_at IS 'Last time this checkpoint moved.';
COMMENT ON COLUMN etl.checkpoints.run_id IS 'Run that moved it last.';

CREATE TABLE etl.backfills (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source       text        NOT NULL,
    resource     text,
    since        timestamptz,
    until        timestamptz,
    full_scan    boolean     NOT NULL DEFAULT false,
    status       text        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'running', 'done', 'failed')),
    progress     jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at   timestamptz NOT NULL DEFAULT now(),
    started_at   timestamptz,
    finished_at  timestamptz,
    run_id       bigint,
    error        text
);
COMMENT ON TABLE etl.backfills IS 'Backfill ledger: a window or full re-scan, resumable, never moving the nightly checkpoint.';
COMMENT ON COLUMN etl.backfills.id IS 'Backfill id (pipeline backfill --resume ID).';
COMMENT ON COLUMN etl.backfills.source IS 'Configured source name.';
COMMENT ON COLUMN etl.backfills.resource IS 'Resource, or NULL for every resource of the source.';
COMMENT ON COLUMN etl.backfills.since IS 'Window start (inclusive), NULL with full_scan.';
COMMENT ON COLUMN etl.backfills.until IS 'Window end (exclusive), NULL = open.';
COMMENT ON COLUMN etl.backfills.full_scan IS 'A full re-scan rather than a window.';
COMMENT ON COLUMN etl.backfills.status IS 'pending, running, done or failed.';
COMMENT ON COLUMN etl.backfills.progress IS 'Per-resource progress (pages committed, cursor) for --resume.';
COMMENT ON COLUMN etl.backfills.created_at IS 'When it was requested.';
COMMENT ON COLUMN etl.backfills.started_at IS 'When it last started.';
COMMENT ON COLUMN etl.backfills.finished_at IS 'When it finished.';
COMMENT ON COLUMN etl.backfills.run_id IS 'Run that last worked on it.';
COMMENT ON COLUMN etl.backfills.error IS 'Last error.';

CREATE TABLE etl.rejects (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id      bigint,
    source      text        NOT NULL,
    resource    text        NOT NULL,
    source_id   text,
    payload     jsonb,
    error       text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX rejects_run_idx ON etl.rejects (run_id);
CREATE INDEX rejects_record_idx ON etl.rejects (source, resource, source_id);
COMMENT ON TABLE etl.rejects IS 'Records that failed to transform, with the reason; the rest of their page loaded.';
COMMENT ON COLUMN etl.rejects.run_id IS 'Run that met the record.';
COMMENT ON COLUMN etl.rejects.source IS 'Configured source name.';
COMMENT ON COLUMN etl.rejects.resource IS 'Resource name.';
COMMENT ON COLUMN etl.rejects.source_id IS 'The record''s id in the source, when it could be read.';
COMMENT ON COLUMN etl.rejects.payload IS 'The record as fetched.';
COMMENT ON COLUMN etl.rejects.error IS 'Why it could not be transformed.';
COMMENT ON COLUMN etl.rejects.created_at IS 'When it was rejected.';

CREATE TABLE raw.records (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source          text        NOT NULL,
    resource        text        NOT NULL,
    source_id       text        NOT NULL,
    payload         jsonb       NOT NULL,
    content_hash    bytea       NOT NULL,
    first_seen_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at    timestamptz NOT NULL DEFAULT now(),
    last_changed_at timestamptz NOT NULL DEFAULT now(),
    deleted_at      timestamptz,
    run_id          bigint,
    UNIQUE (source, resource, source_id)
);
COMMENT ON TABLE raw.records IS 'Every record exactly as fetched; pipeline replay rebuilds the unified tables from here.';
COMMENT ON COLUMN raw.records.source IS 'Configured source name.';
COMMENT ON COLUMN raw.records.resource IS 'Resource name.';
COMMENT ON COLUMN raw.records.source_id IS 'The record''s id in the source.';
COMMENT ON COLUMN raw.records.payload IS 'The record verbatim (JSON) as of its last content change; volatile keys (signed URLs) may be older.';
COMMENT ON COLUMN raw.records.content_hash IS 'Hash of the payload without volatile keys (signed URLs, expiry).';
COMMENT ON COLUMN raw.records.first_seen_at IS 'First time it was fetched.';
COMMENT ON COLUMN raw.records.last_seen_at IS 'Last time it was fetched with new content (or brought back); unchanged re-fetches are not rewritten, see etl.checkpoints.scan_completed_at.';
COMMENT ON COLUMN raw.records.last_changed_at IS 'Last time its content_hash changed.';
COMMENT ON COLUMN raw.records.deleted_at IS 'Set when the source no longer has it (completed scan or delete event).';
COMMENT ON COLUMN raw.records.run_id IS 'Run that last changed it.';

-- Ids seen by the scans in flight, for delete detection. UNLOGGED: no WAL for a re-scan of unchanged
-- data; a server crash empties it, and a scan that then counts fewer ids than expected deletes nothing.
CREATE UNLOGGED TABLE etl.scan_seen (
    scan_id     text NOT NULL,
    source_id   text NOT NULL,
    PRIMARY KEY (scan_id, source_id)
);
COMMENT ON TABLE etl.scan_seen IS 'Record ids seen by each full scan in flight (emptied when the scan completes).';
COMMENT ON COLUMN etl.scan_seen.scan_id IS 'Scan token (from etl.checkpoints.scan or an etl.backfills progress entry).';
COMMENT ON COLUMN etl.scan_seen.source_id IS 'raw.records.source_id of a record the scan fetched.';
