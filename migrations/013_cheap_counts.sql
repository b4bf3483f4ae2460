-- What /metrics and `contact-sync status` count on every look: each count reads only the rows it
-- counts (partial indexes), never a whole table, however many finished jobs and people there are.
CREATE INDEX people_push_failed ON people (id) WHERE push_error IS NOT NULL;
CREATE INDEX people_deleted_in_airtable ON people (id) WHERE deleted_in_airtable;
CREATE INDEX attestr_answers_called_at ON attestr_answers (called_at);
CREATE INDEX jobs_failed ON jobs (id) WHERE status = 'failed';
