-- contact-sync schema. PostgreSQL is the source of truth; Airtable is a copy pushed from it.

-- Companies as they are in Airtable's Companies table, keyed by their Airtable record id.
CREATE TABLE companies (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    airtable_id     text NOT NULL UNIQUE,
    cin             text,
    name            text,
    sync_status     text CHECK (sync_status IN ('Queued', 'Running', 'Waiting', 'Synced', 'No Data', 'Failed')),
    sync_error      text,
    synced_at       timestamptz,
    contacts_found  integer,
    -- Outbox mark: Airtable must receive this row while push_version > pushed_version.
    push_version    bigint NOT NULL DEFAULT 0,
    pushed_version  bigint NOT NULL DEFAULT 0,
    push_error      text,
    push_lease_until timestamptz,
    deleted_in_airtable boolean NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX companies_pending_push ON companies (updated_at, id) WHERE push_version > pushed_version;

-- One row per real person. `contact_key` is what Airtable's `Contact Key` holds: stable, and
-- never a DIN or phone number.
CREATE TABLE people (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    contact_key     text GENERATED ALWAYS AS ('ct_' || id) STORED UNIQUE,
    din             text UNIQUE,
    name            text,
    name_raw        text,
    phone_e164      text,
    phone_raw       text,
    phone_type      text CHECK (phone_type IN ('Mobile', 'Landline')),
    email           text,
    email_raw       text,
    addresses       jsonb NOT NULL DEFAULT '[]'::jsonb,
    airtable_id     text UNIQUE,
    push_version    bigint NOT NULL DEFAULT 1,
    pushed_version  bigint NOT NULL DEFAULT 0,
    push_error      text,
    push_lease_until timestamptz,
    deleted_in_airtable boolean NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
-- A phone or email identifies a person only among people without a DIN: two directors with
-- different DINs often share their company secretary's number.
CREATE UNIQUE INDEX people_phone_without_din ON people (phone_e164)
    WHERE din IS NULL AND phone_e164 IS NOT NULL;
CREATE UNIQUE INDEX people_email_without_din ON people (email)
    WHERE din IS NULL AND email IS NOT NULL;
CREATE INDEX people_phone ON people (phone_e164) WHERE phone_e164 IS NOT NULL;
CREATE INDEX people_email ON people (email) WHERE email IS NOT NULL;
CREATE INDEX people_pending_push ON people (updated_at, id) WHERE push_version > pushed_version;

CREATE TABLE company_people (
    company_id  bigint NOT NULL REFERENCES companies (id) ON DELETE CASCADE,
    person_id   bigint NOT NULL REFERENCES people (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (company_id, person_id)
);
CREATE INDEX company_people_person ON company_people (person_id);

CREATE TABLE jobs (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    record_id       text NOT NULL,
    cin             text,
    status          text NOT NULL DEFAULT 'queued'
                    CHECK (status IN ('queued', 'running', 'pushing', 'succeeded', 'failed')),
    wait_reason     text,
    force           boolean NOT NULL DEFAULT false,
    max_contacts    integer,
    source          text NOT NULL DEFAULT 'webhook',
    attempts        integer NOT NULL DEFAULT 0,
    last_error      text,
    result          jsonb,
    person_ids      bigint[],
    run_after       timestamptz NOT NULL DEFAULT now(),
    lease_until     timestamptz,
    worker_id       text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
-- At most one queued job per company: a webhook for a company already queued reuses its job.
CREATE UNIQUE INDEX jobs_one_queued_per_company ON jobs (record_id) WHERE status = 'queued';
CREATE INDEX jobs_claimable ON jobs (run_after, id) WHERE status = 'queued';
CREATE INDEX jobs_by_status ON jobs (status, id);

-- The contact rows a job changed, at the version it left them: the job is done once the
-- pusher has sent each of them at that version or later.
CREATE TABLE job_rows (
    job_id      bigint NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    person_id   bigint NOT NULL REFERENCES people (id) ON DELETE CASCADE,
    version     bigint NOT NULL,
    outcome     text CHECK (outcome IN ('created', 'updated', 'failed', 'deleted')),
    PRIMARY KEY (job_id, person_id)
);
CREATE INDEX job_rows_person ON job_rows (person_id) WHERE outcome IS NULL;

-- Every Attestr call: the cache (latest answer per CIN) and the audit of what was paid for.
CREATE TABLE attestr_answers (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    cin         text NOT NULL,
    job_id      bigint REFERENCES jobs (id) ON DELETE SET NULL,
    called_at   timestamptz NOT NULL DEFAULT now(),
    outcome     text NOT NULL CHECK (outcome IN ('synced', 'no_data', 'error')),
    http_status integer,
    error_code  text,
    answer      jsonb
);
CREATE INDEX attestr_answers_by_cin ON attestr_answers (cin, called_at DESC);

-- People removed with `contacts forget`, by hashed key, so no later sync brings them back.
CREATE TABLE suppressions (
    key_kind    text NOT NULL CHECK (key_kind IN ('din', 'phone', 'email')),
    key_hash    text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (key_kind, key_hash)
);

-- The Airtable requests of the last second, per base, shared by every process: see
-- airtable_take_slot below.
CREATE TABLE airtable_rate (
    base_id       text PRIMARY KEY,
    slots         timestamptz[] NOT NULL DEFAULT '{}',
    blocked_until timestamptz
);

-- Take a request slot for a base: 0 when granted (and recorded), otherwise the seconds to wait
-- before asking again. At most `max_requests` in any `window_s`; nothing while the base cools
-- down after a 429. Uses clock_timestamp(): the time of the call, not of the transaction.
CREATE FUNCTION airtable_take_slot(p_base text, max_requests integer, window_s double precision)
RETURNS double precision LANGUAGE plpgsql AS $$
DECLARE
    r airtable_rate%ROWTYPE;
    now_ts timestamptz;
    recent timestamptz[];
BEGIN
    INSERT INTO airtable_rate (base_id) VALUES (p_base) ON CONFLICT DO NOTHING;
    SELECT * INTO r FROM airtable_rate WHERE base_id = p_base FOR UPDATE;
    now_ts := clock_timestamp();
    IF r.blocked_until > now_ts THEN
        RETURN extract(epoch FROM r.blocked_until - now_ts);
    END IF;
    recent := ARRAY(SELECT s FROM unnest(r.slots) AS s
                    WHERE s > now_ts - make_interval(secs => window_s) ORDER BY s);
    IF cardinality(recent) >= max_requests THEN
        RETURN extract(epoch FROM recent[cardinality(recent) - max_requests + 1]
                                 + make_interval(secs => window_s) - now_ts);
    END IF;
    UPDATE airtable_rate SET slots = recent || now_ts WHERE base_id = p_base;
    RETURN 0;
END $$;

-- Rows Airtable has not yet received in their current version.
CREATE VIEW contacts_pending_sync AS
SELECT p.id, p.contact_key, p.airtable_id, p.push_version, p.pushed_version, p.updated_at
FROM people p
WHERE p.push_version > p.pushed_version AND NOT p.deleted_in_airtable;

CREATE VIEW contact_stats_by_company AS
SELECT c.id AS company_id,
       c.airtable_id,
       c.cin,
       c.name,
       c.sync_status,
       count(p.id) AS contacts,
       count(p.phone_e164) AS with_phone,
       count(p.email) AS with_email,
       count(p.id) FILTER (WHERE p.airtable_id IS NOT NULL) AS in_airtable,
       count(p.id) FILTER (WHERE p.push_version > p.pushed_version
                             AND NOT p.deleted_in_airtable) AS pending_sync,
       count(p.id) FILTER (WHERE p.push_error IS NOT NULL) AS failed_sync
FROM companies c
LEFT JOIN company_people cp ON cp.company_id = c.id
LEFT JOIN people p ON p.id = cp.person_id
GROUP BY c.id;
