-- The job engine: Attestr's account state shared by every worker, and why a job waits.

-- One row. A pause (credits, credentials, access, a daily limit) stops Attestr calls for every
-- job in every process; the daily call counter is the spend cap (ATTESTR_DAILY_CALL_LIMIT).
CREATE TABLE attestr_state (
    id            boolean PRIMARY KEY DEFAULT true CHECK (id),
    paused_reason text,
    paused_code   text,
    paused_at     timestamptz,
    resume_at     timestamptz,  -- a daily limit ends at the reset; otherwise a probe or `resume` ends it
    probe_after   timestamptz,  -- when the next waiting job may try Attestr as the probe
    calls_day     date,
    calls_today   integer NOT NULL DEFAULT 0
);
INSERT INTO attestr_state DEFAULT VALUES;

-- 'attestr' while a job waits for a paused Attestr, so that a resume can wake exactly those.
ALTER TABLE jobs ADD COLUMN waiting_on text;
CREATE INDEX jobs_waiting_on ON jobs (waiting_on) WHERE status = 'queued' AND waiting_on IS NOT NULL;

-- The gate before every paid call: counts the call against the day's cap, or says why not.
-- "Today" is the day in India, where Attestr's daily quotas reset.
CREATE FUNCTION attestr_take_call(daily_limit integer, probe_interval_s double precision)
RETURNS TABLE (allowed boolean, reason text, wait_until timestamptz, probe boolean,
               newly_paused boolean, resumed boolean)
LANGUAGE plpgsql AS $$
DECLARE
    s attestr_state%ROWTYPE;
    today date := (now() AT TIME ZONE 'Asia/Kolkata')::date;
    next_reset timestamptz := ((today + 1)::timestamp AT TIME ZONE 'Asia/Kolkata') + interval '5 minutes';
BEGIN
    SELECT * INTO s FROM attestr_state FOR UPDATE;
    allowed := false; probe := false; newly_paused := false; resumed := false;
    IF s.calls_day IS DISTINCT FROM today THEN
        s.calls_day := today;
        s.calls_today := 0;
    END IF;
    IF s.paused_reason IS NOT NULL AND s.resume_at IS NOT NULL AND s.resume_at <= now() THEN
        s.paused_reason := NULL; s.paused_code := NULL; s.paused_at := NULL;
        s.resume_at := NULL; s.probe_after := NULL;
        resumed := true;
    END IF;
    IF s.paused_reason IS NOT NULL THEN
        IF s.resume_at IS NULL AND s.probe_after <= now() THEN
            probe := true;  -- this call tells whether Attestr works again
            s.probe_after := now() + make_interval(secs => probe_interval_s);
        ELSE
            UPDATE attestr_state SET calls_day = s.calls_day, calls_today = s.calls_today, probe_after = s.probe_after;
            reason := s.paused_reason;
            wait_until := COALESCE(s.resume_at, s.probe_after);
            RETURN NEXT;
            RETURN;
        END IF;
    END IF;
    IF daily_limit IS NOT NULL AND s.calls_today >= daily_limit THEN
        s.paused_reason := format('ATTESTR_DAILY_CALL_LIMIT (%s calls a day) is reached', daily_limit);
        s.paused_code := 'daily_call_limit';
        s.paused_at := now();
        s.resume_at := next_reset;
        newly_paused := true;
        reason := s.paused_reason;
        wait_until := s.resume_at;
    ELSE
        s.calls_today := s.calls_today + 1;
        allowed := true;
    END IF;
    UPDATE attestr_state SET paused_reason = s.paused_reason, paused_code = s.paused_code,
        paused_at = s.paused_at, resume_at = s.resume_at, probe_after = s.probe_after,
        calls_day = s.calls_day, calls_today = s.calls_today;
    RETURN NEXT;
END $$;
