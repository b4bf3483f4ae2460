-- Airtable deletes a webhook's payloads after a week, read or not, and never resets the cursor
-- ("List webhook payloads"): the reader tells a gap by the cursor, and the time of the last
-- payload it read bounds the window it then reconciles.
ALTER TABLE airtable_webhooks ADD COLUMN last_payload_at timestamptz;
