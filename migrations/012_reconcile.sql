-- Reconciliation (service/reconcile.py): one row. `baseline_at` is when reconciliation was first
-- enabled: CINs set before it are backfill's, never an unannounced sweep's. `swept_from` is where
-- the next sweep starts reading changes; it moves only when a sweep has finished, so a sweep
-- stopped half-way is simply done again.
CREATE TABLE reconcile_state (
    id          boolean PRIMARY KEY DEFAULT true CHECK (id),
    baseline_at timestamptz NOT NULL,
    swept_from  timestamptz NOT NULL,
    started_at  timestamptz,
    finished_at timestamptz,
    counts      jsonb
);

-- The automation script's version, as each POST /webhooks/airtable reports it ('' when it does
-- not: a script older than version 2, or another client), and when it was last seen.
CREATE TABLE automation_scripts (
    version      text PRIMARY KEY,
    last_seen_at timestamptz NOT NULL
);

-- The shared Airtable rate limit gains a priority: a request taken with `reserve` = 1 (the
-- reconciliation sweep's reads) never takes the last free slot of the window, so the pusher's
-- writes are never kept waiting by it. Callers that pass four arguments keep the old behaviour.
DROP FUNCTION airtable_take_request(text, integer, double precision, double precision);
CREATE FUNCTION airtable_take_request(
    p_base text, max_requests integer, window_s double precision, timeout_s double precision,
    reserve integer DEFAULT 0
) RETURNS TABLE (wait double precision, request_id bigint) LANGUAGE plpgsql AS $$
DECLARE
    blocked timestamptz;
    now_ts timestamptz;
    frees timestamptz[];
    unanswered boolean;
    allowed integer := greatest(1, max_requests - reserve);
    new_id bigint;
BEGIN
    INSERT INTO airtable_rate (base_id) VALUES (p_base) ON CONFLICT DO NOTHING;
    SELECT blocked_until INTO blocked FROM airtable_rate WHERE base_id = p_base FOR UPDATE;
    now_ts := clock_timestamp();
    IF blocked > now_ts THEN
        RETURN QUERY SELECT extract(epoch FROM blocked - now_ts)::float8, NULL::bigint;
        RETURN;
    END IF;
    DELETE FROM airtable_requests r WHERE r.base_id = p_base
        AND COALESCE(r.answered_at, r.taken_at + make_interval(secs => timeout_s))
            + make_interval(secs => window_s) <= now_ts;
    SELECT ARRAY(SELECT COALESCE(r.answered_at, r.taken_at + make_interval(secs => timeout_s))
                        + make_interval(secs => window_s)
                 FROM airtable_requests r WHERE r.base_id = p_base ORDER BY 1),
           bool_or(r.answered_at IS NULL)
      INTO frees, unanswered
      FROM airtable_requests r WHERE r.base_id = p_base;
    IF cardinality(frees) >= allowed THEN
        -- An unanswered request may be answered any moment: ask again soon rather than at its timeout.
        RETURN QUERY SELECT LEAST(extract(epoch FROM frees[cardinality(frees) - allowed + 1] - now_ts),
                                  CASE WHEN unanswered THEN 0.05 END)::float8,
                            NULL::bigint;
        RETURN;
    END IF;
    INSERT INTO airtable_requests (base_id, taken_at) VALUES (p_base, now_ts) RETURNING id INTO new_id;
    RETURN QUERY SELECT 0::float8, new_id;
END $$;

-- The sweep asks, for each company it reads, which jobs it already has.
CREATE INDEX jobs_by_record ON jobs (record_id, id);
