"""The de-duplication rules, against a real PostgreSQL."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from service.database import create_pool, in_transaction
from service.people.companies import ensure_company
from service.people.dedup import CompanyContacts, UpsertOutcome, suppression_hash, upsert_people
from service.people.names import names_agree
from service.people.normalize import normalize_contact


def person(din: Any = None, name: Any = None, phone: Any = None, email: Any = None, **extra: Any) -> dict:
    return {"indexId": din, "fullName": name, "mobileNumber": phone, "emailAddress": email, **extra}


async def sync(pool: asyncpg.Pool, record_id: str, *items: dict, **options: Any) -> UpsertOutcome:
    """Store one Attestr answer for one company, the way a job does."""

    async def work(conn: asyncpg.Connection) -> UpsertOutcome:
        company_id = await ensure_company(conn, record_id)
        contacts = [c for c in map(normalize_contact, items) if c]
        (outcome,) = await upsert_people(conn, [CompanyContacts(company_id, contacts, **options)])
        return outcome

    return await in_transaction(pool, work)


async def people(pool: asyncpg.Pool) -> list[asyncpg.Record]:
    return await pool.fetch(
        """SELECT p.*, ARRAY(SELECT c.airtable_id FROM company_people cp JOIN companies c
                              ON c.id = cp.company_id WHERE cp.person_id = p.id ORDER BY 1) AS companies
           FROM people p ORDER BY p.id"""
    )


ACME = "recACME0000000001"
BETA = "recBETA0000000002"


async def test_same_person_under_two_companies_is_one_person_with_two_links(pool: asyncpg.Pool) -> None:
    await sync(pool, ACME, person("01234567", "Ravi Kumar", "9845067321"))
    await sync(pool, BETA, person("01234567", "RAVI KUMAR", "+91 98450 67321"))
    rows = await people(pool)
    assert len(rows) == 1
    assert rows[0]["companies"] == [ACME, BETA]


async def test_phone_in_four_spellings_is_one_person(pool: asyncpg.Pool) -> None:
    spellings = ["+91 98450 67321", "09845067321", "9845067321", "919845067321"]
    for spelling in spellings:
        await sync(pool, ACME, person(name="Meera Iyer", phone=spelling))
    rows = await people(pool)
    assert len(rows) == 1
    assert rows[0]["phone_e164"] == "+919845067321"
    assert rows[0]["phone_raw"] == spellings[0]  # a weak match never replaces the phone


async def test_emails_differing_in_case_and_spaces_are_one_person(pool: asyncpg.Pool) -> None:
    await sync(pool, ACME, person(name="Meera Iyer", email="Meera.Iyer@Example.com"))
    await sync(pool, BETA, person(name="M Iyer", email="  meera.iyer@EXAMPLE.COM "))
    rows = await people(pool)
    assert len(rows) == 1
    assert rows[0]["email"] == "meera.iyer@example.com"
    assert rows[0]["name"] == "Meera Iyer"  # a weak match never renames
    assert rows[0]["companies"] == [ACME, BETA]


async def test_people_without_phone_or_email_do_not_collide(pool: asyncpg.Pool) -> None:
    outcome = await sync(
        pool,
        ACME,
        person(name="Asha Rao"),
        person(name="Vikram Shah"),
        person(name="Lata Menon"),
        person(name="Vikram Shah", phone="N/A", email="none"),
    )
    rows = await people(pool)
    assert [r["name"] for r in rows] == ["Asha Rao", "Vikram Shah", "Lata Menon"]
    assert all(r["phone_e164"] is None and r["email"] is None for r in rows)
    assert rows[1]["phone_raw"] is None  # "N/A" and "none" stand for nothing: not even kept raw
    assert outcome.contacts_new == 3


async def test_two_dins_sharing_the_secretarys_phone_and_email_stay_two_people(pool: asyncpg.Pool) -> None:
    secretary = {"phone": "98200 11111", "email": "cs@acme.example"}
    await sync(
        pool,
        ACME,
        person("01111111", "Arjun Mehta", **secretary),
        person("02222222", "Kavita Mehta", **secretary),
    )
    await sync(pool, BETA, person("02222222", "Kavita Mehta", **secretary))
    rows = await people(pool)
    assert [(r["din"], r["name"], r["phone_e164"]) for r in rows] == [
        ("01111111", "Arjun Mehta", "+919820011111"),
        ("02222222", "Kavita Mehta", "+919820011111"),
    ]
    assert rows[1]["companies"] == [ACME, BETA]


async def test_a_shared_phone_joins_only_people_whose_names_agree(pool: asyncpg.Pool) -> None:
    """A phone without an identity is a weak key: the secretary's number given for the directors
    makes no one of them; the same name on it does, the oldest first."""
    shared = "98200 11111"
    await sync(
        pool, ACME, person("01111111", "Arjun Mehta", shared), person("02222222", "Kavita Mehta", shared)
    )
    await sync(pool, BETA, person(name="Company Secretary", phone=shared))
    rows = await people(pool)
    assert [(r["name"], r["companies"]) for r in rows] == [
        ("Arjun Mehta", [ACME]),
        ("Kavita Mehta", [ACME]),
        ("Company Secretary", [BETA]),
    ]
    await sync(
        pool, BETA, person(name="A. MEHTA", phone=shared), person(name="Company Secretary", phone=shared)
    )
    rows = await people(pool)
    assert len(rows) == 3 and rows[0]["companies"] == [ACME, BETA]  # "A. Mehta" agrees with Arjun, the oldest


async def test_din_less_person_seen_earlier_gets_the_din(pool: asyncpg.Pool) -> None:
    await sync(pool, ACME, person(name="Sunil Joshi", phone="9811122233"))
    await sync(pool, BETA, person("03333333", "SUNIL JOSHI", "+91 98111 22233", "sunil@joshi.example"))
    rows = await people(pool)
    assert len(rows) == 1
    assert rows[0]["din"] == "03333333"
    assert rows[0]["email"] == "sunil@joshi.example"
    # The DIN now makes the person: its filing's values count at once, as a DIN match would take
    # them the next time (storing the same answer twice changes nothing); the name shown stays, as
    # it differs only in case (the filing's spelling is kept, raw).
    assert (rows[0]["name"], rows[0]["name_raw"]) == ("Sunil Joshi", "SUNIL JOSHI")
    assert rows[0]["companies"] == [ACME, BETA]
    await sync(pool, BETA, person("03333333", "SUNIL JOSHI", "+91 98111 22233", "sunil@joshi.example"))
    assert [dict(r) for r in await people(pool)] == [dict(r) for r in rows]
    await sync(pool, BETA, person("03333333", "Sunil K Joshi", "9811122233"))
    assert (await people(pool))[0]["name"] == "Sunil K Joshi"  # a DIN match takes newer values


async def test_din_less_person_found_by_email_or_by_company_and_name_gets_the_din(pool: asyncpg.Pool) -> None:
    await sync(
        pool, ACME, person(name="Nisha Kapoor", email="nisha@kapoor.example"), person(name="Om Prakash")
    )
    await sync(
        pool,
        ACME,
        person("04444444", "Nisha Kapoor", email="NISHA@kapoor.example"),
        person("05555555", "om  prakash"),
    )
    rows = await people(pool)
    # Claimed by a DIN, each takes its filing's values (as the next DIN match would); a name that
    # differs only in case or spacing is shown as before.
    assert [(r["name"], r["din"]) for r in rows] == [("Nisha Kapoor", "04444444"), ("Om Prakash", "05555555")]


async def test_a_secretarys_record_is_not_given_a_directors_din(pool: asyncpg.Pool) -> None:
    await sync(pool, ACME, person(name="Rekha Pillai (CS)", phone="9822233344"))
    await sync(pool, ACME, person("06666666", "Manoj Verma", "9822233344"))
    rows = await people(pool)
    assert [(r["name"], r["din"]) for r in rows] == [("Rekha Pillai (CS)", None), ("Manoj Verma", "06666666")]


def test_names_agree() -> None:
    assert names_agree("Ravi Kumar", "RAVI  KUMAR")
    assert names_agree("Ravi Kumar", "Ravi Kumar Sharma")
    assert names_agree("R. Kumar", "Ravi Kumar")
    assert names_agree(None, "Ravi Kumar")
    assert not names_agree("Rekha Pillai", "Manoj Verma")
    assert not names_agree("Ravi Kumar", "Ravi Shankar")


async def test_phone_and_email_pointing_at_different_people(pool: asyncpg.Pool) -> None:
    await sync(
        pool,
        ACME,
        person(name="Deepa Nair", phone="9833344455"),
        person(name="Divya Nair", email="divya@nair.example"),
    )
    with capture_logs() as logs:  # "D Nair" agrees with both
        await sync(pool, BETA, person(name="D Nair", phone="9833344455", email="divya@nair.example"))
    rows = await people(pool)
    assert [(r["name"], r["phone_e164"], r["email"], r["companies"]) for r in rows] == [
        ("Deepa Nair", "+919833344455", None, [ACME, BETA]),  # the phone won; the email did not move
        ("Divya Nair", None, "divya@nair.example", [ACME]),
    ]
    conflicts = [e for e in logs if e["event"] == "contacts.dedup_conflict"]
    assert len(conflicts) == 1
    assert conflicts[0]["phone_person_id"] == rows[0]["id"]
    assert conflicts[0]["email_person_id"] == rows[1]["id"]


async def test_duplicates_inside_one_answer_collapse_in_order(pool: asyncpg.Pool) -> None:
    outcome = await sync(
        pool,
        ACME,
        person(name="Farhan Ali", phone="9844455566"),
        person("07777777", "Farhan Ali", "09844455566", "farhan@ali.example"),
        person("07777777", "FARHAN ALI", None, None, addresses=[{"city": "Hyderabad"}]),
        person(name="Farhan Ali", email="FARHAN@ali.example"),
    )
    rows = await people(pool)
    assert len(rows) == 1
    row = rows[0]
    assert (row["din"], row["name"], row["name_raw"], row["phone_e164"], row["email"]) == (
        "07777777",
        "Farhan Ali",  # the newest spelling differs only in case: the name shown stays
        "FARHAN ALI",
        "+919844455566",
        "farhan@ali.example",
    )
    assert '"Hyderabad"' in row["addresses"]
    assert outcome.person_ids == [row["id"]]
    assert outcome.contacts_new == 1


async def test_din_match_takes_newer_values_but_never_blanks(pool: asyncpg.Pool) -> None:
    await sync(
        pool,
        ACME,
        person("08888888", "Old Name", "9855566677", "old@x.example", addresses=[{"city": "Delhi"}]),
    )
    await sync(pool, ACME, person("08888888", "New Name", None, "new@x.example", addresses=[]))
    await sync(pool, ACME, person("08888888", "", "12345", "not-an-email"))
    (row,) = await people(pool)
    assert (row["name"], row["phone_e164"], row["phone_raw"], row["email"]) == (
        "New Name",
        "+919855566677",
        "9855566677",
        "new@x.example",
    )
    assert '"Delhi"' in row["addresses"]


async def test_weak_match_only_fills_empty_fields(pool: asyncpg.Pool) -> None:
    await sync(pool, ACME, person(name="Gita Bose", phone="9866677788"))
    await sync(
        pool,
        ACME,
        person(name="Gita B", phone="9866677788", email="gita@bose.example", addresses=[{"city": "Kolkata"}]),
    )
    (row,) = await people(pool)
    assert (row["name"], row["email"]) == ("Gita Bose", "gita@bose.example")
    assert '"Kolkata"' in row["addresses"]


async def test_links_are_replaced_by_the_latest_answer_unless_limited(pool: asyncpg.Pool) -> None:
    await sync(
        pool, ACME, person("01000001", "A One"), person("01000002", "B Two"), person("01000003", "C Three")
    )
    limited = await sync(pool, ACME, person("01000004", "D Four"), replace_links=False)
    assert limited.unlinked == 0
    assert sum(1 for r in await people(pool) if r["companies"] == [ACME]) == 4
    outcome = await sync(pool, ACME, person("01000001", "A One"))
    assert outcome.unlinked == 3
    rows = await people(pool)
    assert len(rows) == 4  # people stay in PostgreSQL
    assert [r["companies"] for r in rows] == [[ACME], [], [], []]


async def test_rows_are_marked_for_airtable_only_when_airtable_must_change(pool: asyncpg.Pool) -> None:
    async def pending() -> dict[str, int]:
        rows = await pool.fetch("SELECT din, push_version - pushed_version AS behind FROM people")
        return {r["din"]: r["behind"] for r in rows}

    async def mark_pushed() -> None:
        await pool.execute("UPDATE people SET pushed_version = push_version")

    await sync(pool, ACME, person("01000001", "A One", "9811100001"), person("01000002", "B Two"))
    assert await pending() == {"01000001": 1, "01000002": 1}
    assert await pool.fetchval("SELECT count(*) FROM contacts_pending_sync") == 2
    await mark_pushed()
    await sync(pool, ACME, person("01000001", "A One", "+91 98111 00001"), person("01000002", "B Two"))
    assert await pending() == {"01000001": 0, "01000002": 0}  # same answer again: nothing to push
    await sync(pool, BETA, person("01000002", "B Two"))
    assert await pending() == {"01000001": 0, "01000002": 1}  # a new link changes its Company field
    await mark_pushed()
    await sync(pool, ACME, person("01000001", "A One", email="a@one.example"))
    assert await pending() == {"01000001": 1, "01000002": 1}  # new email; B unlinked from ACME
    await mark_pushed()
    await sync(pool, BETA, person("01000002", "B Two"), push_all=True)
    assert await pending() == {"01000001": 0, "01000002": 1}  # a forced sync pushes its people


async def test_forgotten_people_do_not_come_back(pool: asyncpg.Pool) -> None:
    await pool.execute(
        "INSERT INTO suppressions (key_kind, key_hash) VALUES ('din', $1), ('phone', $2)",
        suppression_hash("din", "09999999"),
        suppression_hash("phone", "+919877788899"),
    )
    outcome = await sync(
        pool,
        ACME,
        person("09999999", "Forgotten"),
        person(name="Also Gone", phone="98777 88899"),
        person("01000001", "Stays"),
    )
    assert [r["name"] for r in await people(pool)] == ["Stays"]
    assert len(outcome.person_ids) == 1


async def test_messy_attestr_contacts_are_stored_clean(pool: asyncpg.Pool) -> None:
    await sync(
        pool,
        ACME,
        {
            "indexId": 1234567,
            "fullName": "<b>PRIYA</b>   SEN",
            "mobileNumber": 9876512345.0,
            "emailAddress": ["not", "a", "string"],
            "addresses": {"fullAddress": "<p>5 Park St</p>"},
        },
        {"indexId": None, "fullName": None, "mobileNumber": None, "emailAddress": None},
        "garbage",
        {"fullName": "y" * 10_000, "mobileNumber": "+91 99999 00000 ext 12"},
    )
    rows = await people(pool)
    assert len(rows) == 2
    assert (rows[0]["din"], rows[0]["name"], rows[0]["phone_e164"], rows[0]["email"]) == (
        "01234567",
        "Priya Sen",  # as people write it (the raw is kept)
        "+919876512345",
        None,
    )
    assert '"5 Park St"' in rows[0]["addresses"]
    assert len(rows[1]["name"]) == 500


async def test_concurrent_upserts_sharing_people_both_succeed_and_keep_both_links(pool: asyncpg.Pool) -> None:
    companies = [f"recCONC{i:010d}" for i in range(8)]
    shared = [person(f"0200000{i}", f"Shared Director {i}", f"98000 0000{i}") for i in range(5)]
    din_less = person(name="Shared Secretary", phone="9800099999", email="cs@shared.example")

    for _round in range(3):
        outcomes = await asyncio.gather(
            *(
                sync(
                    pool,
                    record_id,
                    *reversed(shared) if i % 2 else shared,
                    din_less,
                    person(f"0300000{i}", f"Own Director {i}"),
                )
                for i, record_id in enumerate(companies)
            )
        )
        assert all(len(o.person_ids) == 7 for o in outcomes)
    rows = await people(pool)
    assert len(rows) == 5 + 1 + len(companies)
    for row in rows:
        if row["name"].startswith("Shared"):
            assert row["companies"] == sorted(companies), row["name"]


@pytest.mark.parametrize("size", [200])
async def test_a_large_answer_is_stored_in_a_few_statements(pool: asyncpg.Pool, size: int) -> None:
    items = [person(f"1{i:07d}", f"Director {i}", f"98{i:08d}", f"d{i}@big.example") for i in range(size)]
    outcome = await sync(pool, ACME, *items)
    assert outcome.contacts_new == size
    again = await sync(pool, ACME, *items)
    assert (again.contacts_new, again.contacts_updated) == (0, 0)
    assert await pool.fetchval("SELECT count(*) FROM company_people") == size


async def test_signatories_with_different_pans_sharing_the_office_phone_stay_two(pool: asyncpg.Pool) -> None:
    """The company secretary and the CFO give the office's number; a PAN identifies each."""
    await sync(
        pool,
        ACME,
        person("ABCPK1234F", "NISHA KAPOOR", "022 2345 1111"),
        person("BCDPG2345K", "DEEPAK GUPTA", "022 2345 1111"),
    )
    rows = await people(pool)
    assert sorted((r["name"], r["pan"], r["din"]) for r in rows) == [
        ("Deepak Gupta", "BCDPG2345K", None),
        ("Nisha Kapoor", "ABCPK1234F", None),
    ]
    assert {r["phone_e164"] for r in rows} == {"+912223451111"}  # both keep the shared phone


async def test_a_din_holder_and_a_pan_holder_sharing_a_landline_and_a_name_stay_two(
    pool: asyncpg.Pool,
) -> None:
    """A DIN and a PAN are two identities: a family landline and a name never join them."""
    await sync(pool, ACME, person("01234567", "Ravi Kumar", "022 2345 1111"))
    await sync(pool, BETA, person("ABCPK1234F", "RAVI KUMAR", "+91 22 2345 1111"))
    rows = await people(pool)
    assert [(r["din"], r["pan"], r["companies"]) for r in rows] == [
        ("01234567", None, [ACME]),
        (None, "ABCPK1234F", [BETA]),
    ]
    await sync(pool, BETA, person("ZZZPK9999Z", "Ravi Kumar", "022 2345 1111"))
    assert len(await people(pool)) == 3


async def test_a_pan_never_claims_a_person_whose_name_disagrees(pool: asyncpg.Pool) -> None:
    await sync(pool, ACME, person("01234567", "ANANYA RAO", "022 2345 1111"))
    await sync(
        pool,
        ACME,
        person("01234567", "ANANYA RAO", "022 2345 1111"),
        person("ABCPK1234F", "NISHA KAPOOR", "022 2345 1111"),
    )
    assert sorted(r["name"] for r in await people(pool)) == ["Ananya Rao", "Nisha Kapoor"]


async def test_a_din_in_devanagari_digits_is_the_same_director(pool: asyncpg.Pool) -> None:
    await sync(pool, ACME, person("05678912", "Meera Iyer"))
    await sync(pool, BETA, person("०५६७८९१२", "MEERA IYER"))
    await sync(pool, BETA, person(["", "\u200b05678912\ufeff"], "Meera Iyer"))  # a list, invisible characters
    (row,) = await people(pool)
    assert row["din"] == "05678912" and row["companies"] == [ACME, BETA]


async def test_a_forgotten_pan_keeps_that_signatory_out(pool: asyncpg.Pool) -> None:
    await pool.execute(
        "INSERT INTO suppressions (key_kind, key_hash) VALUES ('pan', $1)",
        suppression_hash("pan", "ABCPK1234F"),
    )
    await sync(
        pool, ACME, person("abcpk1234f", "NISHA KAPOOR", "022 2345 1111"), person("01234567", "ANANYA RAO")
    )
    assert [r["name"] for r in await people(pool)] == ["Ananya Rao"]


async def test_one_person_however_the_filing_writes_the_name(pool: asyncpg.Pool) -> None:
    """The issue's example: in one answer, neither with a DIN."""
    await sync(
        pool,
        ACME,
        person(name="Mr. Suresh Pillai", phone="98470 11223"),
        person(name="SURESH PILLAI", phone="9847011223"),
    )
    (row,) = await people(pool)
    assert row["name"] == "Mr. Suresh Pillai"  # as first written


async def test_phone_type_follows_the_phone(pool: asyncpg.Pool) -> None:
    await sync(pool, ACME, person("01234567", "Ravi Kumar", "98450 12345"))
    assert (await people(pool))[0]["phone_type"] == "Mobile"
    await sync(pool, ACME, person("01234567", "Ravi Kumar", "1800 200 3000"))  # now a toll-free number
    (row,) = await people(pool)
    assert (row["phone_e164"], row["phone_type"]) == ("+9118002003000", None)


async def test_the_name_shown_does_not_flip_with_the_company_synced_last(pool: asyncpg.Pool) -> None:
    await sync(pool, ACME, person("08234567", "VIKRAM SETHI"))
    await sync(pool, BETA, person("08234567", "Vikram  Sethi"))
    await sync(pool, ACME, person("08234567", "VIKRAM SETHI"))
    (row,) = await people(pool)
    assert (row["name"], row["name_raw"]) == ("Vikram Sethi", "VIKRAM SETHI")


_OFFICE = ["022 2345 1111", "98450 12345"]
_DISAGREEING = ["Nisha Kapoor", "Deepak Gupta", "Arjun Mehta", "Company Secretary", "Farah Khan"]


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.permutations(_DISAGREEING), st.lists(st.sampled_from(_OFFICE), min_size=5, max_size=5))
def test_weak_keys_never_join_names_that_disagree_in_any_order(
    db_url: str, names: list[str], phones: list[str]
) -> None:
    async def run() -> list[asyncpg.Record]:
        pool = await create_pool(db_url)
        try:
            await pool.execute("TRUNCATE people, companies, company_people RESTART IDENTITY CASCADE")
            await sync(
                pool,
                ACME,
                *(
                    person(name=n, phone=p, email="office@acme.example")
                    for n, p in zip(names, phones, strict=True)
                ),
            )
            return await people(pool)
        finally:
            await pool.close()

    rows = asyncio.run(run())
    assert sorted(r["name"] for r in rows) == sorted(_DISAGREEING)  # five people, whatever the order


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.permutations(["MR. SURESH PILLAI", "Suresh Pillai", "S. PILLAI", "suresh  pillai"]))
def test_spellings_of_one_name_on_one_phone_are_one_person_in_any_order(
    db_url: str, spellings: list[str]
) -> None:
    async def run() -> list[asyncpg.Record]:
        pool = await create_pool(db_url)
        try:
            await pool.execute("TRUNCATE people, companies, company_people RESTART IDENTITY CASCADE")
            await sync(pool, ACME, *(person(name=n, phone="98470 11223") for n in spellings))
            return await people(pool)
        finally:
            await pool.close()

    (row,) = asyncio.run(run())
    assert row["phone_e164"] == "+919847011223"


@pytest.mark.parametrize("order", [1, -1])
async def test_a_director_and_a_signatory_named_in_one_answer_are_two_people(
    pool: asyncpg.Pool, order: int
) -> None:
    """A filing names each person once: a DIN and a PAN in one answer are two people, whatever
    their names and phones share, and in either order."""
    answer = [
        person("ABCPK1234F", "R KUMAR", "022 2345 1111"),
        person("01234567", "RAJESH KUMAR", "022 2345 1111"),
    ]
    await sync(pool, ACME, *answer[::order])
    rows = await people(pool)
    assert {(r["din"], r["pan"]) for r in rows} == {(None, "ABCPK1234F"), ("01234567", None)}


async def test_a_pan_stored_for_another_company_is_linked_not_stored_twice(pool: asyncpg.Pool) -> None:
    await sync(pool, BETA, person("ABCPK1234F", "Ravi Kumar", "9820011111"))
    await sync(
        pool,
        ACME,
        person("01234567", "Ravi Kumar", "022 2345 1111"),
        person("ABCPK1234F", "Ravi Kumar", "022 2345 1111"),
    )
    rows = {(r["din"], r["pan"]): r["companies"] for r in await people(pool)}
    assert rows == {(None, "ABCPK1234F"): [ACME, BETA], ("01234567", None): [ACME]}


async def test_a_contact_with_nothing_to_be_known_by_is_one_row_however_often_it_is_synced(
    pool: asyncpg.Pool,
) -> None:
    """No identity, no name, a phone and an email no rule can read: the same filing again is the
    same person, not one more row (and one more Airtable row) at every sync."""
    for _ in range(3):
        await sync(pool, ACME, person(None, None, "12345", "not-an-email"), person("01000001", "Asha Rao"))
    rows = sorted((r["din"] or "", r["phone_raw"] or "", r["email_raw"] or "") for r in await people(pool))
    assert rows == [("", "12345", "not-an-email"), ("01000001", "", "")]
