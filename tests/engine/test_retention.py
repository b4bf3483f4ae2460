"""Retention: finished jobs, stored Attestr answers and the record of lookups go after their
periods; nothing else does."""

from __future__ import annotations

import asyncpg
import pytest
from structlog.testing import capture_logs

from service.config import SettingsError, load_settings
from service.engine import retention


async def _job(pool: asyncpg.Pool, record_id: str, status: str, days_ago: float) -> int:
    return await pool.fetchval(
        """INSERT INTO jobs (record_id, status, updated_at)
           VALUES ($1, $2, now() - make_interval(secs => $3 * 86400)) RETURNING id""",
        record_id,
        status,
        days_ago,
    )


async def test_old_finished_jobs_and_answers_are_deleted(pool: asyncpg.Pool) -> None:
    settings = load_settings(
        {"JOB_RETENTION_DAYS": "30", "ATTESTR_ANSWER_RETENTION_DAYS": "90"}, env_file=None
    )
    old_done = await _job(pool, "recAAAAAAAAAAAAAA", "succeeded", 31)
    old_failed = await _job(pool, "recBBBBBBBBBBBBBB", "failed", 45)
    recent = await _job(pool, "recCCCCCCCCCCCCCC", "succeeded", 29)
    old_queued = await _job(pool, "recDDDDDDDDDDDDDD", "queued", 60)  # waiting: never deleted
    for days in (91, 89):
        await pool.execute(
            """INSERT INTO attestr_answers (cin, job_id, outcome, called_at, answer)
               VALUES ('U72200KA2015PTC081234', $1, 'synced', now() - make_interval(secs => $2 * 86400),
                       '{"valid": true}')""",
            old_done,
            days,
        )
    # The record of lookups outlives both: 400 days by default.
    for days in (401, 399, 91):
        await pool.execute(
            """INSERT INTO attestr_lookups (job_id, cin, api_version, consent_id, outcome, called_at)
               VALUES ($1, 'U72200KA2015PTC081234', 'v3', 'CX3oM_bNstq9xWxgRd', 'synced',
                       now() - make_interval(secs => $2 * 86400))""",
            old_done,
            days,
        )
    with capture_logs() as logs:
        assert await retention.prune(pool, settings) == (2, 1, 1)
    assert sorted(r["id"] for r in await pool.fetch("SELECT id FROM jobs")) == sorted([recent, old_queued])
    assert await pool.fetchval("SELECT count(*) FROM attestr_answers") == 1
    kept = await pool.fetch("SELECT job_id FROM attestr_lookups")
    assert [r["job_id"] for r in kept] == [old_done, old_done]  # its job is gone, the record stays
    assert {
        "event": "retention.pruned",
        "jobs": 2,
        "attestr_answers": 1,
        "attestr_lookups": 1,
        "log_level": "info",
    } in logs
    assert old_failed not in [r["id"] for r in await pool.fetch("SELECT id FROM jobs")]
    assert await retention.prune(pool, settings) == (0, 0, 0)


def test_the_record_of_lookups_is_kept_a_year_at_least() -> None:
    assert load_settings({}, env_file=None).attestr_lookup_log_days == 400
    assert load_settings({"ATTESTR_LOOKUP_LOG_DAYS": "365"}, env_file=None).attestr_lookup_log_days == 365
    with pytest.raises(SettingsError, match="ATTESTR_LOOKUP_LOG_DAYS='364': a number from 365"):
        load_settings({"ATTESTR_LOOKUP_LOG_DAYS": "364"}, env_file=None)


def test_answers_are_kept_at_least_as_long_as_the_cache_needs_them() -> None:
    settings = load_settings(
        {"ATTESTR_ANSWER_RETENTION_DAYS": "1", "ATTESTR_CACHE_TTL_DAYS": "30"}, env_file=None
    )
    assert settings.attestr_answer_retention_days == 30
