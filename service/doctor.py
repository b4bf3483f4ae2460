"""`contact-sync doctor`: checks everything the service needs and says how to fix what is wrong.

Database reachable and migrated; credentials present; the Airtable token valid and allowed to do
what the service does; the base, both tables and every configured field there with a suitable
type. `--fix` applies migrations and creates the missing fields.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import asyncpg

from .airtable import Airtable, AirtableError
from .config import Settings
from .database import DATABASE_ERRORS, database_url
from .migrations import migrate, pending_migrations

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


def _select(*names: str) -> Callable[[dict[str, str]], tuple[str, dict[str, Any]]]:
    return lambda _ids: ("singleSelect", {"choices": [{"name": n} for n in names]})


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
        _select("Queued", "Running", "Waiting", "Synced", "No Data", "Failed"),
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
        _select("Mobile", "Landline"),
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


async def _database(settings: Settings, fix: bool) -> list[Check]:
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
        ]
    try:
        pending = await pending_migrations(conn)
        if pending and fix:
            await migrate(conn)
            return [Check("database", OK, f"reachable; applied {', '.join(pending)}")]
        if pending:
            return [
                Check(
                    "database",
                    FAIL,
                    f"migrations not applied: {', '.join(pending)}",
                    "run `contact-sync migrate` (or `contact-sync doctor --fix`)",
                )
            ]
        return [Check("database", OK, "reachable and migrated")]
    finally:
        await conn.close()


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
        ("WEBHOOK_SECRETS", settings.webhook_secrets, "the webhook answers 503"),
        ("API_KEYS", settings.api_keys, "the manual endpoints answer 503"),
    ):
        if not value:
            checks.append(
                Check(name, WARN, f"not set: {what}", f"set {name} (comma-separated, long random strings)")
            )
    return checks


async def _airtable(settings: Settings, fix: bool) -> list[Check]:
    airtable = Airtable(settings, None)
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
            if kind in spec.suitable and linked_ok:
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


async def run(settings: Settings, *, fix: bool = False) -> list[Check]:
    return [*await _database(settings, fix), *_settings(settings), *await _airtable(settings, fix)]
