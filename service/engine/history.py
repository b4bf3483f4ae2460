"""What happened, as the operator's page (`/ops`) shows it: a page of jobs, one job's timeline,
one company's story, and Attestr's spend by day. Reads only.

Phones and emails leave this module masked as the logs mask them (`logs.mask_text`): the page
is for finding what went wrong, not for reading contacts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import asyncpg

from service import queries
from service.engine import jobs
from service.logs import mask_text

# What queued a job (jobs.source), in words.
TRIGGERS = {
    "webhook": "the Airtable automation's webhook",
    "airtable_webhook": "Airtable's native webhook",
    "manual": "a manual sync (the API or this page)",
    "contacts_fetch": "POST /contacts/fetch",
    "reconcile": "the reconciliation sweep",
    "backfill": "`contact-sync backfill`",
}

# How an attempt ended (job_attempts.outcome: "synced" or engine/outcomes.Then), in words.
_ATTEMPT_ENDS = {
    "synced": "done",
    "fail": "failed for good",
    "retry": "failed; tried again later",
    "retry soon": "failed; tried again in a few seconds",
    "wait": "waited (no attempt used)",
    "nothing": "handed over to another worker",
}

# Ends of a run that used no attempt (engine/outcomes.Then): a wait, a job handed over.
_NO_ATTEMPT = frozenset({"wait", "nothing"})

# What Airtable made of a row the job handed to the pusher (job_rows.outcome).
ROW_OUTCOMES = {
    "created": "created",
    "updated": "updated",
    "failed": "refused",
    "deleted": "deleted in Airtable by hand; not written again",
    None: "not written yet",
}


@dataclass(frozen=True)
class JobFilter:
    """The jobs page's filters, each None for none. `company`: a record id or part of a name;
    `since_s`: created within this many seconds; `before`: ids below it (the next page)."""

    status: str | None = None
    company: str | None = None
    cin: str | None = None
    since_s: float | None = None
    before: int | None = None


@dataclass(frozen=True)
class JobRow:
    """One line of the jobs page. `answer`: "paid" (a call Attestr may bill), "stored" (an
    answer stored earlier served it), or "" (no answer yet, or refused); `found`/`written`:
    contacts in Attestr's answer / rows created or updated in Airtable, None before an answer."""

    id: int
    record_id: str
    company: str | None
    cin: str | None
    status: str
    wait_reason: str | None
    attempts: int
    answer: str
    found: int | None
    written: int | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime

    @property
    def finished(self) -> bool:
        return self.status in jobs.FINISHED


@dataclass(frozen=True)
class Event:
    """A moment in a job's timeline; `tone` is "good", "bad" or "" (neutral)."""

    at: datetime
    what: str
    detail: str | None = None
    tone: str = ""


def contains_pattern(text: str) -> str:
    """`text` as a LIKE pattern that matches it anywhere, its own wildcards taken literally."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _result(value: Any) -> dict[str, Any]:
    return (json.loads(value) if isinstance(value, str) else value) or {}


async def jobs_page(pool: asyncpg.Pool, wanted: JobFilter, limit: int = 50) -> list[JobRow]:
    """Up to `limit` jobs, newest first, as `wanted` filters them; errors masked."""
    since = (
        datetime.now(timezone.utc) - timedelta(seconds=wanted.since_s) if wanted.since_s is not None else None
    )
    rows = await pool.fetch(
        queries.OPS_JOBS,
        wanted.status,
        wanted.company,
        contains_pattern(wanted.company) if wanted.company else None,
        wanted.cin,
        since,
        wanted.before,
        limit,
    )
    return [
        JobRow(
            id=row["id"],
            record_id=row["record_id"],
            company=row["company_name"] or row["business_name"],
            cin=row["cin"],
            status=row["status"],
            wait_reason=_masked(row["wait_reason"]),
            attempts=row["attempts"],
            answer="paid" if row["paid"] else "stored" if row["attestr_called"] is False else "",
            found=row["found"],
            written=row["written"],
            last_error=_masked(row["last_error"]),
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )
        for row in rows
    ]


def _masked(text: str | None) -> str | None:
    return None if text is None else mask_text(text)


@dataclass(frozen=True)
class JobStory:
    """One job: the job, its company's name, what queued it, why it failed (masked), its
    timeline (oldest first), what its answer held
    (`people`: label → count) and the rows it handed to Airtable (masked names, outcomes)."""

    job: jobs.Job
    company: str | None
    trigger: str
    error: str | None
    events: list[Event]
    people: dict[str, int]
    answer: str
    rows: list[dict[str, Any]]


async def job_story(pool: asyncpg.Pool, job_id: int) -> JobStory | None:
    """The job's timeline, or None when there is no such job."""
    job = await jobs.get(pool, job_id)
    if job is None:
        return None
    names = await jobs.company_names(pool, [job.record_id])
    result = job.result or {}
    trigger = TRIGGERS.get(job.source, job.source)
    events = [
        Event(
            job.created_at,
            f"Queued by {trigger}",
            "a refresh: Attestr is asked again even if an answer is stored" if job.force else None,
        )
    ]
    earlier, last_error, n = None, None, 0
    # Numbered in order over the job's whole life (a retry starts the job's own count again); a
    # run that waited, or was handed over, used no attempt and has no number.
    for attempt in await pool.fetch(queries.JOB_ATTEMPTS, job_id):
        if earlier == "fail":  # it ended for good, and yet ran again: someone retried it
            events.append(Event(attempt["started_at"], "Queued again (a retry)"))
        earlier, last_error = attempt["outcome"], _masked(attempt["error"])
        counted = attempt["outcome"] not in _NO_ATTEMPT
        n += counted
        run = f"Attempt {n}" if counted else "A run"
        ended = _ATTEMPT_ENDS.get(attempt["outcome"], attempt["outcome"])
        tone = "good" if attempt["outcome"] == "synced" else "bad" if attempt["error"] and counted else ""
        events.append(Event(attempt["started_at"], f"{run} started"))
        events.append(Event(attempt["ended_at"], f"{run} {ended}", last_error, tone))
    calls = await pool.fetch(queries.OPS_JOB_CALLS, job_id)
    for call in calls:
        events.append(Event(call["called_at"], *_call_said(call)))
    events.sort(key=lambda event: event.at)
    # The end last: the attempt's own end is recorded just after the job's.
    if job.finished:
        events.append(
            Event(
                job.updated_at,
                "Succeeded" if job.status == "succeeded" else "Failed",
                # the error once: not again when the last attempt already said it
                (None if _masked(job.last_error) == last_error else _masked(job.last_error))
                if job.status == "failed"
                else _outcome_said(result),
                "good" if job.status == "succeeded" else "bad",
            )
        )
    rows = [
        {
            "contact_key": row["contact_key"],
            "name": mask_text(row["name"] or ""),
            "airtable_id": row["airtable_id"],
            "outcome": ROW_OUTCOMES.get(row["outcome"], row["outcome"]),
            "error": _masked(row["push_error"]) if row["outcome"] == "failed" else None,
        }
        for row in await pool.fetch(queries.OPS_JOB_ROWS, job_id)
    ]
    return JobStory(
        job=job,
        company=names.get(job.record_id) or result.get("business_name"),
        trigger=trigger,
        error=_masked(job.last_error) if job.status == "failed" else None,
        events=events,
        people=_people(result),
        answer=_answer_said(result, calls),
        rows=rows,
    )


def _call_said(call: asyncpg.Record) -> tuple[str, str | None, str]:
    status = call["http_status"]
    if call["outcome"] == "synced":
        return "Attestr answered with contacts (paid)", None, "good"
    if call["outcome"] == "no_data":
        return "Attestr answered: no contacts for this CIN (paid)", None, ""
    code = f"HTTP {status}" if status else "no answer"
    code += f", code {call['error_code']}" if call["error_code"] else ""
    if call["paid"]:
        return "Attestr call failed (may be billed)", code, "bad"
    return "Attestr refused the call (not billed)", code, "bad"


def _answer_said(result: dict[str, Any], calls: list[asyncpg.Record]) -> str:
    if result.get("attestr_called") is False:
        return "served from an answer stored earlier: nothing paid"
    paid = sum(1 for call in calls if call["paid"])
    if paid:
        return f"{paid} paid call(s)"
    return "no call billed" if calls else "no call yet"


def _outcome_said(result: dict[str, Any]) -> str | None:
    if result.get("outcome") == "no_data":
        return "Attestr has no contacts for this CIN"
    if result.get("outcome") == "company_deleted":
        return "the company's record is gone from Airtable; nothing was paid"
    return None


def _people(result: dict[str, Any]) -> dict[str, int]:
    said = {
        "in Attestr's answer": "contacts_fetched",
        "new in PostgreSQL": "contacts_new",
        "changed in PostgreSQL": "contacts_updated",
        "left out (forgotten)": "contacts_suppressed",
        "left out (beyond ATTESTR_MAX_CONTACTS)": "contacts_left_out",
        "rows created in Airtable": "airtable_created",
        "rows updated in Airtable": "airtable_updated",
        "rows Airtable refused": "airtable_failed",
    }
    return {label: int(result[key]) for label, key in said.items() if result.get(key)}


@dataclass(frozen=True)
class CompanyStory:
    """One company: its row (None when no job ever named it), its latest jobs and its contacts,
    phones and emails masked."""

    record_id: str
    company: dict[str, Any] | None
    jobs: list[dict[str, Any]]
    contacts: list[dict[str, Any]]


async def company_story(pool: asyncpg.Pool, record_id: str, limit: int = 50) -> CompanyStory:
    company = await pool.fetchrow(queries.OPS_COMPANY, record_id)
    found = [
        {
            **dict(row),
            "result": _result(row["result"]),
            "last_error": _masked(row["last_error"]),
        }
        for row in await pool.fetch(queries.OPS_COMPANY_JOBS, record_id, limit)
    ]
    contacts = [
        {
            **dict(row),
            "name": mask_text(row["name"] or ""),
            "phone": mask_text(row["phone_e164"]) if row["phone_e164"] else None,
            "email": mask_text(row["email"]) if row["email"] else None,
            "push_error": _masked(row["push_error"]),
        }
        for row in await pool.fetch(queries.OPS_COMPANY_CONTACTS, record_id)
    ]
    shown = company and {
        **dict(company),
        "sync_error": _masked(company["sync_error"]),
        "push_error": _masked(company["push_error"]),
    }
    return CompanyStory(record_id, shown, found, contacts)


async def spend_by_day(pool: asyncpg.Pool) -> list[dict[str, Any]]:
    """The last 30 of India's calendar days, oldest first: {"day": date, "paid", "from_stored"}."""
    return [dict(row) for row in await pool.fetch(queries.OPS_SPEND_BY_DAY)]


async def native_webhooks(pool: asyncpg.Pool) -> list[dict[str, Any]]:
    """The native webhooks stored here, as last seen (no call to Airtable): id, expires_at,
    problem, problem_at, checked_at, last_payload_at."""
    return [
        {**dict(row), "problem": _masked(row["problem"])}
        for row in await pool.fetch(queries.OPS_NATIVE_WEBHOOKS)
    ]
