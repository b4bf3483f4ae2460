"""Alerts the service sends itself, so that an operator without a monitoring stack hears of a
failure: to incoming-webhook URLs (the `{"text": …}` body Slack, Microsoft Teams and Google Chat
accept) and by e-mail over SMTP.

What happened is stored first (`alert_outbox.raise_alert`, an outbox row, in the same moment as the event),
then every process's sender (`AlertSender`) takes the next kind and target due, locked so that
one process sends it, and sends what gathered as one message: one alert, or a digest ("12 jobs
failed in the last 10 minutes: …"), at most once every ALERT_MIN_INTERVAL_S per kind. A target
that fails is tried again with backoff and, after MAX_ATTEMPTS, left behind (logged); the work
never waits for it. The database away for a minute is said by the process that sees it, without
the database. No phone, e-mail or PAN goes in an alert: `mask_text` runs on every sentence.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import hashlib
import math
import smtplib
import ssl
import time
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from typing import Any
from urllib.parse import unquote, urlsplit

import asyncpg
import httpx
import structlog

from service import alert_outbox, queries
from service.config import Settings
from service.database import DATABASE_ERRORS

log = structlog.get_logger(__name__)

# kind: (what one alert says it is, what its end says, what a digest counts, what to do; {since}
# is a window covering every alert of the digest)
KINDS: dict[str, tuple[str, str, str, str]] = {
    "job_failed": (
        "A job failed for good",
        "",
        "jobs failed",
        "replay them: `contact-sync jobs retry --failed --since {since}`",
    ),
    "attestr_paused": (
        "Attestr calls are paused",
        "Attestr calls go on again",
        "Attestr pauses",
        "`contact-sync attestr status` says why and when the next probe goes; "
        "`contact-sync attestr resume` once it is mended",
    ),
    "airtable_paused": (
        "Airtable cannot be written",
        "Airtable can be written again",
        "Airtable pauses",
        "`contact-sync airtable status` says why; writes resume by themselves once it is mended",
    ),
    "webhook_down": (
        "The native Airtable webhook is not working",
        "",
        "webhook problems",
        "`contact-sync airtable webhook status`",
    ),
    "queue_full": (
        "The queue is full: webhooks are refused",
        "",
        "webhooks refused",
        "`contact-sync status`: is the worker running?",
    ),
    "triggers_missed": (
        "Triggers are being lost: reconciliation found CINs no trigger brought",
        "",
        "sweeps",
        "check the Airtable automation's run history (docs/how-to/monitor.md)",
    ),
    "database_unreachable": (
        "The service cannot reach its database",
        "The service reaches its database again",
        "database outages",
        "check PostgreSQL and DATABASE_URL",
    ),
}
assert set(KINDS) == alert_outbox.KINDS  # each kind raised is one this module can say

MAX_ATTEMPTS = 6  # 5 s, 10 s, 20 s, 40 s, 80 s apart: a target away for three minutes misses nothing
DATABASE_AWAY_S = 60.0
SEND_TIMEOUT_S = 10.0
RETRY_BASE_S = 5.0


@dataclass(frozen=True)
class Target:
    """Where alerts go: `name` is stored (a hash: a chat's webhook URL is its password)."""

    name: str
    kind: str  # "webhook" or "email"
    address: str  # the URL, or the SMTP URL

    def shown(self) -> str:
        """How the command line names it, without its secret parts."""
        parts = urlsplit(self.address)
        return f"{self.kind} {parts.scheme}://{parts.hostname}{(':' + str(parts.port)) if parts.port else ''}"


def targets(settings: Settings) -> list[Target]:
    """The targets configured: each ALERT_WEBHOOK_URL, and e-mail when SMTP_URL is set."""
    found = [Target("webhook:" + _hash(url), "webhook", url) for url in settings.alert_webhook_urls]
    if settings.smtp_url and settings.alert_email_to:
        found.append(Target("email:" + _hash(",".join(settings.alert_email_to)), "email", settings.smtp_url))
    return found


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def message(kind: str, alerts: list[asyncpg.Record], now: datetime) -> tuple[str, str]:
    """(subject line, text) for the alerts of one kind gathered since the last send: one alert
    as it is, several as a digest naming up to ten; with what to do."""
    what, over, counted, to_do = KINDS[kind]
    since = _window(now - min(a["created_at"] for a in alerts))
    if len(alerts) == 1:
        (alert,) = alerts
        title = over if alert["ended"] else what
        title += f": {alert['subject']}" if alert["subject"] not in title else ""
        lines = [title, alert["detail"]]
        if kind != "job_failed" and not alert["ended"]:  # a failed job's detail says how to replay it
            lines.append("To do: " + to_do.format(since=since))
        return title, "\n".join(lines)
    started = [a for a in alerts if not a["ended"]]
    ended = [a for a in alerts if a["ended"]]
    and_ended = f", {len(ended)} ended since" if ended else ""
    lines = [f"{len(started)} {counted} in the last {since}{and_ended}:"]
    shown = started or ended
    lines += [f"- {a['subject']}: {a['detail']}" for a in shown[:10]]
    if len(shown) > 10:
        lines.append(f"… and {len(shown) - 10} more")
    lines.append("To do: " + to_do.format(since=since))
    return f"{what} ({len(started)} in the last {since}{and_ended})", "\n".join(lines)


def _window(elapsed: Any) -> str:
    """A window that covers alerts this old when the message is read a while later: whole hours,
    one at least ("1h", "3h"), so that `jobs retry --failed --since` run on reading it misses none."""
    return f"{max(1, math.ceil(elapsed.total_seconds() / 3600 + 0.5))}h"


async def send(
    settings: Settings, target: Target, title: str, text: str, timeout_s: float = SEND_TIMEOUT_S
) -> str:
    """Send one message to `target` within `timeout_s`; what it answered ("200", "250
    accepted"), or raise one of SEND_ERRORS."""
    if target.kind == "webhook":
        async with httpx.AsyncClient(timeout=timeout_s) as http:
            # "[contact-sync]" first: a channel that hears from many tools says whose it is.
            answer = await http.post(target.address, json={"text": f"[contact-sync] {text}"})
            answer.raise_for_status()
            return str(answer.status_code)
    return await asyncio.to_thread(_send_email, settings, title, text, timeout_s)


SEND_ERRORS = (OSError, httpx.HTTPError, smtplib.SMTPException)


def _send_email(settings: Settings, title: str, text: str, timeout_s: float) -> str:
    """One e-mail through SMTP_URL: smtp:// as it is, smtp+starttls:// upgraded with STARTTLS,
    smtps:// over TLS from the start; with the URL's user and password when it has them. The
    standard library's smtplib: the protocol is not ours to write."""
    parts = urlsplit(settings.smtp_url or "")
    mail = EmailMessage()
    mail["Subject"] = f"[contact-sync] {title}"
    mail["From"] = settings.alert_email_from or ""
    mail["To"] = ", ".join(settings.alert_email_to)
    mail["Date"] = email.utils.formatdate()
    mail["Message-ID"] = email.utils.make_msgid(
        domain=(settings.alert_email_from or "@localhost").split("@")[-1]
    )
    mail.set_content(text)
    host, context = parts.hostname or "localhost", ssl.create_default_context()
    if parts.scheme == "smtps":
        smtp: smtplib.SMTP = smtplib.SMTP_SSL(host, parts.port or 465, timeout=timeout_s, context=context)
    else:
        smtp = smtplib.SMTP(
            host, parts.port or (587 if parts.scheme == "smtp+starttls" else 25), timeout=timeout_s
        )
    with smtp:
        if parts.scheme == "smtp+starttls":
            smtp.starttls(context=context)
        if parts.username:
            smtp.login(unquote(parts.username), unquote(parts.password or ""))
        refused = smtp.send_message(mail)
        if refused:
            raise smtplib.SMTPRecipientsRefused(refused)
        return "250 accepted"


class AlertSender:
    """Sends what was raised, in every process; the database decides which one sends each."""

    def __init__(self, pool: asyncpg.Pool, settings: Settings) -> None:
        self.pool = pool
        self.settings = settings
        self.targets = targets(settings)
        self.poll_s = 2.0
        self.timeout_s = SEND_TIMEOUT_S
        self.retry_base_s = RETRY_BASE_S
        self.clock = time.monotonic
        self._away_since: float | None = None
        self._away_said = False

    async def run(self, stop: asyncio.Event) -> None:
        if not self.targets:
            return
        ensured = False
        while not stop.is_set():
            try:
                if not ensured:
                    for target in self.targets:
                        await self.pool.execute(queries.ALERT_CURSORS_ENSURE, list(KINDS), target.name)
                    ensured = True
                while await self.send_next():
                    pass
                await self._database_back()
            except DATABASE_ERRORS as exc:
                await self._database_away(exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.poll_s)

    async def send_next(self) -> bool:
        """Send the next kind due to one target; False when none is due."""
        async with self.pool.acquire() as conn, conn.transaction():
            due = await conn.fetchrow(
                queries.ALERT_CLAIM, [t.name for t in self.targets], self.settings.alert_min_interval_s
            )
            if due is None:
                return False
            target = next(t for t in self.targets if t.name == due["target"])
            alerts = await conn.fetch(queries.ALERTS_AFTER, due["kind"], due["sent_up_to"])
            now = await conn.fetchval(queries.DATABASE_NOW)
            title, text = message(due["kind"], alerts, now)
            last = alerts[-1]["id"]
            try:
                answered = await send(self.settings, target, title, text, self.timeout_s)
            except SEND_ERRORS as exc:
                attempts = due["attempts"] + 1
                gave_up = attempts >= MAX_ATTEMPTS
                await conn.execute(
                    queries.ALERT_FAILED,
                    due["kind"],
                    due["target"],
                    self.retry_base_s * 2 ** (attempts - 1),
                    gave_up,
                    last,
                )
                log.warning(
                    "alert.send_failed",
                    kind=due["kind"],
                    target=target.shown(),
                    error=type(exc).__name__,
                    attempt=attempts,
                    gave_up=gave_up,
                    alerts=len(alerts),
                )
                return True
            await conn.execute(queries.ALERT_SENT, due["kind"], due["target"], last)
        log.info("alert.sent", kind=due["kind"], target=target.shown(), alerts=len(alerts), answered=answered)
        return True

    async def _database_away(self, exc: BaseException) -> None:
        """The database unreachable: after DATABASE_AWAY_S, said once to every target directly."""
        now = self.clock()
        self._away_since = self._away_since or now
        if self._away_said or now - self._away_since < DATABASE_AWAY_S:
            return
        self._away_said = True
        await self._tell_directly(
            "The service cannot reach its database",
            f"for {round(now - self._away_since)} s ({type(exc).__name__}): webhooks are answered 503 and "
            "no job runs. Check PostgreSQL and DATABASE_URL.",
        )

    async def _database_back(self) -> None:
        if self._away_said:
            await self._tell_directly("The service reaches its database again", "Work goes on.")
        self._away_since, self._away_said = None, False

    async def _tell_directly(self, title: str, text: str) -> None:
        for target in self.targets:
            try:
                await send(self.settings, target, title, f"{title} {text}", self.timeout_s)
                log.info("alert.sent", kind="database_unreachable", target=target.shown(), alerts=1)
            except SEND_ERRORS as exc:
                log.warning(
                    "alert.send_failed",
                    kind="database_unreachable",
                    target=target.shown(),
                    error=type(exc).__name__,
                    attempt=1,
                    gave_up=True,
                    alerts=1,
                )
