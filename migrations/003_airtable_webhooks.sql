-- Airtable's native webhooks on the Companies table (an alternative to the automation script).
-- The MAC secret is what Airtable gave when the webhook was created (it shows it only once);
-- `cursor` is the next payload to read: it moves only in the transaction that queued the syncs
-- for the payloads before it, so a crash neither skips nor repeats a payload.
CREATE TABLE airtable_webhooks (
    id               text PRIMARY KEY,
    base_id          text NOT NULL,
    table_id         text NOT NULL,
    cin_field_id     text NOT NULL,
    refresh_field_id text,
    mac_secret       text NOT NULL,
    notification_url text NOT NULL,
    cursor           bigint NOT NULL DEFAULT 1,
    expires_at       timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
