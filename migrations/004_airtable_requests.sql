-- Airtable counts a request when it arrives: some time after it was sent, before its answer came
-- back. Timing the window from when a slot was taken (001's airtable_take_slot) needed a margin
-- for that, and a process slow to send (a busy event loop, a thread pool queue) could still land
-- six requests inside one of Airtable's seconds. Now each request is kept from when it is taken
-- until its answer is back, and the window runs from the answer: the arrival of a new request
-- (after its take) is then always more than a window after the arrival of the one it replaces
-- (before that one's answer), whatever the delays on the way.
CREATE TABLE airtable_requests (
    id          bigserial PRIMARY KEY,
    base_id     text NOT NULL,
    taken_at    timestamptz NOT NULL,
    answered_at timestamptz
);
CREATE INDEX airtable_requests_base ON airtable_requests (base_id);

-- Returns (0, id) when the request may go, or (seconds to wait, NULL). A request never marked
-- answered (its process died) counts as answered `timeout_s` after it was taken.
CREATE FUNCTION airtable_take_request(
    p_base text, max_requests integer, window_s double precision, timeout_s double precision
) RETURNS TABLE (wait double precision, request_id bigint) LANGUAGE plpgsql AS $$
DECLARE
    blocked timestamptz;
    now_ts timestamptz;
    frees timestamptz[];
    unanswered boolean;
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
    IF cardinality(frees) >= max_requests THEN
        -- An unanswered request may be answered any moment: ask again soon rather than at its timeout.
        RETURN QUERY SELECT LEAST(extract(epoch FROM frees[cardinality(frees) - max_requests + 1] - now_ts),
                                  CASE WHEN unanswered THEN 0.05 END)::float8,
                            NULL::bigint;
        RETURN;
    END IF;
    INSERT INTO airtable_requests (base_id, taken_at) VALUES (p_base, now_ts) RETURNING id INTO new_id;
    RETURN QUERY SELECT 0::float8, new_id;
END $$;

DROP FUNCTION airtable_take_slot(text, integer, double precision);
ALTER TABLE airtable_rate DROP COLUMN slots;
