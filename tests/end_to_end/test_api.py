"""The manual endpoints, end to end: re-trigger, the older /contacts/fetch, and the jobs."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import ServiceProcess, run_service
from tests.flow import API_KEY, Flow

NILGIRI = "U72200KA2015PTC081234"
KEY = {"X-API-Key": API_KEY}


def test_contacts_fetch_answers_in_the_older_shape(flow: Flow) -> None:
    company = flow.company("Nilgiri", NILGIRI)
    response = flow.http.post(
        "/contacts/fetch",
        headers=KEY,
        json={
            "cin": NILGIRI,
            "company_airtable_id": company,
            "max_contacts": 2,
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True
    assert (body["cin"], body["business_name"]) == (NILGIRI, "NILGIRI SOFTWARE PRIVATE LIMITED")
    assert (body["total_contacts_fetched"], body["new_contacts"], body["updated_contacts"]) == (2, 2, 0)
    assert (body["synced_to_airtable"], body["failed_syncs"]) == (2, 0)
    assert [
        (c["indexId"], c["fullName"], c["mobileNumber"], c["emailAddress"]) for c in body["contacts"]
    ] == [
        ("07123456", "Ananya Rao", "+919845012345", "ananya.rao@nilgiri.example"),
        ("08234567", "Vikram Sethi", "+919845012346", "vikram@nilgiri.example"),
    ]
    assert body["contacts"][0]["addresses"][0]["city"] == "Bengaluru"
    assert len(flow.contacts()) == 2


def test_max_contacts_adds_links_and_unlinks_no_one(flow: Flow) -> None:
    company = flow.company("Nilgiri", NILGIRI)
    full = flow.http.post(f"/companies/{company}/sync?wait=20", headers=KEY).json()
    assert full["status"] == "succeeded" and full["result"]["contacts_fetched"] == 3
    limited = flow.http.post(
        f"/companies/{company}/sync?wait=20", headers=KEY, json={"max_contacts": 1, "cin": NILGIRI}
    ).json()
    assert limited["result"]["contacts_fetched"] == 1
    assert all(c["Company"] == [company] for c in flow.contacts())
    assert len(flow.contacts()) == 3


def test_sync_without_wait_answers_202_and_the_job_can_be_followed(flow: Flow) -> None:
    company = flow.company("Nilgiri", NILGIRI)
    flow.attestr.delay_s = 1.0
    response = flow.http.post(f"/companies/{company}/sync", headers=KEY, json={"cin": NILGIRI})
    assert response.status_code == 202
    job = response.json()
    assert set(job) >= {
        "id",
        "status",
        "wait_reason",
        "record_id",
        "cin",
        "attempts",
        "last_error",
        "result",
        "created_at",
        "updated_at",
    }
    assert flow.wait_for_job(job["id"])["status"] == "succeeded"
    listed = flow.http.get("/jobs?status=succeeded", headers=KEY).json()["jobs"]
    assert [j["id"] for j in listed] == [job["id"]]
    assert flow.http.get("/jobs?status=failed", headers=KEY).json() == {"jobs": []}


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code", "field"),
    [
        ("GET", "/jobs/123456", None, 404, "not_found", None),
        ("GET", "/jobs/abc", None, 404, "not_found", None),
        ("GET", "/jobs/%C2%B2", None, 404, "not_found", None),  # '²' passes str.isdigit()
        ("GET", "/jobs/%D9%A1", None, 404, "not_found", None),  # Arabic-Indic 1: no job 1 by another name
        ("GET", "/jobs/99999999999999999999", None, 404, "not_found", None),  # beyond bigint
        ("GET", "/jobs?limit=1_0", None, 422, "invalid_field", "limit"),
        ("GET", "/jobs?limit=%E0%A5%A7", None, 422, "invalid_field", "limit"),  # Devanagari 1
        ("GET", "/jobs?status=done", None, 422, "invalid_field", "status"),
        ("GET", "/jobs?limit=0", None, 422, "invalid_field", "limit"),
        ("POST", "/companies/rec123/sync", None, 422, "invalid_record_id", "record_id"),
        ("POST", "/companies/recAAAAAAAAAAAAAA/sync?wait=61", None, 422, "invalid_field", "wait"),
        ("POST", "/companies/recAAAAAAAAAAAAAA/sync?wait=soon", None, 422, "invalid_field", "wait"),
        (
            "POST",
            "/companies/recAAAAAAAAAAAAAA/sync",
            {"max_contacts": 0},
            422,
            "invalid_field",
            "max_contacts",
        ),
        (
            "POST",
            "/companies/recAAAAAAAAAAAAAA/sync",
            {"max_contacts": 101},
            422,
            "invalid_field",
            "max_contacts",
        ),
        ("POST", "/companies/recAAAAAAAAAAAAAA/sync", {"force": "yes please"}, 422, "invalid_field", "force"),
        ("POST", "/companies/recAAAAAAAAAAAAAA/sync", {"cin": "X"}, 422, "invalid_cin", "cin"),
        (
            "POST",
            "/contacts/fetch",
            {"company_airtable_id": "recAAAAAAAAAAAAAA"},
            422,
            "invalid_field",
            "cin",
        ),
        ("POST", "/contacts/fetch", {"cin": NILGIRI}, 422, "invalid_field", "company_airtable_id"),
        ("POST", "/contacts/fetch", [1], 422, "invalid_field", "body"),
    ],
)
def test_bad_requests(
    quiet_service: ServiceProcess,
    method: str,
    path: str,
    body: object,
    status: int,
    code: str,
    field: str | None,
) -> None:
    response = httpx.request(method, quiet_service.url + path, headers=KEY, json=body)
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    assert response.json()["error"].get("field") == field


@pytest.mark.parametrize("path", ["/jobs", "/jobs/1", "/companies/recAAAAAAAAAAAAAA/sync", "/contacts/fetch"])
def test_the_api_needs_a_key(quiet_service: ServiceProcess, path: str) -> None:
    method = "GET" if path.startswith("/jobs") else "POST"
    for headers in ({}, {"X-API-Key": "wrong"}):
        response = httpx.request(method, quiet_service.url + path, headers=headers, json={})
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "unauthorized"


@pytest.mark.process
def test_the_api_is_closed_without_keys(tmp_path: Path, db_url: str) -> None:
    with run_service(tmp_path, {"DATABASE_URL": db_url, "API_KEYS": "", "WORKER_IN_WEB": "false"}) as svc:
        response = httpx.get(f"{svc.url}/jobs", headers=KEY)
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "not_configured"


def test_a_failed_job_is_replayed_through_the_api(flow: Flow) -> None:
    flow.airtable.refused_values.add(("Email", "vikram@nilgiri.example"))
    company = flow.company("Nilgiri", NILGIRI)
    job_id = flow.webhook(company, NILGIRI).json()["job_id"]
    assert flow.wait_for_job(job_id)["status"] == "failed"

    not_failed = flow.company("Dormant", "U01100DL2020PTC365432")
    other = flow.wait_for_job(flow.webhook(not_failed, "U01100DL2020PTC365432").json()["job_id"])
    assert other["status"] == "succeeded"
    refused = flow.http.post(f"/jobs/{other['id']}/retry", headers=KEY)
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "invalid_state"
    assert flow.http.post("/jobs/999999/retry", headers=KEY).status_code == 404
    assert flow.http.post(f"/jobs/{job_id}/retry").status_code == 401

    flow.airtable.refused_values.clear()
    replay = flow.http.post(f"/jobs/{job_id}/retry", headers=KEY)
    assert replay.status_code == 202
    assert (replay.json()["id"], replay.json()["status"], replay.json()["deduplicated"]) == (
        job_id,
        "queued",
        False,
    )
    job = flow.wait_for_job(job_id)
    assert job["status"] == "succeeded" and job["result"]["attestr_called"] is False
    assert flow.attestr.calls_for(NILGIRI) == 1  # the replay reused the answer it had paid for
    assert len(flow.contacts()) == 3


def test_stats(flow: Flow) -> None:
    company = flow.company("Nilgiri", NILGIRI)
    flow.wait_for_job(flow.webhook(company, NILGIRI).json()["job_id"])
    stats = flow.http.get("/stats", headers=KEY).json()
    assert stats["jobs"] == {"queued": 0, "running": 0, "pushing": 0, "succeeded": 1, "failed": 0}
    assert stats["oldest_queued_s"] is None
    assert stats["attestr"]["paused"] is False and stats["attestr"]["calls_today"] == 1
    assert set(stats["airtable"]) == {
        "contacts_waiting",
        "companies_waiting",
        "rows_failed",
        "rows_deleted_by_hand",
        "pauses",
    }
    assert stats["airtable"]["pauses"] == []  # writes are not paused
    assert flow.http.get("/stats").status_code == 401


def _samples(text: str) -> dict[str, float]:
    """`/metrics` as `{'name{label="value"}': value}`."""
    return {
        sample.name + "{" + ",".join(f'{k}="{v}"' for k, v in sample.labels.items()) + "}": sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_after_a_few_jobs(flow: Flow) -> None:
    # Counters count what this process did since it started: the test's service shares its
    # process with the tests before it, so counters are read as what the jobs added. (Read from
    # the registry: `/metrics` would keep its answer for a few seconds.)
    before = _samples(generate_latest().decode())
    nilgiri, dormant = flow.company("Nilgiri", NILGIRI), flow.company("Dormant", "U01100DL2020PTC365432")
    for record_id, cin in ((nilgiri, NILGIRI), (dormant, "U01100DL2020PTC365432")):
        flow.wait_for_job(flow.webhook(record_id, cin).json()["job_id"])
    assert flow.webhook(nilgiri, "bad").status_code == 422
    flow.wait_until(lambda: "Contacts Sync Status" in flow.company_fields(dormant), what="statuses written")
    text = flow.http.get("/metrics").text
    after = _samples(text)
    added = {
        'contact_sync_webhooks_total{outcome="accepted"}': 2,
        'contact_sync_webhooks_total{outcome="invalid_cin"}': 1,
        'contact_sync_attestr_calls_total{outcome="synced"}': 1,
        'contact_sync_attestr_calls_total{outcome="no_data"}': 1,
        'contact_sync_jobs_ended_total{status="succeeded"}': 2,
        "contact_sync_job_duration_seconds_count{}": 2,
        'contact_sync_airtable_records_total{table="contacts"}': 3,
    }
    for name, count in added.items():
        assert after.get(name, 0) - before.get(name, 0) == count, name
    now = {  # gauges: read from the database at each scrape
        'contact_sync_jobs{status="queued"}': 0,
        'contact_sync_jobs{status="failed"}': 0,
        'contact_sync_airtable_backlog_rows{table="contacts"}': 0,
        "contact_sync_attestr_paused{}": 0,
        "contact_sync_attestr_calls_today{}": 2,
    }
    assert {name: after.get(name) for name in now} == now
    assert 'contact_sync_jobs{status="succeeded"}' not in text  # only grows: the counter above says it
    assert after['contact_sync_airtable_requests_total{result="ok"}'] > before.get(
        'contact_sync_airtable_requests_total{result="ok"}', 0
    )
