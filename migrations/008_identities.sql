-- A PAN identifies a signatory who is not a director (a company secretary, a CFO) as a DIN
-- identifies a director. It is sensitive: a key here only, never written to Airtable or logs.
ALTER TABLE people ADD COLUMN pan text UNIQUE;
-- A phone or email identifies a person only among people without an identity (DIN or PAN).
DROP INDEX people_phone_without_din;
DROP INDEX people_email_without_din;
CREATE UNIQUE INDEX people_phone_without_identity ON people (phone_e164)
    WHERE din IS NULL AND pan IS NULL AND phone_e164 IS NOT NULL;
CREATE UNIQUE INDEX people_email_without_identity ON people (email)
    WHERE din IS NULL AND pan IS NULL AND email IS NOT NULL;

ALTER TABLE suppressions DROP CONSTRAINT suppressions_key_kind_check;
ALTER TABLE suppressions ADD CONSTRAINT suppressions_key_kind_check
    CHECK (key_kind IN ('din', 'pan', 'phone', 'email'));

-- Airtable rows of people merged into another person (one person, one row): the pusher deletes
-- them. A row already gone counts as deleted.
CREATE TABLE airtable_rows_to_delete (
    airtable_id text PRIMARY KEY,
    created_at  timestamptz NOT NULL DEFAULT now()
);
