"""Alerts, against a real SMTP server (aiosmtpd) and a local HTTP receiver in the shape Slack's
incoming webhooks take: each kind, a digest of many, one alert however many processes send, a
target that fails (tried again) or is away for the whole run (the alert given up, logged, the
work untouched)."""

from __future__ import annotations

import asyncio
import email
import email.policy
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiosmtpd.controller import Controller
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from structlog.testing import capture_logs

from service.alert_outbox import raise_alert
from service.attestr.gate import AttestrGate
from service.config import Settings
from service.database import create_pool
from service.engine.alerts import AlertSender
from service.standins.airtable import AirtableStandIn
from service.standins.attestr import AttestrStandIn
from service.standins.server import serve_in_thread
from tests.command_line import contact_sync
from tests.conftest import Running, free_port, start_worker
from tests.end_to_end.test_processes import wait_for
from tests.engine.test_engine import FAST, until
from tests.engine.test_people_edits import NILGIRI, Base
from tests.flow import enqueued, running_engine, service_env, settings_for


@dataclass
class Receiver:
    """An incoming-webhook endpoint: what it was sent, and the answers it gives first."""

    url: str = ""
    texts: list[str] = field(default_factory=list)
    fail_first: int = 0  # this many requests answered 500
    delay_s: float = 0.0

    async def endpoint(self, request: Request) -> JSONResponse:
        body = await request.json()
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.fail_first:
            self.fail_first -= 1
            return JSONResponse({"ok": False}, status_code=500)
        self.texts.append(body["text"])
        return JSONResponse({"ok": True})


class _Mailbox:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 OK"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    app = Starlette(routes=[Route("/hook", found.endpoint, methods=["POST"])])
    with serve_in_thread(app) as url:
        found.url = url + "/hook"
        yield found


@pytest.fixture
def mailbox() -> Iterator[tuple[_Mailbox, int]]:
    box, port = _Mailbox(), free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield box, port
    finally:
        controller.stop()


def _alerting(receiver: Receiver, port: int | None = None, **env: str) -> dict[str, str]:
    settings = {"ALERT_WEBHOOK_URL": receiver.url, "ALERT_MIN_INTERVAL_S": "0", **env}
    if port is not None:
        settings |= {
            "SMTP_URL": f"smtp://127.0.0.1:{port}",
            "ALERT_EMAIL_TO": "ops@nilgiri.example",
            "ALERT_EMAIL_FROM": "contact-sync@nilgiri.example",
        }
    return settings


def _sender(pool: asyncpg.Pool, settings: Settings) -> AlertSender:
    sender = AlertSender(pool, settings)
    sender.timeout_s, sender.retry_base_s = 0.5, 0.05
    return sender


async def _sender_to(
    pool: asyncpg.Pool,
    airtable: Running[AirtableStandIn],
    attestr: Running[AttestrStandIn],
    receiver: Receiver,
) -> AlertSender:
    """A sender to `receiver`, its cursors in place: what is raised from now on is its to send."""
    sender = _sender(pool, settings_for(airtable, attestr, **_alerting(receiver)))
    await _ensure(sender)
    return sender


async def _ensure(sender: AlertSender) -> None:
    from service import queries
    from service.engine.alerts import KINDS

    for target in sender.targets:
        await sender.pool.execute(queries.ALERT_CURSORS_ENSURE, list(KINDS), target.name)


async def test_a_job_failed_for_good_reaches_the_chat_and_the_mailbox_with_what_to_do(
    pool: asyncpg.Pool,
    airtable: Running[AirtableStandIn],
    attestr: Running[AttestrStandIn],
    receiver: Receiver,
    mailbox: tuple[_Mailbox, int],
) -> None:
    box, port = mailbox
    base = Base(airtable)
    attestr.standin.fail_next(NILGIRI, 4001)  # malformed: fails at once
    async with running_engine(pool, airtable, attestr, **FAST, **_alerting(receiver, port)):
        job, _ = await enqueued(pool, base.nilgiri, NILGIRI)

        async def told() -> bool:
            return bool(receiver.texts) and bool(box.messages)

        await until(told)
    (text,) = receiver.texts
    assert text.startswith("[contact-sync] A job failed for good: ")
    assert NILGIRI in text and f"contact-sync jobs retry {job.id}" in text
    (mail,) = box.messages
    assert mail["Subject"].startswith("[contact-sync] A job failed for good")
    assert mail["To"] == "ops@nilgiri.example" and f"jobs retry {job.id}" in mail.get_content()


async def test_many_failures_make_one_digest_naming_the_replay_command(
    pool: asyncpg.Pool,
    airtable: Running[AirtableStandIn],
    attestr: Running[AttestrStandIn],
    receiver: Receiver,
) -> None:
    sender = await _sender_to(pool, airtable, attestr, receiver)
    for n in range(12):
        await raise_alert(
            pool, "job_failed", f"Company {n} (U72200KA2015PTC0{n:05d})", "Attestr refused the CIN"
        )
    assert await sender.send_next() and not await sender.send_next()
    (digest,) = receiver.texts
    # The window covers them however late the digest is read: whole hours, one at least.
    assert digest.startswith("[contact-sync] 12 jobs failed in the last 1h:")
    assert digest.count("\n- Company") == 10 and "… and 2 more" in digest
    assert digest.rstrip().endswith("`contact-sync jobs retry --failed --since 1h`")


async def test_a_phone_email_or_pan_never_reaches_an_alert(
    pool: asyncpg.Pool,
    airtable: Running[AirtableStandIn],
    attestr: Running[AttestrStandIn],
    receiver: Receiver,
) -> None:
    sender = await _sender_to(pool, airtable, attestr, receiver)
    await raise_alert(
        pool,
        "job_failed",
        "Nilgiri (U72200KA2015PTC081234)",
        "refused +91 98450 12345, ananya@nilgiri.example, ABCPR1234K",
    )
    await sender.send_next()
    (text,) = receiver.texts
    assert "98450" not in text and "ananya@" not in text and "ABCPR1234K" not in text


async def test_three_processes_send_each_alert_once(
    db_url: str, airtable: Running[AirtableStandIn], attestr: Running[AttestrStandIn], receiver: Receiver
) -> None:
    settings = settings_for(airtable, attestr, **_alerting(receiver))
    pools = [await create_pool(db_url, max_size=3) for _ in range(3)]
    try:
        senders = [_sender(p, settings) for p in pools]
        await _ensure(senders[0])
        receiver.delay_s = 0.3  # all three are at it while the first sends
        await raise_alert(pools[0], "attestr_paused", "Attestr", "credits exhausted (code 4005)")
        await asyncio.gather(*(s.send_next() for s in senders))
        await asyncio.gather(*(s.send_next() for s in senders))
    finally:
        for p in pools:
            await p.close()
    assert len(receiver.texts) == 1 and "credits exhausted" in receiver.texts[0]


async def test_a_target_that_answers_500_or_too_late_is_tried_again(
    pool: asyncpg.Pool,
    airtable: Running[AirtableStandIn],
    attestr: Running[AttestrStandIn],
    receiver: Receiver,
) -> None:
    sender = await _sender_to(pool, airtable, attestr, receiver)
    receiver.fail_first = 2
    await raise_alert(pool, "airtable_paused", "the whole base", "Airtable refused the token (401)")
    with capture_logs() as logs:

        async def delivered() -> bool:
            await sender.send_next()
            return bool(receiver.texts)

        await until(delivered)
        receiver.delay_s = 1.0  # past the sender's 0.5 s
        await raise_alert(pool, "airtable_paused", "the whole base", "writes go on", ended=True)
        await sender.send_next()
        receiver.delay_s = 0.0
        await until(_count_at_least(sender, receiver, 2))
    failed = [line for line in logs if line["event"] == "alert.send_failed"]
    assert [line["error"] for line in failed] == ["HTTPStatusError", "HTTPStatusError", "ReadTimeout"]
    assert receiver.texts[1].startswith("[contact-sync] Airtable can be written again: the whole base")


def _count_at_least(sender: AlertSender, receiver: Receiver, n: int) -> Any:
    async def reached() -> bool:
        await sender.send_next()
        return len(receiver.texts) >= n

    return reached


async def test_a_target_away_for_the_whole_run_loses_only_the_alert(
    pool: asyncpg.Pool, airtable: Running[AirtableStandIn], attestr: Running[AttestrStandIn]
) -> None:
    """Nothing listens at the URL: each attempt fails, the last gives the alerts up (logged); the
    job that failed meanwhile is stored as failed, and the next job runs as always."""
    away = Receiver(url=f"http://127.0.0.1:{free_port()}/hook")
    base = Base(airtable)
    attestr.standin.fail_next(NILGIRI, 4001)
    with capture_logs() as logs:
        async with running_engine(pool, airtable, attestr, **FAST, **_alerting(away)) as runtime:
            failed, _ = await enqueued(pool, base.nilgiri, NILGIRI)
            sender = _sender(pool, runtime.settings)
            await _ensure(sender)

            async def given_up() -> bool:
                await sender.send_next()
                return any(line.get("gave_up") for line in logs if line["event"] == "alert.send_failed")

            await until(given_up)
            ok, _ = await enqueued(pool, base.konkan, "U51909MH2018PTC309876")

            async def done() -> bool:
                return await pool.fetchval("SELECT status FROM jobs WHERE id = $1", ok.id) == "succeeded"

            await until(done)
    attempts = [
        line["attempt"]
        for line in logs
        if line["event"] == "alert.send_failed" and line["kind"] == "job_failed"
    ]
    assert max(attempts) == 6
    assert await pool.fetchval("SELECT status FROM jobs WHERE id = $1", failed.id) == "failed"
    # Given up, the target is not left throttled: the next alert of the kind has its own attempts.
    assert await pool.fetchval("SELECT attempts FROM alert_cursors WHERE kind = 'job_failed'") == 0
    await raise_alert(pool, "job_failed", "Konkan (U51909MH2018PTC309876)", "refused")
    with capture_logs() as later:
        await sender.send_next()
    assert [line["attempt"] for line in later if line["event"] == "alert.send_failed"] == [1]


async def test_attestr_paused_and_resumed_are_each_alerted_once(
    pool: asyncpg.Pool,
    airtable: Running[AirtableStandIn],
    attestr: Running[AttestrStandIn],
    receiver: Receiver,
) -> None:
    sender = await _sender_to(pool, airtable, attestr, receiver)
    gate = AttestrGate(pool, sender.settings)
    for _ in range(3):  # every job meeting the refusal pauses again: one alert
        await gate.pause("Attestr's credits are exhausted (code 4005): top up the account", "4005")
    await sender.send_next()
    await gate.resume("resumed by an operator")
    await sender.send_next()
    paused, resumed = receiver.texts
    assert paused.splitlines() == [
        "[contact-sync] Attestr calls are paused",
        "Attestr's credits are exhausted (code 4005): top up the account",
        "To do: `contact-sync attestr status` says why and when the next probe goes; "
        "`contact-sync attestr resume` once it is mended",
    ]
    assert resumed.splitlines() == [
        "[contact-sync] Attestr calls go on again",
        "resumed by an operator: calls go on",
    ]


def test_e_mail_settings_come_together_and_hide_their_secrets() -> None:
    from service.config import SettingsError, load_settings

    with pytest.raises(SettingsError, match="set SMTP_URL and ALERT_EMAIL_FROM"):
        load_settings({"ALERT_EMAIL_TO": "ops@nilgiri.example"}, env_file=None)
    with pytest.raises(SettingsError) as refused:
        load_settings({"SMTP_URL": "ftp://user:hunter2@mail.example"}, env_file=None)
    assert "hunter2" not in str(refused.value)
    settings = load_settings(
        {"ALERT_WEBHOOK_URL": "https://hooks.slack.com/services/T0/B0/s3cr3t"}, env_file=None
    )
    assert "https://hooks.slack.com/services/T0/B0/s3cr3t" in settings.secrets  # redacted from logs


def test_alerts_test_says_what_each_target_answered(
    receiver: Receiver, mailbox: tuple[_Mailbox, int]
) -> None:
    box, port = mailbox
    away = f"http://127.0.0.1:{free_port()}/hook"
    env = {**os.environ, **_alerting(receiver, port), "ALERT_WEBHOOK_URL": f"{receiver.url},{away}"}
    done = contact_sync("alerts", "test", env=env)
    assert done.returncode == 1  # one target did not take it
    lines = done.stdout.splitlines()
    assert lines[0] == f"✓ webhook http://127.0.0.1:{receiver.url.split(':')[2].split('/')[0]}: answered 200"
    assert lines[1].startswith("✗ webhook http://127.0.0.1:") and "(ConnectError)" in lines[1]
    assert lines[2] == f"✓ email smtp://127.0.0.1:{port}: answered 250 accepted"
    assert receiver.texts == [
        "[contact-sync] Test alert from `contact-sync alerts test`: alerts reach this channel."
    ]
    assert box.messages[0]["Subject"] == "[contact-sync] Test alert"
    unset = contact_sync("alerts", "test", env={**os.environ, "ALERT_WEBHOOK_URL": ""})
    assert unset.returncode == 2 and unset.stderr.startswith(
        "contact-sync alerts: No alert target is configured"
    )


async def test_jobs_retry_failed_since_replays_only_that_window(db_url: str, pool: asyncpg.Pool) -> None:
    old, _ = await enqueued(pool, "recAAAAAAAAAAAAA1", NILGIRI)
    new, _ = await enqueued(pool, "recBBBBBBBBBBBBB2", "U51909MH2018PTC309876")
    await pool.execute(
        "UPDATE jobs SET status = 'failed', updated_at = now() - interval '2 hours' WHERE id = $1", old.id
    )
    await pool.execute(
        "UPDATE jobs SET status = 'failed', updated_at = now() - interval '5 minutes' WHERE id = $1", new.id
    )
    done = contact_sync(
        "jobs", "retry", "--failed", "--since", "10m", env={**os.environ, "DATABASE_URL": db_url}
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [f"job {new.id}: queued again"]
    bad = contact_sync(
        "jobs", "retry", "--failed", "--since", "ten", env={**os.environ, "DATABASE_URL": db_url}
    )
    assert bad.returncode == 2 and "is not a duration such as 30s, 10m, 2h or 1d" in bad.stderr


async def test_airtable_paused_and_resumed_are_alerted_and_an_operators_own_pause_is_not(
    pool: asyncpg.Pool,
    airtable: Running[AirtableStandIn],
    attestr: Running[AttestrStandIn],
    receiver: Receiver,
) -> None:
    from service.airtable.pauses import AirtablePauses

    sender = await _sender_to(pool, airtable, attestr, receiver)
    pauses = AirtablePauses(pool, sender.settings)
    await pauses.pause("contacts", "the Contacts table is locked: unlock it for the token's user", "x", None)
    await sender.send_next()
    await pauses.resume("resumed by an operator")
    await sender.send_next()
    await pauses.pause_by_operator("restructuring")
    await pauses.resume("resumed by an operator")
    assert not await sender.send_next()
    assert receiver.texts == [
        "[contact-sync] Airtable cannot be written: the contacts table\n"
        "the Contacts table is locked: unlock it for the token's user\n"
        "To do: `contact-sync airtable status` says why; writes resume by themselves once it is mended",
        "[contact-sync] Airtable can be written again: the contacts table\n"
        "resumed by an operator: writes go on",
    ]


async def test_a_full_queue_is_alerted_once_a_minute_not_per_refusal(
    pool: asyncpg.Pool, airtable: Running[AirtableStandIn], attestr: Running[AttestrStandIn]
) -> None:
    from service.engine.jobs import QueueCap
    from service.web import limits
    from service.web.errors import ApiError

    cap = QueueCap(pool, 1)
    await enqueued(pool, "recAAAAAAAAAAAAA1", NILGIRI)
    for _ in range(5):
        with pytest.raises(ApiError):
            await limits.check_queue(cap)
    rows = await pool.fetch("SELECT subject, detail FROM alerts WHERE kind = 'queue_full'")
    assert len(rows) == 1 and "QUEUE_MAX_JOBS" in rows[0]["detail"]


async def test_the_database_away_for_a_minute_is_said_by_the_process_that_sees_it(
    airtable: Running[AirtableStandIn], attestr: Running[AttestrStandIn], receiver: Receiver
) -> None:
    """No database to store or claim through: the sender tells its targets itself, once, and
    once again when the database answers."""
    settings = settings_for(airtable, attestr, **_alerting(receiver))
    sender = _sender(None, settings)  # type: ignore[arg-type]
    moments = iter([1.0, 30.0, 62.0, 90.0])  # the sender's clock, in seconds
    sender.clock = lambda: next(moments)
    for _ in range(4):
        await sender._database_away(ConnectionRefusedError())
    await sender._database_back()
    assert len(receiver.texts) == 2
    assert receiver.texts[0].startswith("[contact-sync] The service cannot reach its database for 61 s")
    assert receiver.texts[1].startswith("[contact-sync] The service reaches its database again")


@pytest.mark.process  # three `contact-sync worker` processes
def test_three_worker_processes_send_each_alert_once(
    tmp_path: Path,
    db_url: str,
    airtable: Running[AirtableStandIn],
    attestr: Running[AttestrStandIn],
    receiver: Receiver,
) -> None:
    env = {**service_env(db_url, airtable, attestr), **_alerting(receiver), "WORKER_IN_WEB": "false"}
    base = Base(airtable)
    attestr.standin.fail_next(NILGIRI, 4001)
    workers = [start_worker(tmp_path, env, f"w{n}") for n in range(3)]
    try:
        asyncio.run(_enqueue(db_url, base.nilgiri, NILGIRI))
        wait_for(lambda: len(receiver.texts) == 1, what="the failed job's alert")
        asyncio.run(_raise(db_url))  # a second alert: every sender has had its turn meanwhile
        wait_for(lambda: len(receiver.texts) == 2, what="the second alert")
        wait_for(
            lambda: sum(1 for w in workers for line in w.logs() if line["event"] == "alert.sent") == 2,
            what="the senders' log lines",
        )
    finally:
        assert [worker.stop() for worker in workers] == [0, 0, 0]
    assert "A job failed for good" in receiver.texts[0] and "Attestr calls are paused" in receiver.texts[1]


async def _enqueue(db_url: str, record_id: str, cin: str) -> None:
    conn = await asyncpg.connect(db_url)
    try:
        await enqueued(conn, record_id, cin)  # type: ignore[arg-type]
        await conn.execute("SELECT pg_notify('contact_sync', 'jobs')")
    finally:
        await conn.close()


async def _raise(db_url: str) -> None:
    conn = await asyncpg.connect(db_url)
    try:
        await raise_alert(conn, "attestr_paused", "Attestr", "credits exhausted (code 4005)")
    finally:
        await conn.close()
