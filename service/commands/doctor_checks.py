"""`contact-sync doctor`'s checks: everything the service needs and says how to fix what is wrong.

Database reachable and migrated; credentials present; Attestr's version and (V3) consent; the
Airtable token valid and allowed to do what the service does; the base, both tables and every
configured field there with a suitable type and every select option the service writes; what the
chosen way of triggering needs (the native webhook: its scope, a creator on the base, the
webhooks themselves). A personal access
token's scopes cannot be read ("Get user info" gives them only for OAuth tokens), so each is
tried with a harmless call. `--fix` applies migrations, creates the missing fields and adds the
missing options.
"""

from __future__ import annotations

import json
from datetime import timedelta

import asyncpg

from service import queries
from service.airtable.client import Airtable
from service.commands.checks import FAIL, OK, WARN, Check
from service.commands.doctor_airtable import airtable_checks
from service.commands.doctor_attestr import attestr_checks
from service.config import MIN_SECRET_LENGTH, Settings
from service.database import DATABASE_ERRORS, NoDatabase, database_url
from service.engine import alerts
from service.migrations import migrate, pending_migrations
from service.web.webhooks import SCRIPT_VERSION, is_outdated


async def _database(settings: Settings, fix: bool) -> tuple[list[Check], list[asyncpg.Record] | None]:
    """The database's checks, and the native webhooks stored there (None: not known)."""
    try:
        conn = await asyncpg.connect(database_url(settings), timeout=10)
    except NoDatabase as exc:
        return [Check("database", FAIL, exc.problem, exc.fix)], None
    except (*DATABASE_ERRORS, ValueError) as exc:
        return [
            Check(
                "database",
                FAIL,
                f"not reachable ({type(exc).__name__}: {exc})",
                "check DATABASE_URL, or unset it to use the embedded database",
            )
        ], None
    try:
        pending = await pending_migrations(conn)
        if pending and fix:
            await migrate(conn)
            check = Check("database", OK, f"reachable; applied {', '.join(pending)}")
        elif pending:
            return [
                Check(
                    "database",
                    FAIL,
                    f"migrations not applied: {', '.join(pending)}",
                    "run `contact-sync migrate` (or `contact-sync doctor --fix`)",
                )
            ], None
        else:
            check = Check("database", OK, "reachable and migrated")
        checks = [
            check,
            *await _pauses(conn),
            *await _base(conn, settings),
            *await _automation_scripts(conn),
            await _reconciliation(conn, settings),
        ]
        return checks, list(await conn.fetch(queries.WEBHOOKS_ALL))
    finally:
        await conn.close()


async def _base(conn: asyncpg.Connection, settings: Settings) -> list[Check]:
    """The Airtable base the rows were written to, against the one configured (airtable/bases.py)."""
    recorded = await conn.fetchrow(queries.AIRTABLE_BASE_RECORDED)
    if recorded is None or not settings.airtable_base_id:
        return []
    if recorded["base_id"] != settings.airtable_base_id:
        return [
            Check(
                "Airtable base",
                WARN,
                f"AIRTABLE_BASE_ID is {settings.airtable_base_id}; "
                f"rows were written to {recorded['base_id']}",
                "a new base: the service writes its rows fresh from its next start, and leaves the "
                "old base as it is; then `contact-sync backfill --dry-run` says what filling it costs",
            )
        ]
    moved = (
        f" (moved from {recorded['previous']}, whose rows were left as they were)"
        if recorded["previous"]
        else ""
    )
    return [
        Check(
            "Airtable base",
            OK,
            f"{recorded['base_id']}, written to since {recorded['since']:%Y-%m-%d}{moved}",
        )
    ]


async def _pauses(conn: asyncpg.Connection) -> list[Check]:
    """Attestr calls or Airtable writes paused now, with the cause the service was given."""
    checks = []
    for pause in await conn.fetch(queries.AIRTABLE_PAUSES):
        what = "every write" if pause["scope"] == "base" else f"writes to the {pause['scope']} table"
        checks.append(
            Check(
                "Airtable writes",
                FAIL,
                f"{what} paused since {pause['paused_at']:%Y-%m-%d %H:%M} UTC: {pause['reason']}",
                "`contact-sync airtable resume` once done"
                if pause["kind"] == "operator"
                else "mend what it says: writes resume by themselves at the next probe "
                "(AIRTABLE_PROBE_INTERVAL_S), or at once with `contact-sync airtable resume`",
            )
        )
    attestr = await conn.fetchrow(queries.ATTESTR_STATE)
    if attestr and attestr["paused_reason"]:
        checks.append(
            Check(
                "Attestr calls",
                FAIL,
                f"paused since {attestr['paused_at']:%Y-%m-%d %H:%M} UTC: {attestr['paused_reason']}",
                "mend what it says: calls resume at the next probe, or with `contact-sync attestr resume`",
            )
        )
    return checks


# How long doctor speaks of a script's calls after the last one.
_SCRIPTS_REMEMBERED = timedelta(days=14)


async def _automation_scripts(conn: asyncpg.Connection) -> list[Check]:
    """Which automation script versions called in the last two weeks (none: no check)."""
    seen = await conn.fetch(queries.AUTOMATION_SCRIPTS_RECENT, _SCRIPTS_REMEMBERED.days)
    older = [row for row in seen if is_outdated(row["version"])]
    if not seen:
        return []
    if not older:
        return [Check("automation script", OK, f"version {SCRIPT_VERSION}, the current one")]
    unversioned = "calls without a version (a script before version 2, or another client)"
    said = "; ".join(
        (f"version {row['version']}" if row["version"] else unversioned)
        + f" last called {row['last_seen_at']:%Y-%m-%d %H:%M} UTC"
        + f" (said until {row['last_seen_at'] + _SCRIPTS_REMEMBERED:%Y-%m-%d}, unless it calls again)"
        for row in older
    )
    return [
        Check(
            "automation script",
            WARN,
            f"{said}; the current script is version {SCRIPT_VERSION}",
            "paste airtable/automation.js into each automation's Run a script action again "
            "(docs/how-to/set-up-airtable.md: Upgrading the automation script)",
        )
    ]


async def _reconciliation(conn: asyncpg.Connection, settings: Settings) -> Check:
    interval = settings.reconcile_interval_s
    if interval <= 0:
        return Check(
            "reconciliation",
            WARN,
            "off (RECONCILE_INTERVAL_S=0): a CIN whose automation run failed is never picked up",
            "unset RECONCILE_INTERVAL_S (900), or run `contact-sync reconcile` from a scheduler",
        )
    state = await conn.fetchrow(queries.RECONCILE_STATE)
    if state is None or state["finished_s_ago"] is None:
        return Check("reconciliation", OK, "no sweep yet: the running service's first one sets the baseline")
    ago = state["finished_s_ago"]
    counts = json.loads(state["counts"]) if state["counts"] else {}
    seen, queued = counts.get("seen", 0), counts.get("queued", 0)
    said = f"last sweep {ago / 60:.0f} min ago (seen {seen}, queued {queued})"
    if ago > 3 * interval:
        return Check(
            "reconciliation",
            WARN,
            said,
            "is a worker running? look for reconcile.failed in its logs",
        )
    return Check("reconciliation", OK, said)


def _settings(settings: Settings) -> list[Check]:
    checks = []
    for name, value, what in (
        ("WEBHOOK_SECRETS", settings.webhook_secrets, "the automation script's webhook answers 503"),
        ("API_KEYS", settings.api_keys, "the manual endpoints answer 503"),
    ):
        short = len(settings.short_secrets.get(name, ()))
        if not value and short:
            checks.append(
                Check(
                    name,
                    WARN,
                    f"every value is shorter than {MIN_SECRET_LENGTH} characters, so none is used: {what}",
                    f"set {name} to random strings of {MIN_SECRET_LENGTH} characters or more "
                    "(`openssl rand -hex 24`)",
                )
            )
        elif not value:
            checks.append(
                Check(name, WARN, f"not set: {what}", f"set {name} (comma-separated, long random strings)")
            )
        elif short:
            checks.append(
                Check(
                    name,
                    WARN,
                    f"{short} value(s) shorter than {MIN_SECRET_LENGTH} characters are ignored",
                    f"remove them, or use random strings of {MIN_SECRET_LENGTH} characters or more",
                )
            )
    return [*checks, _alerts(settings)]


def _alerts(settings: Settings) -> Check:
    """Where alerts go (the settings are checked when read; `alerts test` sends one)."""
    targets = alerts.targets(settings)
    if not targets:
        return Check(
            "alerts",
            WARN,
            "none configured: failures are only in the log and the metrics",
            "set ALERT_WEBHOOK_URL (Slack, Teams, Google Chat) or ALERT_EMAIL_TO with SMTP_URL and "
            "ALERT_EMAIL_FROM (docs/how-to/monitor.md); `contact-sync alerts test` tries them",
        )
    return Check(
        "alerts",
        OK,
        f"to {', '.join(t.shown() for t in targets)}, each kind at most every "
        f"{settings.alert_min_interval_s:g} s; `contact-sync alerts test` sends one",
    )


async def run(settings: Settings, *, fix: bool = False, airtable: Airtable | None = None) -> list[Check]:
    """Every check, in order. Pass the Airtable client when more requests follow (the write
    check): one client paces them all under the base's rate limit."""
    database, hooks = await _database(settings, fix)
    airtable = airtable or Airtable(settings, None)
    return [
        *database,
        *await attestr_checks(settings),
        *_settings(settings),
        *await airtable_checks(settings, airtable, fix, hooks),
    ]
