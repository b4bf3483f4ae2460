"""What each error means for its job (engine/outcomes.py), as a table: pure, no database."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import asyncpg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.airtable.errors import AirtableError, AirtableNotConfigured, AirtablePaused, AirtableRateLimited
from service.attestr.errors import REFUSALS, Decision, Refusal
from service.attestr.gate import AttestrPaused
from service.engine.job_errors import JobFailed, LeaseLost
from service.engine.outcomes import Intervals, Then, decide, next_ist_midnight

NOW = datetime(2026, 12, 7, 10, 0, tzinfo=timezone.utc)  # 15:30 in India
INTERVALS = Intervals(attestr_probe_s=60, airtable_probe_s=30, settings_retry_s=300)
RESET = datetime(2026, 12, 7, 18, 35, tzinfo=timezone.utc)  # 00:05 in India, the next day
LATER = datetime(2026, 12, 8, tzinfo=timezone.utc)


def _airtable(status: int, kind: str) -> AirtableError:
    return AirtableError(f"Airtable answered {status} {kind}", status=status, kind=kind)


# error, attempt (of 5) → what becomes of the job, the sentence, when it is due again, what wakes it
TABLE: list[tuple[str, BaseException, int, Then, str, datetime | None, str | None]] = [
    ("lease lost", LeaseLost(), 1, Then.NOTHING, "lease was lost", None, None),
    ("the job's own failure", JobFailed("No CIN on the record"), 1, Then.FAIL, "No CIN", None, None),
    ("Attestr paused", AttestrPaused("Attestr is paused", LATER), 1, Then.WAIT, "paused", LATER, "attestr"),
    (
        "Airtable token missing",
        AirtableNotConfigured("AIRTABLE_API_KEY is not set"),
        3,
        Then.WAIT,
        "AIRTABLE_API_KEY",
        NOW + timedelta(seconds=300),
        "settings",
    ),
    (
        "reading the company refused by Airtable (a revoked token)",
        AirtablePaused("base", "Airtable refused the token", kind="AUTHENTICATION_REQUIRED"),
        1,
        Then.WAIT,
        "refused the token",
        NOW + timedelta(seconds=30),
        "airtable",
    ),
    (
        "reading the company rate-limited by Airtable: no attempt used",
        AirtableRateLimited("Airtable answered 429", status=429, kind="RATE_LIMIT_REACHED"),
        5,
        Then.WAIT,
        "cool-down",
        NOW + timedelta(seconds=30),
        None,
    ),
    ("Airtable unavailable", _airtable(503, "SERVICE_UNAVAILABLE"), 1, Then.RETRY, "503", None, None),
    (
        "Airtable unavailable at the last attempt",
        _airtable(503, "SERVICE_UNAVAILABLE"),
        5,
        Then.FAIL,
        "(gave up after 5 attempts)",
        None,
        None,
    ),
    (
        "PostgreSQL refused the data",
        asyncpg.CharacterNotInRepertoireError("invalid byte sequence"),
        1,
        Then.FAIL,
        "PostgreSQL refused this company's data",
        None,
        None,
    ),
    ("the database gone", ConnectionRefusedError(), 2, Then.RETRY, "could not be reached", None, None),
    ("the database timed out", TimeoutError(), 2, Then.RETRY, "could not be reached", None, None),
    ("a bug", KeyError("contacts"), 1, Then.RETRY, "Internal error (KeyError)", None, None),
]


@pytest.mark.parametrize(
    ("error", "attempt", "then", "words", "until", "waiting_on"),
    [t[1:] for t in TABLE],
    ids=[t[0] for t in TABLE],
)
def test_each_error_has_one_outcome(
    error: BaseException, attempt: int, then: Then, words: str, until: datetime | None, waiting_on: str | None
) -> None:
    outcome = decide(error, attempt, 5, INTERVALS, NOW)
    assert (outcome.then, outcome.until, outcome.waiting_on) == (then, until, waiting_on)
    assert words in outcome.error
    assert outcome.unexpected == isinstance(error, KeyError)  # only a bug's traceback is logged


ATTESTR: dict[Decision, tuple[Then, datetime | None, bool]] = {
    # Attestr's table's decision → the outcome at a first attempt, when it is due, whether
    # every Attestr call pauses
    Decision.FAIL: (Then.FAIL, None, False),
    Decision.RETRY: (Then.RETRY, None, False),
    Decision.RETRY_SOON: (Then.RETRY_SOON, None, False),
    Decision.RETRY_ONCE: (Then.RETRY, None, False),
    Decision.PAUSE: (Then.WAIT, NOW + timedelta(seconds=60), True),
    Decision.PAUSE_FOR_SETTINGS: (Then.WAIT, NOW + timedelta(seconds=60), True),
    Decision.WAIT_RESET: (Then.WAIT, RESET, True),
}


@pytest.mark.parametrize("row", REFUSALS, ids=lambda r: f"{r.code or r.http_status} {r.decision.value}")
def test_every_row_of_attestrs_code_table_has_the_outcome_its_decision_says(row: Refusal) -> None:
    error = row.kind(row.words, code=row.code, http_status=row.http_status)
    then, until, pauses = ATTESTR[row.decision]
    first = decide(error, 1, 5, INTERVALS, NOW)
    assert (first.then, first.until, first.pause is not None) == (then, until, pauses)
    if first.pause:
        assert first.waiting_on == "attestr" and first.pause.code == row.code
        # Only a change of settings mends it: the pause says so, and so does the job's sentence.
        settings_fix = row.decision is Decision.PAUSE_FOR_SETTINGS
        assert first.pause.settings_fix == first.mended_by_settings == settings_fix
        assert first.pause.until == (RESET if row.decision is Decision.WAIT_RESET else None)
    second = decide(error, 2, 5, INTERVALS, NOW)
    if row.decision is Decision.RETRY_ONCE:
        assert second.then is Then.FAIL and "gave up" not in second.error


@given(
    attempts=st.integers(1, 12),
    max_attempts=st.integers(1, 12),
    error=st.sampled_from([row for _, row, *_ in TABLE] + [row.kind("x") for row in REFUSALS]),
)
def test_no_retry_is_given_after_the_last_attempt_and_waiting_never_uses_one(
    attempts: int, max_attempts: int, error: BaseException
) -> None:
    outcome = decide(error, attempts, max_attempts, INTERVALS, NOW)
    if attempts >= max_attempts:
        assert outcome.then not in (Then.RETRY, Then.RETRY_SOON)
    if outcome.then is Then.WAIT:  # whatever the attempt: not the job's fault
        assert outcome == decide(error, 1, max_attempts, INTERVALS, NOW)
        assert outcome.until is not None and outcome.until > NOW


@given(st.datetimes(timezones=st.just(timezone.utc)))
def test_the_daily_reset_is_five_minutes_past_the_next_midnight_in_india(now: datetime) -> None:
    reset = next_ist_midnight(now)
    india = reset.astimezone(timezone(timedelta(hours=5, minutes=30)))
    assert (india.hour, india.minute) == (0, 5)
    assert timedelta(minutes=5) < reset - now <= timedelta(days=1, minutes=5)
