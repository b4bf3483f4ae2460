"""Every SQL statement of the service, by name.

The rules of the data live here, in SQL: partial unique indexes (see `migrations/`), advisory
locks, `FOR UPDATE` and set-based statements over arrays (`unnest`) rather than a query per row.
"""

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
LOCK_KEYS = "SELECT pg_advisory_xact_lock(k) FROM unnest($1::bigint[]) AS k"
# Taken before the key locks: shared by every ordinary upsert, exclusive by a bulk load.
LOCK_KEYS_SHARED_BULK = "SELECT pg_advisory_xact_lock_shared(724312)"
LOCK_BULK = "SELECT pg_advisory_xact_lock(724312)"

SUPPRESSED_KEYS = """
SELECT s.key_kind, s.key_hash
FROM suppressions s
JOIN unnest($1::text[], $2::text[]) AS w(kind, hash) ON s.key_kind = w.kind AND s.key_hash = w.hash"""

# Everyone a batch could match: by DIN, phone or email, or already linked to one of its
# companies (for the same-company-same-name rule). Locked until the transaction ends.
PEOPLE_CANDIDATES = """
WITH ids AS (
    SELECT id FROM people WHERE din = ANY($1::text[])
    UNION SELECT id FROM people WHERE phone_e164 = ANY($2::text[])
    UNION SELECT id FROM people WHERE email = ANY($3::text[])
    UNION SELECT person_id FROM company_people WHERE company_id = ANY($4::bigint[])
)
SELECT p.id, p.din, p.name, p.name_raw, p.phone_e164, p.phone_raw, p.phone_type,
       p.email, p.email_raw, p.addresses,
       ARRAY(SELECT cp.company_id FROM company_people cp WHERE cp.person_id = p.id) AS company_ids
FROM people p
WHERE p.id IN (SELECT id FROM ids)
ORDER BY p.id
FOR UPDATE OF p"""

# Ids are taken first so that the Python side knows which new person got which id.
PEOPLE_NEW_IDS = "SELECT nextval(pg_get_serial_sequence('people', 'id')) FROM generate_series(1, $1)"

PEOPLE_INSERT = """
INSERT INTO people (id, din, name, name_raw, phone_e164, phone_raw, phone_type, email, email_raw,
                    addresses)
OVERRIDING SYSTEM VALUE
SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                     $7::text[], $8::text[], $9::text[], $10::jsonb[])"""

PEOPLE_UPDATE = """
UPDATE people p
SET din = u.din, name = u.name, name_raw = u.name_raw,
    phone_e164 = u.phone_e164, phone_raw = u.phone_raw, phone_type = u.phone_type,
    email = u.email, email_raw = u.email_raw, addresses = u.addresses,
    push_version = p.push_version + u.visible::int,
    updated_at = now()
FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
            $8::text[], $9::text[], $10::jsonb[], $11::bool[])
     AS u(id, din, name, name_raw, phone_e164, phone_raw, phone_type, email, email_raw, addresses, visible)
WHERE p.id = u.id"""

PEOPLE_MARK_FOR_PUSH = """
UPDATE people SET push_version = push_version + 1, updated_at = now() WHERE id = ANY($1::bigint[])"""

LINKS_INSERT = """
INSERT INTO company_people (company_id, person_id)
SELECT * FROM unnest($1::bigint[], $2::bigint[])
ON CONFLICT DO NOTHING
RETURNING company_id, person_id"""

# A company's links become exactly the people of its latest answer.
LINKS_REMOVE_OTHERS = """
DELETE FROM company_people cp
WHERE cp.company_id = ANY($1::bigint[])
  AND NOT EXISTS (
      SELECT 1 FROM unnest($2::bigint[], $3::bigint[]) AS k(company_id, person_id)
      WHERE k.company_id = cp.company_id AND k.person_id = cp.person_id)
RETURNING company_id, person_id"""
