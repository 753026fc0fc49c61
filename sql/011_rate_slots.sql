-- Fewer round trips for the shared rate budget (etl.rate_groups, migration 008):
--   * etl.rate_take reserves up to p_count consecutive slots (a batch, when the rate is high and
--     several requests of one process wait) in one statement, each with its own in-flight lease,
--     carries back the leases of finished requests, and can move a missed slot to "now" when no
--     later slot was granted since (a late wake then costs a round trip, not a whole spacing);
--   * etl.rate_feedback applies a header hold or a 429 pause and carries back leases, in one statement;
--   * etl.rate_violation writes a 429 to the ledger, pauses the group, carries back leases and
--     returns the violations inside the window, in one statement;
--   * etl.rate_release also gives back the unused tail of a batch.
-- Leases stay one jsonb entry per slot ({lease id: expiry}), so processes still calling
-- etl.rate_reserve (008) count and expire them the same way.

CREATE FUNCTION etl.rate_live_leases(p_leases jsonb, p_now double precision, p_release text[])
RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(jsonb_object_agg(k, v), '{}'::jsonb)
      FROM jsonb_each(p_leases) AS e(k, v)
     WHERE (v #>> '{}')::double precision > p_now AND NOT (k = ANY (coalesce(p_release, '{}')));
$$;
COMMENT ON FUNCTION etl.rate_live_leases IS 'The leases of a rate group that are neither expired nor given back.';

-- Grants n = min(p_count, p_cap - live) slots start, start + spacing, …; leases p_lease_prefix || '.' || i.
-- granted = 0: the wait would exceed p_max_wait or the cap is full (blocked_until says from when a
-- slot could start). p_late_slot: the caller's slot that it missed; when it is still the last one
-- granted (next_at = p_late_slot + spacing, to a microsecond) the new slot starts at the database's now instead of
-- after it, which keeps every spacing: the slot before it is at least a spacing earlier still.
CREATE FUNCTION etl.rate_take(
    p_group text, p_spacing double precision, p_cap integer, p_lease_prefix text, p_count integer,
    p_lease_ttl double precision, p_release text[], p_max_wait double precision,
    p_late_slot double precision DEFAULT NULL, p_now double precision DEFAULT NULL
) RETURNS TABLE (granted integer, slot double precision, db_now double precision,
                 blocked_until double precision, in_flight integer)
LANGUAGE plpgsql AS $$
DECLARE
    now_s  double precision := coalesce(p_now, extract(epoch FROM clock_timestamp()));
    g      etl.rate_groups%ROWTYPE;
    live   jsonb;
    n      integer;
    k      integer;
    start  double precision;
    floor_ double precision;
BEGIN
    INSERT INTO etl.rate_groups (group_key) VALUES (p_group) ON CONFLICT (group_key) DO NOTHING;
    SELECT * INTO g FROM etl.rate_groups WHERE group_key = p_group FOR UPDATE;
    live := etl.rate_live_leases(g.leases, now_s, p_release);
    n := (SELECT count(*) FROM jsonb_object_keys(live));
    floor_ := g.next_at;
    IF p_late_slot IS NOT NULL AND abs(g.next_at - (p_late_slot + p_spacing)) < 1e-6 THEN
        floor_ := p_late_slot;  -- nobody took a slot after the missed one: move it to now
    END IF;
    start := greatest(floor_, now_s, g.paused_until, g.hold_until);
    k := least(greatest(p_count, 1), CASE WHEN p_cap > 0 THEN p_cap - n ELSE p_count END);
    IF start - now_s > p_max_wait OR k < 1 THEN
        UPDATE etl.rate_groups SET leases = live WHERE group_key = p_group;
        RETURN QUERY SELECT 0, NULL::double precision, now_s, start, n;
        RETURN;
    END IF;
    SELECT live || coalesce(jsonb_object_agg(p_lease_prefix || '.' || i, start + i * p_spacing + p_lease_ttl),
                            '{}'::jsonb)
      INTO live FROM generate_series(0, k - 1) AS i;
    UPDATE etl.rate_groups
       SET next_at = start + k * p_spacing, leases = live, reservations = reservations + k,
           updated_at = now()
     WHERE group_key = p_group;
    RETURN QUERY SELECT k, start, now_s, start, n + k;
END;
$$;
COMMENT ON FUNCTION etl.rate_take IS 'Reserve one or a batch of consecutive send slots of a rate group, each with an in-flight lease, carrying back finished leases; one round trip.';

CREATE FUNCTION etl.rate_feedback(
    p_group text, p_pause double precision, p_hold double precision, p_release text[],
    p_now double precision DEFAULT NULL
) RETURNS void LANGUAGE sql AS $$
    INSERT INTO etl.rate_groups (group_key) VALUES (p_group) ON CONFLICT (group_key) DO NOTHING;
    UPDATE etl.rate_groups AS g
       SET paused_until = CASE WHEN p_pause IS NULL THEN g.paused_until ELSE greatest(g.paused_until,
               coalesce(p_now, extract(epoch FROM clock_timestamp())) + p_pause) END,
           hold_until = CASE WHEN p_hold IS NULL THEN g.hold_until ELSE greatest(g.hold_until,
               coalesce(p_now, extract(epoch FROM clock_timestamp())) + p_hold) END,
           leases = etl.rate_live_leases(g.leases, coalesce(p_now, extract(epoch FROM clock_timestamp())),
                                         p_release),
           updated_at = now()
     WHERE g.group_key = p_group;
$$;
COMMENT ON FUNCTION etl.rate_feedback IS 'Pause (429) or hold (Remaining at the reserve) every process of a rate group from now, and carry back finished leases; one round trip.';

CREATE FUNCTION etl.rate_violation(
    p_group text, p_source text, p_run bigint, p_retry_after double precision,
    p_pause double precision, p_window double precision, p_release text[],
    p_now double precision DEFAULT NULL
) RETURNS double precision[] LANGUAGE plpgsql AS $$
DECLARE
    now_s double precision := coalesce(p_now, extract(epoch FROM clock_timestamp()));
    times double precision[];
BEGIN
    INSERT INTO etl.rate_violations (group_key, source, run_id, retry_after, at)
    VALUES (p_group, p_source, p_run, p_retry_after, to_timestamp(now_s));
    PERFORM etl.rate_feedback(p_group, p_pause, NULL, p_release, now_s);
    SELECT coalesce(array_agg(extract(epoch FROM at)::double precision ORDER BY at), '{}')
      INTO times FROM etl.rate_violations
     WHERE group_key = p_group AND at > to_timestamp(now_s - p_window) AND at <= to_timestamp(now_s);
    RETURN times;
END;
$$;
COMMENT ON FUNCTION etl.rate_violation IS 'Record a 429 in the ledger, pause the rate group, carry back leases; returns the violations of the window (epoch s, oldest first); one round trip.';

CREATE FUNCTION etl.rate_release(
    p_group text, p_release text[], p_unused_from double precision, p_unused_to double precision
) RETURNS void LANGUAGE sql AS $$
    UPDATE etl.rate_groups
       SET leases = (SELECT coalesce(jsonb_object_agg(k, v), '{}'::jsonb)
                       FROM jsonb_each(leases) AS e(k, v) WHERE NOT (k = ANY (p_release))),
           next_at = CASE WHEN p_unused_to IS NOT NULL AND abs(next_at - p_unused_to) < 1e-6 THEN p_unused_from
                          ELSE next_at END
     WHERE group_key = p_group;
$$;
COMMENT ON FUNCTION etl.rate_release(text, text[], double precision, double precision) IS 'Give back leases; and the unused tail of a batch (slots from p_unused_from) when no slot was granted after it (next_at = p_unused_to, to a microsecond).';
