"""The Airtable stand-in's webhook notification pings.

* Notification pings (https://airtable.com/developers/web/api/webhooks-overview, "Webhook
  notification delivery"): body `{base: {id}, webhook: {id}, timestamp}`,
  `X-Airtable-Content-MAC: hmac-sha256=<hex>`; a ping that fails (no connection, over 25 s, or
  not 200/204) is retried 13 times with exponential backoff from 10 s, then "we … disable
  notifications for the webhook" until `enableNotifications` turns them on again; payloads are
  still generated meanwhile. Pings may be coalesced.

The number of retries, the backoff and the timeout are the hub's (`WebhookHub.ping_*`), for
tests to shorten.

"The recipient of this request should respond with an HTTP 200 or 204 status code and an empty
response body" ("Webhooks overview"). What Airtable does with a 200 that has a body is not
documented, so it is counted a success as before; each ping's answer is kept in `WebhookHub.pings`
(`status`, None when there was no answer, and `body_bytes`) for a test to check that a receiver
answers as asked.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from typing import TYPE_CHECKING, Any

import httpx

from .airtable_webhook_payloads import iso

if TYPE_CHECKING:
    from .airtable_webhooks import Webhook, WebhookHub


def notify(hub: WebhookHub, hook: Webhook) -> None:
    """A new payload: ping the hook's notification URL (if any), from the hook's own thread."""
    if not hook.notification_url:
        return
    hook._ping.set()
    if hook._pinger is None or not hook._pinger.is_alive():
        hook._pinger = threading.Thread(target=_pinger, args=(hub, hook), daemon=True)
        hook._pinger.start()


def _pinger(hub: WebhookHub, hook: Webhook) -> None:
    """One thread per webhook delivers its pings (coalesced), as Airtable's servers do."""
    while hook.id in hub.webhooks:
        if not hook._ping.wait(timeout=5):
            continue
        hook._ping.clear()
        for attempt in range(hub.ping_retries + 1):
            if not hook.notifications_enabled or hook.id not in hub.webhooks:
                break
            if _deliver(hub, hook, attempt):
                break
            time.sleep(hub.ping_backoff_s * 2**attempt)
        else:
            hook.notifications_enabled = False


def _deliver(hub: WebhookHub, hook: Webhook, attempt: int) -> bool:
    body = json.dumps(
        {"base": {"id": hub.standin.base_id}, "webhook": {"id": hook.id}, "timestamp": iso(hub.now())}
    ).encode()
    mac = hmac.new(base64.b64decode(hook.mac_secret_base64), body, hashlib.sha256).hexdigest()
    started, error = time.monotonic(), None
    status: int | None = None
    body_bytes: int | None = None
    try:
        answer = httpx.post(
            hook.notification_url or "",
            content=body,
            timeout=hub.ping_timeout_s,
            headers={"Content-Type": "application/json", "X-Airtable-Content-MAC": f"hmac-sha256={mac}"},
        )
        status, body_bytes = answer.status_code, len(answer.content)
        if answer.status_code not in (200, 204):
            error = f"The notification URL answered {answer.status_code}"
    except httpx.HTTPError as exc:
        error = f"The notification URL could not be reached ({type(exc).__name__})"
    result: dict[str, Any] = {
        "success": error is None,
        "completionTimestamp": iso(hub.now()),
        "durationMs": round((time.monotonic() - started) * 1000, 1),
        "retryNumber": attempt,
    }
    if error is not None:
        result |= {"error": {"message": error}, "willBeRetried": attempt < hub.ping_retries}
    else:
        hook.last_success = result["completionTimestamp"]
    hook.last_result = result
    hub.pings.append(
        {
            "webhook": hook.id,
            "at": time.time(),
            "success": error is None,
            "status": status,  # what the receiver answered ("should respond with … 200 or 204")
            "body_bytes": body_bytes,  # "… and an empty response body": 0
        }
    )
    return error is None
