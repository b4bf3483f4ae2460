-- Attestr V3 (consent-first). Every lookup sent to Attestr, with the consent it carried: the record
-- of processing the DPDP Rules ask to be kept a year at least. It holds no personal data (a CIN
-- names a company; the consent id and Attestr's request id are Attestr's), so `contacts forget`
-- leaves it, and it outlives the jobs (no foreign key: jobs go after JOB_RETENTION_DAYS) and the
-- answers (ATTESTR_ANSWER_RETENTION_DAYS); it goes after ATTESTR_LOOKUP_LOG_DAYS (400, at least 365).
CREATE TABLE attestr_lookups (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    called_at          timestamptz NOT NULL DEFAULT now(),
    job_id             bigint,
    cin                text NOT NULL,
    api_version        text NOT NULL CHECK (api_version IN ('v2', 'v3')),
    consent_id         text,  -- NULL on V2
    consent_number     text,  -- Attestr's number for a consent the service registered
    consent_kind       text CHECK (consent_kind IN ('reusable', 'single_use')),
    outcome            text NOT NULL CHECK (outcome IN ('synced', 'no_data', 'error')),
    http_status        integer,
    error_code         text,
    attestr_request_id text   -- the answer's `xattestrid` header, which Attestr asks for in a report
);
CREATE INDEX attestr_lookups_called_at ON attestr_lookups (called_at);
CREATE INDEX attestr_lookups_consent ON attestr_lookups (consent_id) WHERE consent_id IS NOT NULL;

-- A pause that only a change of settings mends (a refused consent, V2 switched off, a refused
-- token) remembers a digest of the settings it happened under: a process starting with other
-- settings ends it at once, rather than after the next probe.
ALTER TABLE attestr_state ADD COLUMN paused_for text;
