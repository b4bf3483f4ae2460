"""The Airtable stand-in's native webhooks, as Airtable documents them.

Each rule names its source; where the documentation is silent the stricter behaviour is chosen
and marked "undocumented".

* The webhook endpoints (create, list, refresh, payloads, delete, enableNotifications):
  `airtable_webhook_api.py`; what a payload holds: `airtable_webhook_payloads.py`; the
  notification pings: `airtable_webhook_pings.py`.
* One action (a request, a paste into many rows) is one payload; a webhook "will expire and be
  disabled after 7 days" (https://airtable.com/developers/web/api/create-a-webhook).
* Payloads expire ("List webhook payloads",
  https://airtable.com/developers/web/api/list-webhook-payloads): "Payloads are deleted from
  Airtable's servers after 1 week whether or not the client has seen them. The cursor value for
  the next payload is never reset, even if payloads are deleted." On the stand-in's clock
  (`WebhookHub.now`, moved by `AirtableStandIn.clock_skew_s`); one exactly a week old is gone
  (the stricter reading of "after 1 week").
* Error payloads (…/model/webhooks-payload, "Error response"): deleting a field listed in
  `watchDataInFieldIds` sends `{error: true, code: "INVALID_FILTERS"}` and the webhook "goes into
  an error state … The caller must re-create a new webhook"; a deleted field listed only in
  `includeCellValuesInFieldIds` is dropped without an error.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from .airtable_webhook_payloads import Change, iso, table_changes
from .airtable_webhook_pings import notify

if TYPE_CHECKING:
    from .airtable import AirtableStandIn
    from .airtable_schema import Field, Table

LIFETIME = timedelta(days=7)
PAYLOAD_LIFETIME = timedelta(weeks=1)  # "Payloads are deleted from Airtable's servers after 1 week"


@dataclass
class Webhook:
    id: str
    notification_url: str | None
    specification: dict[str, Any]
    mac_secret_base64: str
    expires_at: datetime
    enabled: bool = True
    notifications_enabled: bool = True
    payloads: list[dict[str, Any]] = field(default_factory=list)  # those still kept, oldest first
    dropped: int = 0  # payloads deleted after a week: the cursor of `payloads[0]` is `dropped + 1`
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
            # "The cursor value for the next payload is never reset, even if payloads are deleted."
            "cursorForNextPayload": self.dropped + len(self.payloads) + 1,
            "expirationTime": iso(self.expires_at),
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
    changes: dict[str, dict[str, Change]] = field(default_factory=dict)


def _made_at(payload: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(payload["timestamp"].replace("Z", "+00:00"))


_ACTION: contextvars.ContextVar[_Action | None] = contextvars.ContextVar("airtable_action", default=None)


class WebhookHub:
    """Webhooks of one base: what they are and their expiry, and a payload per action for the
    record changes they watch (its pings: `airtable_webhook_pings.py`; the endpoints that create,
    list and delete them: `airtable_webhook_api.py`)."""

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

    def live(self, hook: Webhook) -> Webhook:
        if hook.enabled and self.now() >= hook.expires_at:
            hook.enabled = False  # "will expire and be disabled after 7 days"
        self._drop_old_payloads(hook)
        return hook

    def _drop_old_payloads(self, hook: Webhook) -> None:
        """ "Payloads are deleted from Airtable's servers after 1 week whether or not the client
        has seen them" ("List webhook payloads"); the cursor numbering goes on (`Webhook.dropped`)."""
        oldest_kept = self.now() - PAYLOAD_LIFETIME
        while hook.payloads and _made_at(hook.payloads[0]) <= oldest_kept:
            hook.payloads.pop(0)
            hook.dropped += 1

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
        for hook in map(self.live, self.webhooks.values()):
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
            if not self.live(hook).enabled:
                continue
            tables = {}
            for table_id, records in action.changes.items():
                if hook.options["filters"].get("recordChangeScope") not in (None, table_id):
                    continue
                changed = table_changes(hook, self.standin.table(table_id), records, self.now)
                if changed:
                    tables[table_id] = changed
            if tables:
                self._append(hook, {"changedTablesById": tables}, action.source)

    def _append(self, hook: Webhook, body: dict[str, Any], source: str) -> None:
        self.transactions += 1
        hook.payloads.append(
            {
                "timestamp": iso(self.now()),
                "baseTransactionNumber": self.transactions,
                "actionMetadata": {"source": source, "sourceMetadata": {}},
                "payloadFormat": "v0",
                **body,
            }
        )
        notify(self, hook)
