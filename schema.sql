-- The schema the migrations (migrations/) build, as pg_dump prints it: read it here, change it
-- with a new migration. tests/ground/test_schema.py keeps this file true.

CREATE TABLE public.airtable_requests (
    id bigint NOT NULL,
    base_id text NOT NULL,
    taken_at timestamp with time zone NOT NULL,
    answered_at timestamp with time zone,
    sent_at timestamp with time zone
);

CREATE FUNCTION public.airtable_request_frees(r public.airtable_requests, window_s double precision, timeout_s double precision, sent_window_s double precision) RETURNS timestamp with time zone
    LANGUAGE sql IMMUTABLE
    AS $$
    SELECT CASE
        WHEN r.answered_at IS NULL THEN r.taken_at + make_interval(secs => timeout_s + window_s)
        WHEN r.sent_at IS NOT NULL AND sent_window_s IS NOT NULL
            THEN LEAST(r.sent_at + make_interval(secs => sent_window_s),
                       r.answered_at + make_interval(secs => window_s))
        ELSE r.answered_at + make_interval(secs => window_s)
    END
$$;

CREATE FUNCTION public.airtable_take_request(p_base text, max_requests integer, window_s double precision, timeout_s double precision, reserve integer DEFAULT 0, sent_window_s double precision DEFAULT NULL::double precision) RETURNS TABLE(wait double precision, request_id bigint)
    LANGUAGE plpgsql
    AS $$
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

CREATE FUNCTION public.attestr_take_call(daily_limit integer, probe_interval_s double precision) RETURNS TABLE(allowed boolean, reason text, wait_until timestamp with time zone, probe boolean, newly_paused boolean, resumed boolean)
    LANGUAGE plpgsql
    AS $$
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

CREATE FUNCTION public.worker_alive(p_worker text) RETURNS boolean
    LANGUAGE sql STABLE
    AS $$
    SELECT EXISTS (
        SELECT 1
        FROM pg_locks l, (SELECT hashtextextended('worker:' || p_worker, 0) AS k) AS key
        WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
          AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
          AND l.classid = ((key.k >> 32) & 4294967295)::oid
          AND l.objid = (key.k & 4294967295)::oid)
$$;

CREATE TABLE public.airtable_base (
    id boolean DEFAULT true NOT NULL,
    base_id text NOT NULL,
    since timestamp with time zone DEFAULT now() NOT NULL,
    previous text,
    CONSTRAINT airtable_base_id_check CHECK (id)
);

CREATE TABLE public.airtable_missing_options (
    field_key text NOT NULL,
    option text NOT NULL,
    since timestamp with time zone DEFAULT now() NOT NULL
);

CREATE TABLE public.airtable_pauses (
    scope text NOT NULL,
    reason text NOT NULL,
    kind text,
    paused_at timestamp with time zone DEFAULT now() NOT NULL,
    probe_after timestamp with time zone NOT NULL,
    resumed_at timestamp with time zone,
    CONSTRAINT airtable_pauses_scope_check CHECK ((scope = ANY (ARRAY['base'::text, 'contacts'::text, 'companies'::text])))
);

CREATE TABLE public.airtable_rate (
    base_id text NOT NULL,
    blocked_until timestamp with time zone
);

CREATE SEQUENCE public.airtable_requests_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.airtable_requests_id_seq OWNED BY public.airtable_requests.id;

CREATE TABLE public.airtable_rows_to_delete (
    airtable_id text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL
);

CREATE TABLE public.airtable_webhooks (
    id text NOT NULL,
    base_id text NOT NULL,
    table_id text NOT NULL,
    cin_field_id text NOT NULL,
    refresh_field_id text,
    mac_secret text NOT NULL,
    notification_url text NOT NULL,
    cursor bigint DEFAULT 1 NOT NULL,
    expires_at timestamp with time zone,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    problem text,
    problem_at timestamp with time zone,
    checked_at timestamp with time zone,
    last_payload_at timestamp with time zone
);

CREATE TABLE public.alert_cursors (
    kind text NOT NULL,
    target text NOT NULL,
    sent_up_to bigint DEFAULT 0 NOT NULL,
    last_sent_at timestamp with time zone,
    attempts integer DEFAULT 0 NOT NULL,
    retry_at timestamp with time zone DEFAULT '-infinity'::timestamp with time zone NOT NULL
);

CREATE TABLE public.alerts (
    id bigint NOT NULL,
    kind text NOT NULL,
    ended boolean DEFAULT false NOT NULL,
    subject text NOT NULL,
    detail text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL
);

CREATE SEQUENCE public.alerts_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.alerts_id_seq OWNED BY public.alerts.id;

CREATE TABLE public.api_rate (
    key_hash text NOT NULL,
    window_start timestamp with time zone NOT NULL,
    requests integer NOT NULL
);

CREATE TABLE public.attestr_answers (
    id bigint NOT NULL,
    cin text NOT NULL,
    job_id bigint,
    called_at timestamp with time zone DEFAULT now() NOT NULL,
    outcome text NOT NULL,
    http_status integer,
    error_code text,
    answer jsonb,
    CONSTRAINT attestr_answers_outcome_check CHECK ((outcome = ANY (ARRAY['synced'::text, 'no_data'::text, 'error'::text])))
);

ALTER TABLE public.attestr_answers ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.attestr_answers_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

CREATE TABLE public.attestr_lookups (
    id bigint NOT NULL,
    called_at timestamp with time zone DEFAULT now() NOT NULL,
    job_id bigint,
    cin text NOT NULL,
    api_version text NOT NULL,
    consent_id text,
    consent_number text,
    consent_kind text,
    outcome text NOT NULL,
    http_status integer,
    error_code text,
    attestr_request_id text,
    CONSTRAINT attestr_lookups_api_version_check CHECK ((api_version = ANY (ARRAY['v2'::text, 'v3'::text]))),
    CONSTRAINT attestr_lookups_consent_kind_check CHECK ((consent_kind = ANY (ARRAY['reusable'::text, 'single_use'::text]))),
    CONSTRAINT attestr_lookups_outcome_check CHECK ((outcome = ANY (ARRAY['synced'::text, 'no_data'::text, 'error'::text])))
);

ALTER TABLE public.attestr_lookups ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.attestr_lookups_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

CREATE TABLE public.attestr_state (
    id boolean DEFAULT true NOT NULL,
    paused_reason text,
    paused_code text,
    paused_at timestamp with time zone,
    resume_at timestamp with time zone,
    probe_after timestamp with time zone,
    calls_day date,
    calls_today integer DEFAULT 0 NOT NULL,
    paused_for text,
    CONSTRAINT attestr_state_id_check CHECK (id)
);

CREATE TABLE public.automation_scripts (
    version text NOT NULL,
    last_seen_at timestamp with time zone NOT NULL
);

CREATE TABLE public.companies (
    id bigint NOT NULL,
    airtable_id text NOT NULL,
    cin text,
    name text,
    sync_status text,
    sync_error text,
    synced_at timestamp with time zone,
    contacts_found integer,
    push_version bigint DEFAULT 0 NOT NULL,
    pushed_version bigint DEFAULT 0 NOT NULL,
    push_error text,
    push_lease_until timestamp with time zone,
    deleted_in_airtable boolean DEFAULT false NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    push_withheld boolean DEFAULT false NOT NULL,
    CONSTRAINT companies_sync_status_check CHECK ((sync_status = ANY (ARRAY['Queued'::text, 'Running'::text, 'Waiting'::text, 'Synced'::text, 'No Data'::text, 'Failed'::text])))
);

ALTER TABLE public.companies ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.companies_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

CREATE TABLE public.company_people (
    company_id bigint NOT NULL,
    person_id bigint NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL
);

CREATE VIEW public.contact_stats_by_company AS
SELECT
    NULL::bigint AS company_id,
    NULL::text AS airtable_id,
    NULL::text AS cin,
    NULL::text AS name,
    NULL::text AS sync_status,
    NULL::bigint AS contacts,
    NULL::bigint AS with_phone,
    NULL::bigint AS with_email,
    NULL::bigint AS in_airtable,
    NULL::bigint AS pending_sync,
    NULL::bigint AS failed_sync;

CREATE TABLE public.people (
    id bigint NOT NULL,
    contact_key text GENERATED ALWAYS AS (('ct_'::text || id)) STORED,
    din text,
    name text,
    name_raw text,
    phone_e164 text,
    phone_raw text,
    phone_type text,
    email text,
    email_raw text,
    addresses jsonb DEFAULT '[]'::jsonb NOT NULL,
    airtable_id text,
    push_version bigint DEFAULT 1 NOT NULL,
    pushed_version bigint DEFAULT 0 NOT NULL,
    push_error text,
    push_lease_until timestamp with time zone,
    deleted_in_airtable boolean DEFAULT false NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    push_withheld boolean DEFAULT false NOT NULL,
    pan text,
    airtable_written jsonb,
    airtable_pending jsonb,
    shown_in text,
    CONSTRAINT people_phone_type_check CHECK ((phone_type = ANY (ARRAY['Mobile'::text, 'Landline'::text])))
);

CREATE VIEW public.contacts_pending_sync AS
 SELECT id,
    contact_key,
    airtable_id,
    push_version,
    pushed_version,
    updated_at
   FROM public.people p
  WHERE ((push_version > pushed_version) AND (NOT deleted_in_airtable));

CREATE TABLE public.identities_separated (
    person_id bigint NOT NULL,
    pan text NOT NULL,
    separated_at timestamp with time zone DEFAULT now() NOT NULL
);

CREATE TABLE public.job_attempts (
    job_id bigint NOT NULL,
    attempt integer NOT NULL,
    started_at timestamp with time zone NOT NULL,
    ended_at timestamp with time zone DEFAULT now() NOT NULL,
    outcome text NOT NULL,
    error text
);

CREATE TABLE public.job_rows (
    job_id bigint NOT NULL,
    person_id bigint NOT NULL,
    version bigint NOT NULL,
    outcome text,
    CONSTRAINT job_rows_outcome_check CHECK ((outcome = ANY (ARRAY['created'::text, 'updated'::text, 'failed'::text, 'deleted'::text])))
);

CREATE TABLE public.jobs (
    id bigint NOT NULL,
    record_id text NOT NULL,
    cin text,
    status text DEFAULT 'queued'::text NOT NULL,
    wait_reason text,
    force boolean DEFAULT false NOT NULL,
    max_contacts integer,
    source text DEFAULT 'webhook'::text NOT NULL,
    attempts integer DEFAULT 0 NOT NULL,
    last_error text,
    result jsonb,
    person_ids bigint[],
    run_after timestamp with time zone DEFAULT now() NOT NULL,
    lease_until timestamp with time zone,
    worker_id text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    waiting_on text,
    CONSTRAINT jobs_status_check CHECK ((status = ANY (ARRAY['queued'::text, 'running'::text, 'pushing'::text, 'succeeded'::text, 'failed'::text])))
);

ALTER TABLE public.jobs ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.jobs_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

CREATE TABLE public.ops_sessions (
    token_hash text NOT NULL,
    key_hash text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    expires_at timestamp with time zone NOT NULL
);

ALTER TABLE public.people ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.people_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

CREATE TABLE public.reconcile_state (
    id boolean DEFAULT true NOT NULL,
    baseline_at timestamp with time zone NOT NULL,
    swept_from timestamp with time zone NOT NULL,
    started_at timestamp with time zone,
    finished_at timestamp with time zone,
    counts jsonb,
    CONSTRAINT reconcile_state_id_check CHECK (id)
);

CREATE SEQUENCE public.suppression_groups
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

CREATE TABLE public.suppressions (
    key_kind text NOT NULL,
    key_hash text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    forgotten_together bigint,
    CONSTRAINT suppressions_key_kind_check CHECK ((key_kind = ANY (ARRAY['din'::text, 'pan'::text, 'phone'::text, 'email'::text])))
);

CREATE TABLE public.webhook_requests (
    key text NOT NULL,
    job_id bigint NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    asked text
);

CREATE TABLE public.workers (
    id text NOT NULL,
    started_at timestamp with time zone DEFAULT now() NOT NULL
);

ALTER TABLE ONLY public.airtable_requests ALTER COLUMN id SET DEFAULT nextval('public.airtable_requests_id_seq'::regclass);

ALTER TABLE ONLY public.alerts ALTER COLUMN id SET DEFAULT nextval('public.alerts_id_seq'::regclass);

ALTER TABLE ONLY public.airtable_base
    ADD CONSTRAINT airtable_base_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.airtable_missing_options
    ADD CONSTRAINT airtable_missing_options_pkey PRIMARY KEY (field_key, option);

ALTER TABLE ONLY public.airtable_pauses
    ADD CONSTRAINT airtable_pauses_pkey PRIMARY KEY (scope);

ALTER TABLE ONLY public.airtable_rate
    ADD CONSTRAINT airtable_rate_pkey PRIMARY KEY (base_id);

ALTER TABLE ONLY public.airtable_requests
    ADD CONSTRAINT airtable_requests_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.airtable_rows_to_delete
    ADD CONSTRAINT airtable_rows_to_delete_pkey PRIMARY KEY (airtable_id);

ALTER TABLE ONLY public.airtable_webhooks
    ADD CONSTRAINT airtable_webhooks_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.alert_cursors
    ADD CONSTRAINT alert_cursors_pkey PRIMARY KEY (kind, target);

ALTER TABLE ONLY public.alerts
    ADD CONSTRAINT alerts_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.api_rate
    ADD CONSTRAINT api_rate_pkey PRIMARY KEY (key_hash);

ALTER TABLE ONLY public.attestr_answers
    ADD CONSTRAINT attestr_answers_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.attestr_lookups
    ADD CONSTRAINT attestr_lookups_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.attestr_state
    ADD CONSTRAINT attestr_state_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.automation_scripts
    ADD CONSTRAINT automation_scripts_pkey PRIMARY KEY (version);

ALTER TABLE ONLY public.companies
    ADD CONSTRAINT companies_airtable_id_key UNIQUE (airtable_id);

ALTER TABLE ONLY public.companies
    ADD CONSTRAINT companies_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.company_people
    ADD CONSTRAINT company_people_pkey PRIMARY KEY (company_id, person_id);

ALTER TABLE ONLY public.identities_separated
    ADD CONSTRAINT identities_separated_pkey PRIMARY KEY (person_id, pan);

ALTER TABLE ONLY public.job_attempts
    ADD CONSTRAINT job_attempts_pkey PRIMARY KEY (job_id, attempt, started_at);

ALTER TABLE ONLY public.job_rows
    ADD CONSTRAINT job_rows_pkey PRIMARY KEY (job_id, person_id);

ALTER TABLE ONLY public.jobs
    ADD CONSTRAINT jobs_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.ops_sessions
    ADD CONSTRAINT ops_sessions_pkey PRIMARY KEY (token_hash);

ALTER TABLE ONLY public.people
    ADD CONSTRAINT people_airtable_id_key UNIQUE (airtable_id);

ALTER TABLE ONLY public.people
    ADD CONSTRAINT people_contact_key_key UNIQUE (contact_key);

ALTER TABLE ONLY public.people
    ADD CONSTRAINT people_din_key UNIQUE (din);

ALTER TABLE ONLY public.people
    ADD CONSTRAINT people_pan_key UNIQUE (pan);

ALTER TABLE ONLY public.people
    ADD CONSTRAINT people_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.reconcile_state
    ADD CONSTRAINT reconcile_state_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.suppressions
    ADD CONSTRAINT suppressions_pkey PRIMARY KEY (key_kind, key_hash);

ALTER TABLE ONLY public.webhook_requests
    ADD CONSTRAINT webhook_requests_pkey PRIMARY KEY (key);

ALTER TABLE ONLY public.workers
    ADD CONSTRAINT workers_pkey PRIMARY KEY (id);

CREATE INDEX airtable_requests_base ON public.airtable_requests USING btree (base_id);

CREATE INDEX alerts_created ON public.alerts USING btree (created_at);

CREATE INDEX alerts_kind ON public.alerts USING btree (kind, id);

CREATE INDEX attestr_answers_by_cin ON public.attestr_answers USING btree (cin, called_at DESC);

CREATE INDEX attestr_answers_by_job ON public.attestr_answers USING btree (job_id) WHERE (job_id IS NOT NULL);

CREATE INDEX attestr_answers_called_at ON public.attestr_answers USING btree (called_at);

CREATE INDEX attestr_lookups_called_at ON public.attestr_lookups USING btree (called_at);

CREATE INDEX attestr_lookups_consent ON public.attestr_lookups USING btree (consent_id) WHERE (consent_id IS NOT NULL);

CREATE INDEX companies_pending_push ON public.companies USING btree (updated_at, id) WHERE (push_version > pushed_version);

CREATE INDEX company_people_person ON public.company_people USING btree (person_id);

CREATE INDEX job_rows_person ON public.job_rows USING btree (person_id) WHERE (outcome IS NULL);

CREATE INDEX jobs_by_record ON public.jobs USING btree (record_id, id);

CREATE INDEX jobs_by_status ON public.jobs USING btree (status, id);

CREATE INDEX jobs_claimable ON public.jobs USING btree (run_after, id) WHERE (status = 'queued'::text);

CREATE INDEX jobs_failed ON public.jobs USING btree (id) WHERE (status = 'failed'::text);

CREATE UNIQUE INDEX jobs_one_queued_per_company ON public.jobs USING btree (record_id) WHERE (status = 'queued'::text);

CREATE INDEX jobs_served_from_stored ON public.jobs USING btree (updated_at) WHERE ((status = 'succeeded'::text) AND ((result ->> 'attestr_called'::text) = 'false'::text));

CREATE INDEX jobs_waiting_on ON public.jobs USING btree (waiting_on) WHERE ((status = 'queued'::text) AND (waiting_on IS NOT NULL));

CREATE INDEX ops_sessions_expiry ON public.ops_sessions USING btree (expires_at);

CREATE INDEX people_deleted_in_airtable ON public.people USING btree (id) WHERE deleted_in_airtable;

CREATE INDEX people_email ON public.people USING btree (email) WHERE (email IS NOT NULL);

CREATE INDEX people_pending_push ON public.people USING btree (updated_at, id) WHERE (push_version > pushed_version);

CREATE INDEX people_phone ON public.people USING btree (phone_e164) WHERE (phone_e164 IS NOT NULL);

CREATE INDEX people_push_failed ON public.people USING btree (id) WHERE (push_error IS NOT NULL);

CREATE INDEX suppressions_group ON public.suppressions USING btree (forgotten_together) WHERE (forgotten_together IS NOT NULL);

CREATE INDEX webhook_requests_created ON public.webhook_requests USING btree (created_at);

CREATE OR REPLACE VIEW public.contact_stats_by_company AS
 SELECT c.id AS company_id,
    c.airtable_id,
    c.cin,
    c.name,
    c.sync_status,
    count(p.id) AS contacts,
    count(p.phone_e164) AS with_phone,
    count(p.email) AS with_email,
    count(p.id) FILTER (WHERE (p.airtable_id IS NOT NULL)) AS in_airtable,
    count(p.id) FILTER (WHERE ((p.push_version > p.pushed_version) AND (NOT p.deleted_in_airtable))) AS pending_sync,
    count(p.id) FILTER (WHERE (p.push_error IS NOT NULL)) AS failed_sync
   FROM ((public.companies c
     LEFT JOIN public.company_people cp ON ((cp.company_id = c.id)))
     LEFT JOIN public.people p ON ((p.id = cp.person_id)))
  GROUP BY c.id;

ALTER TABLE ONLY public.attestr_answers
    ADD CONSTRAINT attestr_answers_job_id_fkey FOREIGN KEY (job_id) REFERENCES public.jobs(id) ON DELETE SET NULL;

ALTER TABLE ONLY public.company_people
    ADD CONSTRAINT company_people_company_id_fkey FOREIGN KEY (company_id) REFERENCES public.companies(id) ON DELETE CASCADE;

ALTER TABLE ONLY public.company_people
    ADD CONSTRAINT company_people_person_id_fkey FOREIGN KEY (person_id) REFERENCES public.people(id) ON DELETE CASCADE;

ALTER TABLE ONLY public.identities_separated
    ADD CONSTRAINT identities_separated_person_id_fkey FOREIGN KEY (person_id) REFERENCES public.people(id) ON DELETE CASCADE;

ALTER TABLE ONLY public.job_attempts
    ADD CONSTRAINT job_attempts_job_id_fkey FOREIGN KEY (job_id) REFERENCES public.jobs(id) ON DELETE CASCADE;

ALTER TABLE ONLY public.job_rows
    ADD CONSTRAINT job_rows_job_id_fkey FOREIGN KEY (job_id) REFERENCES public.jobs(id) ON DELETE CASCADE;

ALTER TABLE ONLY public.job_rows
    ADD CONSTRAINT job_rows_person_id_fkey FOREIGN KEY (person_id) REFERENCES public.people(id) ON DELETE CASCADE;
