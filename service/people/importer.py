"""`contact-sync import`: people from an older PostgreSQL `contacts` table.

The older tool kept one row per contact and company, with columns named after Attestr's fields
(`din`/`index_id`, `full_name`, `mobile_number`, `email_address`, `company_airtable_id`,
`addresses`, and the contact's own Airtable record id when it had one). Rows are matched and
de-duplicated by the same rules as a sync; a row's Airtable id becomes its person's, so the first
sync updates that row instead of adding another.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from service import queries
from service.people.companies import ensure_companies
from service.people.dedup import CompanyContacts, upsert_people
from service.people.normalize import normalize_contact

# Column names the older table may use, per field, in order of preference.
COLUMNS = {
    "din": ("din", "index_id", "indexid"),
    "name": ("full_name", "fullname", "name"),
    "phone": ("mobile_number", "mobilenumber", "phone_number", "phone"),
    "email": ("email_address", "emailaddress", "email"),
    "company": ("company_airtable_id", "airtable_company_id", "company_record_id"),
    "addresses": ("addresses", "address"),
    "airtable_id": ("airtable_id", "airtable_record_id", "contact_airtable_id"),
}
BATCH = 500


@dataclass
class ImportReport:
    columns: dict[str, str] = field(default_factory=dict)
    rows: int = 0
    people_new: int = 0
    people_matched: int = 0
    airtable_rows_kept: int = 0
    skipped: list[tuple[Any, str]] = field(default_factory=list)


async def _columns(conn: asyncpg.Connection, table: str) -> dict[str, str]:
    schema, _, name = table.rpartition(".")
    present = {r["column_name"] for r in await conn.fetch(queries.TABLE_COLUMNS, schema or None, name)}
    if not present:
        raise LookupError(f'There is no table "{table}" to import from')
    found = {key: next((c for c in names if c in present), "") for key, names in COLUMNS.items()}
    if not found["company"]:
        raise LookupError(f'"{table}" has no company column (one of: {", ".join(COLUMNS["company"])})')
    return {key: column for key, column in found.items() if column}


def _item(row: asyncpg.Record, columns: dict[str, str]) -> dict[str, Any]:
    addresses = row[columns["addresses"]] if "addresses" in columns else None
    if isinstance(addresses, str):
        try:
            addresses = json.loads(addresses)
        except ValueError:
            addresses = [{"fullAddress": addresses}]
    return {
        "indexId": row[columns["din"]] if "din" in columns else None,
        "fullName": row[columns["name"]] if "name" in columns else None,
        "mobileNumber": row[columns["phone"]] if "phone" in columns else None,
        "emailAddress": row[columns["email"]] if "email" in columns else None,
        "addresses": addresses,
    }


async def run(pool: asyncpg.Pool, source: asyncpg.Connection, table: str) -> ImportReport:
    report = ImportReport(columns=await _columns(source, table))
    columns = report.columns
    select = f"SELECT * FROM {'.'.join(_quote(p) for p in table.split('.'))}"  # the name is checked above
    rows = await source.fetch(select)
    report.rows = len(rows)
    for start in range(0, len(rows), BATCH):
        chunk = rows[start : start + BATCH]
        items = []
        for index, row in enumerate(chunk, start):
            company = row[columns["company"]]
            contact = normalize_contact(_item(row, columns))
            if not isinstance(company, str) or not company.startswith("rec"):
                report.skipped.append((index, "no Airtable company record id"))
            elif contact is None:
                report.skipped.append((index, "no name, DIN, phone or email"))
            else:
                airtable_id = row[columns["airtable_id"]] if "airtable_id" in columns else None
                items.append((company, contact, airtable_id if isinstance(airtable_id, str) else None))
        async with pool.acquire() as conn, conn.transaction():
            ids = await ensure_companies(conn, sorted({(c, None, None) for c, _, _ in items}))
            batches: dict[str, CompanyContacts] = {}
            for company, contact, _ in items:
                batches.setdefault(
                    company, CompanyContacts(ids[company], [], replace_links=False)
                ).contacts.append(contact)
            outcomes = await upsert_people(conn, list(batches.values()))
            person_of = {id(c): (pid, how) for o in outcomes for c, pid, how in o.matched}
            seen: set[int] = set()
            for _, contact, _ in items:
                pid, how = person_of.get(id(contact), (None, ""))
                if pid is not None and pid not in seen:
                    seen.add(pid)
                    report.people_new += how == "new"
                    report.people_matched += how != "new"
            kept = [(person_of[id(c)][0], a) for _, c, a in items if a and id(c) in person_of]
            if kept:
                report.airtable_rows_kept += await conn.fetchval(
                    queries.PEOPLE_KEEP_AIRTABLE_IDS, [p for p, _ in kept], [a for _, a in kept]
                )
    return report


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'
