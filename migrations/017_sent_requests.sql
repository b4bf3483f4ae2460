-- Airtable counts a request when it arrives. Counting each slot's window from the request's answer
-- (004) is safe whatever the delays, but holds the slot through Airtable's answer time too (150 to
-- 300 ms a write): a fifth of the rate limit went unused. A request sent on a connection kept
-- alive from an earlier request reaches Airtable one path-delay after it left, as the requests on
-- the same path do: its window can run from when it left (`sent_at`), plus a margin for how much
-- that delay varies (service/airtable/ratelimit.py says why it is enough). A request that opened a
-- connection (handshakes come before it arrives), one without an answer, and every request of a
-- process of an older version (which never sets `sent_at`) still count from their answer.
ALTER TABLE airtable_requests ADD COLUMN sent_at timestamptz;

-- When a request's slot frees: a window after it left on a kept-alive connection (`sent_window_s`,
-- NULL: never), else a window after its answer; never answered, `timeout_s` after it was taken.
CREATE FUNCTION airtable_request_frees(
    r airtable_requests, window_s double precision, timeout_s double precision,
    sent_window_s double precision
) RETURNS timestamptz LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN r.answered_at IS NULL THEN r.taken_at + make_interval(secs => timeout_s + window_s)
        WHEN r.sent_at IS NOT NULL AND sent_window_s IS NOT NULL
            THEN LEAST(r.sent_at + make_interval(secs => sent_window_s),
                       r.answered_at + make_interval(secs => window_s))
        ELSE r.answered_at + make_interval(secs => window_s)
    END
$$;

-- As 012's, with `sent_window_s`; a caller passing five arguments or fewer (an older version during
-- a deploy) counts every request from its answer, as it did.
DROP FUNCTION airtable_take_request(text, integer, double precision, double precision, integer);
CREATE FUNCTION airtable_take_request(
    p_base text, max_requests integer, window_s double precision, timeout_s double precision,
    reserve integer DEFAULT 0, sent_window_s double precision DEFAULT NULL
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
        AND airtable_request_frees(r, window_s, timeout_s, sent_window_s) <= now_ts;
    SELECT ARRAY(SELECT airtable_request_frees(r, window_s, timeout_s, sent_window_s)
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
