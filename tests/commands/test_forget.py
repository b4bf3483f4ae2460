"""`contacts forget`: gone from PostgreSQL and Airtable, and kept out by later syncs, also when
the forgotten person shared a secretary's phone with other directors."""

from __future__ import annotations

import asyncio
import os
import pty
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from service.airtable.client import Airtable
from service.commands.forget import AmbiguousPerson, forget, keys_of
from service.standins.airtable import AirtableStandIn
from service.standins.attestr import AttestrStandIn
from tests.command_line import contact_sync
from tests.conftest import Running
from tests.flow import API_KEY, Flow, running_flow, settings_for
from tests.people.test_dedup import ACME, people, person, sync

NILGIRI = "U72200KA2015PTC081234"


def contacts_cli(
    flow: Flow, *args: str, action: str = "forget", answer: str | None = None
) -> subprocess.CompletedProcess[str]:
    """`contacts forget --yes ARGS`; with `answer`, without --yes, at a terminal (a pty) where the
    question is answered with it."""
    if answer is None:
        extra = ["--yes"] if action == "forget" else []
        return contact_sync("contacts", action, *args, *extra, env={**os.environ, **flow.service_env})
    command = [sys.executable, "-m", "service", "contacts", action, *args]
    controller, terminal = pty.openpty()
    try:
        os.write(controller, answer.encode())
        return subprocess.run(
            command,
            env={**os.environ, **flow.service_env},
            stdin=terminal,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        os.close(controller)
        os.close(terminal)


def fetch(flow: Flow, company: str, **options: object) -> dict[str, object]:
    response = flow.http.post(
        "/contacts/fetch",
        headers={"X-API-Key": API_KEY},
        json={"cin": NILGIRI, "company_airtable_id": company, **options},
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_a_forgotten_person_is_gone_and_a_new_sync_does_not_bring_them_back(flow: Flow) -> None:
    company = flow.company("Nilgiri", NILGIRI)
    assert flow.wait_for_job(flow.webhook(company, NILGIRI).json()["job_id"])["status"] == "succeeded"
    assert {c["Name"] for c in flow.contacts()} == {"Ananya Rao", "Vikram Sethi", "Meera Krishnan"}

    done = contacts_cli(flow, "--phone", "098450-12345")  # Attestr wrote "+91 98450 12345"
    assert done.returncode == 0, done.stderr
    assert "Forgot 1 person(s): 1 Airtable row(s) deleted" in done.stdout
    assert {c["Name"] for c in flow.contacts()} == {"Vikram Sethi", "Meera Krishnan"}
    # Contacts Found follows the people behind it, without waiting for the next sync.
    flow.wait_until(lambda: flow.company_fields(company).get("Contacts Found") == 2, what="the count")

    again = flow.http.post(
        f"/companies/{company}/sync?wait=30", headers={"X-API-Key": API_KEY}, json={"force": True}
    ).json()
    assert again["status"] == "succeeded" and again["result"]["contacts_fetched"] == 3
    assert {c["Name"] for c in flow.contacts()} == {"Vikram Sethi", "Meera Krishnan"}
    flow.wait_until(lambda: flow.company_fields(company).get("Contacts Found") == 2, what="the count")
    log = flow.service.log_path.read_text()
    assert "9845012345" not in log and "ananya.rao@" not in log

    assert contacts_cli(flow).returncode == 2  # whom?


@pytest.mark.process  # a question answered at a terminal: a child on a pty
def test_forget_says_whom_it_found_asks_first_and_can_be_lifted(
    tmp_path: Path, db_url: str, airtable: Running[AirtableStandIn], attestr: Running[AttestrStandIn]
) -> None:
    # Two refreshes in a minute, each to fetch again: the second after a suppression was lifted
    # (within REFRESH_MIN_INTERVAL_S it would join the first's answer, which left her out).
    with running_flow(tmp_path, db_url, airtable, attestr, REFRESH_MIN_INTERVAL_S="0") as flow:
        _forget_ask_and_lift(flow)


def _forget_ask_and_lift(flow: Flow) -> None:
    company = flow.company("Nilgiri", NILGIRI)
    first = fetch(flow, company)
    assert first["message"] == (
        "Fetched 3 contact(s) from Attestr; 3 new and 0 changed in PostgreSQL (new_contacts, "
        "updated_contacts); in Airtable 3 row(s) created and 0 updated (synced_to_airtable), 0 already up "
        "to date"
    )
    # Not at a terminal and no --yes: refused before anything is read or done.
    unasked = subprocess.run(
        [sys.executable, "-m", "service", "contacts", "forget", "--din", "07123456"],
        env={**os.environ, **flow.service_env},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert unasked.returncode == 2 and unasked.stderr.strip().endswith("add --yes to confirm")
    declined = contacts_cli(flow, "--din", "07123456", answer="n\n")
    assert "Forget 1 person: Ananya Rao (DIN 07123456, in Airtable)" in declined.stdout
    assert declined.returncode == 1 and "Nothing was forgotten." in declined.stdout
    assert len(flow.contacts()) == 3

    done = contacts_cli(flow, "--din", "07123456", answer="y\n")
    assert done.returncode == 0 and "Forgot 1 person(s): 1 Airtable row(s) deleted" in done.stdout, (
        done.stderr
    )
    # The older API's message, counts and list agree: three fetched, one of them left out.
    again = fetch(flow, company, force_refresh=True)
    assert (again["total_contacts_fetched"], len(again["contacts"]), again["synced_to_airtable"]) == (3, 2, 2)
    assert again["message"] == (
        "Fetched 3 contact(s) from Attestr; 1 left out (forgotten with `contact-sync contacts forget`); "
        "0 new and 0 changed in PostgreSQL (new_contacts, updated_contacts); in Airtable 0 row(s) "
        "created and 2 updated (synced_to_airtable), 0 already up to date"
    )
    unchanged = fetch(flow, company)
    assert (unchanged["synced_to_airtable"], len(unchanged["contacts"])) == (0, 2)
    assert unchanged["message"].endswith("0 updated (synced_to_airtable), 2 already up to date")

    # Nobody carries this address: said, and suppressed only when confirmed.
    nobody = contacts_cli(flow, "--email", "nobody@example.com", answer="\n")
    assert "No one known carries --email nobody@example.com" in nobody.stdout and nobody.returncode == 1
    assert contacts_cli(flow, "--email", "nobody@example.com", action="unsuppress").returncode == 1
    nobody = contacts_cli(flow, "--email", "nobody@example.com")
    assert nobody.returncode == 0 and "No one was known by these keys; nothing deleted" in nobody.stdout

    # Lifting by her email lifts her DIN and phone too: the next sync brings her back.
    lifted = contacts_cli(flow, "--email", "Ananya.Rao@nilgiri.example", action="unsuppress")
    assert lifted.returncode == 0 and "Lifted 3 suppression(s) (din, email, phone)" in lifted.stdout, lifted
    back = fetch(flow, company, force_refresh=True)
    assert (len(back["contacts"]), back["new_contacts"]) == (3, 1)
    assert "Ananya Rao" in {c["Name"] for c in flow.contacts()}


@pytest.fixture
async def airtable_client(
    pool: asyncpg.Pool, airtable: Running[AirtableStandIn], attestr: Running[AttestrStandIn]
) -> Airtable:
    return Airtable(settings_for(airtable, attestr), pool)


SECRETARY_PHONE = "98450 55555"


async def _board(pool: asyncpg.Pool) -> None:
    """Two directors and a DIN-less secretary, all giving the secretary's phone."""
    await sync(
        pool,
        ACME,
        person("01000001", "Asha Menon", SECRETARY_PHONE, "asha@acme.example"),
        person("01000002", "Ravi Iyer", SECRETARY_PHONE, "ravi@acme.example"),
        person(None, "Company Secretary", SECRETARY_PHONE, "cs@acme.example"),
    )


async def test_a_director_who_shared_a_phone_keeps_their_record_without_it(
    pool: asyncpg.Pool, airtable_client: Airtable
) -> None:
    await _board(pool)
    # The secretary's name agrees with no director's: she is a person of her own on their phone.
    assert [r["din"] for r in await people(pool)] == ["01000001", "01000002", None]
    done = await forget(pool, airtable_client, keys_of(din="01000001"))
    assert done.people == 1 and done.suppressed == ["din", "email", "phone"]
    # At once, not at the next sync: the shared phone is gone from the others' rows.
    assert [(r["din"], r["phone_e164"]) for r in await people(pool)] == [("01000002", None), (None, None)]
    await _board(pool)  # the next sync brings the same answer
    # Asha stays out, and so does the DIN-less secretary's contact, known only by the forgotten
    # phone (she is no longer linked); Ravi keeps his record, without the forgotten phone: it
    # went from every row when she was forgotten, not at the next sync.
    linked = [(r["din"], r["phone_e164"]) for r in await people(pool) if r["companies"]]
    assert linked == [("01000002", None)]
    # A director seen for the first time with the forgotten phone is stored without it.
    await sync(pool, ACME, person("01000003", "Nita Shah", SECRETARY_PHONE, "nita@acme.example"))
    assert [
        (r["din"], r["phone_e164"], r["email"]) for r in await people(pool) if r["din"] == "01000003"
    ] == [("01000003", None, "nita@acme.example")]


async def test_a_shared_phone_is_refused_unless_all_are_meant(
    pool: asyncpg.Pool, airtable_client: Airtable
) -> None:
    await sync(
        pool,
        ACME,
        person("01000001", "Asha Menon", SECRETARY_PHONE),
        person("01000002", "Ravi Iyer", SECRETARY_PHONE),
    )
    with pytest.raises(AmbiguousPerson, match="by --din or --pan, or all of them with --all"):
        await forget(pool, airtable_client, keys_of(phone="+91 9845055555"))
    assert len(await people(pool)) == 2  # nothing done
    done = await forget(pool, airtable_client, keys_of(phone="+91 9845055555"), every=True)
    assert done.people == 2 and await people(pool) == []


SIGNATORIES = "U74999MH2019PTC334455"


def test_a_signatory_known_by_pan_is_a_person_whose_pan_goes_nowhere_but_postgresql(flow: Flow) -> None:
    """The issue's example: the company secretary and the CFO give the office phone and are known
    by their PANs. Two people, two rows; the PAN is in no Airtable field, no log line, no answer
    of the older API; `contacts forget --pan` takes it in any spelling."""
    flow.attestr.companies[SIGNATORIES] = {
        "valid": True,
        "indexId": SIGNATORIES,
        "businessName": "KAPOOR GUPTA ASSOCIATES PRIVATE LIMITED",
        "contacts": [
            {"indexId": "ABCPK1234F", "fullName": "NISHA KAPOOR", "mobileNumber": "022 2345 1111"},
            {"indexId": "BCDPG2345K", "fullName": "DEEPAK GUPTA", "mobileNumber": "022 2345 1111"},
            {"indexId": "०५६७८९१२", "fullName": "MEERA IYER", "mobileNumber": "98450 12399"},
        ],
    }
    company = flow.company("Kapoor Gupta", SIGNATORIES)
    answer = flow.http.post(
        "/contacts/fetch",
        headers={"X-API-Key": API_KEY},
        json={"cin": SIGNATORIES, "company_airtable_id": company},
    ).json()
    assert sorted((c["fullName"], c["indexId"]) for c in answer["contacts"]) == [
        ("Deepak Gupta", None),  # known by PAN: not given out
        ("Meera Iyer", "05678912"),
        ("Nisha Kapoor", None),
    ]
    rows = {c["Name"]: c for c in flow.contacts()}
    assert set(rows) == {"Nisha Kapoor", "Deepak Gupta", "Meera Iyer"}
    assert rows["Meera Iyer"]["DIN"] == "05678912" and "DIN" not in rows["Nisha Kapoor"]
    assert rows["Nisha Kapoor"]["Phone Number"] == rows["Deepak Gupta"]["Phone Number"] == "+912223451111"
    for pan in ("ABCPK1234F", "BCDPG2345K"):
        assert all(pan not in str(v) for row in rows.values() for v in row.values())
    done = contacts_cli(flow, "--pan", " abcpk\u200b1234f ")
    assert done.returncode == 0 and "Forgot 1 person(s): 1 Airtable row(s) deleted" in done.stdout, (
        done.stderr
    )
    assert {c["Name"] for c in flow.contacts()} == {"Deepak Gupta", "Meera Iyer"}
    assert contacts_cli(flow, "--pan", "ABCP1234").returncode == 2  # not a PAN: one clear line
    log = flow.service.log_path.read_text()
    assert "ABCPK1234F" not in log and "BCDPG2345K" not in log


OFFICE_BOARD = "U74120KA2016PTC095123"


def test_forget_leaves_the_person_in_no_table_nor_airtable_row_nor_stored_answer(
    flow: Flow, db_url: str
) -> None:
    """Asha shares the office line with the secretary. After `forget --din`, every table of the
    database (stored Attestr answers included) is read whole as text: none holds her name, DIN,
    phone or email; the secretary's Airtable row loses the shared line; and an answer Attestr gives
    again later is stored without her."""
    asha = {"indexId": "01000001", "fullName": "ASHA MENON", "mobileNumber": "080 4123 7788",
            "emailAddress": "asha.menon@officeboard.example"}  # fmt: skip
    flow.attestr.companies[OFFICE_BOARD] = {
        "valid": True,
        "businessName": "OFFICE BOARD PRIVATE LIMITED",
        "contacts": [
            asha,
            {"indexId": "01000002", "fullName": "RAVI IYER", "mobileNumber": "98450 66677"},
            {"indexId": None, "fullName": "K SECRETARY", "mobileNumber": "+91 80 4123 7788"},
        ],
    }
    company = flow.company("Office Board", OFFICE_BOARD)
    assert flow.wait_for_job(flow.webhook(company, OFFICE_BOARD).json()["job_id"])["status"] == "succeeded"
    assert len(flow.contacts()) == 3
    traces = ["asha", "menon", "01000001", "41237788", "4123 7788"]

    def tables_holding_her(*, but_written_records: bool = False) -> list[str]:
        """Where her values are; `but_written_records`: leaving out the record of what the service
        last wrote to each Airtable row, which goes when the row is written again."""
        left_out = " - 'airtable_written' - 'airtable_pending'" if but_written_records else ""

        async def scan() -> list[str]:
            conn = await asyncpg.connect(db_url)
            try:
                names = await conn.fetch(
                    "SELECT table_name FROM information_schema.tables"
                    " WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
                )
                found = []
                for (name,) in names:
                    rows = await conn.fetch(f'SELECT (to_jsonb(t){left_out})::text FROM "{name}" t')
                    text = " ".join(r[0] for r in rows).lower()
                    found += [f"{name}: {trace}" for trace in traces if trace in text]
                return found
            finally:
                await conn.close()

        return asyncio.run(scan())

    assert tables_holding_her()  # she is there before: the scan can see her
    done = contacts_cli(flow, "--din", "01000001")
    assert done.returncode == 0, done.stderr
    assert tables_holding_her(but_written_records=True) == []  # at once
    flow.wait_until(
        lambda: (
            sorted((c["Name"], c.get("Phone Number") or "") for c in flow.contacts())
            == [("K Secretary", ""), ("Ravi Iyer", "+919845066677")]
        ),
        what="the secretary's row without the shared line",
    )
    flow.wait_until(lambda: tables_holding_her() == [], what="the record of her line written over")
    # Paid again: the new answer names her, and is stored without her.
    again = flow.http.post(
        f"/companies/{company}/sync?wait=30", headers={"X-API-Key": API_KEY}, json={"force": True}
    ).json()
    assert again["status"] == "succeeded", again
    assert tables_holding_her() == []
    assert not any("Asha" in str(c) for c in flow.contacts())
