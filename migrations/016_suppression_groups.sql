-- The keys one `contacts forget` suppressed belong together: `contacts unsuppress` by any one of
-- them lifts them all (a person forgotten by email is also suppressed by their DIN and phone).
-- Suppressions made before this migration have no group: each is lifted on its own.
CREATE SEQUENCE suppression_groups;
ALTER TABLE suppressions ADD COLUMN forgotten_together bigint;
CREATE INDEX suppressions_group ON suppressions (forgotten_together) WHERE forgotten_together IS NOT NULL;
