"""What an attempt's error means for its job: one pure decision per error (`decide`), tested as a
table (tests/engine/test_outcomes.py) and carried out by the worker.

Attestr's refusals bring their decision from Attestr's documented code table (attestr/errors.py's
REFUSALS); the rest is decided here: a refusal only the operator can mend waits without using an
attempt, PostgreSQL refusing the data fails at once, an outage is tried again with backoff.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from enum import Enum

import asyncpg

from service.airtable.errors import AirtableError, AirtableNotConfigured, AirtablePaused, AirtableRateLimited
from service.attestr.errors import Action, AttestrError, AttestrNotConfigured
from service.attestr.gate import AttestrPaused
from service.database import DATABASE_ERRORS
from service.engine.job_errors import JobFailed, LeaseLost

SETTINGS_RETRY_S = 300.0  # a job waiting for missing credentials looks again after this

# PostgreSQL refusing the data itself (SQLSTATE class 22, "Data Exception": a character it cannot
# store, a number out of range; class 54: a value too large for an index), not an outage.
REFUSED_BY_DATABASE = (asyncpg.DataError, asyncpg.exceptions.ProgramLimitExceededError)


class Then(str, Enum):
    """What becomes of the job."""

    FAIL = "fail"  # ends Failed, nothing tried again
    RETRY = "retry"  # again after an exponential backoff; uses an attempt
    RETRY_SOON = "retry soon"  # again in a few seconds (a per-second limit); uses an attempt
    WAIT = "wait"  # again at `until`; not the job's fault, so no attempt is used
    NOTHING = "nothing"  # its lease was lost: another worker has the job now


@dataclass(frozen=True)
class AttestrPause:
    """The account-wide Attestr pause an error starts (attestr/gate.py): until a probe gets
    through (`until` None), or until `until` (the daily reset)."""

    message: str
    code: str | None
    settings_fix: bool
    until: datetime | None = None


@dataclass(frozen=True)
class Outcome:
    """`error`: the sentence the job and its company show. `until`: when a waiting job is due
    again. `waiting_on`: what else wakes it ("attestr": a resume; "airtable": the end of an
    Airtable pause, or a process starting; "settings": a resume, or a process starting).
    `mended_by_settings`: the sentence says the settings must change. `unexpected`: a bug, to be
    logged with its traceback."""

    then: Then
    error: str
    until: datetime | None = None
    waiting_on: str | None = None
    mended_by_settings: bool = False
    pause: AttestrPause | None = None
    unexpected: bool = False
    named: str | None = None  # a failure's name, kept as the job result's `outcome`


@dataclass(frozen=True)
class Intervals:
    """How long waits last, in seconds (from the settings)."""

    attestr_probe_s: float
    airtable_probe_s: float
    settings_retry_s: float = SETTINGS_RETRY_S
    airtable_cooldown_s: float = 30.0


def decide(
    exc: BaseException, attempts: int, max_attempts: int, intervals: Intervals, now: datetime
) -> Outcome:
    """The outcome of the attempt number `attempts` (1-based) of `max_attempts` that raised `exc`
    at `now` (aware). A retry after the last attempt is a failure that says so."""
    decided = _by_error(exc, attempts, intervals, now)
    if decided.then in (Then.RETRY, Then.RETRY_SOON) and attempts >= max_attempts:
        return Outcome(Then.FAIL, f"{decided.error} (gave up after {attempts} attempts)")
    return decided


def _by_error(exc: BaseException, attempts: int, intervals: Intervals, now: datetime) -> Outcome:
    def after(seconds: float) -> datetime:
        return now + timedelta(seconds=seconds)

    if isinstance(exc, LeaseLost):
        return Outcome(Then.NOTHING, "the job's lease was lost")
    if isinstance(exc, JobFailed):
        return Outcome(Then.FAIL, str(exc), named=exc.outcome)
    if isinstance(exc, AttestrPaused):
        return Outcome(Then.WAIT, exc.reason, exc.until, "attestr")
    if isinstance(exc, AttestrNotConfigured | AirtableNotConfigured):
        return Outcome(Then.WAIT, exc.message, after(intervals.settings_retry_s), "settings")
    if isinstance(exc, AttestrError):
        return _attestr(exc, attempts, intervals, now)
    if isinstance(exc, AirtableRateLimited):  # reading the company: the base cools down, for all
        return Outcome(
            Then.WAIT,
            f"Airtable asked to slow down (429): reading the company waits for the base's "
            f"{intervals.airtable_cooldown_s:g} s cool-down",
            after(intervals.airtable_cooldown_s),
        )
    if isinstance(exc, AirtablePaused):  # reading the company refused: the operator's to mend
        return Outcome(Then.WAIT, exc.message, after(intervals.airtable_probe_s), "airtable")
    if isinstance(exc, REFUSED_BY_DATABASE):  # the same data would be refused at every attempt
        return Outcome(Then.FAIL, refused_by_database(exc))
    if isinstance(exc, AirtableError):
        return Outcome(Then.RETRY, exc.message)
    if isinstance(exc, DATABASE_ERRORS):
        return Outcome(Then.RETRY, f"The database could not be reached ({type(exc).__name__})")
    return Outcome(Then.RETRY, f"Internal error ({type(exc).__name__}); see the service log", unexpected=True)


def _attestr(exc: AttestrError, attempts: int, intervals: Intervals, now: datetime) -> Outcome:
    """An Attestr refusal, by the action its row of REFUSALS gives."""
    if exc.action is Action.FAIL or (exc.action is Action.RETRY_ONCE and attempts >= 2):
        return Outcome(Then.FAIL, exc.message)
    if exc.action is Action.PAUSE:
        until = now + timedelta(seconds=intervals.attestr_probe_s)
        pause = AttestrPause(exc.message, exc.code, exc.settings_fix)
        return Outcome(Then.WAIT, exc.message, until, "attestr", exc.settings_fix, pause)
    if exc.action is Action.WAIT_RESET:
        reset = next_ist_midnight(now)
        return Outcome(
            Then.WAIT, exc.message, reset, "attestr", pause=AttestrPause(exc.message, exc.code, False, reset)
        )
    if exc.action is Action.RETRY_SOON:
        return Outcome(Then.RETRY_SOON, exc.message)
    return Outcome(Then.RETRY, exc.message)


def next_ist_midnight(now: datetime) -> datetime:
    """Attestr's daily limits reset at midnight in India (UTC+05:30): five minutes after it."""
    ist = timezone(timedelta(hours=5, minutes=30))
    local = now.astimezone(ist)
    return (local + timedelta(days=1)).replace(hour=0, minute=5, second=0, microsecond=0)


def refused_by_database(exc: BaseException) -> str:
    """The job's error when PostgreSQL refuses this company's data: said as such, never as an outage."""
    return (
        f"PostgreSQL refused this company's data ({type(exc).__name__}: {str(exc)[:200]}); "
        "nothing is tried again: report it with this message"
    )
