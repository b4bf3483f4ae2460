"""What the operator's page reads (engine/history.py): the jobs page's filters and paging,
a job's paid or stored answer, and errors masked as in the logs."""

from __future__ import annotations

import json

import asyncpg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service import queries
from service.engine import history, jobs
from service.engine.history import JobFilter

CIN_A, CIN_B = "U72200KA2015PTC081234", "U51909MH2018PTC309876"


def _record(n: int) -> str:
    return f"rec{n:014d}"


async def _job(pool: asyncpg.Pool, n: int, cin: str, name: str | None, status: str, **result: object) -> int:
    job_id, _ = await jobs.enqueue(pool, _record(n), cin)
    await pool.execute("UPDATE companies SET name = $2 WHERE airtable_id = $1", _record(n), name)
    await pool.execute(
        "UPDATE jobs SET status = $2, result = $3::jsonb, last_error = $4 WHERE id = $1",
        job_id,
        status,
        json.dumps(result) if result else None,
        "Airtable refused: ask ravi@example.com or call +91 98450 12345" if status == "failed" else None,
    )
    return job_id


async def test_the_jobs_page_filters_and_pages(pool: asyncpg.Pool) -> None:
    paid = await _job(pool, 1, CIN_A, "NILGIRI SOFTWARE 100% PVT_LTD", "succeeded", attestr_called=True)
    await pool.execute(
        "INSERT INTO attestr_answers (cin, job_id, outcome, http_status) VALUES ($1, $2, 'synced', 200)",
        CIN_A,
        paid,
    )
    stored = await _job(
        pool, 2, CIN_B, "KONKAN TRADERS", "succeeded", attestr_called=False, contacts_fetched=2,
        airtable_created=1, airtable_updated=1,
    )  # fmt: skip
    failed = await _job(pool, 3, CIN_B, None, "failed")
    refused = await _job(pool, 4, CIN_A, "NILGIRI ESTATES", "failed")
    await pool.execute(
        "INSERT INTO attestr_answers (cin, job_id, outcome, http_status, error_code) "
        "VALUES ($1, $2, 'error', 400, '4001')",
        CIN_A,
        refused,
    )

    every = await history.jobs_page(pool, JobFilter())
    assert [j.id for j in every] == [refused, failed, stored, paid]
    by_id = {j.id: j for j in every}
    assert by_id[paid].answer == "paid" and by_id[stored].answer == "stored"
    assert by_id[refused].answer == ""  # Attestr's refusals are not billed
    assert (by_id[stored].found, by_id[stored].written) == (2, 2)
    assert by_id[failed].last_error == "Airtable refused: ask r•••@example.com or call ••••••••••45"

    async def ids(**wanted: object) -> list[int]:
        return [j.id for j in await history.jobs_page(pool, JobFilter(**wanted))]  # type: ignore[arg-type]

    assert await ids(status="failed") == [refused, failed]
    assert await ids(cin=CIN_A) == [refused, paid]
    assert await ids(company="nilgiri") == [refused, paid]
    assert await ids(company="100%") == [paid]  # the % is a character, not a wildcard
    assert await ids(company="0%") == [paid]
    assert await ids(company="E_L") == []  # nor is _
    assert await ids(company="PVT_LTD") == [paid]
    assert await ids(company=_record(3)) == [failed]
    assert await ids(since_s=3600.0) == [refused, failed, stored, paid]
    await pool.execute("UPDATE jobs SET created_at = now() - interval '2 days' WHERE id = $1", paid)
    assert await ids(since_s=86_400.0) == [refused, failed, stored]
    assert await ids(before=stored) == [paid]
    pages = [j.id for j in await history.jobs_page(pool, JobFilter(), limit=3)]
    assert pages == [refused, failed, stored]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(company=st.text(max_size=30))
async def test_any_company_filter_is_text_matched_as_written(pool: asyncpg.Pool, company: str) -> None:
    company = company.replace("\x00", "")  # PostgreSQL text holds no NUL; the page's filter strips it
    found = await history.jobs_page(pool, JobFilter(company=company or None))
    assert isinstance(found, list)


async def test_a_job_story_reads_as_it_happened(pool: asyncpg.Pool) -> None:
    job_id = await _job(pool, 5, CIN_A, "NILGIRI SOFTWARE", "failed")
    await pool.execute("UPDATE jobs SET created_at = now() - interval '3 s' WHERE id = $1", job_id)
    await pool.execute(
        "INSERT INTO job_attempts (job_id, attempt, started_at, outcome, error) "
        "VALUES ($1, 1, now() - interval '2 s', 'fail', (SELECT last_error FROM jobs WHERE id = $1))",
        job_id,
    )
    await pool.execute(
        "INSERT INTO attestr_answers (cin, job_id, outcome, http_status, error_code, called_at) "
        "VALUES ($1, $2, 'error', 400, '4001', now() - interval '1 s')",
        CIN_A,
        job_id,
    )
    await pool.execute(
        "INSERT INTO job_attempts (job_id, attempt, started_at, ended_at, outcome, error) "
        "VALUES ($1, 1, now() - interval '2.9 s', now() - interval '2.8 s', 'wait', 'Attestr is paused')",
        job_id,
    )
    story = await history.job_story(pool, job_id)
    assert story is not None
    said = [event.what for event in story.events]
    assert said == [
        "Queued by the Airtable automation's webhook",
        "A run started",
        "A run waited (no attempt used)",
        "Attempt 1 started",
        "Attestr refused the call (not billed)",
        "Attempt 1 failed for good",
        "Failed",
    ]
    assert story.events[5].detail == "Airtable refused: ask r•••@example.com or call ••••••••••45"
    assert story.events[-1].detail is None  # said once, by the attempt
    assert story.answer == "no call billed"
    assert await history.job_story(pool, 999_999) is None


async def test_a_window_retried_is_the_one_the_operator_was_shown(pool: asyncpg.Pool) -> None:
    shown = await _job(pool, 6, CIN_A, "NILGIRI", "failed")
    asked_at = await pool.fetchval(queries.DATABASE_NOW)
    await pool.execute("UPDATE jobs SET updated_at = now() - interval '1 minute' WHERE id = $1", shown)
    later = await _job(pool, 7, CIN_B, "KONKAN", "failed")  # failed after the question was asked
    await pool.execute(
        "UPDATE jobs SET updated_at = $2::timestamptz + interval '1 second' WHERE id = $1", later, asked_at
    )
    ids = [r["id"] for r in await pool.fetch(queries.JOBS_FAILED_IDS, 3600.0, asked_at)]
    assert ids == [shown]
    everything = [r["id"] for r in await pool.fetch(queries.JOBS_FAILED_IDS, 3600.0, None)]
    assert everything == [shown, later]
