"""Native Airtable webhooks: an alternative to the automation script.

`contact-sync airtable webhook create` registers a webhook on the Companies table watching the
CIN field (and Refresh Contacts, when it exists) and stores its id, MAC secret and cursor in
PostgreSQL. Airtable then pings `POST /webhooks/airtable/notifications`; the ping is verified
here and the payloads are read by `triggers/payloads.PayloadReader`.

What Airtable documents and this module relies on (https://airtable.com/developers/web/api/…):
creating one needs `webhook:manage` and `data.records:read` and a creator on the base
("Create a webhook", "Webhooks overview"); a base holds at most 10; a webhook expires 7 days
after its creation or last refresh ("Refresh a webhook"; listing payloads also extends it); its
specification cannot be changed (there is no endpoint to) and a webhook Airtable disabled "will
not reactivate": both are recreated. Pings failing for about a day turn notifications off
("Webhooks overview"); `enableNotifications` turns them on again.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from datetime import datetime, timedelta, timezone
from typing import Any

import asyncpg
import structlog

from service import queries
from service.airtable.client import Airtable
from service.airtable.errors import AirtableError
from service.config import Settings

log = structlog.get_logger(__name__)

MAX_PER_BASE = 10  # "The number of webhooks per base is limited to 10" (Create a webhook)
RECREATE = "contact-sync airtable webhook recreate"


def verify(secrets: list[str], body: bytes, header: str | None) -> bool:
    """`X-Airtable-Content-MAC: hmac-sha256=<hex>`: HMAC-SHA256 of the raw body, keyed with the
    base64-decoded secret. Compared in constant time with every stored secret."""
    if not header or not header.startswith("hmac-sha256="):
        return False
    given = header.removeprefix("hmac-sha256=").strip().lower().encode()
    found = False
    for secret in secrets:
        try:
            key = base64.b64decode(secret)
        except (binascii.Error, ValueError):
            continue
        found |= hmac.compare_digest(hmac.new(key, body, hashlib.sha256).hexdigest().encode(), given)
    return found


def _watched_fields(schema: Any, settings: Settings) -> tuple[Any, str, str | None]:
    """(Companies table, CIN field id, Refresh Contacts field id or None) from the base's schema."""
    try:
        table = schema.table(settings.airtable_companies_table)
    except KeyError:
        raise AirtableError(
            f'The Airtable base has no table "{settings.airtable_companies_table}": run `contact-sync doctor`'
        ) from None
    fields = {f.name: f.id for f in table.fields}
    cin_field = fields.get(settings.field("CIN"))
    if cin_field is None:
        raise AirtableError(
            f'The Companies table has no "{settings.field("CIN")}" field: run `contact-sync doctor`'
        )
    return table, cin_field, fields.get(settings.field("REFRESH"))


def specification(table_id: str, watched: list[str]) -> dict[str, Any]:
    """The webhook this version creates: changes to the watched cells of the Companies table,
    with those cells' values included whether or not they changed ("Webhooks specification").
    Earlier versions created the same; `previous` values are not asked for (nor needed)."""
    return {
        "options": {
            "filters": {
                "dataTypes": ["tableData"],
                "recordChangeScope": table_id,
                "watchDataInFieldIds": watched,
            },
            "includes": {"includeCellValuesInFieldIds": watched},
        }
    }


def outdated(spec: dict[str, Any] | None, schema: Any, settings: Settings) -> str | None:
    """Why a webhook's specification does not do what this version needs, or None."""
    table, cin_field, refresh_field = _watched_fields(schema, settings)
    options = (spec or {}).get("options") or {}
    filters = options.get("filters") or {}
    watched = set(filters.get("watchDataInFieldIds") or [])
    included = (options.get("includes") or {}).get("includeCellValuesInFieldIds") or []
    included = {f.id for f in table.fields} if included == "all" else set(included)
    if filters.get("recordChangeScope") != table.id or "tableData" not in (filters.get("dataTypes") or []):
        return f"it does not watch the records of the {table.name} table"
    if cin_field not in watched:
        return f'it does not watch the "{settings.field("CIN")}" field'
    if refresh_field and refresh_field not in watched:
        return f'it does not watch "{settings.field("REFRESH")}" (created before that field existed?)'
    if not {cin_field, refresh_field} - {None} <= included:
        return "its payloads do not include the CIN of a company whose Refresh Contacts was ticked"
    return None


async def create(
    pool: asyncpg.Pool,
    airtable: Airtable,
    settings: Settings,
    notification_url: str,
    *,
    replacing: str | None = None,
) -> dict[str, Any]:
    """Register a webhook on the Companies table and store it; {id, expires_at, watching}.
    Raises AirtableError naming what is missing (a field, a scope, room for one more), or when
    a webhook is stored already (two would queue every change twice) but the one `replacing`."""
    stored = [row["id"] for row in await pool.fetch(queries.WEBHOOKS_ALL) if row["id"] != replacing]
    if stored:
        raise AirtableError(
            f"A webhook is stored already ({', '.join(stored)}): `contact-sync airtable webhook status` "
            f"shows it, `{RECREATE}` replaces it, `contact-sync airtable webhook delete` removes it"
        )
    table, cin_field, refresh_field = _watched_fields(await airtable.schema(), settings)
    existing = await airtable.list_webhooks()
    if len(existing) >= MAX_PER_BASE:
        raise AirtableError(
            f"The base already has {len(existing)} webhooks, the most Airtable allows: delete one it "
            "no longer needs (`contact-sync airtable webhook status` lists them, "
            "`contact-sync airtable webhook delete ID` deletes one)"
        )
    watched = [f for f in (cin_field, refresh_field) if f]
    created = await airtable.add_webhook(notification_url, specification(table.id, watched))
    await pool.execute(
        *queries.WEBHOOK_STORE.bind(
            id=created.id,
            base_id=settings.airtable_base_id,
            table_id=table.id,
            cin_field_id=cin_field,
            refresh_field_id=refresh_field,
            mac_secret=created.mac_secret_base64,
            notification_url=notification_url,
            expires_at=created.expiration_time,
        )
    )
    log.info("webhook.created", webhook_id=created.id, expires_at=str(created.expiration_time))
    return {"id": created.id, "expires_at": created.expiration_time, "watching": watched}


async def recreate(
    pool: asyncpg.Pool, airtable: Airtable, settings: Settings, row: asyncpg.Record, reason: str
) -> dict[str, Any]:
    """Replace a stored webhook by a new one with this version's specification and the same
    notification URL. The old one goes from Airtable first only when the base has no room; it
    stays stored until the new one is, so a failure leaves it to be tried again."""
    remote = {h["id"] for h in await airtable.list_webhooks()}
    if len(remote) >= MAX_PER_BASE and row["id"] in remote:
        await _delete_remote(airtable, row["id"])
    created = await create(pool, airtable, settings, row["notification_url"], replacing=row["id"])
    await delete(pool, airtable, row["id"])
    log.warning(
        "webhook.recreated",
        webhook_id=created["id"],
        replaced=row["id"],
        reason=reason,
        hint="changes made while the old one was disabled were not seen: "
        "`contact-sync backfill --dry-run` finds companies with a CIN and no contacts",
    )
    return created


async def refresh(pool: asyncpg.Pool, airtable: Airtable, webhook_id: str) -> datetime:
    expires = await airtable.refresh_webhook(webhook_id)
    await pool.execute(queries.WEBHOOK_EXPIRES, webhook_id, expires)
    log.info("webhook.refreshed", webhook_id=webhook_id, expires_at=expires.isoformat())
    return expires


async def _delete_remote(airtable: Airtable, webhook_id: str) -> bool:
    """Delete a webhook in Airtable; False when it was not there."""
    try:
        await airtable.delete_webhook(webhook_id)
    except AirtableError as exc:
        if exc.status != 404:
            raise
        return False
    return True


async def delete(pool: asyncpg.Pool, airtable: Airtable, webhook_id: str) -> bool:
    """Delete a webhook in Airtable and here; False when it was in neither."""
    in_airtable = await _delete_remote(airtable, webhook_id)
    stored = await pool.execute(queries.WEBHOOK_DELETE, webhook_id) != "DELETE 0"
    return in_airtable or stored


def problems(hook: dict[str, Any] | None, now: datetime | None = None) -> list[str]:
    """What is wrong with a stored webhook as Airtable lists it ("List webhooks"), in words."""
    if hook is None:
        return [f"gone from Airtable (expired over a week ago, or deleted): run `{RECREATE}`"]
    found = []
    if not hook.get("isHookEnabled", True):
        found.append(
            "disabled by Airtable (it expired, or a field it watches was deleted): "
            f"the running service recreates it, or run `{RECREATE}`"
        )
    expires = parse_time(hook.get("expirationTime"))
    soon = (now or datetime.now(timezone.utc)) + timedelta(hours=12)
    if hook.get("isHookEnabled", True) and expires and expires < soon:
        found.append(f"expires {expires:%Y-%m-%d %H:%M} UTC: the running service refreshes it a day before")
    result = hook.get("lastNotificationResult") or {}
    if not hook.get("areNotificationsEnabled", True):
        found.append(
            "Airtable stopped pinging it after failing to reach "
            f"{hook.get('notificationUrl')} for a day ({last_ping_error(hook)}): the running service "
            "turns pings on again and reads the changes meanwhile"
        )
    elif result and not result.get("success", True):
        found.append(f"Airtable's last ping failed: {last_ping_error(hook)}")
    return found


def last_ping_error(hook: dict[str, Any]) -> str:
    """Airtable's message about its last failed ping ("Webhooks notification")."""
    error = (hook.get("lastNotificationResult") or {}).get("error")
    return str(error.get("message")) if isinstance(error, dict) else "no message"


def parse_time(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")) if value else None
    except ValueError:
        return None


async def status(
    pool: asyncpg.Pool, airtable: Airtable, settings: Settings | None = None
) -> list[dict[str, Any]]:
    """Every webhook stored here or in Airtable, with what is wrong with it (`describe`). With
    settings, the base's schema is read too, to say whether a specification is outdated."""
    remote = await airtable.list_webhooks()
    schema = await airtable.schema() if settings is not None else None
    return describe(await pool.fetch(queries.WEBHOOKS_ALL), remote, schema, settings)


def describe(
    stored: list[asyncpg.Record], remote: list[dict[str, Any]], schema: Any, settings: Settings | None
) -> list[dict[str, Any]]:
    """Stored webhooks beside Airtable's list: {id, stored, in_airtable, enabled, …, problems,
    broken}. `broken` means it sees no changes now (gone, disabled, or could not be recreated)."""
    by_id = {h["id"]: h for h in remote}
    out = []
    for row in stored:
        hook = by_id.pop(row["id"], None)
        found = problems(hook)
        if row["problem"] and not any(row["problem"] in p for p in found):
            found.insert(0, row["problem"])
        if hook is not None and schema is not None and settings is not None:
            try:
                why = outdated(hook.get("specification"), schema, settings)
            except AirtableError as exc:  # the CIN field or the table is gone: say so, go on
                why = exc.message
            if why:
                found.append(f"outdated: {why}: run `{RECREATE}`")
        out.append(
            {
                "id": row["id"],
                "stored": True,
                "in_airtable": hook is not None,
                "enabled": bool(hook and hook.get("isHookEnabled")),
                "notifications_enabled": bool(hook and hook.get("areNotificationsEnabled")),
                "notification_url": row["notification_url"],
                "cursor": row["cursor"],
                "expires_at": (hook or {}).get("expirationTime")
                or (row["expires_at"].isoformat() if row["expires_at"] else None),
                "payloads_waiting": max(0, hook["cursorForNextPayload"] - row["cursor"]) if hook else None,
                "problems": found,
                "broken": hook is None or not hook.get("isHookEnabled") or bool(row["problem"]),
            }
        )
    out += [
        {
            "id": hook_id,
            "stored": False,
            "in_airtable": True,
            "notification_url": hook.get("notificationUrl"),
            "problems": [
                "in Airtable but not stored here, so its pings cannot be checked: if it is "
                f"contact-sync's, delete it with `contact-sync airtable webhook delete {hook_id}`"
            ],
            "broken": False,
        }
        for hook_id, hook in by_id.items()
    ]
    return out
