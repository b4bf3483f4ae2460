-- The operator's page (/ops) reads a job's Attestr calls by the job: an index, so that a page of
-- 50 jobs costs 50 index probes, not 50 scans of every answer kept. A retried job's
-- "what this job already paid for" (ANSWER_OF_JOB) reads by it too.
CREATE INDEX attestr_answers_by_job ON attestr_answers (job_id) WHERE job_id IS NOT NULL;

-- Jobs an answer stored earlier served, by the day they ended: what the spend figures count as
-- "saved" (ATTESTR_SPEND, OPS_SPEND_BY_DAY) is read from this index, not from every job kept.
CREATE INDEX jobs_served_from_stored ON jobs (updated_at)
    WHERE status = 'succeeded' AND result ->> 'attestr_called' = 'false';
