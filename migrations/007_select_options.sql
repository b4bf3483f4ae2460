-- Single select options the service writes that the base lacks, as the pusher last read the
-- schema. Values of such an option are left out of Airtable (the company's status says so) and
-- sent once the option exists: the pusher marks those rows again when an option appears.
CREATE TABLE airtable_missing_options (
    field_key  text NOT NULL,  -- SYNC_STATUS or PHONE_TYPE
    option     text NOT NULL,
    since      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (field_key, option)
);
