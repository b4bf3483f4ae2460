"""The Airtable stand-in's native webhooks, as Airtable documents them.

Each rule names its source; where the documentation is silent the stricter behaviour is chosen
and marked "undocumented".

* Create a webhook (https://airtable.com/developers/web/api/create-a-webhook): `webhook:manage`,
  plus `data.records:read` for `tableData` ("Webhooks overview"); "Creator level permissions are
  required"; "The number of webhooks per base is limited to 10"; `notificationUrl` is optional;
  the MAC secret is shown only in this answer; it "will expire and be disabled after 7 days".
* Refresh and list payloads (…/refresh-a-webhook, …/list-webhook-payloads): both set the expiry
  to 7 days from the call, for an active webhook only. At most 50 payloads a page; `cursor` is
  the transaction number to start from; `mightHaveMore: false` means "definitely no more" (a
  full page says it might have more).
* Payloads (…/model/webhooks-payload, …/model/webhooks-table-changed,
  …/model/webhooks-changed-record): "By default, the payloads only contain the data that
  changed": a changed record's `current` holds its changed cells (a cleared one as null);
  "Previous and unchanged values are only a part of the payload if the specification contains
  them in the includes object" (`includePreviousCellValues`, `includeCellValuesInFieldIds`).
  One action (a request, a paste into many rows) is one payload. Cells are in the V2 format
  (a single select is `{id, name, color}`).
* Error payloads (…/model/webhooks-payload, "Error response"): deleting a field listed in
  `watchDataInFieldIds` sends `{error: true, code: "INVALID_FILTERS"}` and the webhook "goes into
  an error state … The caller must re-create a new webhook"; a deleted field listed only in
  `includeCellValuesInFieldIds` is dropped without an error.
* Notification pings (…/webhooks-overview, "Webhook notification delivery"): body
  `{base: {id}, webhook: {id}, timestamp}`, `X-Airtable-Content-MAC: hmac-sha256=<hex>`; a ping
  that fails (no connection, over 25 s, or not 200/204) is retried 13 times with exponential
  backoff from 10 s, then "we … disable notifications for the webhook" until
  `enableNotifications` turns them on again; payloads are still generated meanwhile. Pings may
  be coalesced.
"""

from __future__ import annotations

import base64
import contextlib
import contextvars
import hashlib
import hmac
import json
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import httpx

from .airtable_errors import AirtableError

if TYPE_CHECKING:
    from .airtable import AirtableStandIn, Field, Table

MAX_WEBHOOKS_PER_BASE = 10
MAX_PAYLOADS_PER_PAGE = 50
LIFETIME = timedelta(days=7)
_DATA_TYPES = {"tableData", "tableFields", "tableMetadata"}
_INCLUDES = {"includeCellValuesInFieldIds", "includePreviousCellValues", "includePreviousFieldDefinitions"}


def _iso(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


@dataclass
class Webhook:
    id: str
    notification_url: str | None
    specification: dict[str, Any]
    mac_secret_base64: str
    expires_at: datetime
    enabled: bool = True
    notifications_enabled: bool = True
    payloads: list[dict[str, Any]] = field(default_factory=list)
    last_result: dict[str, Any] | None = None
    last_success: str | None = None
    _ping: threading.Event = field(default_factory=threading.Event)
    _pinger: threading.Thread | None = None

    @property
    def options(self) -> dict[str, Any]:
        return self.specification["options"]

    @property
    def watched(self) -> list[str] | None:
        return self.options["filters"].get("watchDataInFieldIds")

    def included(self, table: Table) -> set[str]:
        ids = (self.options.get("includes") or {}).get("includeCellValuesInFieldIds") or []
        return {f.id for f in table.fields} if ids == "all" else set(ids)

    def listing(self) -> dict[str, Any]:
        """As "List webhooks" answers (https://airtable.com/developers/web/api/list-webhooks)."""
        return {
            "id": self.id,
            "areNotificationsEnabled": self.notifications_enabled,
            "cursorForNextPayload": len(self.payloads) + 1,
            "expirationTime": _iso(self.expires_at),
            "isHookEnabled": self.enabled,
            "lastNotificationResult": self.last_result,
            "lastSuccessfulNotificationTime": self.last_success,
            "notificationUrl": self.notification_url,
            "specification": self.specification,
        }


@dataclass
class _Action:
    """The record changes of one action, by table id: (before, after) per record."""

    source: str
    changes: dict[str, dict[str, tuple[dict[str, Any] | None, dict[str, Any] | None]]] = field(
        default_factory=dict
    )


_ACTION: contextvars.ContextVar[_Action | None] = contextvars.ContextVar("airtable_action", default=None)


class WebhookHub:
    """Webhooks of one base: creation and listing, payloads for record changes, pings."""

    def __init__(self, standin: AirtableStandIn) -> None:
        self.standin = standin
        self.webhooks: dict[str, Webhook] = {}
        self.transactions = 0
        self.ping_retries = 13
        self.ping_backoff_s = 10.0
        self.ping_timeout_s = 25.0
        self.pings: list[dict[str, Any]] = []

    def now(self) -> datetime:
        return datetime.now(timezone.utc) + timedelta(seconds=self.standin.clock_skew_s)

    def _live(self, hook: Webhook) -> Webhook:
        if hook.enabled and self.now() >= hook.expires_at:
            hook.enabled = False  # "will expire and be disabled after 7 days"
        return hook

    def _forget_expired(self) -> None:
        """ "After a webhook has expired and been disabled, the webhook's metadata and past
        payloads can be accessed for an additional 7 days": then it is gone (404)."""
        for hook_id, hook in list(self.webhooks.items()):
            if self.now() >= hook.expires_at + LIFETIME:
                del self.webhooks[hook_id]

    # --- actions: one payload per action ---

    @contextlib.contextmanager
    def action(self, source: str) -> Iterator[None]:
        """Collect the record changes made inside into one payload per webhook."""
        if _ACTION.get() is not None:
            yield
            return
        token = _ACTION.set(_Action(source))
        try:
            yield
            action = _ACTION.get()
        finally:
            _ACTION.reset(token)
        assert action is not None
        self._emit(action)

    def record_changed(
        self, table: Table, record_id: str, before: dict[str, Any] | None, after: dict[str, Any] | None
    ) -> None:
        """A record was created (before None), updated, or destroyed (after None)."""
        action = _ACTION.get()
        if action is None:  # a change made outside any request: an action of its own
            with self.action("client"):
                self.record_changed(table, record_id, before, after)
            return
        records = action.changes.setdefault(table.id, {})
        first_before = records[record_id][0] if record_id in records else before
        records[record_id] = (first_before, after)

    def field_deleted(self, table: Table, deleted: Field) -> None:
        """A field deleted in the UI: webhooks watching it go into the error state."""
        for hook in map(self._live, self.webhooks.values()):
            filters = hook.options["filters"]
            if filters.get("recordChangeScope") not in (None, table.id):
                continue
            if hook.enabled and deleted.id in (hook.watched or []):
                hook.enabled = False
                self._append(hook, {"error": True, "code": "INVALID_FILTERS"}, "client")
            includes = hook.options.get("includes") or {}
            if isinstance(includes.get("includeCellValuesInFieldIds"), list):
                includes["includeCellValuesInFieldIds"] = [
                    f for f in includes["includeCellValuesInFieldIds"] if f != deleted.id
                ]

    def _emit(self, action: _Action) -> None:
        for hook in list(self.webhooks.values()):
            if not self._live(hook).enabled:
                continue
            tables = {}
            for table_id, records in action.changes.items():
                if hook.options["filters"].get("recordChangeScope") not in (None, table_id):
                    continue
                changed = self._table_changes(hook, self.standin.table(table_id), records)
                if changed:
                    tables[table_id] = changed
            if tables:
                self._append(hook, {"changedTablesById": tables}, action.source)

    def _table_changes(
        self,
        hook: Webhook,
        table: Table,
        records: dict[str, tuple[dict[str, Any] | None, dict[str, Any] | None]],
    ) -> dict[str, Any]:
        by_id = {f.id: f for f in table.fields}
        watched = set(hook.watched or by_id)
        change_types = hook.options["filters"].get("changeTypes")
        includes = hook.options.get("includes") or {}
        included = hook.included(table)
        out: dict[str, Any] = {}
        for record_id, (before, after) in records.items():
            if before is None and after is None:
                continue
            if after is None:  # destroyed
                if change_types is None or "remove" in change_types:
                    out.setdefault("destroyedRecordIds", []).append(record_id)
                continue
            old = before or {}
            changed = [f for f in by_id if not _same(old.get(f), after.get(f))]
            if not watched & set(changed):
                continue
            if before is None:
                if change_types is None or "add" in change_types:
                    out.setdefault("createdRecordsById", {})[record_id] = {
                        "createdTime": _iso(self.now()),
                        "cellValuesByFieldId": {
                            f: _v2(by_id[f], after[f]) for f in by_id if not _empty(after.get(f))
                        },
                    }
                continue
            if change_types is not None and "update" not in change_types:
                continue
            entry: dict[str, Any] = {
                "current": {"cellValuesByFieldId": {f: _v2(by_id[f], after.get(f)) for f in changed}}
            }
            if includes.get("includePreviousCellValues"):
                entry["previous"] = {"cellValuesByFieldId": {f: _v2(by_id[f], old.get(f)) for f in changed}}
            if included:
                entry["unchanged"] = {
                    "cellValuesByFieldId": {
                        f: _v2(by_id[f], after[f])
                        for f in sorted(included - set(changed))
                        if f in by_id and not _empty(after.get(f))
                    }
                }
            out.setdefault("changedRecordsById", {})[record_id] = entry
        return out

    def _append(self, hook: Webhook, body: dict[str, Any], source: str) -> None:
        self.transactions += 1
        hook.payloads.append(
            {
                "timestamp": _iso(self.now()),
                "baseTransactionNumber": self.transactions,
                "actionMetadata": {"source": source, "sourceMetadata": {}},
                "payloadFormat": "v0",
                **body,
            }
        )
        self._notify(hook)

    # --- pings ---

    def _notify(self, hook: Webhook) -> None:
        if not hook.notification_url:
            return
        hook._ping.set()
        if hook._pinger is None or not hook._pinger.is_alive():
            hook._pinger = threading.Thread(target=self._pinger, args=(hook,), daemon=True)
            hook._pinger.start()

    def _pinger(self, hook: Webhook) -> None:
        """One thread per webhook delivers its pings (coalesced), as Airtable's servers do."""
        while hook.id in self.webhooks:
            if not hook._ping.wait(timeout=5):
                continue
            hook._ping.clear()
            for attempt in range(self.ping_retries + 1):
                if not hook.notifications_enabled or hook.id not in self.webhooks:
                    break
                if self._deliver(hook, attempt):
                    break
                time.sleep(self.ping_backoff_s * 2**attempt)
            else:
                hook.notifications_enabled = False

    def _deliver(self, hook: Webhook, attempt: int) -> bool:
        body = json.dumps(
            {"base": {"id": self.standin.base_id}, "webhook": {"id": hook.id}, "timestamp": _iso(self.now())}
        ).encode()
        mac = hmac.new(base64.b64decode(hook.mac_secret_base64), body, hashlib.sha256).hexdigest()
        started, error = time.monotonic(), None
        try:
            answer = httpx.post(
                hook.notification_url or "",
                content=body,
                timeout=self.ping_timeout_s,
                headers={"Content-Type": "application/json", "X-Airtable-Content-MAC": f"hmac-sha256={mac}"},
            )
            if answer.status_code not in (200, 204):
                error = f"The notification URL answered {answer.status_code}"
        except httpx.HTTPError as exc:
            error = f"The notification URL could not be reached ({type(exc).__name__})"
        result: dict[str, Any] = {
            "success": error is None,
            "completionTimestamp": _iso(self.now()),
            "durationMs": round((time.monotonic() - started) * 1000, 1),
            "retryNumber": attempt,
        }
        if error is not None:
            result |= {"error": {"message": error}, "willBeRetried": attempt < self.ping_retries}
        else:
            hook.last_success = result["completionTimestamp"]
        hook.last_result = result
        self.pings.append({"webhook": hook.id, "at": time.time(), "success": error is None})
        return error is None

    # --- the API ---

    def route(self, method: str, hook_id: str | None, verb: str | None, query: Any, body: Any) -> Any:
        """`/v0/bases/{base}/webhooks[/{id}[/{verb}]]`. Scopes and permission are checked here."""
        self._require_scope("webhook:manage")
        self._forget_expired()
        if hook_id is None:
            if method == "GET":  # "Read level permissions are required in order to list webhooks."
                return {"webhooks": [self._live(h).listing() for h in self.webhooks.values()]}
            return self._create(body)
        hook = self.webhooks.get(hook_id)
        if hook is None:
            raise AirtableError(404, "NOT_FOUND", "Could not find what you are looking for")
        self._live(hook)
        if method == "DELETE":
            self._require_creator()
            del self.webhooks[hook_id]
            hook._ping.set()
            return None
        if verb == "payloads" and method == "GET":
            if _records_data(hook):
                self._require_scope("data.records:read")
            return self._payloads(hook, query)
        if verb == "refresh" and method == "POST":
            self._require_creator()
            if not hook.enabled:  # "this endpoint only applies to active webhooks"; the code is undocumented
                raise AirtableError(422, "CANNOT_REFRESH_DISABLED_WEBHOOK", "This webhook is disabled")
            hook.expires_at = self.now() + LIFETIME
            return {"expirationTime": _iso(hook.expires_at)}
        if verb == "enableNotifications" and method == "POST":
            self._require_creator()
            if not isinstance(body, dict) or not isinstance(body.get("enable"), bool):
                raise AirtableError(422, "INVALID_REQUEST_UNKNOWN", "enable must be a boolean")
            hook.notifications_enabled = body["enable"]
            return None
        raise AirtableError(404, "NOT_FOUND", "Could not find what you are looking for")

    def _require_scope(self, scope: str) -> None:
        if scope not in self.standin.scopes:
            raise AirtableError(
                403,
                "INVALID_PERMISSIONS_OR_MODEL_NOT_FOUND",
                "Invalid permissions, or the requested model was not found.",
            )

    def _require_creator(self) -> None:
        if self.standin.permission != "creator":
            raise AirtableError(403, "INVALID_PERMISSIONS", "You are not permitted to perform this operation")

    def _create(self, body: Any) -> dict[str, Any]:
        spec = body.get("specification") if isinstance(body, dict) else None
        url = body.get("notificationUrl") if isinstance(body, dict) else None
        self._validate(spec, url)
        assert isinstance(spec, dict)
        if _records_data_spec(spec):
            self._require_scope("data.records:read")
        self._require_creator()
        if len(self.webhooks) >= MAX_WEBHOOKS_PER_BASE:
            # "The number of webhooks per base is limited to 10"; the error's code is undocumented.
            raise AirtableError(422, "TOO_MANY_WEBHOOKS", "A base can have at most 10 webhooks")
        hook = Webhook(
            id=self.standin.new_id("ach"),
            notification_url=url,
            specification=json.loads(json.dumps(spec)),
            mac_secret_base64=base64.b64encode(secrets.token_bytes(32)).decode(),
            expires_at=self.now() + LIFETIME,
        )
        self.webhooks[hook.id] = hook
        return {
            "id": hook.id,
            "macSecretBase64": hook.mac_secret_base64,
            "expirationTime": _iso(hook.expires_at),
        }

    def _validate(self, spec: Any, url: Any) -> None:
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
            table = next((t for t in self.standin.tables if t.id == scope), None)
            if table is None:
                raise refuse(f"recordChangeScope {scope!r} is not a table of this base")
        fields = {f.id for t in ([table] if table else self.standin.tables) for f in t.fields}
        watched = filters.get("watchDataInFieldIds")
        if watched is not None and (not isinstance(watched, list) or not set(watched) <= fields):
            raise refuse("watchDataInFieldIds must be ids of the table's fields")
        includes = options.get("includes") or {}
        if not isinstance(includes, dict) or not set(includes) <= _INCLUDES:
            raise refuse(f"includes may only have {sorted(_INCLUDES)}")
        cells = includes.get("includeCellValuesInFieldIds")
        if cells is not None and cells != "all" and (not isinstance(cells, list) or not set(cells) <= fields):
            raise refuse('includeCellValuesInFieldIds must be field ids or "all"')

    def _payloads(self, hook: Webhook, query: Any) -> dict[str, Any]:
        try:
            cursor = int(query.get("cursor") or 1)
            limit = int(query.get("limit") or MAX_PAYLOADS_PER_PAGE)
        except ValueError:
            raise AirtableError(422, "INVALID_REQUEST_UNKNOWN", "cursor and limit must be numbers") from None
        if not 1 <= limit <= MAX_PAYLOADS_PER_PAGE or cursor < 1:
            raise AirtableError(422, "INVALID_REQUEST_UNKNOWN", "limit must be 1 to 50 and cursor at least 1")
        if hook.enabled:  # "will also extend the life of the webhook if it is active"
            hook.expires_at = self.now() + LIFETIME
        page = hook.payloads[cursor - 1 : cursor - 1 + limit]
        return {"payloads": page, "cursor": cursor + len(page), "mightHaveMore": len(page) == limit}


def _records_data(hook: Webhook) -> bool:
    return _records_data_spec(hook.specification)


def _records_data_spec(spec: dict[str, Any]) -> bool:
    return "tableData" in spec["options"]["filters"]["dataTypes"]


def _empty(value: Any) -> bool:
    return value is None or value == "" or value is False or value == []


def _same(a: Any, b: Any) -> bool:
    return a == b or (_empty(a) and _empty(b))


def _v2(f: Field, value: Any) -> Any:
    """A cell in the webhooks' V2 format (https://airtable.com/developers/web/api/field-model:
    "Webhooks have different cell payloads for some cell types (eg: single select)")."""
    if _empty(value):
        return None
    if f.type == "singleSelect":
        choice = next((c for c in f.options.get("choices", []) if c["name"] == value), None)
        return {"id": choice["id"] if choice else None, "name": value, "color": "blueLight2"}
    if f.type == "multipleRecordLinks":
        return [{"id": record_id} for record_id in value]
    return value
