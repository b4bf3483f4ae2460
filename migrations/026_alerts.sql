-- Alerts the service sends itself (engine/alerts.py): an outbox of what happened, and for each
-- kind and target how far it was sent. Every process runs a sender; the cursor row, locked while
-- a digest goes out, makes each alert go once to each target. No personal data: company names,
-- CINs, job ids and the service's sentences only.
CREATE TABLE alerts (
    id         bigserial PRIMARY KEY,
    kind       text NOT NULL,
    ended      boolean NOT NULL DEFAULT false,  -- the end of what an earlier alert of the kind began
    subject    text NOT NULL,
    detail     text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX alerts_kind ON alerts (kind, id);
CREATE INDEX alerts_created ON alerts (created_at);

CREATE TABLE alert_cursors (
    kind         text NOT NULL,
    target       text NOT NULL,  -- "webhook:<hash of the URL>" or "email:<hash of the addresses>"
    sent_up_to   bigint NOT NULL DEFAULT 0,
    last_sent_at timestamptz,
    attempts     integer NOT NULL DEFAULT 0,
    retry_at     timestamptz NOT NULL DEFAULT '-infinity',
    PRIMARY KEY (kind, target)
);
