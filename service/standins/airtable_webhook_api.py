"""The Airtable stand-in's webhook endpoints: `/v0/bases/{base}/webhooks[/{id}[/{verb}]]`.

* Create a webhook (https://airtable.com/developers/web/api/create-a-webhook): `webhook:manage`,
  plus `data.records:read` for `tableData` ("Webhooks overview"); "Creator level permissions are
  required"; "The number of webhooks per base is limited to 10"; `notificationUrl` is optional;
  the MAC secret is shown only in this answer; it "will expire and be disabled after 7 days".
* Refresh and list payloads (…/refresh-a-webhook, …/list-webhook-payloads): both set the expiry
  to 7 days from the call, for an active webhook only. At most 50 payloads a page; `cursor` is
  the transaction number to start from; `mightHaveMore: false` means "definitely no more" (a
  full page says it might have more). Payloads are deleted after a week, the cursor numbering
  going on ("The cursor value for the next payload is never reset, even if payloads are
  deleted"): see `airtable_webhooks.py`.
* List webhooks, delete a webhook, enable/disable webhook notifications.
"""

from __future__ import annotations

import base64
import json
import secrets
from typing import TYPE_CHECKING, Any

from .airtable_errors import AirtableError
from .airtable_webhook_payloads import iso
from .airtable_webhooks import LIFETIME, Webhook

if TYPE_CHECKING:
    from .airtable_webhooks import WebhookHub

MAX_WEBHOOKS_PER_BASE = 10
MAX_PAYLOADS_PER_PAGE = 50
_DATA_TYPES = {"tableData", "tableFields", "tableMetadata"}
_INCLUDES = {"includeCellValuesInFieldIds", "includePreviousCellValues", "includePreviousFieldDefinitions"}


def route(hub: WebhookHub, method: str, hook_id: str | None, verb: str | None, query: Any, body: Any) -> Any:
    """`/v0/bases/{base}/webhooks[/{id}[/{verb}]]`. Scopes and permission are checked here."""
    _require_scope(hub, "webhook:manage")
    _forget_expired(hub)
    if hook_id is None:
        if method == "GET":  # "Read level permissions are required in order to list webhooks."
            return {"webhooks": [hub.live(h).listing() for h in hub.webhooks.values()]}
        return _create(hub, body)
    hook = hub.webhooks.get(hook_id)
    if hook is None:
        raise AirtableError(404, "NOT_FOUND", "Could not find what you are looking for")
    hub.live(hook)
    if method == "DELETE":
        _require_creator(hub)
        del hub.webhooks[hook_id]
        hook._ping.set()
        return None
    if verb == "payloads" and method == "GET":
        if _records_data(hook.specification):
            _require_scope(hub, "data.records:read")
        return _payloads(hub, hook, query)
    if verb == "refresh" and method == "POST":
        _require_creator(hub)
        if not hook.enabled:  # "this endpoint only applies to active webhooks"; the code is undocumented
            raise AirtableError(422, "CANNOT_REFRESH_DISABLED_WEBHOOK", "This webhook is disabled")
        hook.expires_at = hub.now() + LIFETIME
        return {"expirationTime": iso(hook.expires_at)}
    if verb == "enableNotifications" and method == "POST":
        _require_creator(hub)
        if not isinstance(body, dict) or not isinstance(body.get("enable"), bool):
            raise AirtableError(422, "INVALID_REQUEST_UNKNOWN", "enable must be a boolean")
        hook.notifications_enabled = body["enable"]
        return None
    raise AirtableError(404, "NOT_FOUND", "Could not find what you are looking for")


def _forget_expired(hub: WebhookHub) -> None:
    """ "After a webhook has expired and been disabled, the webhook's metadata and past
    payloads can be accessed for an additional 7 days": then it is gone (404)."""
    for hook_id, hook in list(hub.webhooks.items()):
        if hub.now() >= hook.expires_at + LIFETIME:
            del hub.webhooks[hook_id]


def _require_scope(hub: WebhookHub, scope: str) -> None:
    if scope not in hub.standin.scopes:
        raise AirtableError(
            403,
            "INVALID_PERMISSIONS_OR_MODEL_NOT_FOUND",
            "Invalid permissions, or the requested model was not found.",
        )


def _require_creator(hub: WebhookHub) -> None:
    if hub.standin.permission != "creator":
        raise AirtableError(403, "INVALID_PERMISSIONS", "You are not permitted to perform this operation")


def _create(hub: WebhookHub, body: Any) -> dict[str, Any]:
    spec = body.get("specification") if isinstance(body, dict) else None
    url = body.get("notificationUrl") if isinstance(body, dict) else None
    _validate(hub, spec, url)
    assert isinstance(spec, dict)
    if _records_data(spec):
        _require_scope(hub, "data.records:read")
    _require_creator(hub)
    if len(hub.webhooks) >= MAX_WEBHOOKS_PER_BASE:
        # "The number of webhooks per base is limited to 10"; the error's code is undocumented.
        raise AirtableError(422, "TOO_MANY_WEBHOOKS", "A base can have at most 10 webhooks")
    hook = Webhook(
        id=hub.standin.new_id("ach"),
        notification_url=url,
        specification=json.loads(json.dumps(spec)),
        mac_secret_base64=base64.b64encode(secrets.token_bytes(32)).decode(),
        expires_at=hub.now() + LIFETIME,
    )
    hub.webhooks[hook.id] = hook
    return {
        "id": hook.id,
        "macSecretBase64": hook.mac_secret_base64,
        "expirationTime": iso(hook.expires_at),
    }


def _validate(hub: WebhookHub, spec: Any, url: Any) -> None:
    """A specification Airtable would take (…/model/webhooks-specification). The error codes
    are undocumented: every malformed specification is refused."""

    def refuse(why: str) -> AirtableError:
        return AirtableError(422, "INVALID_REQUEST_UNKNOWN", f"Invalid webhook specification: {why}")

    if url is not None and not isinstance(url, str):
        raise refuse("notificationUrl must be a string")
    options = spec.get("options") if isinstance(spec, dict) else None
    filters = options.get("filters") if isinstance(options, dict) else None
    if not isinstance(filters, dict):
        raise refuse("options.filters is required")
    types = filters.get("dataTypes")
    if not isinstance(types, list) or not types or not set(types) <= _DATA_TYPES:
        raise refuse("filters.dataTypes must list tableData, tableFields or tableMetadata")
    scope = filters.get("recordChangeScope")
    table = None
    if scope is not None:
        table = next((t for t in hub.standin.tables if t.id == scope), None)
        if table is None:
            raise refuse(f"recordChangeScope {scope!r} is not a table of this base")
    fields = {f.id for t in ([table] if table else hub.standin.tables) for f in t.fields}
    watched = filters.get("watchDataInFieldIds")
    if watched is not None and (not isinstance(watched, list) or not set(watched) <= fields):
        raise refuse("watchDataInFieldIds must be ids of the table's fields")
    includes = options.get("includes") or {}
    if not isinstance(includes, dict) or not set(includes) <= _INCLUDES:
        raise refuse(f"includes may only have {sorted(_INCLUDES)}")
    cells = includes.get("includeCellValuesInFieldIds")
    if cells is not None and cells != "all" and (not isinstance(cells, list) or not set(cells) <= fields):
        raise refuse('includeCellValuesInFieldIds must be field ids or "all"')


def _payloads(hub: WebhookHub, hook: Webhook, query: Any) -> dict[str, Any]:
    try:
        cursor = int(query.get("cursor") or 1)
        limit = int(query.get("limit") or MAX_PAYLOADS_PER_PAGE)
    except ValueError:
        raise AirtableError(422, "INVALID_REQUEST_UNKNOWN", "cursor and limit must be numbers") from None
    if not 1 <= limit <= MAX_PAYLOADS_PER_PAGE or cursor < 1:
        raise AirtableError(422, "INVALID_REQUEST_UNKNOWN", "limit must be 1 to 50 and cursor at least 1")
    if hook.enabled:  # "will also extend the life of the webhook if it is active"
        hook.expires_at = hub.now() + LIFETIME
    # Payloads a week old are gone, their cursors never reused ("List webhook payloads"): a cursor
    # naming a deleted payload starts from the oldest one kept. "If there are no returned
    # payloads, then the cursor in the response will be the same as the cursor specified."
    start = max(cursor - 1 - hook.dropped, 0)
    page = hook.payloads[start : start + limit]
    after = hook.dropped + start + len(page) + 1 if page else cursor
    return {"payloads": page, "cursor": after, "mightHaveMore": len(page) == limit}


def _records_data(spec: dict[str, Any]) -> bool:
    return "tableData" in spec["options"]["filters"]["dataTypes"]
