-- Single select options the service writes that the base lacks, as the pusher last read the
-- schema: each is logged once, whichever process sees it first.
CREATE TABLE airtable_missing_options (
    field_key  text NOT NULL,  -- SYNC_STATUS or PHONE_TYPE
    option     text NOT NULL,
    since      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (field_key, option)
);

-- A row sent to Airtable without a value whose option was missing (a contact's Phone Type, a
-- company's status, or a company naming such a value in its error): sent again once a pusher
-- finds the option, whichever process held it back.
ALTER TABLE people ADD COLUMN push_withheld boolean NOT NULL DEFAULT false;
ALTER TABLE companies ADD COLUMN push_withheld boolean NOT NULL DEFAULT false;
