"""`contact-sync doctor`'s checks of the Airtable base: the token's scopes tried with harmless calls, both
tables, every configured field's type and select options, and what the way of triggering needs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import asyncpg

from service.airtable import webhooks as airtable_webhooks
from service.airtable.client import SELECT_OPTIONS, Airtable
from service.airtable.errors import AirtableError, AirtableUnavailable
from service.commands.checks import FAIL, OK, WARN, Check
from service.config import Settings

_TEXT = {"singleLineText", "multilineText", "richText", "formula"}


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
    # Where the source's newer value is shown beside a value a person changed (engine/merge.py).
    FieldSpec(
        "SYNC_NOTE", "contacts", False, frozenset({"multilineText", "richText"}), _plain("multilineText")
    ),
)


async def airtable_checks(
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
    except AirtableUnavailable as exc:  # an outage or no network says nothing of the token
        return [
            Check(
                "Airtable",
                FAIL,
                exc.message,
                f"Airtable could not be reached at {airtable.settings.airtable_api_url}: check the network "
                "(and AIRTABLE_API_URL), then run doctor again",
            )
        ]
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
