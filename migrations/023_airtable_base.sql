-- Which Airtable base the service's rows were written to (one at a time): a different
-- AIRTABLE_BASE_ID is a new base, not a base whose rows people deleted (airtable/bases.py).
CREATE TABLE airtable_base (
    id boolean PRIMARY KEY DEFAULT true CHECK (id),
    base_id text NOT NULL,
    since timestamptz NOT NULL DEFAULT now(),
    previous text
);
