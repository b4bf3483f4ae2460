"""`contact-sync doctor`: checks everything the service needs and says how to fix what is wrong.

Database reachable and migrated; credentials present; the Airtable token valid and allowed to do
what the service does; the base, both tables and every configured field there with a suitable
type and every select option the service writes; what the chosen way of triggering needs (the
native webhook: its scope, a creator on the base, the webhooks themselves). A personal access
token's scopes cannot be read ("Get user info" gives them only for OAuth tokens), so each is
tried with a harmless call. `--fix` applies migrations, creates the missing fields and adds the
missing options.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import asyncpg

from service import queries
from service.airtable import webhooks as airtable_webhooks
from service.airtable.client import SELECT_OPTIONS, Airtable, AirtableError
from service.config import MIN_SECRET_LENGTH, Settings
from service.database import DATABASE_ERRORS, database_url
from service.migrations import migrate, pending_migrations
from service.web.webhooks import SCRIPT_VERSION, is_outdated

OK, WARN, FAIL = "ok", "warn", "fail"
_TEXT = {"singleLineText", "multilineText", "richText", "formula"}


@dataclass
class Check:
    name: str
    status: str
    detail: str
    fix: str | None = None


@dataclass(frozen=True)
class FieldSpec:
    key: str  # the AIRTABLE_FIELD_* suffix
    table: str  # "companies" or "contacts"
    required: bool
    suitable: frozenset[str]
    create: (
        Callable[[dict[str, str]], tuple[str, dict[str, Any] | None]] | None
    )  # table ids -> (type, options)


def _select(key: str) -> Callable[[dict[str, str]], tuple[str, dict[str, Any]]]:
    return lambda _ids: ("singleSelect", {"choices": [{"name": n} for n in SELECT_OPTIONS[key][1]]})


def _plain(kind: str, options: dict[str, Any] | None = None) -> Callable[[dict[str, str]], tuple[str, Any]]:
    return lambda _ids: (kind, options)


FIELDS = (
    FieldSpec("COMPANY_NAME", "companies", True, frozenset(_TEXT), None),
    FieldSpec("CIN", "companies", True, frozenset(_TEXT), _plain("singleLineText")),
    FieldSpec(
        "SYNC_STATUS",
        "companies",
        False,
        frozenset({"singleSelect", "singleLineText"}),
        _select("SYNC_STATUS"),
    ),
    FieldSpec("SYNC_ERROR", "companies", False, frozenset(_TEXT - {"formula"}), _plain("multilineText")),
    FieldSpec(
        "SYNCED_AT",
        "companies",
        False,
        frozenset({"dateTime"}),
        _plain(
            "dateTime", {"timeZone": "utc", "dateFormat": {"name": "iso"}, "timeFormat": {"name": "24hour"}}
        ),
    ),
    FieldSpec(
        "CONTACTS_FOUND", "companies", False, frozenset({"number"}), _plain("number", {"precision": 0})
    ),
    FieldSpec(
        "REFRESH",
        "companies",
        False,
        frozenset({"checkbox"}),
        _plain("checkbox", {"icon": "check", "color": "greenBright"}),
    ),
    FieldSpec("NAME", "contacts", True, frozenset(_TEXT), None),
    FieldSpec(
        "PHONE", "contacts", False, frozenset({"phoneNumber", "singleLineText"}), _plain("phoneNumber")
    ),
    FieldSpec(
        "PHONE_TYPE",
        "contacts",
        False,
        frozenset({"singleSelect", "singleLineText"}),
        _select("PHONE_TYPE"),
    ),
    FieldSpec("EMAIL", "contacts", False, frozenset({"email", "singleLineText"}), _plain("email")),
    FieldSpec("DIN", "contacts", False, frozenset({"singleLineText"}), _plain("singleLineText")),
    FieldSpec(
        "ADDRESS",
        "contacts",
        False,
        frozenset({"multilineText", "singleLineText", "richText"}),
        _plain("multilineText"),
    ),
    FieldSpec(
        "COMPANY",
        "contacts",
        True,
        frozenset({"multipleRecordLinks"}),
        lambda ids: ("multipleRecordLinks", {"linkedTableId": ids["companies"]}),
    ),
    FieldSpec("CONTACT_KEY", "contacts", True, frozenset({"singleLineText"}), _plain("singleLineText")),
)


async def _database(settings: Settings, fix: bool) -> tuple[list[Check], list[asyncpg.Record] | None]:
    """The database's checks, and the native webhooks stored there (None: not known)."""
    try:
        conn = await asyncpg.connect(database_url(settings), timeout=10)
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
        checks = [check, *await _automation_scripts(conn), await _reconciliation(conn, settings)]
        return checks, list(await conn.fetch(queries.WEBHOOKS_ALL))
    finally:
        await conn.close()


async def _automation_scripts(conn: asyncpg.Connection) -> list[Check]:
    """Which automation script versions called in the last two weeks (none: no check)."""
    seen = await conn.fetch(queries.AUTOMATION_SCRIPTS_RECENT)
    older = [row for row in seen if is_outdated(row["version"])]
    if not seen:
        return []
    if not older:
        return [Check("automation script", OK, f"version {SCRIPT_VERSION}, the current one")]
    unversioned = "calls without a version (a script before version 2, or another client)"
    said = "; ".join(
        (f"version {row['version']}" if row["version"] else unversioned)
        + f" last called {row['last_seen_at']:%Y-%m-%d %H:%M} UTC"
        for row in older
    )
    return [
        Check(
            "automation script",
            WARN,
            f"{said}; the current script is version {SCRIPT_VERSION}",
            "paste airtable/automation.js into each automation's Run a script action again "
            "(README: Upgrading the automation script)",
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
    checks = [
        Check("Attestr token", OK, "ATTESTR_API_KEY is set (it is checked by the first paid call)")
        if settings.attestr_api_key
        else Check(
            "Attestr token",
            FAIL,
            "ATTESTR_API_KEY is not set: jobs wait",
            "set ATTESTR_API_KEY to the auth token Attestr issued",
        ),
    ]
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
    return checks


async def _airtable(
    settings: Settings, airtable: Airtable, fix: bool, hooks: list[asyncpg.Record] | None
) -> list[Check]:
    if airtable.missing:
        return [
            Check(
                "Airtable",
                FAIL,
                f"{' and '.join(airtable.missing)} not set",
                "create a personal access token with data.records:read, data.records:write and "
                "schema.bases:read on the base; set AIRTABLE_API_KEY and AIRTABLE_BASE_ID (app…)",
            )
        ]
    try:
        await airtable.whoami()
    except AirtableError as exc:
        return [
            Check("Airtable token", FAIL, exc.message, "the token is invalid or expired: create a new one")
        ]
    checks = [Check("Airtable token", OK, "valid")]
    try:
        schema = await airtable.schema()
    except AirtableError as exc:
        return [
            *checks,
            Check(
                "base schema",
                FAIL,
                exc.message,
                "give the token the schema.bases:read scope and access to this base",
            ),
        ]
    tables: dict[str, Any] = {}
    for key, name in (
        ("companies", settings.airtable_companies_table),
        ("contacts", settings.airtable_contacts_table),
    ):
        try:
            tables[key] = schema.table(name)
            checks.append(Check(f"table {name}", OK, "exists"))
        except KeyError:
            checks.append(
                Check(
                    f"table {name}",
                    FAIL,
                    "not in the base",
                    f"create the table, or set AIRTABLE_{key.upper()}_TABLE to its name",
                )
            )
    if len(tables) < 2:
        return checks
    checks += await _fields(airtable, settings, tables, fix)
    checks += await _access(airtable, settings)
    checks += await _triggering(airtable, settings, schema, hooks)
    return checks


async def _fields(airtable: Airtable, settings: Settings, tables: dict[str, Any], fix: bool) -> list[Check]:
    checks = []
    ids = {key: table.id for key, table in tables.items()}
    for spec in FIELDS:
        name = settings.field(spec.key)
        table = tables[spec.table]
        label = f"{table.name}.{name}"
        found = next((f for f in table.fields if f.name == name), None)
        if found is not None:
            linked_ok = (
                spec.key != "COMPANY" or getattr(found.options, "linked_table_id", None) == ids["companies"]
            )
            kind = str(getattr(found.type, "value", found.type))
            if kind in spec.suitable and linked_ok and kind == "singleSelect" and spec.key in SELECT_OPTIONS:
                checks.append(await _options(airtable, table, found, spec.key, label, fix))
            elif kind in spec.suitable and linked_ok:
                checks.append(Check(label, OK, kind))
            else:
                wanted = " or ".join(sorted(spec.suitable))
                if spec.key == "COMPANY":
                    wanted += f" linked to {tables['companies'].name}"
                checks.append(
                    Check(
                        label,
                        FAIL,
                        f"is {kind}; it should be {wanted}",
                        f"change the field's type in Airtable, or point AIRTABLE_FIELD_{spec.key} "
                        "at another field",
                    )
                )
            continue
        level = FAIL if spec.required else WARN
        effect = "needed" if spec.required else "optional: the service writes it only when it exists"
        if fix and spec.create is not None:
            kind, options = spec.create(ids)
            try:
                await airtable.create_field(table.id, name, kind, options)
                checks.append(Check(label, OK, f"created ({kind})"))
            except AirtableError as exc:
                checks.append(
                    Check(
                        label,
                        level,
                        f"missing, and could not be created: {exc.message}",
                        "give the token the schema.bases:write scope, or add the field by hand",
                    )
                )
            continue
        how = (
            f"run `contact-sync doctor --fix`, or add it as {sorted(spec.suitable)[0]}"
            if spec.create
            else (
                f"it is the table's primary field: rename the primary field, or set AIRTABLE_FIELD_{spec.key}"
            )
        )
        checks.append(Check(label, level, f"missing ({effect})", how))
    return checks


async def _options(airtable: Airtable, table: Any, found: Any, key: str, label: str, fix: bool) -> Check:
    """Every option the service writes to a single select field (with --fix, the missing added)."""
    have = {choice.name for choice in found.options.choices}
    missing = [option for option in SELECT_OPTIONS[key][1] if option not in have]
    if not missing:
        return Check(label, OK, "singleSelect, with every option the service writes")
    named = ", ".join(f'"{option}"' for option in missing)
    if fix:
        try:
            await airtable.add_select_options(table.id, found.name, missing)
        except AirtableError as exc:
            return Check(
                label,
                WARN,
                f"lacks the option(s) {named}, and they could not be added: {exc.message}",
                "add them in Airtable (a creator on the base can), or give the token's user creator access",
            )
        return Check(
            label,
            OK,
            f"added the option(s) {named}: through {len(missing)} throw-away row(s) in {table.name}, deleted "
            "at once (Airtable's API cannot edit a field's options; automations on the table saw them)",
        )
    return Check(
        label,
        WARN,
        f"lacks the option(s) {named}: such values are left out of Airtable, and the company's status "
        "says so, until the option exists",
        "run `contact-sync doctor --fix` (its user must be a creator on the base), or add them in Airtable",
    )


async def _triggering(
    airtable: Airtable, settings: Settings, schema: Any, stored: list[asyncpg.Record] | None
) -> list[Check]:
    """What the chosen way of triggering needs. A stored webhook means the native webhook."""
    if stored is None:
        return [Check("triggering", WARN, "not checked: the database could not be read (see above)")]
    try:
        remote: list[dict[str, Any]] | None = await airtable.list_webhooks()  # needs webhook:manage
        refused = ""
    except AirtableError as exc:
        remote, refused = None, exc.message
    if not stored:
        detail = "the automation script (no native webhook is stored here)"
        if remote is None:
            detail += "; the token may not manage webhooks, which only the native webhook needs"
        checks = [Check("triggering", OK, detail)]
        return checks + _webhook_checks(airtable_webhooks.describe([], remote or [], schema, settings))
    if remote is None:
        return [
            Check(
                "webhook:manage",
                FAIL,
                f"the native webhook's changes cannot be read: {refused}",
                "give the token the webhook:manage scope",
            )
        ]
    checks = [Check("webhook:manage", OK, "granted (the base's webhooks could be listed)")]
    enabled = {h["id"] for h in remote if h.get("isHookEnabled")}
    probe = next((row["id"] for row in stored if row["id"] in enabled), None)
    if probe is None:
        checks.append(
            Check(
                "creator on the base",
                WARN,
                "not checked: no stored webhook is enabled to try it on; recreating one needs a creator",
            )
        )
    else:
        try:  # harmless: a stored webhook's pings should be on anyway; only a creator may do it
            await airtable.enable_webhook_notifications(probe)
            checks.append(Check("creator on the base", OK, "yes (the webhook's pings could be turned on)"))
        except AirtableError as exc:
            checks.append(
                Check(
                    "creator on the base",
                    FAIL,
                    f"no: {exc.message}; only a creator may refresh, re-enable or recreate a webhook",
                    "make the token's user a creator on the base, or use the automation script",
                )
            )
    checks += _webhook_checks(airtable_webhooks.describe(stored, remote, schema, settings))
    if len(remote) >= airtable_webhooks.MAX_PER_BASE:
        checks.append(
            Check(
                "webhooks on the base",
                WARN,
                f"{len(remote)}, the most Airtable allows: none can be recreated until one is deleted",
                "delete the webhooks no longer needed (`contact-sync airtable webhook status` lists them)",
            )
        )
    return checks


def _webhook_checks(hooks: list[dict[str, Any]]) -> list[Check]:
    checks = []
    for hook in hooks:
        name = f"webhook {hook['id']}"
        if not hook["stored"]:
            checks.append(Check(name, WARN, hook["problems"][0]))
        elif hook["problems"]:
            level = FAIL if hook["broken"] else WARN
            checks.append(Check(name, level, "; ".join(hook["problems"])))
        else:
            checks.append(
                Check(name, OK, f"enabled, pinging {hook['notification_url']}; expires {hook['expires_at']}")
            )
    return checks


async def _access(airtable: Airtable, settings: Settings) -> list[Check]:
    """Reading and writing records, tried without changing anything."""
    try:
        first = await airtable.call(airtable.companies.first)
    except AirtableError as exc:
        return [Check("read records", FAIL, exc.message, "give the token the data.records:read scope")]
    checks = [Check("read records", OK, "allowed")]
    if first is None:
        return [*checks, Check("write records", WARN, "not checked: the Companies table is empty")]
    try:
        await airtable.call(airtable.companies.batch_update, [{"id": first["id"], "fields": {}}])
    except AirtableError as exc:
        return [
            *checks,
            Check("write records", FAIL, exc.message, "give the token the data.records:write scope"),
        ]
    return [*checks, Check("write records", OK, "allowed")]


async def run(settings: Settings, *, fix: bool = False, airtable: Airtable | None = None) -> list[Check]:
    """Every check, in order. Pass the Airtable client when more requests follow (the write
    check): one client paces them all under the base's rate limit."""
    database, hooks = await _database(settings, fix)
    airtable = airtable or Airtable(settings, None)
    return [*database, *_settings(settings), *await _airtable(settings, airtable, fix, hooks)]
