-- Airtable refusals only the operator can fix (a revoked token, a table or field locked by a base
-- owner, a table or base moved, a field missing): writes to that part of the base wait, shared by
-- every process, instead of failing rows. `scope`: 'base' (every request), 'contacts' or
-- 'companies' (one table's writes). A probe (one batch) is let through once `probe_after` has
-- passed; its success ends the pause. An operator's pause (`contact-sync airtable pause`) lets no
-- probe through ('infinity') until `airtable resume`. A resumed pause is kept, `resumed_at` set: a
-- refusal of a request sent before the resume (answered after it) does not pause again.
CREATE TABLE airtable_pauses (
    scope       text PRIMARY KEY CHECK (scope IN ('base', 'contacts', 'companies')),
    reason      text NOT NULL,
    kind        text,          -- Airtable's error type (or 'operator')
    paused_at   timestamptz NOT NULL DEFAULT now(),
    probe_after timestamptz NOT NULL,
    resumed_at  timestamptz
);
