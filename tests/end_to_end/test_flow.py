"""End to end through HTTP: webhook → worker → Attestr stand-in → PostgreSQL → pusher → Airtable
stand-in, with `contact-sync serve` running as its own process."""

from __future__ import annotations

from tests.flow import API_KEY, Flow

NILGIRI = "U72200KA2015PTC081234"  # three directors
KONKAN = "U51909MH2018PTC309876"  # two directors, one of them also a director of Nilgiri
NO_DATA = "U01100DL2020PTC365432"  # Attestr answers valid: false


def test_a_webhook_ends_with_the_people_in_airtable(flow: Flow) -> None:
    company = flow.company("Nilgiri Software", NILGIRI)
    response = flow.webhook(company, NILGIRI.lower() + "  ")
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "queued" and body["deduplicated"] is False

    job = flow.wait_for_job(body["job_id"])
    assert job["status"] == "succeeded", job
    assert job["cin"] == NILGIRI
    assert job["result"] == {
        "outcome": "synced",
        "business_name": "NILGIRI SOFTWARE PRIVATE LIMITED",
        "contacts_fetched": 3,
        "contacts_new": 3,
        "contacts_updated": 0,
        "contacts_suppressed": 0,
        "contacts_left_out": 0,
        "airtable_created": 3,
        "airtable_updated": 0,
        "airtable_failed": 0,
        "attestr_called": True,
    }
    contacts = sorted(flow.contacts(), key=lambda c: c["DIN"])
    assert [(c["Name"], c["Phone Number"], c.get("Email"), c["DIN"], c["Company"]) for c in contacts] == [
        ("Ananya Rao", "+919845012345", "ananya.rao@nilgiri.example", "07123456", [company]),
        ("Vikram Sethi", "+919845012346", "vikram@nilgiri.example", "08234567", [company]),
        ("Meera Krishnan", "+919845012347", None, "08345678", [company]),
    ]
    assert all(c["Phone Type"] == "Mobile" and c["Contact Key"].startswith("ct_") for c in contacts)
    assert contacts[0]["Address"] == "Registered office, Bengaluru, India"

    flow.wait_until(
        lambda: flow.company_fields(company).get("Contacts Sync Status") == "Synced", what="Synced"
    )
    status = flow.company_fields(company)
    assert status["Contacts Found"] == 3
    assert status["Contacts Synced At"]
    assert "Contacts Sync Error" not in status


def test_a_person_shared_by_two_companies_is_one_row_linked_to_both(flow: Flow) -> None:
    nilgiri, konkan = flow.company("Nilgiri", NILGIRI), flow.company("Konkan", KONKAN)
    for record_id, cin in ((nilgiri, NILGIRI), (konkan, KONKAN)):
        assert flow.wait_for_job(flow.webhook(record_id, cin).json()["job_id"])["status"] == "succeeded"
    contacts = flow.contacts()
    assert len(contacts) == 4
    (vikram,) = [c for c in contacts if c["DIN"] == "08234567"]
    assert sorted(vikram["Company"]) == sorted([nilgiri, konkan])
    assert vikram["Name"] == "Vikram Sethi"  # the newer filing's spelling (a DIN match)
    flow.wait_until(lambda: flow.company_fields(konkan).get("Contacts Found") == 2, what="Konkan count")


def test_the_same_webhook_three_times_makes_one_attestr_call_and_no_new_rows(flow: Flow) -> None:
    company = flow.company("Nilgiri", NILGIRI)
    first = [flow.webhook(company, NILGIRI).json() for _ in range(3)]
    for body in first:
        assert flow.wait_for_job(body["job_id"])["status"] == "succeeded"
    again = flow.webhook(company, NILGIRI).json()
    assert flow.wait_for_job(again["job_id"])["result"]["attestr_called"] is False
    assert flow.attestr.calls_for(NILGIRI) == 1
    assert len(flow.contacts()) == 3


def test_23_people_go_out_in_batches_of_at_most_10(flow: Flow) -> None:
    cin = "U74999TG2017PTC118280"
    flow.attestr.companies[cin] = {
        "valid": True,
        "businessName": "BIG BOARD LIMITED",
        "contacts": [
            {"indexId": f"{10000000 + i}", "fullName": f"Director {i}", "mobileNumber": f"98{i:08d}"}
            for i in range(23)
        ],
    }
    company = flow.company("Big Board", cin)
    job = flow.wait_for_job(flow.webhook(company, cin).json()["job_id"])
    assert job["result"]["airtable_created"] == 23
    writes = flow.contact_writes()
    assert sum(writes) == 23
    assert max(writes) <= 10 and len(writes) == 3
    assert {r["status"] for r in flow.airtable.requests} == {200}  # no 429, no refusal


def test_valid_false_ends_as_no_data(flow: Flow) -> None:
    company = flow.company("Dormant", NO_DATA)
    job = flow.wait_for_job(flow.webhook(company, NO_DATA).json()["job_id"])
    assert job["status"] == "succeeded"
    assert job["result"]["outcome"] == "no_data"
    flow.wait_until(
        lambda: flow.company_fields(company).get("Contacts Sync Status") == "No Data", what="No Data"
    )
    assert flow.contacts() == []


def test_a_webhook_without_cin_reads_it_from_the_company_record(flow: Flow) -> None:
    company = flow.company("Konkan", KONKAN.lower())
    job = flow.wait_for_job(flow.webhook(company).json()["job_id"])
    assert job["status"] == "succeeded" and job["cin"] == KONKAN
    assert len(flow.contacts()) == 2


def test_a_company_without_cin_fails_saying_so(flow: Flow) -> None:
    company = flow.company("No CIN yet")
    job = flow.wait_for_job(flow.webhook(company).json()["job_id"])
    assert job["status"] == "failed"
    assert "no CIN" in job["last_error"]
    flow.wait_until(
        lambda: flow.company_fields(company).get("Contacts Sync Status") == "Failed", what="Failed"
    )
    assert "no CIN" in flow.company_fields(company)["Contacts Sync Error"]


def test_a_field_people_edit_survives_a_forced_resync(flow: Flow) -> None:
    company = flow.company("Nilgiri", NILGIRI)
    flow.wait_for_job(flow.webhook(company, NILGIRI).json()["job_id"])
    ananya = next(c for c in flow.contacts() if c["DIN"] == "07123456")
    flow.airtable.table("Contacts").records[ananya["id"]]["fields"][
        flow.airtable.table("Contacts").field("Status").id
    ] = "Contacted"
    writes_before = len(flow.contact_writes())

    response = flow.http.post(
        f"/companies/{company}/sync?wait=20", json={"force": True}, headers={"X-API-Key": API_KEY}
    )
    assert response.status_code == 200
    job = response.json()
    assert job["status"] == "succeeded" and job["result"]["attestr_called"] is True
    # A forced sync reads every person's row again; the filing is the same, so nothing is written.
    assert job["result"]["airtable_updated"] == 3
    assert len(flow.contact_writes()) == writes_before
    assert flow.attestr.calls_for(NILGIRI) == 2
    after = next(c for c in flow.contacts() if c["DIN"] == "07123456")
    assert after["Status"] == "Contacted"
    assert len(flow.contacts()) == 3


def test_a_row_deleted_by_hand_is_not_recreated(flow: Flow) -> None:
    company = flow.company("Nilgiri", NILGIRI)
    flow.wait_for_job(flow.webhook(company, NILGIRI).json()["job_id"])
    meera = next(c for c in flow.contacts() if c["DIN"] == "08345678")
    del flow.airtable.table("Contacts").records[meera["id"]]  # a person deletes the row
    flow.attestr.companies[NILGIRI]["contacts"][2]["emailAddress"] = "meera@new.example"

    response = flow.http.post(
        f"/companies/{company}/sync?wait=20", json={"force": True}, headers={"X-API-Key": API_KEY}
    )
    job = response.json()
    assert job["status"] == "succeeded", job
    assert sorted(c["DIN"] for c in flow.contacts()) == ["07123456", "08234567"]
    # ... and later syncs, forced or not, leave it deleted.
    flow.wait_for_job(flow.webhook(company, NILGIRI).json()["job_id"])
    assert len(flow.contacts()) == 2


def test_a_422_on_one_row_does_not_block_the_others(flow: Flow) -> None:
    flow.airtable.refused_values.add(("Email", "vikram@nilgiri.example"))
    company = flow.company("Nilgiri", NILGIRI)
    job = flow.wait_for_job(flow.webhook(company, NILGIRI).json()["job_id"])
    assert job["status"] == "failed"
    assert job["result"]["airtable_created"] == 2 and job["result"]["airtable_failed"] == 1
    assert "cannot accept the provided value" in job["last_error"]
    assert sorted(c["DIN"] for c in flow.contacts()) == ["07123456", "08345678"]
    flow.wait_until(
        lambda: flow.company_fields(company).get("Contacts Sync Status") == "Failed", what="Failed"
    )
    assert "could not be written to Airtable" in flow.company_fields(company)["Contacts Sync Error"]
    # Once Airtable takes the value, the next sync sends the refused row again, and counts it.
    flow.airtable.refused_values.clear()
    again = flow.wait_for_job(flow.webhook(company, NILGIRI).json()["job_id"])
    assert again["status"] == "succeeded", again
    assert again["result"]["airtable_created"] == 1 and again["result"]["airtable_failed"] == 0
    assert sorted(c["DIN"] for c in flow.contacts()) == ["07123456", "08234567", "08345678"]


def test_job_lines_carry_their_context_and_no_personal_data(flow: Flow) -> None:
    company = flow.company("Nilgiri", NILGIRI)
    job_id = flow.webhook(company, NILGIRI).json()["job_id"]
    flow.wait_for_job(job_id)
    flow.wait_until(
        lambda: flow.company_fields(company).get("Contacts Sync Status") == "Synced", what="Synced"
    )
    lines = flow.service.logs()
    events = [line["event"] for line in lines]
    for event in (
        "webhook.accepted",
        "job.started",
        "attestr.fetched",
        "contacts.upserted",
        "airtable.written",
        "job.succeeded",
    ):
        assert event in events, event
    for line in lines:
        if line["event"] in ("job.started", "attestr.fetched", "contacts.upserted"):
            assert (line["job_id"], line["record_id"], line["cin"]) == (job_id, company, NILGIRI), line
    text = flow.service.log_path.read_text()
    for secret in (
        "9845012345",
        "98450 12345",
        "ananya.rao",
        "vikram@",
        flow.attestr.token,
        flow.airtable.token,
    ):
        assert secret.lower() not in text.lower(), secret


def test_ticking_refresh_contacts_fetches_again_and_is_cleared(flow: Flow) -> None:
    company = flow.airtable.add_record("Companies", {"Company Name": "Nilgiri", "CIN": NILGIRI})
    flow.wait_for_job(flow.webhook(company, NILGIRI).json()["job_id"])
    companies = flow.airtable.table("Companies")
    companies.records[company]["fields"][companies.field("Refresh Contacts").id] = True  # a person ticks it
    job = flow.wait_for_job(flow.webhook(company, NILGIRI, refresh=True).json()["job_id"])
    assert job["result"]["attestr_called"] is True
    assert flow.attestr.calls_for(NILGIRI) == 2
    flow.wait_until(lambda: "Refresh Contacts" not in flow.company_fields(company), what="the tick cleared")
    assert flow.company_fields(company)["Contacts Sync Status"] == "Synced"
