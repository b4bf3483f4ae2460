"""Every SQL statement of the service, by name.

The rules of the data live here, in SQL: partial unique indexes (see `migrations/`), advisory
locks, `FOR UPDATE` and set-based statements over arrays (`unnest`) rather than a query per row.
A statement with many values names them (`Named`): `conn.execute(*JOB_REQUEUE.bind(job_id=…))`.
"""

from __future__ import annotations

import re
from typing import Any

# A `:name` placeholder: not a cast (`::text`), not inside a word.
_PLACEHOLDER = re.compile(r"(?<![:\w]):([a-z_][a-z0-9_]*)")


class Named:
    """A statement written with named placeholders (`:job_id`), sent with asyncpg's numbered ones
    (`$1`). `sql`: the numbered statement; `names`: the placeholders, in their numbers' order."""

    def __init__(self, sql: str) -> None:
        self.names: list[str] = []
        self.sql = _PLACEHOLDER.sub(self._number, sql)

    def _number(self, match: re.Match[str]) -> str:
        if match.group(1) not in self.names:
            self.names.append(match.group(1))
        return f"${self.names.index(match.group(1)) + 1}"

    def bind(self, **values: Any) -> tuple[Any, ...]:
        """(sql, *values in order), for `conn.execute(*…)`. TypeError: a name missing or unknown."""
        if missing := [name for name in self.names if name not in values]:
            raise TypeError(f"no value for {', '.join(missing)}")
        if unknown := sorted(set(values) - set(self.names)):
            raise TypeError(f"no placeholder for {', '.join(unknown)}")
        return (self.sql, *(values[name] for name in self.names))


# --- migrations -------------------------------------------------------------------------------

# An arbitrary constant: the advisory lock that serialises migrations across processes.
MIGRATIONS_LOCK = "SELECT pg_advisory_lock(724311)"
MIGRATIONS_UNLOCK = "SELECT pg_advisory_unlock(724311)"
MIGRATIONS_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    text PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
)"""
MIGRATIONS_TABLE_EXISTS = "SELECT to_regclass('schema_migrations') IS NOT NULL"
MIGRATIONS_APPLIED = "SELECT version FROM schema_migrations"
MIGRATION_RECORD = "INSERT INTO schema_migrations (version) VALUES ($1)"

# --- companies --------------------------------------------------------------------------------

COMPANIES_ENSURE = """
INSERT INTO companies (airtable_id, cin, name)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[])
ON CONFLICT (airtable_id) DO UPDATE
    SET cin = COALESCE(EXCLUDED.cin, companies.cin),
        name = COALESCE(EXCLUDED.name, companies.name),
        updated_at = now()
RETURNING id, airtable_id"""

# --- people (dedup.py) ------------------------------------------------------------------------

# Keys arrive sorted; a function scan takes them in array order, so every transaction locks
# shared keys in the same order and two upserts cannot deadlock on them.
# The bulk lock, shared by every ordinary upsert (exclusive by a bulk load: LOCK_BULK), then each
# key's lock in the order given: the one-time filter runs before the first row is scanned.
LOCK_KEYS = """
SELECT pg_advisory_xact_lock(k) FROM unnest($1::bigint[]) AS k
WHERE (SELECT pg_advisory_xact_lock_shared(724312)) IS NOT NULL"""
LOCK_BULK = "SELECT pg_advisory_xact_lock(724312)"

SUPPRESSED_KEYS = """
SELECT s.key_kind, s.key_hash
FROM suppressions s
JOIN unnest($1::text[], $2::text[]) AS w(kind, hash) ON s.key_kind = w.kind AND s.key_hash = w.hash"""

# Everyone a batch could match: by DIN, PAN, phone or email, or already linked to one of its
# companies (for the same-company-same-name rule). Locked until the transaction ends.
PEOPLE_CANDIDATES = """
WITH ids AS (
    SELECT id FROM people WHERE din = ANY($1::text[])
    UNION SELECT id FROM people WHERE pan = ANY($5::text[])
    UNION SELECT id FROM people WHERE phone_e164 = ANY($2::text[])
    UNION SELECT id FROM people WHERE email = ANY($3::text[])
    UNION SELECT person_id FROM company_people WHERE company_id = ANY($4::bigint[])
)
SELECT p.id, p.din, p.pan, p.name, p.name_raw, p.phone_e164, p.phone_raw, p.phone_type,
       p.email, p.email_raw, p.addresses,
       ARRAY(SELECT cp.company_id FROM company_people cp WHERE cp.person_id = p.id) AS company_ids
FROM people p
WHERE p.id IN (SELECT id FROM ids)
ORDER BY p.id
FOR UPDATE OF p"""

# One array per column (`:addresses` as JSON text). Each row is given its id in one statement: the
# ids taken, ascending, are zipped with the arrays by position, and returned.
PEOPLE_INSERT = Named("""
INSERT INTO people (id, din, pan, name, name_raw, phone_e164, phone_raw, phone_type, email, email_raw,
                    addresses)
OVERRIDING SYSTEM VALUE
SELECT * FROM unnest((SELECT array_agg(id ORDER BY id)
                      FROM (SELECT nextval(pg_get_serial_sequence('people', 'id')) AS id
                            FROM generate_series(1, cardinality(:din::text[]))) AS taken),
                     :din::text[], :pan::text[], :name::text[], :name_raw::text[],
                     :phone_e164::text[], :phone_raw::text[], :phone_type::text[], :email::text[],
                     :email_raw::text[], :addresses::jsonb[])
RETURNING id""")

PEOPLE_UPDATE = Named("""
UPDATE people p
SET din = u.din, pan = u.pan, name = u.name, name_raw = u.name_raw,
    phone_e164 = u.phone_e164, phone_raw = u.phone_raw, phone_type = u.phone_type,
    email = u.email, email_raw = u.email_raw, addresses = u.addresses,
    push_version = p.push_version + u.visible::int,
    updated_at = now()
FROM unnest(:id::bigint[], :din::text[], :pan::text[], :name::text[], :name_raw::text[],
            :phone_e164::text[], :phone_raw::text[], :phone_type::text[], :email::text[],
            :email_raw::text[], :addresses::jsonb[], :visible::bool[])
     AS u(id, din, pan, name, name_raw, phone_e164, phone_raw, phone_type, email, email_raw, addresses,
          visible)
WHERE p.id = u.id""")

PEOPLE_MARK_FOR_PUSH = """
UPDATE people SET push_version = push_version + 1, updated_at = now() WHERE id = ANY($1::bigint[])"""

# Link each (company, person) pair ($2, $3) and, for the companies in $1 (their links replaced by
# these), unlink everyone else: what changed, added or not. The delete does not see the links this
# statement adds; it would keep them anyway.
LINKS_SET = """
WITH added AS (
    INSERT INTO company_people (company_id, person_id)
    SELECT * FROM unnest($2::bigint[], $3::bigint[])
    ON CONFLICT DO NOTHING
    RETURNING company_id, person_id
), removed AS (
    DELETE FROM company_people cp
    WHERE cp.company_id = ANY($1::bigint[])
      AND NOT EXISTS (
          SELECT 1 FROM unnest($2::bigint[], $3::bigint[]) AS k(company_id, person_id)
          WHERE k.company_id = cp.company_id AND k.person_id = cp.person_id)
    RETURNING company_id, person_id
)
SELECT true AS added, company_id, person_id FROM added
UNION ALL
SELECT false AS added, company_id, person_id FROM removed"""

# --- jobs (jobs.py) ---------------------------------------------------------------------------

JOB_COLUMNS = """id, record_id, cin, status, wait_reason, force, max_contacts, source, attempts,
    last_error, result, person_ids, run_after, lease_until, created_at, updated_at"""

# A webhook or a manual sync: a company with a queued job gets that job back (newer CIN taken),
# otherwise a new one is queued. The company's status becomes Queued in the same statement.
JOB_ENQUEUE = """
WITH company AS (
    INSERT INTO companies (airtable_id, sync_status, push_version)
    VALUES ($1, 'Queued', 1)
    ON CONFLICT (airtable_id) DO UPDATE
        -- a trigger for the record: it is in the base (the worker reads it before paying)
        SET sync_status = 'Queued', sync_error = NULL, deleted_in_airtable = false,
            push_version = companies.push_version
                + (companies.sync_status IS DISTINCT FROM 'Queued' OR companies.sync_error IS NOT NULL)::int,
            updated_at = now()
), job AS (
    INSERT INTO jobs (record_id, cin, force, max_contacts, source)
    VALUES ($1, $2, $3, $4, $5)
    ON CONFLICT (record_id) WHERE status = 'queued' DO UPDATE
        SET cin = COALESCE(EXCLUDED.cin, jobs.cin),
            force = jobs.force OR EXCLUDED.force,
            max_contacts = EXCLUDED.max_contacts,
            updated_at = now()
    RETURNING id, (xmax <> 0) AS deduplicated
)
SELECT id, deduplicated FROM job"""


JOB_GET = f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1"
JOB_LIST = f"""
SELECT {JOB_COLUMNS} FROM jobs
WHERE ($1::text IS NULL OR status = $1)
ORDER BY id DESC
LIMIT $2"""

# The name typed in Airtable, for a company Attestr has not named yet (its business name wins).
COMPANY_NAMED_IN_AIRTABLE = "UPDATE companies SET name = $2 WHERE airtable_id = $1 AND name IS NULL"

COMPANY_NAMES = """
SELECT airtable_id, name FROM companies WHERE airtable_id = ANY($1::text[]) AND name IS NOT NULL"""

# Claim up to $1 jobs: due queued ones, and running ones whose worker stopped renewing its lease.
# A company never has two jobs running at once: a queued job waits while the company has a
# running one, even one whose lease ran out (that one is taken over first). Each claimed job's
# company says Running in the same statement (as COMPANY_SET_STATUS would: one round trip less
# before the job's first request).
JOB_CLAIM = f"""
WITH next AS (
    SELECT j.id FROM jobs j
    WHERE (j.status = 'queued' AND j.run_after <= now()
           AND NOT EXISTS (SELECT 1 FROM jobs r WHERE r.record_id = j.record_id AND r.status = 'running'))
       OR (j.status = 'running' AND j.lease_until < now())
       OR (j.status = 'running' AND j.worker_id IN (SELECT w.id FROM workers w WHERE NOT worker_alive(w.id)))
    ORDER BY j.run_after, j.id
    LIMIT $1
    FOR UPDATE SKIP LOCKED
)
, claimed AS (
    UPDATE jobs SET status = 'running', attempts = jobs.attempts + 1, worker_id = $3,
        lease_until = now() + make_interval(secs => $2), wait_reason = NULL, waiting_on = NULL,
        updated_at = now()
    FROM next WHERE jobs.id = next.id
    RETURNING {", ".join("jobs." + c.strip() for c in JOB_COLUMNS.split(","))},
        -- An answer an earlier try paid for (ANSWER_OF_JOB): read only when there is one.
        EXISTS (SELECT 1 FROM attestr_answers a WHERE a.job_id = jobs.id AND a.outcome <> 'error') AS paid
), running AS (
    UPDATE companies c SET sync_status = 'Running', sync_error = NULL,
        push_version = c.push_version
            + (c.sync_status IS DISTINCT FROM 'Running' OR c.sync_error IS NOT NULL)::int,
        updated_at = now()
    FROM claimed WHERE c.airtable_id = claimed.record_id
)
SELECT * FROM claimed"""

# A worker's liveness (migrations/014_worker_liveness.sql): its lock, held on a connection of its own.
WORKER_LOCK = "SELECT pg_try_advisory_lock(hashtextextended('worker:' || $1, 0))"
WORKER_UNLOCK = "SELECT pg_advisory_unlock(hashtextextended('worker:' || $1, 0))"
WORKER_REGISTER = "INSERT INTO workers (id) VALUES ($1) ON CONFLICT DO NOTHING"
WORKER_LEAVE = "DELETE FROM workers WHERE id = $1"
# Workers gone for good: no lock, no job left running under their name.
WORKERS_PRUNE = """
DELETE FROM workers w WHERE NOT worker_alive(w.id)
  AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.worker_id = w.id AND j.status = 'running')"""

JOB_RENEW_LEASES = """
UPDATE jobs SET lease_until = now() + make_interval(secs => $2)
WHERE id = ANY($1::bigint[]) AND status = 'running' AND worker_id = $3"""

# The database work of a job is done; its rows wait for the pusher (or there are none).
JOB_STORED = Named("""
UPDATE jobs SET status = :status, result = :result, person_ids = :person_ids, cin = :cin,
    lease_until = NULL, wait_reason = NULL, last_error = NULL, updated_at = now()
WHERE id = :job_id AND status = 'running' AND worker_id = :worker_id""")

# The rows Airtable refused before among a sync's people ($2) marked to be sent again with it, then
# the job's ($1) rows recorded: those of $3 (its people, and those it unlinked) still to be sent, at
# the version to be sent. The insert reads the people as they were before the update, so a refused
# row's version is the one the update gave it.
JOB_ROWS_RECORD = """
WITH refused AS (
    UPDATE people SET push_version = push_version + 1, updated_at = now()
    WHERE id = ANY($2::bigint[]) AND push_error IS NOT NULL AND push_version = pushed_version
    RETURNING id, push_version
)
INSERT INTO job_rows (job_id, person_id, version)
SELECT $1, p.id, COALESCE(r.push_version, p.push_version)
FROM people p LEFT JOIN refused r USING (id)
WHERE p.id = ANY($3::bigint[]) AND (r.id IS NOT NULL OR p.push_version > p.pushed_version)
  AND NOT p.deleted_in_airtable
ON CONFLICT (job_id, person_id) DO UPDATE SET version = EXCLUDED.version, outcome = NULL"""

# Back to the queue until `run_after`. When a newer job for the same company was queued
# meanwhile, that one carries on (not before `run_after`) and this one ends. `attempts_back`: 1
# when the try does not count as an attempt (a wait), else 0.
JOB_REQUEUE = Named("""
WITH newer AS (
    UPDATE jobs SET run_after = GREATEST(run_after, :run_after), updated_at = now()
    WHERE record_id = :record_id AND status = 'queued' AND id <> :job_id
    RETURNING id
), airtable_paused AS (
    -- A job waiting for Airtable waits only while the pause it met lasts: one ended meanwhile
    -- has woken the queued jobs, not this one, still running then. Locked, so that an ending
    -- pause waits for this job to be queued (and so wakes it).
    SELECT 1 FROM airtable_pauses
    WHERE :waiting_on = 'airtable' AND scope IN ('base', 'companies') AND resumed_at IS NULL
    FOR SHARE
)
UPDATE jobs SET
    status = CASE WHEN EXISTS (SELECT 1 FROM newer) THEN 'failed' ELSE 'queued' END,
    run_after = CASE WHEN :waiting_on = 'airtable' AND NOT EXISTS (SELECT 1 FROM airtable_paused)
                     THEN now() + interval '1 second' ELSE :run_after END,
    wait_reason = :reason, last_error = :error, waiting_on = :waiting_on,
    attempts = attempts - :attempts_back::int, lease_until = NULL, updated_at = now()
WHERE id = :job_id AND status = 'running' AND worker_id = :worker_id
RETURNING status""")

# A stopping worker hands its unfinished jobs back: their lease ends now, so any worker takes
# them over at once, and the interrupted try does not count as an attempt.
JOB_RELEASE = """
UPDATE jobs SET lease_until = now(), attempts = GREATEST(attempts - 1, 0), updated_at = now()
WHERE id = ANY($1::bigint[]) AND status = 'running' AND worker_id = $2"""

# Replay of a failed job: back to the queue with its attempts reset (unless the company has a
# queued job already, which is the one to follow).
JOB_RETRY = f"""
WITH retried AS (
    UPDATE jobs SET status = 'queued', attempts = 0, run_after = now(), last_error = NULL,
        wait_reason = NULL, waiting_on = NULL, updated_at = now()
    WHERE id = $1 AND status = 'failed'
      AND NOT EXISTS (SELECT 1 FROM jobs q WHERE q.record_id = jobs.record_id AND q.status = 'queued')
    RETURNING {JOB_COLUMNS}
)
SELECT retried.* FROM retried CROSS JOIN (SELECT pg_notify('contact_sync', 'jobs')) AS notified"""

JOB_QUEUED_FOR_COMPANY = f"SELECT {JOB_COLUMNS} FROM jobs WHERE record_id = $1 AND status = 'queued'"
# Failed jobs, those that ended within the last $1 seconds only unless $1 is NULL.
# Failed jobs, those of the last $1 seconds only when given, and none that failed after $2 (the
# moment an operator was shown how many there were) when given.
JOBS_FAILED_IDS = """
SELECT id FROM jobs
WHERE status = 'failed' AND ($1::float8 IS NULL OR updated_at > now() - $1 * interval '1 second')
  AND ($2::timestamptz IS NULL OR updated_at <= $2)
ORDER BY id"""

NOTIFY_PUSH = "SELECT pg_notify('contact_sync', 'push')"
# A payload of listener.notified_as: the sending process's own listener skips it.
NOTIFY = "SELECT pg_notify('contact_sync', $1)"
NOTIFY_JOBS = "SELECT pg_notify('contact_sync', 'jobs')"

JOB_FAIL = """
UPDATE jobs SET status = 'failed', last_error = $2, lease_until = NULL, wait_reason = NULL,
    result = COALESCE($3, result), updated_at = now()
WHERE id = $1 AND status IN ('running', 'pushing')"""

# Airtable cannot be written to: every job waiting for the pusher says why.
JOBS_PUSHING_WAIT = """
UPDATE jobs SET wait_reason = $1, updated_at = now()
WHERE status = 'pushing' AND wait_reason IS DISTINCT FROM $1"""

# Jobs whose every row the pusher has sent (or found deleted by hand, or failed): done.
JOBS_COMPLETE = f"""
WITH done AS (
    SELECT j.id FROM jobs j
    WHERE j.status = 'pushing' AND NOT EXISTS (
        SELECT 1 FROM job_rows jr JOIN people p ON p.id = jr.person_id
        WHERE jr.job_id = j.id AND p.pushed_version < jr.version AND NOT p.deleted_in_airtable)
    FOR UPDATE SKIP LOCKED
), counts AS (
    SELECT jr.job_id,
           count(*) FILTER (WHERE jr.outcome = 'created') AS created,
           count(*) FILTER (WHERE jr.outcome = 'updated') AS updated,
           count(*) FILTER (WHERE jr.outcome = 'failed' OR p.push_error IS NOT NULL) AS failed,
           array_agg(p.contact_key || ': ' || p.push_error ORDER BY p.id)
               FILTER (WHERE p.push_error IS NOT NULL) AS errors
    FROM job_rows jr JOIN people p ON p.id = jr.person_id
    WHERE jr.job_id IN (SELECT id FROM done)
    GROUP BY jr.job_id
)
UPDATE jobs j SET
    status = CASE WHEN COALESCE(c.failed, 0) > 0 OR gone.id IS NOT NULL THEN 'failed' ELSE 'succeeded' END,
    wait_reason = NULL,
    result = j.result || jsonb_build_object(
        'airtable_created', COALESCE(c.created, 0),
        'airtable_updated', COALESCE(c.updated, 0),
        'airtable_failed', COALESCE(c.failed, 0))
        || CASE WHEN gone.id IS NOT NULL THEN jsonb_build_object('outcome', 'company_deleted')
                ELSE '{{}}'::jsonb END,
    last_error = CASE
        WHEN gone.id IS NOT NULL THEN
            'The company record was deleted in Airtable during its sync: nothing more is written for '
            || 'it (people it shares with other companies stay linked to those)'
        WHEN COALESCE(c.failed, 0) > 0 THEN c.failed || ' contact(s) could not be written to Airtable: '
            || array_to_string(c.errors[1:5], '; ')
        END,
    updated_at = now()
FROM done LEFT JOIN counts c ON c.job_id = done.id
LEFT JOIN companies gone ON gone.airtable_id = (SELECT record_id FROM jobs WHERE id = done.id)
    AND gone.deleted_in_airtable
WHERE j.id = done.id
RETURNING {", ".join("j." + c.strip() for c in JOB_COLUMNS.split(","))}"""

# --- companies' status fields -----------------------------------------------------------------

# A person is in Airtable in their own row, or in another's (`shown_in`: a row a person merged two
# identities into by hand); a row showing two of the company's people counts once. `{company}`:
# the company's id.
_CONTACTS_IN_AIRTABLE = """(
    SELECT count(DISTINCT COALESCE(p.shown_in, p.airtable_id))
    FROM company_people cp JOIN people p ON p.id = cp.person_id
    WHERE cp.company_id = {company}
      AND ((p.airtable_id IS NOT NULL AND NOT p.deleted_in_airtable) OR p.shown_in IS NOT NULL))"""

# Airtable must receive the company again only when something it shows changed.
_COMPANY_SET_STATUS = """
UPDATE companies SET
    sync_status = $2, sync_error = $3,
    synced_at = COALESCE($4, synced_at),
    contacts_found = COALESCE({found}, contacts_found),
    push_version = push_version + ((sync_status, sync_error, synced_at, contacts_found)
        IS DISTINCT FROM ($2, $3, COALESCE($4, synced_at), COALESCE({found}, contacts_found)))::int,
    updated_at = now()
WHERE airtable_id = $1"""
COMPANY_SET_STATUS = _COMPANY_SET_STATUS.format(found="$5")
# A sync's end: its status, with its contacts in Airtable counted now.
COMPANY_SET_STATUS_COUNTED = _COMPANY_SET_STATUS.format(
    found=_CONTACTS_IN_AIRTABLE.format(company="companies.id")
)

# Contacts Found follows the people behind it: recounted for the synced companies of these
# people ($1) when some of them leave Airtable (forgotten, or deleted there by hand).
COMPANIES_RECOUNT = f"""
WITH counted AS (
    SELECT c.id, {_CONTACTS_IN_AIRTABLE.format(company="c.id")} AS n
    FROM companies c
    WHERE c.sync_status = 'Synced'
      AND c.id IN (SELECT company_id FROM company_people WHERE person_id = ANY($1::bigint[]))
)
UPDATE companies c SET contacts_found = counted.n, push_version = c.push_version + 1, updated_at = now()
FROM counted WHERE c.id = counted.id AND c.contacts_found IS DISTINCT FROM counted.n"""

# --- Attestr answers: the cache and the audit of every call -----------------------------------

# Held (on a connection of its own) while a CIN's stored answer is checked and, if need be, paid
# for: many jobs for one CIN at once make one call.
CIN_LOCK = "SELECT pg_advisory_lock(hashtextextended('attestr:' || $1, 0))"
CIN_UNLOCK = "SELECT pg_advisory_unlock(hashtextextended('attestr:' || $1, 0))"

# --- Attestr's account state: pause, probe, daily cap (attestr/gate.py) -----------------------

ATTESTR_TAKE_CALL = "SELECT * FROM attestr_take_call($1, $2)"
ATTESTR_STATE = "SELECT * FROM attestr_state"

# Returns whether this call started the pause (a pause already on keeps its start time; a
# concurrent caller waits for the row and then sees that start time, not its own).
# An operator's pause is never replaced by one of Attestr's (from a call already under way).
ATTESTR_PAUSE = """
UPDATE attestr_state SET paused_reason = $1, paused_code = $2, paused_at = COALESCE(paused_at, now()),
    resume_at = $3, probe_after = now() + make_interval(secs => $4), paused_for = $5
WHERE paused_code IS DISTINCT FROM 'operator'
RETURNING paused_at = now() AS newly_paused"""

# `contact-sync attestr pause`: no call at all, not even a probe (each is paid), until resumed.
ATTESTR_PAUSE_BY_OPERATOR = """
UPDATE attestr_state SET paused_reason = $1, paused_code = 'operator',
    paused_at = CASE WHEN paused_code = 'operator' THEN paused_at ELSE now() END,
    resume_at = NULL, probe_after = 'infinity', paused_for = NULL"""

# Resume: clear the pause and wake every job that waited for it. With $1, only a pause that a
# change of settings mends and that happened under other settings than $1 (a digest): a process
# started with the settings mended ends it.
ATTESTR_RESUME = """
WITH cleared AS (
    UPDATE attestr_state SET paused_reason = NULL, paused_code = NULL, paused_at = NULL,
        resume_at = NULL, probe_after = NULL, paused_for = NULL
    WHERE $1::text IS NULL OR (paused_reason IS NOT NULL AND paused_for <> $1
                                AND paused_code IS DISTINCT FROM 'daily_call_limit')
    RETURNING paused_reason
), woken AS (
    UPDATE jobs SET run_after = now(), updated_at = now()
    WHERE status = 'queued' AND (
        (waiting_on = 'attestr' AND ($1::text IS NULL OR EXISTS (SELECT 1 FROM cleared)))
        -- waiting for a setting (or Airtable's token): every resume, and every process's
        -- start, looks again
        OR waiting_on IN ('settings', 'airtable'))
    RETURNING id
)
SELECT (SELECT count(*) FROM woken) AS woken, (SELECT count(*) FROM cleared) AS cleared
FROM (SELECT pg_notify('contact_sync', 'jobs')) AS notified"""

# Calls that may have been billed today: answers, and errors but Attestr's refusals (4xx).
ATTESTR_CALLS_TODAY = """
SELECT count(*) FROM attestr_answers
WHERE called_at >= ((now() AT TIME ZONE 'Asia/Kolkata')::date::timestamp AT TIME ZONE 'Asia/Kolkata')
  AND (outcome <> 'error' OR http_status IS NULL OR http_status NOT BETWEEN 400 AND 499)"""

# Spend over India's calendar days (Attestr's daily limit counts them): today, today and the 6
# days before, and the 29 before. Paid: as ATTESTR_CALLS_TODAY; refused: Attestr's 4xx, apart;
# from stored answers: jobs that ended without a call, an answer stored earlier serving them.
ATTESTR_SPEND = """
WITH today AS (
    SELECT ((now() AT TIME ZONE 'Asia/Kolkata')::date::timestamp AT TIME ZONE 'Asia/Kolkata') AS at
), windows AS (
    SELECT name, today.at - days * interval '1 day' AS since
    FROM today, (VALUES ('today', 0), ('last_7_days', 6), ('last_30_days', 29)) AS w(name, days)
)
SELECT w.name,
    (SELECT count(*) FROM attestr_answers a WHERE a.called_at >= w.since
        AND (a.outcome <> 'error' OR a.http_status IS NULL OR a.http_status NOT BETWEEN 400 AND 499))
        AS paid,
    (SELECT count(*) FROM attestr_answers a WHERE a.called_at >= w.since
        AND a.outcome = 'error' AND a.http_status BETWEEN 400 AND 499) AS refused,
    (SELECT count(*) FROM jobs j WHERE j.updated_at >= w.since AND j.status = 'succeeded'
        AND j.result ->> 'attestr_called' = 'false') AS from_stored
FROM windows w ORDER BY w.since DESC"""

ATTESTR_UNCOUNT = """
UPDATE attestr_state SET calls_today = GREATEST(calls_today - 1, 0)
WHERE calls_day = (now() AT TIME ZONE 'Asia/Kolkata')::date"""

ANSWER_CACHED = """
SELECT answer, outcome, called_at FROM attestr_answers
WHERE cin = $1
  AND ((outcome = 'synced' AND called_at > now() - $2 * interval '1 day')
       OR (outcome = 'no_data' AND called_at > now() - $3 * interval '1 day'))
ORDER BY called_at DESC
LIMIT 1"""

# A refresh of this CIN paid for within the last $2 seconds: a later refresh joins its answer.
ANSWER_REFRESHED = """
SELECT a.answer, a.outcome, a.called_at FROM attestr_answers a JOIN jobs j ON j.id = a.job_id
WHERE a.cin = $1 AND j.force AND a.outcome <> 'error' AND a.called_at > now() - $2 * interval '1 second'
ORDER BY a.called_at DESC
LIMIT 1"""

# A paid answer of this CIN that could not be read ($2 seconds back at most), by another job than
# $3: a replayed trigger does not pay again for what came broken (a `jobs retry` of that job does).
ANSWER_UNREADABLE_RECENTLY = """
SELECT called_at FROM attestr_answers
WHERE cin = $1 AND outcome = 'error' AND http_status = 200 AND job_id <> $3
  AND called_at > now() - $2 * interval '1 second'
ORDER BY called_at DESC
LIMIT 1"""

# What this job already paid for: a retried job never pays twice.
ANSWER_OF_JOB = """
SELECT answer, outcome, called_at FROM attestr_answers
WHERE job_id = $1 AND outcome <> 'error'
ORDER BY called_at DESC
LIMIT 1"""

# One Attestr call kept, in one statement (atomic, one round trip): the lookup as sent, with the
# consent it carried (attestr_lookups, migrations/018: kept a year and more), and what came back
# (attestr_answers: the cache and the audit).
CALL_RECORD = Named("""
WITH lookup AS (
    INSERT INTO attestr_lookups (job_id, cin, api_version, consent_id, consent_number, consent_kind,
        outcome, http_status, error_code, attestr_request_id)
    VALUES (:job_id, :cin, :api_version, :consent_id, :consent_number, :consent_kind,
        :outcome, :http_status, :error_code, :attestr_request_id)
)
INSERT INTO attestr_answers (cin, job_id, outcome, http_status, error_code, answer)
VALUES (:cin, :job_id, :outcome, :http_status, :error_code, :answer)""")

# --- Airtable rate limit, shared by every process (ratelimit.py) ------------------------------

RATE_TAKE = Named("""
SELECT wait, request_id FROM airtable_take_request(
    p_base => :base_id, max_requests => :max_requests, window_s => :window_s, timeout_s => :timeout_s,
    reserve => :reserve, sent_window_s => :sent_window_s)""")
# $2: how long ago the request left on a kept-alive connection (NULL: it opened one, or no answer).
RATE_ANSWERED = """
UPDATE airtable_requests SET answered_at = COALESCE(answered_at, clock_timestamp()),
    sent_at = COALESCE(sent_at, clock_timestamp() - make_interval(secs => $2))
WHERE id = $1"""
RATE_UNUSED = "DELETE FROM airtable_requests WHERE id = $1 AND answered_at IS NULL"
RATE_BLOCK = """
INSERT INTO airtable_rate (base_id, blocked_until)
VALUES ($1, clock_timestamp() + make_interval(secs => $2))
ON CONFLICT (base_id) DO UPDATE
    SET blocked_until = GREATEST(airtable_rate.blocked_until, EXCLUDED.blocked_until)"""

# --- Airtable's pauses: refusals only the operator can fix (airtable/pauses.py) -----------------

# A pause of $1 ('base', 'contacts', 'companies'); a probe is let through after $4 seconds. An
# operator's pause stays as it is, and so does a resume (of the scope, or of the whole base) later
# than the refused request was sent ($5). Whether it is new (to log once, whichever saw it).
AIRTABLE_PAUSE = """
INSERT INTO airtable_pauses AS p (scope, reason, kind, probe_after)
SELECT $1::text, $2, $3, now() + make_interval(secs => $4)
WHERE NOT EXISTS (SELECT 1 FROM airtable_pauses
                  WHERE scope IN ($1::text, 'base') AND resumed_at >= COALESCE($5::timestamptz, now()))
ON CONFLICT (scope) DO UPDATE SET reason = EXCLUDED.reason, kind = EXCLUDED.kind,
    probe_after = EXCLUDED.probe_after, resumed_at = NULL,
    paused_at = CASE WHEN p.resumed_at IS NULL THEN p.paused_at ELSE now() END
    -- Checked again on the row as it is now: a resume that committed while this waited for it.
    WHERE (p.kind IS DISTINCT FROM 'operator' OR p.resumed_at IS NOT NULL)
      AND (p.resumed_at IS NULL OR p.resumed_at < COALESCE($5::timestamptz, now()))
RETURNING (xmax = 0 OR paused_at = now()) AS newly_paused"""

AIRTABLE_PAUSE_BY_OPERATOR = """
INSERT INTO airtable_pauses (scope, reason, kind, probe_after) VALUES ('base', $1, 'operator', 'infinity')
ON CONFLICT (scope) DO UPDATE SET reason = $1, kind = 'operator', probe_after = 'infinity',
    paused_at = CASE WHEN airtable_pauses.kind = 'operator' AND airtable_pauses.resumed_at IS NULL
                     THEN airtable_pauses.paused_at ELSE now() END,
    resumed_at = NULL"""

AIRTABLE_PAUSES = """
SELECT scope, reason, kind, paused_at, probe_after FROM airtable_pauses WHERE resumed_at IS NULL
ORDER BY scope"""

# What stops writes to each table of `tables` (name, ord) now: the base's pause first, else the
# table's; and whether this process takes the probe (one a probe interval, $1 seconds, for every
# process; a pause stopping several of the tables is probed by the first, by `ord`).
_ADMIT = """
stops AS (
    SELECT DISTINCT ON (t.name) t.name, t.ord, p.scope, p.reason, p.kind, p.paused_at, p.probe_after
    FROM tables t JOIN airtable_pauses p ON p.scope IN ('base', t.name) AND p.resumed_at IS NULL
    ORDER BY t.name, p.scope = 'base' DESC
), probing AS (
    SELECT DISTINCT ON (scope) name, scope FROM stops WHERE probe_after <= now() ORDER BY scope, ord
), probe AS (
    UPDATE airtable_pauses p SET probe_after = now() + make_interval(secs => $1)
    FROM probing WHERE p.scope = probing.scope AND p.probe_after <= now() AND p.resumed_at IS NULL
    RETURNING p.scope
), admitted AS (
    SELECT t.name, t.ord, now() AS at, s.scope, s.reason, s.kind, s.paused_at,
        EXISTS (SELECT 1 FROM probing JOIN probe USING (scope) WHERE probing.name = t.name) AS probe
    FROM tables t LEFT JOIN stops s USING (name)
)"""

# Whether writes to table $2 may go now (`_ADMIT`).
AIRTABLE_ADMIT = f"""
WITH tables (name, ord) AS (VALUES ($2::text, 1)), {_ADMIT}
SELECT at, scope, reason, kind, paused_at, probe FROM admitted"""

AIRTABLE_STOPPED = """
SELECT EXISTS (SELECT 1 FROM airtable_pauses WHERE scope IN ('base', $1) AND resumed_at IS NULL)"""

# Whether this database refuses writes: a standby in recovery, or read-only by default (`/ready`).
DATABASE_READ_ONLY = "SELECT pg_is_in_recovery() OR current_setting('transaction_read_only')::bool"

# The database's clock: when a request went out, to compare with a pause's resume.
DATABASE_NOW = "SELECT now()"

# A refusal that stops reading the company records too (the worker's reads wait with the
# writes: the pusher's probe finds out when it ends). An operator's pause stops writes only.
# With the database's clock (`at`: when a read that follows went out; scope NULL: no pause).
AIRTABLE_COMPANIES_PAUSED = """
SELECT now() AS at, p.scope, p.reason, p.kind FROM (SELECT 1) AS one
LEFT JOIN LATERAL (
    SELECT scope, reason, kind FROM airtable_pauses
    WHERE scope IN ('base', 'companies') AND resumed_at IS NULL AND kind IS DISTINCT FROM 'operator'
    ORDER BY scope = 'base' DESC
    LIMIT 1
) AS p ON true"""

# A process starting (after the operator changed a setting, say): the next batch is the probe.
AIRTABLE_PROBE_NOW = """
UPDATE airtable_pauses SET probe_after = now()
WHERE resumed_at IS NULL AND kind IS DISTINCT FROM 'operator' AND probe_after > now()"""

# A probe got through: the pause of $1 it was let through for (begun by $2), never an operator's.
AIRTABLE_PROBE_RESUME = """
UPDATE airtable_pauses SET resumed_at = now()
WHERE scope = $1 AND resumed_at IS NULL AND kind IS DISTINCT FROM 'operator' AND paused_at <= $2
RETURNING scope, reason, kind"""

# `airtable resume` ($1 NULL: every pause). What was paused.
AIRTABLE_RESUME = """
UPDATE airtable_pauses SET resumed_at = now()
WHERE ($1::text[] IS NULL OR scope = ANY($1::text[])) AND resumed_at IS NULL
RETURNING scope, reason, kind"""

# Once a pause ended: the jobs that waited for Airtable to answer (reading their company was
# refused) are due again. A statement of its own after the pause's end, in the same transaction:
# its snapshot sees a job queued while the end waited for JOB_REQUEUE's lock on the pause.
AIRTABLE_JOBS_WOKEN = """
WITH woken AS (
    UPDATE jobs SET run_after = now(), updated_at = now()
    WHERE status = 'queued' AND waiting_on = 'airtable'
    RETURNING id
)
SELECT count(*) FROM woken, (SELECT pg_notify('contact_sync', 'jobs')) AS notified"""

# Companies whose job waits for Airtable show Waiting with the reason (where the Companies table
# can still be written); their final status replaces it once their contacts are in.
COMPANIES_WAITING_ON_AIRTABLE = """
WITH locked AS (
    SELECT id FROM companies c
    WHERE c.airtable_id IN (SELECT record_id FROM jobs WHERE status = 'pushing')
      AND (c.sync_status, c.sync_error) IS DISTINCT FROM ('Waiting', $1)
      AND NOT c.deleted_in_airtable
    ORDER BY id FOR UPDATE  -- in id order, as COMPANIES_PUSHED
)
UPDATE companies c SET sync_status = 'Waiting', sync_error = $1, push_version = push_version + 1,
    updated_at = now()
FROM locked WHERE c.id = locked.id"""

# --- each attempt of a job (engine/worker.py, `jobs show`) ---------------------------------------

JOB_ATTEMPT_ENDED = """
INSERT INTO job_attempts (job_id, attempt, started_at, outcome, error) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT DO NOTHING"""

JOB_ATTEMPTS = """
SELECT attempt, started_at, ended_at, outcome, error FROM job_attempts WHERE job_id = $1
ORDER BY started_at, attempt"""

# --- the base the rows were written to (airtable/bases.py) -----------------------------------

# The first base recorded is the one configured then (an older deployment's rows were written to it).
AIRTABLE_BASE_FIRST = "INSERT INTO airtable_base (base_id) VALUES ($1) ON CONFLICT (id) DO NOTHING"

AIRTABLE_BASE_LOCKED = "SELECT base_id, since, previous FROM airtable_base FOR UPDATE"

AIRTABLE_BASE_RECORDED = "SELECT base_id, since, previous FROM airtable_base"

AIRTABLE_BASE_SWITCHED = "UPDATE airtable_base SET base_id = $1, since = now(), previous = base_id"

# A new base: the rows the service wrote are the old base's. No person is in the new base yet,
# nor taken as deleted by hand there; nothing is pushed until a company of the new base is synced
# (a link to an old base's company is then found missing, as one deleted by hand, and dropped;
# a trigger for it, back in that base, brings it back);
# the old base's rows to delete, pauses, missing options and webhooks are not this base's, nor
# is reconciliation's baseline: its first sweep there sets one, so that the base's existing CINs
# are backfill's to sync (at a cost it states), not a sweep's. (Statements without parameters,
# run as one.)
AIRTABLE_BASE_LEFT_BEHIND = """
UPDATE people SET airtable_id = NULL, airtable_written = NULL, airtable_pending = NULL,
    deleted_in_airtable = false, push_lease_until = NULL, push_error = NULL, push_withheld = false,
    pushed_version = push_version;
UPDATE companies SET push_lease_until = NULL, pushed_version = push_version;
DELETE FROM airtable_rows_to_delete;
DELETE FROM airtable_pauses;
DELETE FROM airtable_missing_options;
DELETE FROM airtable_webhooks;
DELETE FROM reconcile_state"""

# --- the outbox: rows Airtable must receive (pusher.py) ---------------------------------------

# Whether contacts are still to be sent, those in a request under way (leased) included.
_PEOPLE_UNSENT = (
    "EXISTS (SELECT 1 FROM people WHERE push_version > pushed_version AND NOT deleted_in_airtable)"
)

# Whether contacts wait to be sent (not leased, not deleted by hand).
PEOPLE_WAITING = """
SELECT EXISTS (SELECT 1 FROM people WHERE push_version > pushed_version AND NOT deleted_in_airtable
               AND (push_lease_until IS NULL OR push_lease_until < now()))"""

# Whether rows a job of this process hands to its pusher may go now (pusher.py, `_handed`): the
# writes to each table stopped (by the base's pause or the table's), how many jobs are running,
# and whether other contacts wait (their rows may share the request). No probe is taken: a
# paused table is left to the senders.
PUSH_HANDED = f"""
SELECT now() AS at,
    EXISTS (SELECT 1 FROM airtable_pauses WHERE scope IN ('base', 'contacts') AND resumed_at IS NULL)
        AS contacts_paused,
    EXISTS (SELECT 1 FROM airtable_pauses WHERE scope IN ('base', 'companies') AND resumed_at IS NULL)
        AS companies_paused,
    (SELECT count(*) FROM jobs WHERE status = 'running') AS running,
    ({PEOPLE_WAITING.strip()}) AS contacts_waiting"""

# Claim up to $1 rows for one request, leased for $2 seconds, with what Airtable must show now.
# One kind a request, that of the row waiting longest (of rows marked at once, those Airtable
# lacks, which need no read first): rows Airtable has (an update by id, after a read of what
# people changed) or rows it lacks (an upsert on Contact Key: "Airtable reserves the
# right to throttle upsert requests differently", "Update multiple records", so only these).
# The row's own conditions are stated again on `p`: a row another process claimed and committed
# while this statement waited for its lock is re-checked on its new version (PostgreSQL re-reads
# only the locked table, not the CTE), so the two never send the same row.
PEOPLE_CLAIM_PUSH = """
WITH pushable AS (
    SELECT id, updated_at, airtable_id IS NULL AS new FROM people
    WHERE push_version > pushed_version AND NOT deleted_in_airtable
      AND (push_lease_until IS NULL OR push_lease_until < now())
), next AS (
    SELECT p.id FROM people p JOIN pushable USING (id)
    WHERE pushable.new = (SELECT new FROM pushable ORDER BY updated_at, new DESC, id LIMIT 1)
      AND p.push_version > p.pushed_version AND NOT p.deleted_in_airtable
      AND (p.push_lease_until IS NULL OR p.push_lease_until < now())
    ORDER BY pushable.updated_at, p.id
    LIMIT $1
    FOR UPDATE OF p SKIP LOCKED
)
UPDATE people p SET push_lease_until = now() + make_interval(secs => $2)
FROM next WHERE p.id = next.id
RETURNING p.id, p.contact_key, p.din, p.name, p.phone_e164, p.phone_type, p.email, p.addresses,
    p.airtable_id, p.push_version, p.airtable_written, p.airtable_pending,
    ARRAY(SELECT c.airtable_id FROM company_people cp JOIN companies c ON c.id = cp.company_id
          WHERE cp.person_id = p.id AND NOT c.deleted_in_airtable ORDER BY cp.created_at, c.id)
        AS company_record_ids"""

# The mark is cleared only up to the version that was sent: a row changed meanwhile stays marked.
# With what the service has now written to each row, by field (engine/merge.py).
PEOPLE_PUSHED = """
WITH locked AS (SELECT id FROM people WHERE id = ANY($1::bigint[]) ORDER BY id FOR UPDATE)
UPDATE people p SET airtable_id = u.airtable_id, pushed_version = GREATEST(p.pushed_version, u.version),
    push_error = NULL, push_lease_until = NULL, push_withheld = u.withheld,
    -- `resync --overwrite` meanwhile (an empty record, a newer version due) stands for that push
    airtable_written = CASE WHEN p.airtable_written = '{}'::jsonb AND p.push_version > u.version
                            THEN p.airtable_written ELSE u.written::jsonb END,
    airtable_pending = NULL
FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::boolean[], $5::text[])
    AS u(id, airtable_id, version, withheld, written)
WHERE p.id = u.id AND p.id IN (SELECT id FROM locked)"""

# What the service wrote, kept by field name before field ids were (migration 019): by id ($2)
# for the names ($1) the schema gives now, so that a field renamed later keeps people's values.
PEOPLE_WRITTEN_BY_FIELD_ID = """
UPDATE people p SET airtable_written = (
    SELECT jsonb_object_agg(COALESCE(m.id, e.key), e.value)
    FROM jsonb_each(p.airtable_written) AS e
    LEFT JOIN unnest($1::text[], $2::text[]) AS m(name, id) ON m.name = e.key)
WHERE jsonb_typeof(p.airtable_written) = 'object' AND p.airtable_written ?| $1::text[]"""

# A write with no answer (a 5xx, a timeout): what it would have made the service's, for the merge
# of the next push to recognise in the row (engine/merge.py).
PEOPLE_PUSH_PENDING = """
UPDATE people p SET airtable_pending = u.written::jsonb
FROM unnest($1::bigint[], $2::text[]) AS u(id, written) WHERE p.id = u.id"""

PEOPLE_PUSH_FAILED = """
UPDATE people p SET pushed_version = GREATEST(p.pushed_version, u.version), push_error = u.error,
    push_lease_until = NULL
FROM unnest($1::bigint[], $2::bigint[], $3::text[]) AS u(id, version, error)
WHERE p.id = u.id"""

PEOPLE_RELEASE_PUSH = """
UPDATE people SET push_lease_until = now() + make_interval(secs => $2) WHERE id = ANY($1::bigint[])"""

# Deleted by hand in Airtable: remembered, and never re-created by a later sync.
PEOPLE_DELETED_IN_AIRTABLE = """
UPDATE people SET deleted_in_airtable = true, push_lease_until = NULL WHERE id = ANY($1::bigint[])"""

# What each job's rows became. A row created once for several jobs (two companies sharing a
# director, synced at once) counts as created for the first of them and updated for the others:
# the jobs' `airtable_created` add up to the rows Airtable created.
JOB_ROWS_OUTCOME = """
WITH written AS (
    SELECT jr.job_id, jr.person_id, u.outcome,
           row_number() OVER (PARTITION BY jr.person_id ORDER BY jr.job_id) AS nth
    FROM job_rows jr
    JOIN unnest($1::bigint[], $2::bigint[], $3::text[]) AS u(person_id, version, outcome)
        ON jr.person_id = u.person_id AND jr.version <= u.version
    WHERE jr.outcome IS NULL
)
UPDATE job_rows jr
SET outcome = CASE WHEN w.outcome = 'created' AND w.nth > 1 THEN 'updated' ELSE w.outcome END
FROM written w
WHERE jr.job_id = w.job_id AND jr.person_id = w.person_id"""

# A final status goes at once. A status on the way (Queued, Running, Waiting) goes out only once
# it has held for $2 seconds (most are replaced within a second, and each write spends part of
# Airtable's rate limit), and never when only final ones are asked for (`final_only`: the
# parameter's number in each statement).
_COMPANY_PUSHABLE = """push_version > pushed_version AND NOT deleted_in_airtable
        AND (push_lease_until IS NULL OR push_lease_until < now())
        AND (sync_status NOT IN ('Queued', 'Running', 'Waiting')
             OR (NOT {final_only} AND updated_at < now() - make_interval(secs => $2)))"""

# A company's status never waits for others: once its contacts are in, it is due. What one round
# of a pusher's sender may send, in one statement: for the contacts, then the companies, whether
# their writes may go (`_ADMIT`, a probe interval of $1 seconds) and how many rows are ready, up
# to $3 (a request's worth); for the contacts with the age of the oldest, in seconds, and whether
# a job is still running (its rows may join the request if it waits a moment); for the companies
# with how many of them are final statuses (a status on the way holds for $2 seconds first).
PUSH_DUE = f"""
WITH tables (name, ord) AS (VALUES ('contacts', 1), ('companies', 2)), {_ADMIT},
people_ready AS (
    SELECT count(*) AS ready, EXTRACT(epoch FROM now() - min(updated_at))::float8 AS oldest_s
    FROM (SELECT updated_at FROM people
          WHERE push_version > pushed_version AND NOT deleted_in_airtable
            AND (push_lease_until IS NULL OR push_lease_until < now())
          ORDER BY updated_at LIMIT $3) AS ready
)
SELECT a.name, a.at, a.scope, a.reason, a.kind, a.paused_at, a.probe,
    CASE a.name WHEN 'contacts' THEN (SELECT ready FROM people_ready)
        ELSE (SELECT count(*) FROM (SELECT 1 FROM companies
                                    WHERE {_COMPANY_PUSHABLE.format(final_only="false")} LIMIT $3) AS r)
    END AS ready,
    CASE a.name WHEN 'companies' THEN (SELECT count(*) FROM (SELECT 1 FROM companies
                                       WHERE {_COMPANY_PUSHABLE.format(final_only="true")} LIMIT $3) AS r)
    END AS final_ready,
    CASE a.name WHEN 'contacts' THEN (SELECT oldest_s FROM people_ready) END AS oldest_s,
    a.name = 'contacts' AND EXISTS (SELECT 1 FROM jobs WHERE status = 'running') AS more_coming
FROM admitted a ORDER BY a.ord"""

# Claim up to $1 companies, leased for $3 seconds; none unless $5 at least can be had (a full
# request's worth, when statuses go ahead of people: another process may have taken some since
# they were counted), or $6 while contacts are still to be sent.
COMPANIES_CLAIM_PUSH = f"""
WITH next AS (
    SELECT id FROM companies
    WHERE {_COMPANY_PUSHABLE.format(final_only="$4")}
    ORDER BY updated_at, id
    LIMIT $1
    FOR UPDATE SKIP LOCKED
)
UPDATE companies c SET push_lease_until = now() + make_interval(secs => $3)
FROM next WHERE c.id = next.id
    AND (SELECT count(*) FROM next)
        >= CASE WHEN $6::int = $5::int OR NOT {_PEOPLE_UNSENT} THEN $5::int ELSE $6::int END
RETURNING c.id, c.airtable_id, c.sync_status, c.sync_error, c.synced_at, c.contacts_found, c.push_version,
    ARRAY(SELECT DISTINCT p.phone_type FROM company_people cp JOIN people p ON p.id = cp.person_id
          WHERE cp.company_id = c.id AND p.phone_type IS NOT NULL) AS phone_types"""

# Rows locked in id order first, as in every update of many companies the engine may run at once
# with another (COMPANIES_WAITING_ON_AIRTABLE): two such updates cannot deadlock.
COMPANIES_PUSHED = """
WITH locked AS (SELECT id FROM companies WHERE id = ANY($1::bigint[]) ORDER BY id FOR UPDATE)
UPDATE companies c SET pushed_version = GREATEST(c.pushed_version, u.version), push_error = u.error,
    push_lease_until = NULL, push_withheld = u.withheld
FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::boolean[]) AS u(id, version, error, withheld)
WHERE c.id = u.id AND c.id IN (SELECT id FROM locked)"""

COMPANIES_RELEASE_PUSH = """
UPDATE companies SET push_lease_until = now() + make_interval(secs => $2) WHERE id = ANY($1::bigint[])"""

# A company record deleted in Airtable: its links go, so its people are pushed without it.
COMPANIES_DELETED_IN_AIRTABLE = """
WITH gone AS (
    UPDATE companies SET deleted_in_airtable = true, push_lease_until = NULL
    WHERE airtable_id = ANY($1::text[]) RETURNING id
), unlinked AS (
    DELETE FROM company_people WHERE company_id IN (SELECT id FROM gone) RETURNING person_id
)
UPDATE people SET push_version = push_version + 1, updated_at = now()
WHERE id IN (SELECT person_id FROM unlinked)"""

# Select options missing from the base ($1 field keys, $2 options, side by side), as a pusher
# read them: those that appeared since are removed, the new ones added; both returned (to log).
MISSING_OPTIONS_NOW = """
WITH now_missing AS (SELECT * FROM unnest($1::text[], $2::text[]) AS m(field_key, option)),
appeared AS (
    DELETE FROM airtable_missing_options o
    WHERE NOT EXISTS (SELECT 1 FROM now_missing m WHERE m.field_key = o.field_key AND m.option = o.option)
    RETURNING o.field_key, o.option, 'appeared' AS change
),
went AS (
    INSERT INTO airtable_missing_options (field_key, option) SELECT field_key, option FROM now_missing
    ON CONFLICT DO NOTHING
    RETURNING field_key, option, 'missing' AS change
)
SELECT * FROM appeared UNION ALL SELECT * FROM went"""

# When the missing options change ($1 phone types still missing): contacts held back whose
# option exists now, and every company held back (what its error names has changed), whichever
# process held them back, are to be sent again.
REPUSH_WITHHELD = """
WITH people_now AS (
    UPDATE people SET push_version = push_version + 1, updated_at = now()
    WHERE push_withheld AND NOT deleted_in_airtable AND NOT (phone_type = ANY($1::text[]))
    RETURNING id
)
UPDATE companies SET push_version = push_version + 1, updated_at = now()
WHERE push_withheld AND NOT deleted_in_airtable"""

# Companies whose status, or whose people's phone type, uses an option that went missing ($1
# statuses, $2 phone types): sent again, without it and saying why.
COMPANIES_REPUSH_FOR_OPTIONS = """
UPDATE companies c SET push_version = push_version + 1, updated_at = now()
WHERE NOT c.deleted_in_airtable AND c.sync_status IS NOT NULL
  AND (c.sync_status = ANY($1::text[])
       OR EXISTS (SELECT 1 FROM company_people cp JOIN people p ON p.id = cp.person_id
                  WHERE cp.company_id = c.id AND p.phone_type = ANY($2::text[])))"""

# Companies with a CIN, whether a person without DIN or PAN is linked to them, and the latest
# answer stored for their CIN (`backfill --recheck-identities`).
RECHECK_CANDIDATES = """
WITH separated AS (  -- linked to a person whose PAN migration 022 let go (not synced since)
    SELECT DISTINCT cp.company_id FROM company_people cp
    JOIN identities_separated s ON s.person_id = cp.person_id
    JOIN companies c ON c.id = cp.company_id
    WHERE c.synced_at IS NULL OR c.synced_at < s.separated_at
)
SELECT c.airtable_id, c.cin, c.id IN (SELECT company_id FROM separated) AS separated,
       EXISTS (SELECT 1 FROM company_people cp JOIN people p ON p.id = cp.person_id
               WHERE cp.company_id = c.id AND p.din IS NULL AND p.pan IS NULL) AS identityless,
       (SELECT a.answer FROM attestr_answers a
        WHERE a.cin = c.cin AND a.outcome = 'synced' ORDER BY a.called_at DESC LIMIT 1) AS answer
FROM companies c
WHERE c.cin IS NOT NULL AND NOT c.deleted_in_airtable
  -- a sync since PANs were read matched its people by the rules of today
  AND (c.synced_at < (SELECT applied_at FROM schema_migrations WHERE version = '008_identities.sql')
       OR c.id IN (SELECT company_id FROM separated))
ORDER BY c.id"""

# Airtable rows of people merged into another (migrations/009): deleted ten at a time.
ROWS_TO_DELETE = """
SELECT airtable_id FROM airtable_rows_to_delete ORDER BY created_at LIMIT 10 FOR UPDATE SKIP LOCKED"""
ROWS_DELETED = "DELETE FROM airtable_rows_to_delete WHERE airtable_id = ANY($1::text[])"

# --- the older API's answer (api.py) ----------------------------------------------------------

PEOPLE_BY_IDS = """
SELECT p.din, p.name, p.phone_e164, p.email, p.addresses, p.deleted_in_airtable
FROM unnest($1::bigint[]) WITH ORDINALITY AS wanted(id, position)
JOIN people p ON p.id = wanted.id
ORDER BY wanted.position"""

# --- what an operator looks at (stats.py) -----------------------------------------------------

STATS_JOBS = "SELECT status, count(*) AS n FROM jobs GROUP BY status"
# For /metrics: the states worth a gauge, each counted from its index and no further than $1
# (succeeded jobs only grow: `contact_sync_jobs_ended_total` counts them).
STATS_JOBS_OPEN = """
SELECT s.status, (SELECT count(*) FROM (SELECT 1 FROM jobs j WHERE j.status = s.status LIMIT $1) AS c) AS n
FROM unnest(ARRAY['queued', 'running', 'pushing', 'failed']) AS s(status)"""
STATS_OLDEST_QUEUED = """
SELECT EXTRACT(epoch FROM now() - min(created_at))::float8 AS any_s,
       EXTRACT(epoch FROM now() - min(created_at) FILTER (WHERE run_after <= now()))::float8 AS due_s
FROM jobs WHERE status = 'queued'"""
STATS_AIRTABLE = """
SELECT (SELECT count(*) FROM contacts_pending_sync) AS contacts,
       (SELECT count(*) FROM companies
        WHERE push_version > pushed_version AND NOT deleted_in_airtable) AS companies,
       (SELECT count(*) FROM people WHERE push_error IS NOT NULL) AS failed_rows,
       (SELECT count(*) FROM people WHERE deleted_in_airtable) AS deleted_by_hand"""

# --- backfill and resync (backfill.py) --------------------------------------------------------

COMPANIES_WITH_CONTACTS = """
SELECT c.airtable_id FROM companies c
WHERE EXISTS (SELECT 1 FROM company_people cp WHERE cp.company_id = c.id)"""

CINS_ANSWERED_RECENTLY = """
SELECT DISTINCT cin FROM attestr_answers
WHERE cin = ANY($1::text[])
  AND ((outcome = 'synced' AND called_at > now() - $2 * interval '1 day')
       OR (outcome = 'no_data' AND called_at > now() - $3 * interval '1 day'))"""

# --- reconciliation (reconcile.py) ------------------------------------------------------------

RECONCILE_LOCK = "SELECT pg_try_advisory_lock(hashtextextended('reconcile', 0))"
RECONCILE_UNLOCK = "SELECT pg_advisory_unlock(hashtextextended('reconcile', 0))"
RECONCILE_STATE = """
SELECT baseline_at, swept_from, started_at, finished_at, counts,
       EXTRACT(epoch FROM clock_timestamp() - finished_at)::float8 AS finished_s_ago
FROM reconcile_state"""
# The first sweep ever sets the baseline: CINs set before it are backfill's.
RECONCILE_BEGIN = """
INSERT INTO reconcile_state (baseline_at, swept_from, started_at)
VALUES (clock_timestamp(), clock_timestamp(), clock_timestamp())
ON CONFLICT (id) DO UPDATE SET started_at = clock_timestamp()
RETURNING baseline_at, swept_from, started_at"""
# The next sweep reads from a little before this one began: a change made while it was reading
# is seen next time, whatever the clocks of Airtable and the database say.
RECONCILE_FINISH = """
UPDATE reconcile_state
SET swept_from = CASE WHEN $3 THEN GREATEST(baseline_at, started_at - make_interval(secs => $1))
                      ELSE swept_from END,
    finished_at = clock_timestamp(), counts = $2::jsonb"""
# For each company read (record id, the CIN it holds now): its newest job, and whether it was
# synced under this CIN (for a company whose jobs retention has pruned).
RECONCILE_JOBS = """
SELECT c.record_id, c.cin,
       EXISTS (SELECT 1 FROM companies co WHERE co.airtable_id = c.record_id AND co.cin = c.cin
               AND co.synced_at IS NOT NULL) AS synced_under_cin,
       last.status AS last_status, last.cin AS last_cin, last.force AS last_force,
       last.created_at AS last_created_at
FROM unnest($1::text[], $2::text[]) AS c(record_id, cin)
LEFT JOIN LATERAL (SELECT j.status, j.cin, j.force, j.created_at FROM jobs j
                   WHERE j.record_id = c.record_id ORDER BY j.id DESC LIMIT 1) AS last ON true"""
# Whether a job of the company was stored or changed since the sweep began reading: a webhook
# got there first, with what the company holds now (the sweep leaves it to that job).
RECONCILE_JOB_SINCE = """
SELECT EXISTS (SELECT 1 FROM jobs WHERE record_id = $1
               AND (created_at >= $2 OR (status = 'queued' AND updated_at >= $2)))"""
RECONCILE_NOW = "SELECT clock_timestamp()"
# Changes Airtable deleted unread (a webhook's payloads, after a week): the sweeps read from $1
# on, until one has read it (a sweep under way when this is set reads its own window only).
RECONCILE_REWIND = """
UPDATE reconcile_state SET swept_from = GREATEST(baseline_at, LEAST(swept_from, $1))"""
# A company the automation script marked Waiting whose CIN is no CIN: it says so instead.
COMPANY_REFUSED_CIN = """
INSERT INTO companies (airtable_id, sync_status, sync_error, push_version)
VALUES ($1, 'Failed', $2, 1)
ON CONFLICT (airtable_id) DO UPDATE
    SET sync_status = 'Failed', sync_error = EXCLUDED.sync_error,
        push_version = companies.push_version + 1, updated_at = now()"""
# A company whose Airtable status the automation script set to Waiting while its job was stored
# after all: the pusher writes the true status again.
COMPANIES_REPUSH = """
UPDATE companies SET push_version = push_version + 1, updated_at = now()
WHERE airtable_id = ANY($1::text[]) AND NOT deleted_in_airtable"""

AUTOMATION_SCRIPT_SEEN = """
INSERT INTO automation_scripts (version, last_seen_at) VALUES ($1, now())
ON CONFLICT (version) DO UPDATE SET last_seen_at = EXCLUDED.last_seen_at"""
AUTOMATION_SCRIPTS_RECENT = """
SELECT version, last_seen_at FROM automation_scripts
WHERE last_seen_at > now() - make_interval(days => $1) ORDER BY version"""

WEBHOOK_REQUEST_JOB = "SELECT job_id, asked FROM webhook_requests WHERE key = $1"
WEBHOOK_REQUEST_RECORD = """
INSERT INTO webhook_requests (key, job_id, asked) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING"""
WEBHOOK_REQUESTS_PRUNE = "DELETE FROM webhook_requests WHERE created_at < now() - interval '1 day'"

# Every row again (a field renamed, a base restored): the pusher sends them all.
RESYNC_RESTORE_DELETED = """
UPDATE people SET deleted_in_airtable = false, airtable_id = NULL WHERE deleted_in_airtable"""
# `resync --overwrite`: every value each row holds is taken as what the service wrote (an empty
# record: no field's value known, each the service's), so the next push shows the source's values
# (people's edits and hand-made links go). NULL would mean the opposite: nothing known, people's.
RESYNC_OVERWRITE = """
UPDATE people SET airtable_written = '{}'::jsonb, airtable_pending = NULL WHERE NOT deleted_in_airtable"""
RESYNC_PEOPLE = """
WITH marked AS (
    UPDATE people SET push_version = push_version + 1, push_error = NULL, updated_at = now()
    WHERE NOT deleted_in_airtable RETURNING 1
)
SELECT count(*) FROM marked"""
RESYNC_COMPANIES = """
WITH marked AS (
    UPDATE companies SET push_version = push_version + 1, updated_at = now()
    WHERE NOT deleted_in_airtable AND sync_status IS NOT NULL RETURNING 1
)
SELECT count(*) FROM marked"""

# --- adopting an older Contacts table (adopt.py) ----------------------------------------------

PEOPLE_KEYS = "SELECT id, contact_key, airtable_id FROM people WHERE id = ANY($1::bigint[])"

# The older row becomes the person's row; it already shows the person, so nothing is marked.
# What the service wrote to an adopted row is unknown: the values people typed there stay theirs.
PEOPLE_ADOPT_ROWS = """
UPDATE people p SET airtable_id = u.row_id, pushed_version = p.push_version, deleted_in_airtable = false,
    airtable_written = NULL, airtable_pending = NULL
FROM unnest($1::bigint[], $2::text[]) AS u(id, row_id)
WHERE p.id = u.id"""

# --- native Airtable webhooks (airtable/webhooks.py, triggers/payloads.py) ---------------------

WEBHOOK_STORE = Named("""
INSERT INTO airtable_webhooks (id, base_id, table_id, cin_field_id, refresh_field_id, mac_secret,
                               notification_url, expires_at)
VALUES (:id, :base_id, :table_id, :cin_field_id, :refresh_field_id, :mac_secret,
        :notification_url, :expires_at)""")
WEBHOOKS_ALL = "SELECT * FROM airtable_webhooks ORDER BY created_at"
WEBHOOK_BY_ID = "SELECT * FROM airtable_webhooks WHERE id = $1"
WEBHOOK_DELETE = "DELETE FROM airtable_webhooks WHERE id = $1"
WEBHOOK_EXPIRES = "UPDATE airtable_webhooks SET expires_at = $2, updated_at = now() WHERE id = $1"
WEBHOOK_CHECKED = """
UPDATE airtable_webhooks SET checked_at = now(), updated_at = now(),
    problem_at = CASE WHEN problem IS NOT DISTINCT FROM $2 THEN problem_at ELSE now() END, problem = $2
WHERE id = $1"""
# Moves only from the cursor this reader started from: two readers never both advance it.
WEBHOOK_ADVANCE = """
UPDATE airtable_webhooks SET cursor = $3, updated_at = now(), last_payload_at = COALESCE($4, last_payload_at)
WHERE id = $1 AND cursor = $2"""
WEBHOOK_READER_LOCK = "SELECT pg_try_advisory_lock(hashtextextended('webhook:' || $1, 0))"
WEBHOOK_READER_UNLOCK = "SELECT pg_advisory_unlock(hashtextextended('webhook:' || $1, 0))"
NOTIFY_PAYLOADS = "SELECT pg_notify('contact_sync', 'payloads')"

# --- importing an older PostgreSQL contacts table (importer.py) -------------------------------

TABLE_COLUMNS = """
SELECT column_name FROM information_schema.columns
WHERE table_name = $2 AND ($1::text IS NULL OR table_schema = $1)
  AND table_schema NOT IN ('pg_catalog', 'information_schema')"""

# A contact's older Airtable row becomes its person's row (one row per person, one person per row).
PEOPLE_KEEP_AIRTABLE_IDS = """
WITH wanted AS (
    SELECT DISTINCT ON (id) id, airtable_id FROM (
        SELECT DISTINCT ON (airtable_id) id, airtable_id
        FROM unnest($1::bigint[], $2::text[]) AS u(id, airtable_id)
        ORDER BY airtable_id, id
    ) AS one_person_per_row
    ORDER BY id, airtable_id
), kept AS (
    UPDATE people p SET airtable_id = w.airtable_id
    FROM wanted w
    WHERE p.id = w.id AND p.airtable_id IS NULL
      AND NOT EXISTS (SELECT 1 FROM people o WHERE o.airtable_id = w.airtable_id)
    RETURNING 1
)
SELECT count(*) FROM kept"""

# --- limits and personal data (limits.py, forget.py, retention.py) ----------------------------

# One request against an API key's current window; a new window starts the count again.
API_RATE_TAKE = """
INSERT INTO api_rate AS r (key_hash, window_start, requests)
VALUES ($1, to_timestamp(floor(extract(epoch FROM clock_timestamp()) / $2) * $2), 1)
ON CONFLICT (key_hash) DO UPDATE
    SET requests = CASE WHEN r.window_start = EXCLUDED.window_start THEN r.requests + 1 ELSE 1 END,
        window_start = EXCLUDED.window_start
RETURNING requests,
    extract(epoch FROM window_start + make_interval(secs => $2) - clock_timestamp())::float8 AS resets_in_s"""

# The queue's length, counted no further than the cap (the partial index on queued jobs).
JOBS_QUEUED_COUNT = """
SELECT count(*) FROM (SELECT 1 FROM jobs WHERE status = 'queued' LIMIT $1) AS queued"""

PEOPLE_TO_FORGET = """
SELECT id, din, pan, phone_e164, email, airtable_id, contact_key FROM people
WHERE din = $1 OR phone_e164 = $2 OR email = $3 OR pan = $4
ORDER BY id
FOR UPDATE"""

# The people a `contacts forget` would take, read before asking the operator to confirm.
PEOPLE_CARRYING = """
SELECT name, din, pan, airtable_id IS NOT NULL AND NOT deleted_in_airtable AS in_airtable FROM people
WHERE din = $1 OR phone_e164 = $2 OR email = $3 OR pan = $4
ORDER BY id"""

# One forget's keys share a group ($3, from suppression_groups): lifted together.
SUPPRESS_KEYS = """
INSERT INTO suppressions (key_kind, key_hash, forgotten_together)
SELECT kind, hash, $3 FROM unnest($1::text[], $2::text[]) AS k(kind, hash)
ON CONFLICT (key_kind, key_hash) DO UPDATE SET forgotten_together = EXCLUDED.forgotten_together"""

SUPPRESSION_GROUP = "SELECT nextval('suppression_groups')"

# `contacts unsuppress`: the keys typed, and every key suppressed together with one of them.
SUPPRESSIONS_LIFT = """
WITH typed AS (
    SELECT s.key_kind, s.key_hash, s.forgotten_together FROM suppressions s
    JOIN unnest($1::text[], $2::text[]) AS w(kind, hash) ON s.key_kind = w.kind AND s.key_hash = w.hash
)
DELETE FROM suppressions s
WHERE (s.key_kind, s.key_hash) IN (SELECT key_kind, key_hash FROM typed)
   OR s.forgotten_together IN (SELECT forgotten_together FROM typed WHERE forgotten_together IS NOT NULL)
RETURNING s.key_kind"""

PEOPLE_DELETE = "DELETE FROM people WHERE id = ANY($1::bigint[])"

# A forgotten phone ($1) or email ($2) goes from everyone else's row too (an office line the
# forgotten person shared), raw spelling included; their rows are pushed again without it.
PEOPLE_FORGOTTEN_KEYS_REMOVED = """
UPDATE people SET
    phone_e164 = CASE WHEN phone_e164 = ANY($1::text[]) THEN NULL ELSE phone_e164 END,
    phone_raw = CASE WHEN phone_e164 = ANY($1::text[]) THEN NULL ELSE phone_raw END,
    phone_type = CASE WHEN phone_e164 = ANY($1::text[]) THEN NULL ELSE phone_type END,
    email = CASE WHEN email = ANY($2::text[]) THEN NULL ELSE email END,
    email_raw = CASE WHEN email = ANY($2::text[]) THEN NULL ELSE email_raw END,
    push_version = push_version + 1, updated_at = now()
WHERE (phone_e164 = ANY($1::text[]) OR email = ANY($2::text[])) AND NOT id = ANY($3::bigint[])"""

# A PAN let go by 022 and kept only to list its people's companies: forgotten with its holder.
IDENTITIES_SEPARATED_FORGOTTEN = "DELETE FROM identities_separated WHERE pan = ANY($1::text[])"

# Every stored answer that names people, read one by one to take the forgotten out of it.
ANSWERS_WITH_CONTACTS = """
SELECT id, answer FROM attestr_answers
WHERE answer IS NOT NULL AND jsonb_typeof(answer -> 'contacts') = 'array'"""

ANSWERS_REWRITTEN = """
UPDATE attestr_answers a SET answer = u.answer::jsonb
FROM unnest($1::bigint[], $2::text[]) AS u(id, answer) WHERE a.id = u.id"""

# --- merges made by hand in Airtable (engine/hand_merges.py) ----------------------------------

# Who could be the same person as $1: in Airtable, and a last name, phone or email in common.
MERGE_CANDIDATES = r"""
SELECT p.id, p.contact_key, p.name, p.airtable_id, p.airtable_written,
    ARRAY(SELECT c.airtable_id FROM company_people cp JOIN companies c ON c.id = cp.company_id
          WHERE cp.person_id = p.id AND NOT c.deleted_in_airtable) AS company_record_ids
FROM people p, people g
WHERE g.id = $1 AND p.id <> g.id AND p.airtable_id IS NOT NULL AND NOT p.deleted_in_airtable
  AND (lower(regexp_replace(p.name, '^.*\s', '')) = lower(regexp_replace(g.name, '^.*\s', ''))
       OR p.phone_e164 = g.phone_e164 OR p.email = g.email)
ORDER BY p.id
LIMIT $2"""

PERSON_FOR_MERGE = "SELECT * FROM people WHERE id = $1 FOR UPDATE"

# Two identities merged by hand: the gone row's person ($1) is shown in the kept row ($2) from now
# on, and never gets a row of their own again.
PERSON_SHOWN_IN = """
UPDATE people SET deleted_in_airtable = true, push_lease_until = NULL, shown_in = $2 WHERE id = $1"""

# The gone row's companies become the kept row's person's too ($1 kept, $2 gone); the kept row is
# sent again (with what the service now knows of it).
MERGE_LINKS = """
WITH moved AS (
    INSERT INTO company_people (company_id, person_id, created_at)
    SELECT company_id, $1, created_at FROM company_people WHERE person_id = $2
    ON CONFLICT DO NOTHING
), jobs_moved AS (
    UPDATE jobs SET person_ids = ARRAY(SELECT DISTINCT unnest(array_replace(person_ids, $2, $1)))
    WHERE $2 = ANY(person_ids)
)
UPDATE people SET push_version = push_version + 1, updated_at = now() WHERE id = $1"""

# The kept person's empty fields take the merged person's values (named as dedup.PEOPLE_COLUMNS),
# after that person is deleted: their DIN, PAN, phone and email are unique keys. Never a value
# over one the kept person has.
MERGE_FILL = Named("""
UPDATE people k SET
    din = coalesce(k.din, :din), pan = coalesce(k.pan, :pan),
    name = coalesce(k.name, :name), name_raw = coalesce(k.name_raw, :name_raw),
    phone_e164 = coalesce(k.phone_e164, :phone_e164),
    phone_raw = CASE WHEN k.phone_e164 IS NULL THEN coalesce(:phone_raw, k.phone_raw) ELSE k.phone_raw END,
    phone_type = CASE WHEN k.phone_e164 IS NULL THEN :phone_type ELSE k.phone_type END,
    email = coalesce(k.email, :email), email_raw = coalesce(k.email_raw, :email_raw),
    addresses = CASE WHEN k.addresses = '[]'::jsonb THEN :addresses::jsonb ELSE k.addresses END
WHERE k.id = :id""")

# Retention: at most $2 rows a statement, so that a long backlog never holds long locks.
JOBS_PRUNE = """
DELETE FROM jobs WHERE id IN (
    SELECT id FROM jobs
    WHERE status IN ('succeeded', 'failed') AND updated_at < now() - make_interval(secs => $1 * 86400)
    LIMIT $2)"""

LOOKUPS_PRUNE = """
DELETE FROM attestr_lookups WHERE id IN (
    SELECT id FROM attestr_lookups WHERE called_at < now() - make_interval(secs => $1 * 86400) LIMIT $2)"""

ANSWERS_PRUNE = """
DELETE FROM attestr_answers WHERE id IN (
    SELECT id FROM attestr_answers WHERE called_at < now() - make_interval(secs => $1 * 86400) LIMIT $2)"""

# --- alerts (engine/alerts.py) ------------------------------------------------------------------

ALERT_RAISE = "INSERT INTO alerts (kind, ended, subject, detail) VALUES ($1, $2, $3, $4)"

# A target's cursors: one per kind ($1 kinds, $2 target), starting after the alerts already there
# (a target added later is not sent the past).
ALERT_CURSORS_ENSURE = """
INSERT INTO alert_cursors (kind, target, sent_up_to)
SELECT kind, $2, (SELECT COALESCE(max(id), 0) FROM alerts)
FROM unnest($1::text[]) AS kind
ON CONFLICT DO NOTHING"""

# The next kind and target with alerts to send, not sent within $2 seconds (a digest at most
# that often) and not waiting to retry; locked for the send, so that one process sends it. $1:
# this process's targets.
ALERT_CLAIM = """
SELECT c.kind, c.target, c.sent_up_to, c.attempts FROM alert_cursors c
WHERE c.target = ANY($1::text[])
  AND c.retry_at <= now()
  AND (c.last_sent_at IS NULL OR c.last_sent_at <= now() - $2 * interval '1 second')
  AND EXISTS (SELECT 1 FROM alerts a WHERE a.kind = c.kind AND a.id > c.sent_up_to)
ORDER BY c.retry_at, c.kind
LIMIT 1
FOR UPDATE SKIP LOCKED"""

ALERTS_AFTER = """
SELECT id, ended, subject, detail, created_at FROM alerts WHERE kind = $1 AND id > $2 ORDER BY id LIMIT 200"""

ALERT_SENT = """
UPDATE alert_cursors SET sent_up_to = $3, last_sent_at = now(), attempts = 0, retry_at = '-infinity'
WHERE kind = $1 AND target = $2"""

# A send failed: tried again after $3 seconds, or given up ($4: the alerts are left behind, and
# the next alert of the kind starts its own attempts).
ALERT_FAILED = """
UPDATE alert_cursors SET
    attempts = CASE WHEN $4 THEN 0 ELSE attempts + 1 END,
    retry_at = CASE WHEN $4 THEN '-infinity' ELSE now() + $3 * interval '1 second' END,
    sent_up_to = CASE WHEN $4 THEN $5 ELSE sent_up_to END
WHERE kind = $1 AND target = $2"""

ALERTS_PRUNE = "DELETE FROM alerts WHERE created_at < now() - interval '30 days'"

# --- the operator's page (engine/history.py, web/ops) ------------------------------------------

# A page of jobs, newest first, after the filters given (each NULL for none): state $1; company
# $2, its record id or a part of its name (a LIKE pattern, wildcards escaped); CIN $3; created
# since $4; ids below $5 (the next page). Rows are read backwards along the primary key, so a
# page costs about its own rows whatever the table holds. `paid`: a call of this job that Attestr
# may bill (its refusals, 4xx, are not billed: ATTESTR_CALLS_TODAY).
OPS_JOBS = """
WITH page AS (
    SELECT j.id, j.record_id, j.cin, j.status, j.wait_reason, j.source, j.attempts, j.last_error,
           j.created_at, j.updated_at,
           -- what the page shows of the result, read here rather than each whole result in Python
           (j.result ->> 'attestr_called')::boolean AS attestr_called,
           (j.result ->> 'contacts_fetched')::int AS found,
           (j.result ->> 'airtable_created')::int + (j.result ->> 'airtable_updated')::int AS written,
           j.result ->> 'business_name' AS business_name
    FROM jobs j
    WHERE ($1::text IS NULL OR j.status = $1)
      -- the companies first (a hashed list), not each job's company: 20 ms, not 90, at 100,000 jobs
      AND ($2::text IS NULL OR j.record_id IN (
          SELECT m.airtable_id FROM companies m WHERE m.airtable_id = $2 OR m.name ILIKE $3))
      AND ($4::text IS NULL OR j.cin = $4)
      AND ($5::timestamptz IS NULL OR j.created_at >= $5)
      AND ($6::bigint IS NULL OR j.id < $6)
    ORDER BY j.id DESC
    LIMIT $7
)
-- Names and payments for the page's rows only: probed by index, never a scan of every answer.
SELECT page.*, c.name AS company_name,
       EXISTS (SELECT 1 FROM attestr_answers a WHERE a.job_id = page.id
               AND (a.outcome <> 'error' OR a.http_status IS NULL OR a.http_status NOT BETWEEN 400 AND 499))
           AS paid
FROM page LEFT JOIN companies c ON c.airtable_id = page.record_id
ORDER BY page.id DESC"""

OPS_COMPANY = """
SELECT airtable_id, cin, name, sync_status, sync_error, synced_at, contacts_found,
       deleted_in_airtable, push_version > pushed_version AS waiting_for_airtable, push_error
FROM companies WHERE airtable_id = $1"""

OPS_COMPANY_JOBS = """
SELECT id, status, cin, source, attempts, last_error, result, created_at, updated_at
FROM jobs WHERE record_id = $1 ORDER BY id DESC LIMIT $2"""

OPS_COMPANY_CONTACTS = """
SELECT p.id, p.contact_key, p.din, p.name, p.phone_e164, p.email, p.airtable_id, p.deleted_in_airtable,
       p.push_version > p.pushed_version AS waiting_for_airtable, p.push_error
FROM company_people cp JOIN companies c ON c.id = cp.company_id JOIN people p ON p.id = cp.person_id
WHERE c.airtable_id = $1 ORDER BY p.name, p.id"""

# Each Attestr call a job made, paid or refused.
OPS_JOB_CALLS = """
SELECT called_at, outcome, http_status, error_code,
       (outcome <> 'error' OR http_status IS NULL OR http_status NOT BETWEEN 400 AND 499) AS paid
FROM attestr_answers WHERE job_id = $1 ORDER BY called_at"""

# The rows a job handed to the pusher, and what Airtable made of each (NULL: not written yet).
OPS_JOB_ROWS = """
SELECT jr.person_id, jr.outcome, p.contact_key, p.name, p.airtable_id, p.push_error
FROM job_rows jr JOIN people p ON p.id = jr.person_id
WHERE jr.job_id = $1 ORDER BY p.name, p.id"""

# Paid calls per day of India's calendar (Attestr's daily limit counts them), the last 30 days
# with today last, and jobs served by an answer stored earlier, on the day they ended.
OPS_SPEND_BY_DAY = """
WITH first AS (SELECT (now() AT TIME ZONE 'Asia/Kolkata')::date - 29 AS day),
paid AS (
    SELECT (a.called_at AT TIME ZONE 'Asia/Kolkata')::date AS day, count(*) AS n
    FROM attestr_answers a, first
    WHERE a.called_at >= (first.day::timestamp AT TIME ZONE 'Asia/Kolkata')
      AND (a.outcome <> 'error' OR a.http_status IS NULL OR a.http_status NOT BETWEEN 400 AND 499)
    GROUP BY 1
), stored AS (
    SELECT (j.updated_at AT TIME ZONE 'Asia/Kolkata')::date AS day, count(*) AS n
    FROM jobs j, first
    WHERE j.status = 'succeeded' AND j.result ->> 'attestr_called' = 'false'
      AND j.updated_at >= (first.day::timestamp AT TIME ZONE 'Asia/Kolkata')
    GROUP BY 1
)
SELECT d::date AS day, COALESCE(paid.n, 0) AS paid, COALESCE(stored.n, 0) AS from_stored
FROM first, generate_series(first.day, first.day + 29, interval '1 day') AS d
LEFT JOIN paid ON paid.day = d::date
LEFT JOIN stored ON stored.day = d::date
ORDER BY d"""

# What a resume of Attestr sets going: the jobs queued (those waiting for Attestr among them).
OPS_QUEUED_FOR_ATTESTR = """
SELECT count(*) AS queued, count(*) FILTER (WHERE waiting_on = 'attestr') AS waiting
FROM jobs WHERE status = 'queued'"""

OPS_NATIVE_WEBHOOKS = """
SELECT id, expires_at, problem, problem_at, checked_at, last_payload_at FROM airtable_webhooks
ORDER BY created_at"""

# --- the operator's page's sign-ins (web/ops/session.py) ----------------------------------------

OPS_SESSION_START = """
WITH pruned AS (DELETE FROM ops_sessions WHERE expires_at < now())
INSERT INTO ops_sessions (token_hash, key_hash, expires_at)
VALUES ($1, $2, now() + make_interval(secs => $3))"""

# The session of this token, while it lasts (no longer than $3 seconds from its start, should
# OPS_SESSION_MAX_AGE_S be lowered) and its key is still one of API_KEYS ($2: their hashes).
OPS_SESSION_FIND = """
SELECT key_hash FROM ops_sessions
WHERE token_hash = $1 AND expires_at > now() AND created_at > now() - make_interval(secs => $3)
  AND key_hash = ANY($2::text[])"""

# At start: the sessions of keys no longer in API_KEYS ($1: the hashes of those that are) end for
# good, so that a key put back does not bring them back.
OPS_SESSIONS_OF_REMOVED_KEYS = "DELETE FROM ops_sessions WHERE NOT key_hash = ANY($1::text[])"

OPS_SESSION_END = "DELETE FROM ops_sessions WHERE token_hash = $1"

# Failed sign-ins from one address in the current window ($1: its hash), without counting one.
API_RATE_PEEK = """
SELECT requests,
    extract(epoch FROM window_start + make_interval(secs => $2) - clock_timestamp())::float8 AS resets_in_s
FROM api_rate
WHERE key_hash = $1
  AND window_start = to_timestamp(floor(extract(epoch FROM clock_timestamp()) / $2) * $2)"""
