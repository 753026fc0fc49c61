-- One rate budget per service shared by every process and machine using this database, the
-- ledger of 429s, run heartbeats and deadlines, and the deferred / stuck stream statuses.
-- Times in etl.rate_groups are epoch seconds on the database clock: the one clock every client shares.

CREATE TABLE etl.rate_groups (
    group_key     text             PRIMARY KEY,
    next_at       double precision NOT NULL DEFAULT 0,
    paused_until  double precision NOT NULL DEFAULT 0,
    hold_until    double precision NOT NULL DEFAULT 0,
    leases        jsonb            NOT NULL DEFAULT '{}'::jsonb,
    reservations  bigint           NOT NULL DEFAULT 0,
    updated_at    timestamptz      NOT NULL DEFAULT now()
);
COMMENT ON TABLE etl.rate_groups IS 'Shared request budget of one rate group (API host + credential identity, or rate_group from the config).';
COMMENT ON COLUMN etl.rate_groups.group_key IS 'Rate group: "host|identity-hash" by default (never a secret), or the configured rate_group.';
COMMENT ON COLUMN etl.rate_groups.next_at IS 'Earliest send moment (epoch s, database clock) of the next reservation: the GCRA theoretical arrival time.';
COMMENT ON COLUMN etl.rate_groups.paused_until IS 'No reservation before this moment: set by a 429 (Retry-After / reset) seen by any process of the group.';
COMMENT ON COLUMN etl.rate_groups.hold_until IS 'No reservation before this moment: X-RateLimit-Remaining reached the reserve until X-RateLimit-Reset.';
COMMENT ON COLUMN etl.rate_groups.leases IS 'In-flight leases {lease id: expiry epoch s}; an expired lease (crashed holder) no longer counts.';
COMMENT ON COLUMN etl.rate_groups.reservations IS 'Slots reserved so far (all processes).';
COMMENT ON COLUMN etl.rate_groups.updated_at IS 'Last reservation or feedback.';

CREATE TABLE etl.rate_violations (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    group_key   text        NOT NULL,
    source      text        NOT NULL,
    run_id      bigint,
    at          timestamptz NOT NULL DEFAULT now(),
    status      integer     NOT NULL DEFAULT 429,
    retry_after double precision
);
CREATE INDEX rate_violations_group_idx ON etl.rate_violations (group_key, at DESC);
COMMENT ON TABLE etl.rate_violations IS 'Ledger of rate-limit violations (429s) across processes and runs; the violation budget is counted over it.';
COMMENT ON COLUMN etl.rate_violations.group_key IS 'Rate group (etl.rate_groups.group_key).';
COMMENT ON COLUMN etl.rate_violations.source IS 'Configured source whose request was refused.';
COMMENT ON COLUMN etl.rate_violations.run_id IS 'Run (etl.runs.id) that received it.';
COMMENT ON COLUMN etl.rate_violations.at IS 'When it was received (database clock).';
COMMENT ON COLUMN etl.rate_violations.status IS 'HTTP status (429, or 429 inside a GraphQL body).';
COMMENT ON COLUMN etl.rate_violations.retry_after IS 'Seconds the server asked to wait, when it said.';

-- Reserve the next send slot of a group in one statement: GCRA with no burst (each slot is
-- spacing after the previous one), no slot before a pause/hold, at most cap leases in flight.
-- Returns granted = false when the wait would exceed max_wait or the cap is full, with the
-- moment the slot would start (no point in coming back for the cap before it). p_now is for tests on a fake clock; NULL means the database clock.
CREATE FUNCTION etl.rate_reserve(
    p_group text, p_spacing double precision, p_cap integer, p_lease text, p_lease_ttl double precision,
    p_release text[], p_max_wait double precision, p_now double precision DEFAULT NULL
) RETURNS TABLE (granted boolean, slot double precision, db_now double precision,
                 blocked_until double precision, in_flight integer)
LANGUAGE plpgsql AS $$
DECLARE
    now_s  double precision := coalesce(p_now, extract(epoch FROM clock_timestamp()));
    g      etl.rate_groups%ROWTYPE;
    live   jsonb;
    n      integer;
    start  double precision;
BEGIN
    INSERT INTO etl.rate_groups (group_key) VALUES (p_group) ON CONFLICT (group_key) DO NOTHING;
    SELECT * INTO g FROM etl.rate_groups WHERE group_key = p_group FOR UPDATE;
    SELECT coalesce(jsonb_object_agg(k, v), '{}'::jsonb) INTO live
      FROM jsonb_each(g.leases) AS e(k, v)
     WHERE (v #>> '{}')::double precision > now_s AND NOT (k = ANY (coalesce(p_release, '{}')));
    n := (SELECT count(*) FROM jsonb_object_keys(live));
    start := greatest(g.next_at, now_s, g.paused_until, g.hold_until);
    IF start - now_s > p_max_wait THEN
        UPDATE etl.rate_groups SET leases = live WHERE group_key = p_group;
        RETURN QUERY SELECT false, NULL::double precision, now_s, start, n;
        RETURN;
    END IF;
    IF p_cap > 0 AND n >= p_cap THEN
        UPDATE etl.rate_groups SET leases = live WHERE group_key = p_group;
        RETURN QUERY SELECT false, NULL::double precision, now_s, start, n;
        RETURN;
    END IF;
    IF p_lease IS NOT NULL THEN
        live := live || jsonb_build_object(p_lease, start + p_lease_ttl);
        n := n + 1;
    END IF;
    UPDATE etl.rate_groups
       SET next_at = start + p_spacing, leases = live, reservations = reservations + 1,
           updated_at = now()
     WHERE group_key = p_group;
    RETURN QUERY SELECT true, start, now_s, start, n;
END;
$$;
COMMENT ON FUNCTION etl.rate_reserve IS 'Reserve one send slot of a rate group (see etl.rate_groups); one round trip per request.';

CREATE FUNCTION etl.rate_release(p_group text, p_release text[])
RETURNS void LANGUAGE sql AS $$
    UPDATE etl.rate_groups
       SET leases = (SELECT coalesce(jsonb_object_agg(k, v), '{}'::jsonb)
                       FROM jsonb_each(leases) AS e(k, v) WHERE NOT (k = ANY (p_release)))
     WHERE group_key = p_group;
$$;
COMMENT ON FUNCTION etl.rate_release IS 'Give back in-flight leases that no later reservation carried back.';

ALTER TABLE etl.runs ADD COLUMN heartbeat_at timestamptz;
ALTER TABLE etl.runs ADD COLUMN deadline_at timestamptz;
COMMENT ON COLUMN etl.runs.heartbeat_at IS 'Last sign of life of a running run (refreshed every 30 s); stale = the process is gone or frozen.';
COMMENT ON COLUMN etl.runs.deadline_at IS 'started_at + max_run_minutes; a run still holding streams after it is stuck.';

ALTER TABLE etl.stream_runs DROP CONSTRAINT stream_runs_status_check;
ALTER TABLE etl.stream_runs ADD CONSTRAINT stream_runs_status_check
    CHECK (status IN ('running', 'succeeded', 'failed', 'skipped', 'stopped', 'deferred', 'stuck', 'incomplete', 'aborted'));
COMMENT ON COLUMN etl.stream_runs.status IS 'running, succeeded, failed, skipped (held by a live run elsewhere), stopped (violation budget), deferred (the server asked for a wait beyond max_wait_seconds, or a deadline passed: resume later), stuck (held by a run that is dead or past its deadline), incomplete (the scan could not see every expected record), aborted.';
