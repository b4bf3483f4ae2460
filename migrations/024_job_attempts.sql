-- Each attempt of a job, as it ended: what an operator reads in `contact-sync jobs show`, rather
-- than the last error alone. Deleted with the job (JOB_RETENTION_DAYS).
CREATE TABLE job_attempts (
    job_id bigint NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    attempt integer NOT NULL,
    started_at timestamptz NOT NULL,
    ended_at timestamptz NOT NULL DEFAULT now(),
    outcome text NOT NULL,
    error text,
    PRIMARY KEY (job_id, attempt, started_at)
);
