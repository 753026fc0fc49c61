-- Smoke tests (sync/backfill --max-pages N) and the column comments the earlier migrations left out.

-- A --max-pages stream ends "sampled": it fetched and loaded at most N pages, marked no scan
-- complete, deleted nothing and moved no checkpoint. It counts as ok (exit 0) but never as a
-- successful sync: "last success", lag and freshness checks read status = 'succeeded' only.
ALTER TABLE etl.stream_runs DROP CONSTRAINT stream_runs_status_check;
ALTER TABLE etl.stream_runs ADD CONSTRAINT stream_runs_status_check
    CHECK (status IN ('running', 'succeeded', 'sampled', 'failed', 'skipped', 'stopped', 'deferred', 'stuck', 'incomplete', 'aborted'));
COMMENT ON COLUMN etl.stream_runs.status IS 'running, succeeded, sampled (a --max-pages smoke test: at most N pages loaded, no scan completed, nothing deleted, no checkpoint moved), failed, skipped (held by a live run elsewhere), stopped (violation budget), deferred (the server asked for a wait beyond max_wait_seconds, or a deadline passed: resume later), stuck (held by a run that is dead or past its deadline), incomplete (the scan could not see every expected record), aborted.';

COMMENT ON COLUMN etl.stream_runs.id IS 'Stream run id (the stream_run_id of the run summaries and of pipeline.api).';
COMMENT ON COLUMN etl.rejects.id IS 'Reject id, in the order the rejects were met.';
COMMENT ON COLUMN etl.rate_violations.id IS 'Violation id, in the order the 429s were recorded.';
COMMENT ON COLUMN raw.records.id IS 'Surrogate key of the raw record; (source, resource, source_id) is its natural key.';
