"""A stand-in for the Airtable Web API, keeping the rules that real Airtable enforces.

A stand-in that accepts what Airtable refuses hides the bugs users will hit. Each rule comes
from Airtable's documentation (https://airtable.com/developers/web/api/…, page named below);
where it is silent, the stricter behaviour is kept and marked "undocumented".

* Authentication: a bearer token ("Authentication"); scopes per endpoint ("Scopes"); the
  token's user's permission on the base: writes need an editor, schema changes a creator.
* "Rate limits": 5 requests per second per base, and "50 requests per second for all traffic
  using personal access tokens from a given user"; then 429 and a wait (30 s; `cooldown_s`).
* The API's areas, each in a module of its own: records (get, create, update, upsert, delete):
  `airtable_records.py`; the values a field of each type takes, `typecast`: `airtable_values.py`;
  "List records" (pages, offsets, `filterByFormula`): `airtable_listing.py` and `formulas.py`;
  tables and fields (the metadata API): `airtable_schema.py`; error answers: `airtable_errors.py`.
* Native webhooks: `airtable_webhooks.py`.
* What a base's owner can set in Airtable's interface against the API user (a table or a field
  locked: 403 `INVALID_PERMISSIONS`), and a field reported unknown for a moment (a reported
  transient, not documented): `airtable_restrictions.py`.

Besides the API (`/v0/…`), `/_standin/…` lets tests and the demo look inside and act as a person
would in the Airtable UI (edit a cell, paste into many rows, delete a row or a field, lock a table
or a field) without being rate-limited.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import airtable_records, airtable_schema, airtable_state
from . import airtable_webhook_api as webhook_api
from .airtable_errors import AirtableError, json_body
from .airtable_listing import list_page
from .airtable_records import MAX_RECORDS_PER_WRITE, delete, get, render, update
from .airtable_schema import Field, Table, default_tables
from .airtable_values import validated
from .airtable_webhooks import Webhook, WebhookHub

# Importable from here, as before the stand-in was split by API area.
__all__ = ["ALL_SCOPES", "MAX_RECORDS_PER_WRITE", "AirtableStandIn", "Field", "Table", "default_tables"]

ALL_SCOPES = frozenset(
    {
        "data.records:read",
        "data.records:write",
        "schema.bases:read",
        "schema.bases:write",
        "webhook:manage",
    }
)


@dataclass
class AirtableStandIn:
    token: str = "standin-airtable-token"
    base_id: str = "appStandIn0000001"
    rate_limit: int = 5  # requests in any second, per base
    user_rate_limit: int = 50  # requests in any second, per user, across bases and tokens
    cooldown_s: float = 30.0
    delay_s: float = 0.0  # how long each API request takes, as Airtable's do
    delay_max_s: float | None = None  # if set, each takes a random while from delay_s to this
    scopes: set[str] = field(default_factory=lambda: set(ALL_SCOPES))  # what the token was granted
    permission: str = "creator"  # the token's user on the base: "creator", "editor" or "read"
    offset_ttl_s: float = 60.0  # a list iterator unused this long has timed out (undocumented)
    clock_skew_s: float = 0.0  # moves the stand-in's clock (webhooks' expiry) forward
    tables: list[Table] = field(default_factory=default_tables)
    requests: list[dict[str, Any]] = field(default_factory=list)
    # Values a field refuses, as a real base does with a malformed email: (field name, value).
    refused_values: set[tuple[str, Any]] = field(default_factory=set)
    # Refusals to give instead of the real answer, for tests of a step failing midway: each
    # {"method", "path" (a part of it), "status", "kind", "skip": matching requests let through
    # first}, used once.
    faults: list[dict[str, Any]] = field(default_factory=list)
    # Set by the base's owner in the UI (`lock_table`, `lock_field`): ids of tables and fields the
    # API user may not write ("Errors", 403 INVALID_PERMISSIONS; `airtable_restrictions.py`).
    locked_tables: set[str] = field(default_factory=set)
    locked_fields: set[str] = field(default_factory=set)
    # Field id -> how many more writes naming it are told it is unknown (`flap_unknown_field`).
    unknown_for_a_while: dict[str, int] = field(default_factory=dict)
    # Run on its own, the stand-in keeps its tables in this file across restarts (`airtable_state.py`).
    state_file: Path | None = None
    _window: deque[float] = field(default_factory=deque)
    _user_window: deque[float] = field(default_factory=deque)
    _blocked_until: float = 0.0
    _iterators: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.hub = WebhookHub(self)
        if self.state_file is not None:
            self.tables = airtable_state.load(self.state_file) or self.tables

    # --- looking inside ---

    @property
    def webhooks(self) -> dict[str, Webhook]:
        return self.hub.webhooks

    @staticmethod
    def new_id(prefix: str) -> str:
        return airtable_schema.new_id(prefix)

    def table(self, key: str) -> Table:
        for t in self.tables:
            if key in (t.name, t.id):
                return t
        raise AirtableError(404, "TABLE_NOT_FOUND", f'Could not find table "{key}" in this base')

    def records(self, table: str) -> list[dict[str, Any]]:
        """Every record of a table, oldest first, as the API returns them."""
        t = self.table(table)
        return [render(t, r) for r in t.records.values()]

    def add_record(self, table: str, fields: dict[str, Any]) -> str:
        """Create a record as a person would in the UI (not rate-limited)."""
        t = self.table(table)
        with self.hub.action("client"):
            return self._create(t, validated(self, t, fields, typecast=True))["id"]

    def edit(self, table: str, changes: dict[str, dict[str, Any]]) -> None:
        """Edit cells as a person would in the UI: one action, however many records (a paste)."""
        t = self.table(table)
        with self.hub.action("client"):
            checked = {rid: validated(self, t, fields, typecast=True) for rid, fields in changes.items()}
            for record_id, fields in checked.items():
                update(self, t, record_id, fields, replace=False, single=True)

    def delete_record(self, table: str, record_id: str) -> None:
        """Delete a record as a person would in the UI."""
        t = self.table(table)
        with self.hub.action("client"):
            delete(self, t, [get(t, record_id)["id"]], single=True)

    def remove_field(self, table: str, name: str) -> None:
        """Delete a field, as a person can in the UI (webhooks watching it go into error)."""
        airtable_schema.remove_field(self, table, name)

    def rename_field(self, table: str, name: str, new_name: str) -> None:
        """Rename a field, as a person can in the UI: its id and its cells' values stay."""
        self.table(table).field(name).name = new_name

    def lock_table(self, table: str) -> None:
        """The base's owner limits the table's editing permissions (as "Using field and table
        editing permissions" lets them): the API user's writes to it are refused with 403
        INVALID_PERMISSIONS; reads go on."""
        self.locked_tables.add(self.table(table).id)

    def unlock_table(self, table: str) -> None:
        self.locked_tables.discard(self.table(table).id)

    def lock_field(self, table: str, name: str) -> None:
        """The base's owner limits a field's editing permissions: the API user's writes setting
        (or, with PUT, clearing) it are refused with 403 INVALID_PERMISSIONS."""
        self.locked_fields.add(self.table(table).field(name).id)

    def unlock_field(self, table: str, name: str) -> None:
        self.locked_fields.discard(self.table(table).field(name).id)

    def flap_unknown_field(self, table: str, name: str, times: int = 1) -> None:
        """The next `times` API writes naming the field are answered 422 UNKNOWN_FIELD_NAME
        (`Unknown field name: "X"`) while the schema still lists it: a reported transient, not a
        documented behaviour, for tests of a caller that must re-read the schema and retry."""
        field_id = self.table(table).field(name).id
        if times > 0:
            self.unknown_for_a_while[field_id] = times
        else:
            self.unknown_for_a_while.pop(field_id, None)

    def advance_clock(self, seconds: float) -> None:
        """Move the stand-in's clock forward (`clock_skew_s`): webhooks and their payloads age."""
        self.clock_skew_s += seconds

    def expire_iterators(self) -> None:
        """Every list offset handed out stops working, as after a restart of Airtable's servers."""
        self._iterators.clear()

    def write_requests(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["method"] in ("POST", "PATCH", "PUT", "DELETE")]

    def busiest(self, window_s: float = 1.0) -> int:
        """The most API requests that arrived within any `window_s` seconds (a sliding window; one
        second is how the rate limit counts them), refused ones included."""
        arrivals = sorted(r["arrived"] for r in self.requests)
        most, first = 0, 0
        for last, at in enumerate(arrivals):
            while arrivals[first] <= at - window_s:
                first += 1
            most = max(most, last - first + 1)
        return most

    # --- the API ---

    def _admit(self, request: Request) -> None:
        """Authentication, then the sliding-window rate limits: the base's and the user's."""
        auth = request.headers.get("authorization", "")
        if not auth.startswith("Bearer "):
            raise AirtableError(401, "AUTHENTICATION_REQUIRED", "Authentication required")
        if auth.removeprefix("Bearer ") != self.token:
            raise AirtableError(401, "AUTHENTICATION_REQUIRED", "Invalid authentication token")
        now = time.monotonic()
        if now < self._blocked_until:
            raise AirtableError(429, "RATE_LIMIT_REACHED", "Rate limit exceeded. Please try again later")
        for window, limit in ((self._window, self.rate_limit), (self._user_window, self.user_rate_limit)):
            while window and window[0] <= now - 1.0:
                window.popleft()
            if len(window) >= limit:
                self._blocked_until = now + self.cooldown_s
                raise AirtableError(429, "RATE_LIMIT_REACHED", "Rate limit exceeded. Please try again later")
        self._window.append(now)
        self._user_window.append(now)

    def _scope(self, request: Request) -> None:
        """The scope each endpoint needs ("Scopes"), and the user's permission on the base
        ("Permissions overview": records need an editor, fields a creator). Webhooks check their
        own (`airtable_webhook_api.route`)."""
        path, method = request.url.path, request.method
        if path.startswith("/v0/meta/whoami") or "/webhooks" in path:
            return
        if path.startswith("/v0/meta/"):
            needed, role = (
                ("schema.bases:write", {"creator"}) if method != "GET" else ("schema.bases:read", None)
            )
        elif method == "GET" or path.endswith("/listRecords"):
            needed, role = "data.records:read", None
        else:
            needed, role = "data.records:write", {"creator", "editor"}
        if needed not in self.scopes:
            raise AirtableError(
                403,
                "INVALID_PERMISSIONS_OR_MODEL_NOT_FOUND",
                "Invalid permissions, or the requested model was not found.",
            )
        if role is not None and self.permission not in role:
            raise AirtableError(403, "INVALID_PERMISSIONS", "You are not permitted to perform this operation")

    def _fault(self, request: Request) -> None:
        for fault in self.faults:
            if (
                fault.get("method", request.method) == request.method
                and fault.get("path", "") in request.url.path
            ):
                if fault.get("skip", 0) > 0:
                    fault["skip"] -= 1
                    return
                self.faults.remove(fault)
                raise AirtableError(
                    fault.get("status", 503), fault.get("kind", "SERVICE_UNAVAILABLE"), "injected"
                )

    def _base(self, request: Request) -> None:
        if "base" in request.path_params and request.path_params["base"] != self.base_id:
            raise AirtableError(
                403,
                "INVALID_PERMISSIONS_OR_MODEL_NOT_FOUND",
                "Invalid permissions, or the requested model was not found.",
            )

    async def handle(self, request: Request) -> Response:
        entry: dict[str, Any] = {
            "method": request.method,
            "path": request.url.path,
            "at": time.time(),
            "arrived": time.monotonic(),
            "records": 0,
        }
        self.requests.append(entry)
        try:
            self._admit(request)
            self._scope(request)
            self._base(request)
            self._fault(request)
            if self.delay_s or self.delay_max_s:
                await request.body()  # received in full: the write happens even if the caller goes away
                await asyncio.sleep(random.uniform(self.delay_s, self.delay_max_s or self.delay_s))
            with self.hub.action("publicApi"):  # one request, one action for the webhooks
                response = await self._route(request, entry)
        except AirtableError as error:
            response = error.response()
        entry["status"] = response.status_code
        entry["answered"] = time.monotonic()
        self._keep(request)
        return response

    def _keep(self, request: Request) -> None:
        """After a request that may have changed the tables, save them (when run on its own)."""
        if self.state_file is not None and request.method != "GET":
            airtable_state.save(self.state_file, self.tables)

    async def _route(self, request: Request, entry: dict[str, Any]) -> Response:
        path, method = request.url.path, request.method
        if path == "/v0/meta/whoami":
            # "Get user info": the scopes only for OAuth tokens, never for personal access tokens.
            return JSONResponse({"id": "usrStandIn0000001"})
        if "/webhooks" in path:
            # Refresh takes no body ("Refresh a webhook"); create and enableNotifications take JSON.
            body = await json_body(request) if method == "POST" and await request.body() else None
            answer = webhook_api.route(
                self.hub,
                method,
                request.path_params.get("hook"),
                request.path_params.get("action"),
                request.query_params,
                body,
            )
            # "This endpoint returns an empty response on success" (delete, enableNotifications).
            return Response(status_code=200) if answer is None else JSONResponse(answer)
        if (
            path.endswith("/fields")
            or (path.endswith("/tables") and method == "POST")
            or path.startswith("/v0/meta/")
        ):
            return await airtable_schema.answer(self, request)
        return await airtable_records.answer(self, request, entry)

    # Methods, not plain calls of the functions, so that a test can wrap them (an answer lost on
    # the way back, an offset expiring between pages).

    def _create(self, table: Table, fields: dict[str, Any]) -> dict[str, Any]:
        return airtable_records.create(self, table, fields)

    def _write(
        self, table: Table, records: list[Any], upsert: Any, typecast: bool, replace: bool
    ) -> dict[str, Any]:
        return airtable_records.write(self, table, records, upsert, typecast, replace)

    def _list(self, table: Table, params: dict[str, Any]) -> dict[str, Any]:
        return list_page(table, params, self._iterators, self.offset_ttl_s)

    # --- control, for tests, the demo and benchmarks in other processes ---

    async def _control(self, request: Request) -> Response:
        """A person's actions in the UI: add a record, edit cells (one record, or a paste into
        many: `{"records": [{"id", "fields"}]}`), delete a record."""
        try:
            table = self.table(request.path_params["table"])
            record_id = request.path_params.get("record")
            if request.method == "GET":
                return JSONResponse({"records": self.records(table.name)})
            body = await request.json() if request.method in ("POST", "PATCH") else {}
            if request.method == "POST":
                return JSONResponse({"id": self.add_record(table.name, body["fields"])})
            if request.method == "PATCH" and record_id is None:
                self.edit(table.name, {r["id"]: r["fields"] for r in body["records"]})
                return JSONResponse(
                    {"records": [render(table, get(table, r["id"])) for r in body["records"]]}
                )
            if request.method == "PATCH":
                self.edit(table.name, {record_id: body["fields"]})
                return JSONResponse(render(table, get(table, record_id)))
            self.delete_record(table.name, record_id)
            return JSONResponse({"id": record_id, "deleted": True})
        except AirtableError as error:
            return error.response()
        finally:
            self._keep(request)

    async def _requests(self, _request: Request) -> JSONResponse:
        return JSONResponse({"requests": self.requests})

    async def _settings(self, request: Request) -> JSONResponse:
        """Limits, the token (a revoked one is answered 401) and its permission, the clock
        (webhooks' and payloads' expiry), offsets' lifetime."""
        body = await request.json()
        self.rate_limit = int(body.get("rate_limit", self.rate_limit))
        self.cooldown_s = float(body.get("cooldown_s", self.cooldown_s))
        self.token = str(body.get("token", self.token))
        self.permission = str(body.get("permission", self.permission))
        self.clock_skew_s = float(body.get("clock_skew_s", self.clock_skew_s))
        self.offset_ttl_s = float(body.get("offset_ttl_s", self.offset_ttl_s))
        names = ("rate_limit", "cooldown_s", "token", "permission", "clock_skew_s", "offset_ttl_s")
        return JSONResponse({name: getattr(self, name) for name in names})

    async def _lock(self, request: Request) -> JSONResponse:
        """The base's owner locks (PUT) or unlocks (DELETE) a table or one of its fields."""
        table, name = request.path_params["table"], request.path_params.get("field")
        locking = request.method == "PUT"
        try:
            if name is None:
                (self.lock_table if locking else self.unlock_table)(table)
            else:
                (self.lock_field if locking else self.unlock_field)(table, name)
        except AirtableError as error:
            return error.response()
        return JSONResponse({"locked": locking})

    async def _unknown_for_a_while(self, request: Request) -> JSONResponse:
        """`{"times": N}`: the next N API writes naming the field are told it is unknown."""
        body = await request.json()
        times = int(body.get("times", 1)) if isinstance(body, dict) else 1
        try:
            self.flap_unknown_field(request.path_params["table"], request.path_params["field"], times)
        except AirtableError as error:
            return error.response()
        return JSONResponse({"times": times})

    async def _delete_field(self, request: Request) -> JSONResponse:
        """A person deletes a field in the UI (a webhook watching it goes into its error state)."""
        try:
            table = self.table(request.path_params["table"])
            table.field(request.path_params["field"])
        except AirtableError as error:
            return error.response()
        self.remove_field(table.name, table.field(request.path_params["field"]).name)
        return JSONResponse({"deleted": True})

    def app(self) -> Starlette:
        api = ["GET", "POST", "PATCH", "PUT", "DELETE"]
        return Starlette(
            routes=[
                Route("/v0/meta/whoami", self.handle, methods=["GET"]),
                Route("/v0/bases/{base}/webhooks", self.handle, methods=["GET", "POST"]),
                Route("/v0/bases/{base}/webhooks/{hook}", self.handle, methods=["DELETE"]),
                Route("/v0/bases/{base}/webhooks/{hook}/{action}", self.handle, methods=["GET", "POST"]),
                Route("/v0/meta/bases/{base}/tables", self.handle, methods=["GET", "POST"]),
                Route("/v0/meta/bases/{base}/tables/{table}/fields", self.handle, methods=["POST"]),
                Route("/v0/{base}/{table}", self.handle, methods=api),
                Route("/v0/{base}/{table}/{record}", self.handle, methods=api),
                Route("/_standin/requests", self._requests, methods=["GET"]),
                Route("/_standin/settings", self._settings, methods=["PUT"]),
                Route("/_standin/tables/{table}/fields/{field}", self._delete_field, methods=["DELETE"]),
                Route("/_standin/tables/{table}/lock", self._lock, methods=["PUT", "DELETE"]),
                Route("/_standin/tables/{table}/fields/{field}/lock", self._lock, methods=["PUT", "DELETE"]),
                Route(
                    "/_standin/tables/{table}/fields/{field}/unknown",
                    self._unknown_for_a_while,
                    methods=["POST"],
                ),
                Route("/_standin/tables/{table}/records", self._control, methods=["GET", "POST", "PATCH"]),
                Route(
                    "/_standin/tables/{table}/records/{record}", self._control, methods=["PATCH", "DELETE"]
                ),
            ]
        )
