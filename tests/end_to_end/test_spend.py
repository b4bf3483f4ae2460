"""Attestr is paid only for a reason, through the automation's webhook as an attacker who read its
secret (or a person ticking Refresh Contacts again and again) would send it: a refresh pays once
in REFRESH_MIN_INTERVAL_S, a record that does not exist pays nothing, a CIN the record no longer
holds is not the one paid for."""

from __future__ import annotations

from service.config import load_settings
from service.standins.attestr import CUT_OFF
from tests.engine.test_people_edits import KONKAN, NILGIRI
from tests.flow import API_KEY, Flow


def _ended(flow: Flow, response_json: dict) -> dict:
    return flow.wait_for_job(response_json["job_id"])


def test_six_replays_of_a_refresh_pay_once_and_say_they_joined_it(flow: Flow) -> None:
    company = flow.company("Nilgiri", NILGIRI)
    first = _ended(flow, flow.webhook(company, NILGIRI).json())  # the first sync pays
    assert first["result"]["attestr_called"] is True
    refreshes = [_ended(flow, flow.webhook(company, NILGIRI, refresh=True).json()) for _ in range(6)]
    # The first refresh is honoured however recent the last sync (a person asked to fetch again).
    assert [job["result"]["attestr_called"] for job in refreshes] == [True] + [False] * 5
    assert [job["result"]["refresh_joined"] for job in refreshes] == [False] + [True] * 5
    assert all(job["status"] == "succeeded" for job in refreshes)
    assert flow.attestr.calls_for(NILGIRI) == 2
    joined = [line for line in flow.service.logs() if line["event"] == "attestr.refresh_joined"]
    assert len(joined) == 5 and all(line["interval_s"] == 3600 for line in joined)


def test_a_record_that_does_not_exist_pays_nothing(flow: Flow) -> None:
    for record_id in ("recNoSuchRecord01", "recNoSuchRecord02"):
        job = _ended(flow, flow.webhook(record_id, NILGIRI, refresh=True).json())
        assert job["status"] == "failed" and job["result"]["outcome"] == "company_deleted"
        assert "nothing was fetched or paid for it" in job["last_error"]
    assert flow.attestr.calls == []
    assert flow.airtable.records("Contacts") == []


def test_the_cin_the_record_holds_is_the_one_paid_for(flow: Flow) -> None:
    """A webhook naming another company's CIN for this record (forged, or the CIN edited since)."""
    company = flow.company("Konkan", KONKAN)
    job = _ended(flow, flow.webhook(company, NILGIRI).json())
    assert job["status"] == "succeeded" and job["cin"] == KONKAN
    assert flow.attestr.calls_for(NILGIRI) == 0 and flow.attestr.calls_for(KONKAN) == 1
    assert {c["Name"] for c in flow.contacts()} == {"Vikram Sethi", "Farah Khan"}
    changed = [line for line in flow.service.logs() if line["event"] == "job.cin_changed"]
    assert [(line["cin"], line["cin_now"]) for line in changed] == [(NILGIRI, KONKAN)]


def test_spend_is_capped_by_default() -> None:
    settings = load_settings({}, env_file=None)
    assert settings.attestr_daily_call_limit == 500 and settings.refresh_min_interval_s == 3600


def test_a_200_cut_off_inside_its_body_is_paid_once_and_the_job_fails(flow: Flow) -> None:
    flow.attestr.fail_next(NILGIRI, CUT_OFF)
    company = flow.company("Nilgiri", NILGIRI)
    job = _ended(flow, flow.webhook(company, NILGIRI).json())
    assert job["status"] == "failed" and "not asked for again" in job["last_error"]
    assert job["attempts"] == 1 and flow.attestr.calls_for(NILGIRI) == 1
    flow.wait_until(lambda: flow.company_fields(company).get("Contacts Sync Status") == "Failed")


def test_a_stored_answer_of_another_cin_is_never_linked_to_the_record(flow: Flow) -> None:
    """The webhook names a CIN with a fresh stored answer (another company's), for a record that
    holds another CIN: the record's own CIN is synced, not the stored answer's directors."""
    nilgiri = flow.company("Nilgiri", NILGIRI)
    assert _ended(flow, flow.webhook(nilgiri, NILGIRI).json())["status"] == "succeeded"
    konkan = flow.company("Konkan", KONKAN)
    for refresh in (False, True):
        job = _ended(flow, flow.webhook(konkan, NILGIRI, refresh=refresh).json())
        assert job["status"] == "succeeded" and job["cin"] == KONKAN
    linked = {c["Name"] for c in flow.contacts() if konkan in c.get("Company", [])}
    assert linked == {"Vikram Sethi", "Farah Khan"}


def test_an_unreadable_paid_answer_is_not_paid_again_by_a_replay_but_by_a_retry(flow: Flow) -> None:
    flow.attestr.fail_next(NILGIRI, CUT_OFF, CUT_OFF)
    company = flow.company("Nilgiri", NILGIRI)
    first = _ended(flow, flow.webhook(company, NILGIRI).json())
    assert first["status"] == "failed" and flow.attestr.calls_for(NILGIRI) == 1
    for refresh in (False, True):  # the automation replayed, a person ticking Refresh Contacts
        replay = _ended(flow, flow.webhook(company, NILGIRI, refresh=refresh).json())
        assert (
            replay["status"] == "failed" and "could not be read, and it was paid for" in replay["last_error"]
        )
    assert flow.attestr.calls_for(NILGIRI) == 1
    retried = flow.http.post(f"/jobs/{first['id']}/retry", headers={"X-API-Key": API_KEY})
    assert retried.status_code == 202, retried.text
    assert flow.wait_for_job(first["id"])["status"] == "failed"  # the second CUT_OFF: asked once more
    assert flow.attestr.calls_for(NILGIRI) == 2
