-- The automation script sends one X-Request-Id for all the attempts of one run: an attempt whose
-- answer was lost (a proxy's 502, a timeout) is answered with the job the first one stored, so
-- a Refresh Contacts tick is never stored, and paid for, twice. Kept a day (retention.py).
CREATE TABLE webhook_requests (
    key        text PRIMARY KEY,
    job_id     bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_requests_created ON webhook_requests (created_at);
