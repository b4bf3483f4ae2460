"""`contact-sync airtable adopt`: take over a Contacts table filled by an older tool.

Rows without a `Contact Key` are matched to people by the design's rules (DIN, phone, email, then
company and name), or become people; each such row gets its person's `Contact Key` and is
remembered as that person's row, so the first sync updates it instead of adding a second one.
Several rows that are one person are reported, not touched: a person decides which to keep.
Nothing is written with `--dry-run`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import asyncpg

from service import queries
from service.airtable.client import Airtable
from service.airtable.errors import AirtableError
from service.config import Settings
from service.database import in_transaction
from service.people.companies import ensure_companies
from service.people.dedup import CompanyContacts, upsert_people
from service.people.normalize import Contact, normalize_contact


@dataclass
class AdoptReport:
    already_keyed: int = 0
    adopted: list[tuple[str, str, str]] = field(default_factory=list)  # (row id, contact key, how)
    duplicates: list[tuple[str, str, str]] = field(default_factory=list)  # (row id, same person's row, key)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (row id, why)


def _contact(row: dict[str, Any], settings: Settings) -> Contact | None:
    fields = row["fields"]
    address = fields.get(settings.field("ADDRESS"))
    return normalize_contact(
        {
            "indexId": fields.get(settings.field("DIN")),
            "fullName": fields.get(settings.field("NAME")),
            "mobileNumber": fields.get(settings.field("PHONE")),
            "emailAddress": fields.get(settings.field("EMAIL")),
            "addresses": [{"fullAddress": address}] if address else [],
        }
    )


async def adopt(pool: asyncpg.Pool, airtable: Airtable, settings: Settings, *, dry_run: bool) -> AdoptReport:
    key_field, company_field = settings.field("CONTACT_KEY"), settings.field("COMPANY")
    if key_field not in (await airtable.fields())["contacts"]:
        raise AirtableError(
            f'The Contacts table has no "{key_field}" field: run `contact-sync doctor --fix` first'
        )
    rows = await airtable.list_records(airtable.contacts)
    rows.sort(key=lambda r: r["createdTime"])  # the oldest row of a person is the one kept

    report = AdoptReport()
    older: list[tuple[dict[str, Any], Contact, list[str]]] = []
    for row in rows:
        if row["fields"].get(key_field):
            report.already_keyed += 1
            continue
        contact = _contact(row, settings)
        companies = [c for c in row["fields"].get(company_field) or [] if isinstance(c, str)]
        if contact is None:
            report.skipped.append((row["id"], "no name, DIN, phone or email to match on"))
        elif not companies:
            report.skipped.append(
                (row["id"], f'no "{company_field}" link: link it to its company and run adopt again')
            )
        else:
            older.append((row, contact, companies))

    async def match(conn: asyncpg.Connection) -> dict[str, tuple[int, str]]:
        ids = await ensure_companies(conn, sorted({(c, None, None) for _, _, cs in older for c in cs}))
        batches: dict[str, CompanyContacts] = {}
        for _row, contact, companies in older:
            for company in companies:
                batches.setdefault(
                    company, CompanyContacts(ids[company], [], replace_links=False)
                ).contacts.append(contact)
        outcomes = await upsert_people(conn, list(batches.values()))
        by_contact = {id(c): (person_id, how) for o in outcomes for c, person_id, how in o.matched}
        return {row["id"]: by_contact[id(contact)] for row, contact, _ in older if id(contact) in by_contact}

    async def claim_rows(conn: asyncpg.Connection) -> AdoptReport:
        person_of = await match(conn)
        people = await conn.fetch(queries.PEOPLE_KEYS, sorted({p for p, _ in person_of.values()}))
        owners = {r["id"]: dict(r) for r in people}
        found = AdoptReport(already_keyed=report.already_keyed, skipped=list(report.skipped))
        for row, _contact, _companies in older:
            if row["id"] not in person_of:
                found.skipped.append((row["id"], "a person forgotten with `contacts forget`"))
                continue
            person_id, how = person_of[row["id"]]
            owner = owners[person_id]
            if owner["airtable_id"] and owner["airtable_id"] != row["id"]:
                found.duplicates.append((row["id"], owner["airtable_id"], owner["contact_key"]))
                continue
            owner["airtable_id"] = row["id"]
            found.adopted.append(
                (row["id"], owner["contact_key"], "new person" if how == "new" else f"matched ({how})")
            )
        adopted = [(person_of[row_id][0], row_id) for row_id, _, _ in found.adopted]
        await conn.execute(queries.PEOPLE_ADOPT_ROWS, [p for p, _ in adopted], [r for _, r in adopted])
        if dry_run:
            raise _DryRun(found)
        return found

    try:
        report = await in_transaction(pool, claim_rows)
    except _DryRun as dry:
        return dry.report
    writes = [(row_id, key) for row_id, key, _ in report.adopted]
    for start in range(0, len(writes), 10):
        chunk = writes[start : start + 10]
        await airtable.call(
            airtable.contacts.batch_update, [{"id": rid, "fields": {key_field: key}} for rid, key in chunk]
        )
    return report


class _DryRun(Exception):
    """Rolls the adoption's transaction back: `--dry-run` reports without writing."""

    def __init__(self, report: AdoptReport) -> None:
        super().__init__("dry run")
        self.report = report
