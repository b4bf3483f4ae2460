-- What is wrong with a native webhook, in words that say what to run, as the payload reader last
-- found it (an error payload, disabled by Airtable, gone, could not be recreated); NULL when it
-- is well. `doctor` and `airtable webhook status` show it.
ALTER TABLE airtable_webhooks
    ADD COLUMN problem    text,
    ADD COLUMN problem_at timestamptz,
    ADD COLUMN checked_at timestamptz;
