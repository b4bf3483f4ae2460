"""Identities end to end, on generated Attestr answers as messy as real filings: DINs and PANs in
Devanagari, Arabic-Indic, Bengali or fullwidth digits, with zero-width spaces, byte-order marks,
no-break spaces and control characters, as lists, numbers or None; directors sharing the office
phone. After each sync the Airtable stand-in's rows show that no two different DINs (or PANs)
share a row, that no identifier reaches Airtable with a non-ASCII digit or an invisible
character, that no PAN reaches Airtable at all, and that storing an answer again right after it
changes nothing (two companies' answers may disagree about one director's phone: the latest one
counts, so only storing the same answer twice in a row is a no-op)."""

from __future__ import annotations

import asyncio
import os
import unicodedata
from dataclasses import dataclass
from typing import Any

import asyncpg
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from service import identifiers
from service.airtable.client import Airtable
from service.attestr.client import parse_answer
from service.database import create_pool, in_transaction
from service.engine.pusher import Pusher
from service.people.companies import ensure_company
from service.people.dedup import CompanyContacts, UpsertOutcome, upsert_people
from service.standins.airtable import AirtableStandIn
from service.standins.attestr import AttestrStandIn
from tests.conftest import Running
from tests.flow import settings_for
from tests.ground.test_identifiers import DIGITS, INVISIBLE, written

EXAMPLES = int(os.environ.get("IDENTITY_EXAMPLES", "40"))  # each is two syncs through Airtable


@dataclass(frozen=True)
class Someone:
    kind: str  # "din", "pan" or "" (no identity)
    identity: str
    name: str
    phone: str | None


_NAMES = ["ANANYA RAO", "VIKRAM SETHI", "NISHA KAPOOR", "DEEPAK GUPTA", "MEERA IYER", "FARAH KHAN"]
_PHONES = ["022 2345 1111", "98450 12345", "98450 12346", None]  # the first: the office's

someone = st.builds(
    Someone,
    st.sampled_from(["din", "din", "pan", ""]),
    st.one_of(
        st.from_regex(r"0[1-9][0-9]{6}", fullmatch=True),
        st.from_regex(r"[A-Z]{5}[0-9]{4}[A-Z]", fullmatch=True),
    ),
    st.sampled_from(_NAMES),
    st.sampled_from(_PHONES),
)


@st.composite
def messy(draw: st.DrawFn, text: str | None) -> Any:
    """`text` as a filing might carry it."""
    if text is None:
        return None
    out = written(text, draw(st.sampled_from(list(DIGITS))))
    for char in draw(st.lists(st.sampled_from(INVISIBLE), max_size=3)):
        at = draw(st.integers(0, len(out)))
        out = out[:at] + char + out[at:]
    shape = draw(st.sampled_from(["text", "text", "list", "number"]))
    if shape == "list":
        return [None, "", out]
    if shape == "number" and text.isdigit():
        return int(text)
    return out


@st.composite
def spelled(draw: st.DrawFn, name: str) -> str:
    """A name as another filing writes it: case, spacing, dots, an honorific."""
    words = [draw(st.sampled_from([w, w.title(), w.lower()])) for w in name.split()]
    title = draw(st.sampled_from(["", "Mr. ", "SHRI ", "Smt ", "Dr."]))
    return title + draw(st.sampled_from([" ", "  ", " \u00a0"])).join(words)


@st.composite
def answers(draw: st.DrawFn) -> list[list[dict[str, Any]]]:
    """Three answers over one set of people (some on several boards): an older one for the first
    company, stored first, then the first company's and the second's."""
    people = draw(st.lists(someone, min_size=1, max_size=6, unique_by=lambda p: p.identity))
    boards = [draw(st.lists(st.sampled_from(people), min_size=1, max_size=5)) for _ in range(3)]
    return [
        [
            {
                "indexId": draw(
                    messy(p.identity if p.kind == ("din" if p.identity[0].isdigit() else "pan") else None)
                ),
                "fullName": draw(spelled(p.name)),
                "mobileNumber": draw(messy(p.phone)),
                "emailAddress": None,
            }
            for p in board
        ]
        for board in boards
    ]


def _clean(value: Any) -> bool:
    """No invisible or control character, and every digit ASCII."""
    texts = value if isinstance(value, list) else [value]
    return all(
        not isinstance(t, str)
        or all(unicodedata.category(c) not in ("Cc", "Cf") and (not c.isdecimal() or c.isascii()) for c in t)
        for t in texts
    )


async def _sync(
    db_url: str,
    airtable: Running[AirtableStandIn],
    attestr: Running[AttestrStandIn],
    companies: list[str],
    answer: list[list[dict]],
) -> list[UpsertOutcome]:
    """Store each company's answer the way a job does, then push; the outcomes."""
    pool = await create_pool(db_url)
    outcomes = []
    try:
        for record_id, contacts in zip(companies, answer, strict=True):

            async def store(
                conn: asyncpg.Connection, record_id: str = record_id, contacts: list = contacts
            ) -> UpsertOutcome:
                company_id = await ensure_company(conn, record_id)
                parsed = parse_answer("U72200KA2015PTC081234", {"valid": True, "contacts": contacts}, 100)
                (outcome,) = await upsert_people(conn, [CompanyContacts(company_id, parsed.contacts)])
                return outcome

            outcomes.append(await in_transaction(pool, store))
        settings = settings_for(airtable, attestr, AIRTABLE_RATE_LIMIT_RPS="40")
        pusher = Pusher(pool, Airtable(settings, pool), settings, linger_s=0.0)
        while await pusher.push_once():
            pass
        return outcomes
    finally:
        await pool.close()


async def _reset(db_url: str) -> None:
    conn = await asyncpg.connect(db_url)
    try:
        await conn.execute(
            "TRUNCATE people, companies, company_people, jobs, job_rows, airtable_missing_options,"
            " airtable_rows_to_delete RESTART IDENTITY CASCADE"
        )
    finally:
        await conn.close()


async def _links(db_url: str) -> dict[str, list[int]]:
    conn = await asyncpg.connect(db_url)
    try:
        rows = await conn.fetch(
            "SELECT c.airtable_id, array_agg(cp.person_id ORDER BY cp.person_id) AS people FROM companies c"
            " JOIN company_people cp ON cp.company_id = c.id GROUP BY c.airtable_id"
        )
        return {r["airtable_id"]: list(r["people"]) for r in rows}
    finally:
        await conn.close()


async def _people(db_url: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(db_url)
    try:
        return await conn.fetch("SELECT id, din, pan, name, phone_e164, airtable_id FROM people ORDER BY id")
    finally:
        await conn.close()


def test_messy_identities_never_merge_two_people_nor_reach_airtable_unread(
    db_url: str, airtable: Running[AirtableStandIn], attestr: Running[AttestrStandIn]
) -> None:
    airtable.standin.rate_limit = 10_000

    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
    @given(answers())
    def example(answer: list[list[dict]]) -> None:
        note(repr(answer))
        asyncio.run(_reset(db_url))
        for table in airtable.standin.tables:
            table.records.clear()
        companies = [airtable.standin.add_record("Companies", {"Company Name": n}) for n in ("A", "B")]
        older, answer = answer[0], answer[1:]
        asyncio.run(_sync(db_url, airtable, attestr, companies[:1], [older]))  # people stored before
        outcomes = asyncio.run(_sync(db_url, airtable, attestr, companies, answer))
        people = asyncio.run(_people(db_url))
        rows = airtable.standin.records("Contacts")
        # Every identity that came in is one person, and two different ones never one person.
        boards = [older, *answer]
        given_dins = {d for board in boards for c in board if (d := _read(c["indexId"], "din"))}
        given_pans = {p for board in boards for c in board if (p := _read(c["indexId"], "pan"))}
        assert {p["din"] for p in people if p["din"]} == given_dins
        assert {p["pan"] for p in people if p["pan"]} == given_pans
        # Each contact became a person carrying its identity, and each company is linked to
        # exactly the people of its answer.
        by_id = {p["id"]: p for p in people}
        for outcome in outcomes:
            for contact, person_id, _how in outcome.matched:
                assert contact.din in (None, by_id[person_id]["din"]) and contact.pan in (
                    None,
                    by_id[person_id]["pan"],
                )
            assert set(outcome.person_ids) == {person_id for _, person_id, _ in outcome.matched}
        assert asyncio.run(_links(db_url)) == {
            record_id: sorted(set(o.person_ids)) for record_id, o in zip(companies, outcomes, strict=True)
        }
        # Airtable: one row a person, identifiers read, no PAN anywhere.
        assert len(rows) == len(people) and len({r["fields"]["Contact Key"] for r in rows}) == len(rows)
        for row in rows:
            fields = row["fields"]
            assert all(_clean(v) for v in fields.values()), fields
            assert "DIN" not in fields or (
                fields["DIN"].isascii() and fields["DIN"].isdigit() and len(fields["DIN"]) == 8
            )
            assert not any(pan in str(v) for pan in given_pans for v in fields.values())
        # Storing the latest answer again changes nothing, in PostgreSQL or in Airtable; nor does
        # storing each answer twice in a row.
        writes = len(airtable.standin.write_requests())
        asyncio.run(_sync(db_url, airtable, attestr, companies[1:], answer[1:]))
        assert asyncio.run(_people(db_url)) == people
        assert len(airtable.standin.write_requests()) == writes
        assert airtable.standin.records("Contacts") == rows
        asyncio.run(_sync(db_url, airtable, attestr, companies[:1], answer[:1]))
        once, writes = asyncio.run(_people(db_url)), len(airtable.standin.write_requests())
        asyncio.run(_sync(db_url, airtable, attestr, companies[:1], answer[:1]))
        assert asyncio.run(_people(db_url)) == once
        assert len(airtable.standin.write_requests()) == writes

    example()


def _read(value: Any, kind: str) -> str | None:
    din, pan = identifiers.identity(value)
    return din if kind == "din" else pan
