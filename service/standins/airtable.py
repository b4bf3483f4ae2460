"""A stand-in for the Airtable Web API, keeping the rules that real Airtable enforces.

Rules kept (a stand-in that accepts what Airtable refuses hides the bugs users will hit):
bearer token; at most 10 records per write; at most `rate_limit` requests in any sliding second
per base (reads too), else 429 and the base blocked for `cooldown_s`; 422 `UNKNOWN_FIELD_NAME`;
values checked against the field type (select options, numbers, checkboxes, dates, emails);
links as arrays of existing record ids (else 422 `ROW_DOES_NOT_EXIST`); PATCH merges and PUT
replaces; `performUpsert` with `fieldsToMergeOn` (no match creates, one updates, more is a 422);
each write request applied whole or not at all; empty values left out of answers.

Besides the API (`/v0/…`), `/_standin/…` lets tests and the demo look inside and act as a person
would in the Airtable UI (edit a cell, delete a row) without being rate-limited.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import hashlib
import hmac
import json
import random
import string
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from .formulas import FormulaError, compile_formula

MAX_RECORDS_PER_WRITE = 10
ALL_SCOPES = frozenset(
    {
        "data.records:read",
        "data.records:write",
        "schema.bases:read",
        "schema.bases:write",
        "webhook:manage",
    }
)
_FIELD_TYPES = {
    "singleLineText",
    "multilineText",
    "richText",
    "phoneNumber",
    "email",
    "url",
    "number",
    "checkbox",
    "date",
    "dateTime",
    "singleSelect",
    "multipleSelects",
    "multipleRecordLinks",
}
_TEXT_TYPES = {"singleLineText", "multilineText", "phoneNumber", "richText", "url"}
_COMPUTED_TYPES = {
    "formula",
    "createdTime",
    "lastModifiedTime",
    "autoNumber",
    "rollup",
    "count",
    "multipleLookupValues",
}


class AirtableError(Exception):
    def __init__(self, status: int, kind: str, message: str = "") -> None:
        super().__init__(message or kind)
        self.status, self.kind, self.message = status, kind, message

    def response(self) -> JSONResponse:
        error: dict[str, str] = {"type": self.kind}
        if self.message:
            error["message"] = self.message
        return JSONResponse({"error": error}, status_code=self.status)


# Not the `random` module's shared state: a test framework may seed it (hypothesis does, for
# every example), and two records with one id would overwrite each other.
_IDS = random.SystemRandom()


def _new_id(prefix: str) -> str:
    return prefix + "".join(_IDS.choices(string.ascii_letters + string.digits, k=14))


@dataclass
class Field:
    name: str
    type: str
    options: dict[str, Any] = field(default_factory=dict)
    id: str = field(default_factory=lambda: _new_id("fld"))

    def schema(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "name": self.name, "type": self.type}
        if self.options:
            out["options"] = copy.deepcopy(self.options)
        return out


@dataclass
class Table:
    name: str
    fields: list[Field]
    id: str = field(default_factory=lambda: _new_id("tbl"))
    records: dict[str, dict[str, Any]] = field(default_factory=dict)

    def field(self, key: str) -> Field:
        for f in self.fields:
            if key in (f.name, f.id):
                return f
        raise AirtableError(422, "UNKNOWN_FIELD_NAME", f'Unknown field name: "{key}"')

    def schema(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "primaryFieldId": self.fields[0].id,
            "fields": [f.schema() for f in self.fields],
            "views": [],
        }


def _select(*names: str) -> dict[str, Any]:
    return {"choices": [{"id": _new_id("sel"), "name": n} for n in names]}


def _link(table_id: str) -> dict[str, Any]:
    return {"linkedTableId": table_id, "isReversed": False, "prefersSingleRecordLink": False}


def default_tables() -> list[Table]:
    """The Companies and Contacts tables the design describes, plus fields people edit."""
    companies = Table(
        "Companies",
        [
            Field("Company Name", "singleLineText"),
            Field("CIN", "singleLineText"),
            Field(
                "Contacts Sync Status",
                "singleSelect",
                _select("Queued", "Running", "Waiting", "Synced", "No Data", "Failed"),
            ),
            Field("Contacts Sync Error", "multilineText"),
            Field("Contacts Synced At", "dateTime", {"timeZone": "utc", "dateFormat": {"name": "iso"}}),
            Field("Contacts Found", "number", {"precision": 0}),
            Field("Refresh Contacts", "checkbox"),
            Field("Notes", "multilineText"),
        ],
    )
    contacts = Table(
        "Contacts",
        [
            Field("Name", "singleLineText"),
            Field("Phone Number", "phoneNumber"),
            Field("Email", "email"),
            Field("DIN", "singleLineText"),
            Field("Address", "multilineText"),
            Field("Company", "multipleRecordLinks", _link(companies.id)),
            Field("Contact Key", "singleLineText"),
            Field("Phone Type", "singleSelect", _select("Mobile", "Landline")),
            Field("Status", "singleSelect", _select("New", "Contacted", "Interested", "Not interested")),
            Field("Notes", "multilineText"),
        ],
    )
    return [companies, contacts]


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _in_days(days: int) -> str:
    return (datetime.now(timezone.utc) + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _is_empty(value: Any) -> bool:
    return value is None or value == "" or value is False or value == []


@dataclass
class AirtableStandIn:
    token: str = "standin-airtable-token"
    base_id: str = "appStandIn0000001"
    rate_limit: int = 5
    cooldown_s: float = 30.0
    delay_s: float = 0.0  # how long each API request takes, as Airtable's do
    scopes: set[str] = field(default_factory=lambda: set(ALL_SCOPES))  # what the token was granted
    webhooks: dict[str, dict[str, Any]] = field(default_factory=dict)
    pings: list[dict[str, Any]] = field(default_factory=list)
    tables: list[Table] = field(default_factory=default_tables)
    requests: list[dict[str, Any]] = field(default_factory=list)
    # Values a field refuses, as a real base does with a malformed email: (field name, value).
    refused_values: set[tuple[str, Any]] = field(default_factory=set)
    _window: deque[float] = field(default_factory=deque)
    _blocked_until: float = 0.0

    # --- looking inside ---

    def table(self, key: str) -> Table:
        for t in self.tables:
            if key in (t.name, t.id):
                return t
        raise AirtableError(404, "TABLE_NOT_FOUND", f'Could not find table "{key}" in this base')

    def records(self, table: str) -> list[dict[str, Any]]:
        """Every record of a table, oldest first, as the API returns them."""
        t = self.table(table)
        return [self._render(t, r) for r in t.records.values()]

    def add_record(self, table: str, fields: dict[str, Any]) -> str:
        """Create a record as a person would in the UI (not rate-limited)."""
        t = self.table(table)
        return self._create(t, self._validated(t, fields, typecast=True))["id"]

    def write_requests(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["method"] in ("POST", "PATCH", "PUT", "DELETE")]

    # --- the API ---

    def _admit(self, request: Request) -> None:
        """Authentication, then the per-base sliding-window rate limit."""
        auth = request.headers.get("authorization", "")
        if not auth.startswith("Bearer "):
            raise AirtableError(401, "AUTHENTICATION_REQUIRED", "Authentication required")
        if auth.removeprefix("Bearer ") != self.token:
            raise AirtableError(401, "AUTHENTICATION_REQUIRED", "Invalid authentication token")
        now = time.monotonic()
        if now < self._blocked_until:
            raise AirtableError(429, "RATE_LIMIT_REACHED", "Rate limit exceeded. Please try again later")
        while self._window and self._window[0] <= now - 1.0:
            self._window.popleft()
        if len(self._window) >= self.rate_limit:
            self._blocked_until = now + self.cooldown_s
            raise AirtableError(429, "RATE_LIMIT_REACHED", "Rate limit exceeded. Please try again later")
        self._window.append(now)

    def _scope(self, request: Request) -> None:
        path, method = request.url.path, request.method
        if path.startswith("/v0/meta/whoami"):
            return
        if "/webhooks" in path:
            needed = "webhook:manage"
            if needed not in self.scopes:
                raise AirtableError(
                    403,
                    "INVALID_PERMISSIONS_OR_MODEL_NOT_FOUND",
                    "Invalid permissions, or the requested model was not found.",
                )
            return
        if path.startswith("/v0/meta/"):
            needed = "schema.bases:write" if method != "GET" else "schema.bases:read"
        else:
            needed = (
                "data.records:read"
                if method == "GET" or path.endswith("/listRecords")
                else "data.records:write"
            )
        if needed not in self.scopes:
            raise AirtableError(
                403,
                "INVALID_PERMISSIONS_OR_MODEL_NOT_FOUND",
                "Invalid permissions, or the requested model was not found.",
            )

    def _base(self, request: Request) -> None:
        if "base" in request.path_params and request.path_params["base"] != self.base_id:
            raise AirtableError(
                403,
                "INVALID_PERMISSIONS_OR_MODEL_NOT_FOUND",
                "Invalid permissions, or the requested model was not found.",
            )

    async def handle(self, request: Request) -> JSONResponse:
        entry: dict[str, Any] = {
            "method": request.method,
            "path": request.url.path,
            "at": time.time(),
            "records": 0,
        }
        self.requests.append(entry)
        try:
            self._admit(request)
            self._scope(request)
            self._base(request)
            if self.delay_s:
                await request.body()  # received in full: the write happens even if the caller goes away
                await asyncio.sleep(self.delay_s)
            response = await self._route(request, entry)
        except AirtableError as error:
            response = error.response()
        entry["status"] = response.status_code
        return response

    async def _route(self, request: Request, entry: dict[str, Any]) -> JSONResponse:
        if request.url.path == "/v0/meta/whoami":
            return JSONResponse({"id": "usrStandIn0000001"})
        if "/webhooks" in request.url.path:
            body = (
                await self._json(request)
                if request.method == "POST" and "hook" not in request.path_params
                else None
            )
            return self._webhooks(request, body)
        if request.url.path.endswith("/fields"):
            return JSONResponse(
                self._create_field(self.table(request.path_params["table"]), await self._json(request))
            )
        if request.url.path.startswith("/v0/meta/"):
            return JSONResponse({"tables": [t.schema() for t in self.tables]})
        table = self.table(request.path_params["table"])
        record_id = request.path_params.get("record")
        method = request.method
        if method == "GET" and record_id:
            return JSONResponse(self._render(table, self._get(table, record_id)))
        if method == "GET" or (method == "POST" and record_id == "listRecords"):
            params = dict(request.query_params) if method == "GET" else await self._json(request)
            return JSONResponse(self._list(table, params))
        if method == "DELETE":
            ids = [record_id] if record_id else request.query_params.getlist("records[]")
            entry["records"] = len(ids)
            return JSONResponse(self._delete(table, ids, single=bool(record_id)))
        body = await self._json(request)
        typecast = body.get("typecast") is True
        if record_id:  # one record: PATCH/PUT /table/rec…
            entry["records"] = 1
            fields = self._validated(table, body.get("fields"), typecast)
            return JSONResponse(
                self._render(table, self._update(table, record_id, fields, method == "PUT", single=True))
            )
        if "records" not in body:  # POST with a single {"fields": …}
            if method != "POST":
                raise AirtableError(422, "INVALID_REQUEST_MISSING_FIELDS", 'Could not find field "records"')
            entry["records"] = 1
            return JSONResponse(
                self._render(table, self._create(table, self._validated(table, body.get("fields"), typecast)))
            )
        records = body["records"]
        if not isinstance(records, list) or not records:
            raise AirtableError(422, "INVALID_RECORDS", "records must be a non-empty array")
        entry["records"] = len(records)
        if len(records) > MAX_RECORDS_PER_WRITE:
            raise AirtableError(
                422, "INVALID_RECORDS", f"You can write at most {MAX_RECORDS_PER_WRITE} records per request"
            )
        if method == "POST":
            validated = [
                self._validated(table, r.get("fields") if isinstance(r, dict) else None, typecast)
                for r in records
            ]
            return JSONResponse({"records": [self._render(table, self._create(table, f)) for f in validated]})
        return JSONResponse(
            self._write(table, records, body.get("performUpsert"), typecast, replace=method == "PUT")
        )

    @staticmethod
    async def _json(request: Request) -> dict[str, Any]:
        try:
            body = await request.json()
        except ValueError:
            raise AirtableError(
                422, "INVALID_REQUEST_UNKNOWN", "Invalid request: parameter validation failed"
            ) from None
        if not isinstance(body, dict):
            raise AirtableError(
                422, "INVALID_REQUEST_UNKNOWN", "Invalid request: parameter validation failed"
            )
        return body

    def _create_field(self, table: Table, body: dict[str, Any]) -> dict[str, Any]:
        name, kind, options = body.get("name"), body.get("type"), body.get("options") or {}
        if not isinstance(name, str) or not name.strip() or any(f.name == name for f in table.fields):
            raise AirtableError(
                422, "DUPLICATE_OR_EMPTY_FIELD_NAME", f'Field name "{name}" is empty or already used'
            )
        if kind not in _FIELD_TYPES:
            raise AirtableError(422, "INVALID_FIELD_TYPE", f'Field type "{kind}" cannot be created')
        if kind in ("singleSelect", "multipleSelects"):
            choices = options.get("choices") if isinstance(options, dict) else None
            options = {"choices": [{"id": _new_id("sel"), "name": c["name"]} for c in choices or []]}
        if kind == "multipleRecordLinks":
            linked = options.get("linkedTableId") if isinstance(options, dict) else None
            if not any(t.id == linked for t in self.tables):
                raise AirtableError(
                    422, "INVALID_FIELD_TYPE_OPTIONS_FOR_CREATE", "linkedTableId must name a table"
                )
        if kind == "multipleRecordLinks":
            options = _link(options["linkedTableId"])
        created = Field(name, kind, options if isinstance(options, dict) else {})
        table.fields.append(created)
        return created.schema()

    def remove_field(self, table: str, name: str) -> None:
        """Delete a field, as a person can in the UI."""
        t = self.table(table)
        t.fields = [f for f in t.fields if f.name != name]

    # --- records ---

    def _get(self, table: Table, record_id: str) -> dict[str, Any]:
        if record_id not in table.records:
            raise AirtableError(404, "NOT_FOUND", "Could not find what you are looking for")
        return table.records[record_id]

    def _render(self, table: Table, record: dict[str, Any], by_id: bool = False) -> dict[str, Any]:
        fields = {}
        for f in table.fields:
            value = record["fields"].get(f.id)
            if not _is_empty(value):
                fields[f.id if by_id else f.name] = copy.deepcopy(value)
        return {"id": record["id"], "createdTime": record["createdTime"], "fields": fields}

    def _list(self, table: Table, params: dict[str, Any]) -> dict[str, Any]:
        page_size = min(int(params.get("pageSize") or 100), 100)
        offset = int(params.get("offset") or 0)
        records = list(table.records.values())
        formula = params.get("filterByFormula")
        if formula:
            try:
                matches = compile_formula(formula)
            except FormulaError as exc:
                raise AirtableError(
                    422, "INVALID_FILTER_BY_FORMULA", f"The formula for filtering records is invalid: {exc}"
                ) from None
            by_name = {f.name: f.id for f in table.fields}
            records = [
                r for r in records if matches(lambda name, r=r: r["fields"].get(by_name.get(name, "")))
            ]
        max_records = params.get("maxRecords")
        if max_records:
            records = records[: int(max_records)]
        page = records[offset : offset + page_size]
        out: dict[str, Any] = {"records": [self._render(table, r) for r in page]}
        if offset + page_size < len(records):
            out["offset"] = str(offset + page_size)
        return out

    def _create(self, table: Table, fields: dict[str, Any]) -> dict[str, Any]:
        record = {
            "id": _new_id("rec"),
            "fields": fields,
            "createdTime": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        }
        table.records[record["id"]] = record
        self._record_changed(table, record["id"], None, fields)
        return record

    def _update(
        self, table: Table, record_id: str, fields: dict[str, Any], replace: bool, single: bool = False
    ) -> dict[str, Any]:
        if record_id not in table.records:
            if single:
                raise AirtableError(404, "NOT_FOUND", "Could not find what you are looking for")
            raise AirtableError(
                422, "ROW_DOES_NOT_EXIST", f"Record ID {record_id} does not exist in this table"
            )
        record = table.records[record_id]
        before = record["fields"]
        record["fields"] = dict(fields) if replace else {**record["fields"], **fields}
        self._record_changed(table, record_id, before, record["fields"])
        return record

    # --- webhooks: payloads for changes to watched fields, and a signed ping for each ---

    def _record_changed(
        self, table: Table, record_id: str, before: dict[str, Any] | None, after: dict[str, Any]
    ) -> None:
        for hook in self.webhooks.values():
            options = hook["specification"]["options"]
            if options["filters"].get("recordChangeScope") not in (None, table.id):
                continue
            watched = options["filters"].get("watchDataInFieldIds") or [f.id for f in table.fields]
            included = (options.get("includes") or {}).get("includeCellValuesInFieldIds") or []
            old = before or {}
            changed = [
                f
                for f in watched
                if after.get(f) != old.get(f) and not (_is_empty(after.get(f)) and _is_empty(old.get(f)))
            ]

            if not changed:
                continue
            cells = {f: after.get(f) for f in {*changed, *included} if not _is_empty(after.get(f))}
            change: dict[str, Any]
            if before is None:
                change = {
                    "createdRecordsById": {record_id: {"createdTime": _now(), "cellValuesByFieldId": cells}}
                }
            else:
                change = {
                    "changedRecordsById": {
                        record_id: {
                            "current": {"cellValuesByFieldId": cells},
                            "previous": {"cellValuesByFieldId": {f: old.get(f) for f in changed}},
                            "unchanged": {"cellValuesByFieldId": {}},
                        }
                    }
                }
            hook["payloads"].append(
                {
                    "timestamp": _now(),
                    "baseTransactionNumber": len(hook["payloads"]) + 1,
                    "payloadFormat": "v0",
                    "actionMetadata": {"source": "client", "sourceMetadata": {}},
                    "changedTablesById": {table.id: change},
                }
            )
            self._ping(hook)

    def _ping(self, hook: dict[str, Any]) -> None:
        body = json.dumps(
            {"base": {"id": self.base_id}, "webhook": {"id": hook["id"]}, "timestamp": _now()}
        ).encode()
        mac = hmac.new(base64.b64decode(hook["macSecretBase64"]), body, hashlib.sha256).hexdigest()
        self.pings.append({"webhook": hook["id"], "at": time.time()})

        def send() -> None:  # from a thread of its own, as Airtable's servers would, whoever made the change
            with contextlib.suppress(httpx.HTTPError):
                httpx.post(
                    hook["notificationUrl"],
                    content=body,
                    timeout=10,
                    headers={
                        "Content-Type": "application/json",
                        "X-Airtable-Content-MAC": f"hmac-sha256={mac}",
                    },
                )

        threading.Thread(target=send, daemon=True).start()

    def _webhooks(self, request: Request, body: dict[str, Any] | None) -> JSONResponse:
        """Create, list, read payloads of, refresh and delete webhooks."""
        hook_id, action = request.path_params.get("hook"), request.path_params.get("action")
        if hook_id is None:
            if request.method == "GET":
                return JSONResponse(
                    {
                        "webhooks": [
                            {
                                "id": h["id"],
                                "areNotificationsEnabled": True,
                                "cursorForNextPayload": len(h["payloads"]) + 1,
                                "expirationTime": h["expirationTime"],
                                "notificationUrl": h["notificationUrl"],
                                "specification": h["specification"],
                                "isHookEnabled": True,
                                "lastNotificationResult": None,
                                "lastSuccessfulNotificationTime": None,
                            }
                            for h in self.webhooks.values()
                        ]
                    }
                )
            body = body or {}
            spec = body.get("specification")
            if (
                not isinstance(body.get("notificationUrl"), str)
                or not isinstance(spec, dict)
                or "options" not in spec
            ):
                raise AirtableError(
                    422, "INVALID_REQUEST_UNKNOWN", "notificationUrl and specification are required"
                )
            hook = {
                "id": _new_id("ach"),
                "notificationUrl": body["notificationUrl"],
                "specification": spec,
                "macSecretBase64": base64.b64encode(random.randbytes(32)).decode(),
                "expirationTime": _in_days(7),
                "payloads": [],
            }
            self.webhooks[hook["id"]] = hook
            return JSONResponse(
                {
                    "id": hook["id"],
                    "macSecretBase64": hook["macSecretBase64"],
                    "expirationTime": hook["expirationTime"],
                }
            )
        hook = self.webhooks.get(hook_id)
        if hook is None:
            raise AirtableError(404, "NOT_FOUND", "Could not find what you are looking for")
        if request.method == "DELETE":
            del self.webhooks[hook_id]
            return JSONResponse({})
        if action == "refresh":
            hook["expirationTime"] = _in_days(7)
            return JSONResponse({"expirationTime": hook["expirationTime"]})
        cursor = max(1, int(request.query_params.get("cursor") or 1))
        limit = min(50, int(request.query_params.get("limit") or 50))
        page = hook["payloads"][cursor - 1 : cursor - 1 + limit]
        return JSONResponse(
            {
                "payloads": page,
                "cursor": cursor + len(page),
                "mightHaveMore": cursor - 1 + limit < len(hook["payloads"]),
            }
        )

    def _delete(self, table: Table, ids: list[str], single: bool) -> dict[str, Any]:
        if len(ids) > MAX_RECORDS_PER_WRITE:
            raise AirtableError(
                422, "INVALID_RECORDS", f"You can delete at most {MAX_RECORDS_PER_WRITE} records per request"
            )
        for record_id in ids:
            if single:
                self._get(table, record_id)
            elif record_id not in table.records:
                raise AirtableError(
                    422, "ROW_DOES_NOT_EXIST", f"Record ID {record_id} does not exist in this table"
                )
        for record_id in ids:
            del table.records[record_id]
        deleted = [{"id": i, "deleted": True} for i in ids]
        return deleted[0] if single else {"records": deleted}

    def _write(
        self, table: Table, records: list[Any], upsert: Any, typecast: bool, replace: bool
    ) -> dict[str, Any]:
        """PATCH/PUT of up to ten records, with or without performUpsert: checked whole, then applied."""
        merge_on: list[Field] = []
        if upsert is not None:
            keys = upsert.get("fieldsToMergeOn") if isinstance(upsert, dict) else None
            if not isinstance(keys, list) or not keys or not all(isinstance(k, str) for k in keys):
                raise AirtableError(
                    422,
                    "INVALID_REQUEST_UNKNOWN",
                    "performUpsert.fieldsToMergeOn must be a non-empty array of field names",
                )
            merge_on = [table.field(k) for k in keys]
        plan: list[tuple[str | None, dict[str, Any]]] = []
        seen_keys: set[tuple[Any, ...]] = set()
        for item in records:
            if not isinstance(item, dict):
                raise AirtableError(422, "INVALID_RECORDS", "Each record must be an object")
            fields = self._validated(table, item.get("fields"), typecast)
            record_id = item.get("id")
            if record_id is not None:
                if not isinstance(record_id, str) or record_id not in table.records:
                    raise AirtableError(
                        422, "ROW_DOES_NOT_EXIST", f"Record ID {record_id} does not exist in this table"
                    )
                plan.append((record_id, fields))
                continue
            if not merge_on:
                raise AirtableError(422, "INVALID_RECORDS", "Each record to update needs an id")
            if any(_is_empty(fields.get(f.id)) for f in merge_on):
                raise AirtableError(
                    422,
                    "INVALID_VALUE_FOR_COLUMN",
                    "Each record needs a value for every field of fieldsToMergeOn",
                )
            key = tuple(repr(fields[f.id]) for f in merge_on)
            if key in seen_keys:
                raise AirtableError(
                    422, "INVALID_RECORDS", "Two records of the request have the same fieldsToMergeOn values"
                )
            seen_keys.add(key)
            matches = [
                r["id"]
                for r in table.records.values()
                if tuple(repr(r["fields"].get(f.id)) for f in merge_on) == key
            ]
            if len(matches) > 1:
                raise AirtableError(
                    422,
                    "INVALID_VALUE_FOR_COLUMN",
                    f"{len(matches)} records match the fieldsToMergeOn values of one record",
                )
            plan.append((matches[0] if matches else None, fields))
        out: dict[str, Any] = {"records": []}
        if merge_on:
            out["createdRecords"], out["updatedRecords"] = [], []
        for record_id, fields in plan:
            if record_id is None:
                record = self._create(table, fields)
                out["createdRecords"].append(record["id"])
            else:
                record = self._update(table, record_id, fields, replace)
                if merge_on:
                    out["updatedRecords"].append(record_id)
            out["records"].append(self._render(table, record))
        return out

    # --- values ---

    def _validated(self, table: Table, fields: Any, typecast: bool) -> dict[str, Any]:
        """Field values keyed by field id, every one checked against its field's type."""
        if fields is None:
            fields = {}
        if not isinstance(fields, dict):
            raise AirtableError(422, "INVALID_REQUEST_UNKNOWN", "fields must be an object")
        return {(f := table.field(key)).id: self._value(f, value, typecast) for key, value in fields.items()}

    def _value(self, f: Field, value: Any, typecast: bool) -> Any:
        def refuse() -> AirtableError:
            return AirtableError(
                422, "INVALID_VALUE_FOR_COLUMN", f'Field "{f.name}" cannot accept the provided value'
            )

        if f.type in _COMPUTED_TYPES:
            raise AirtableError(
                422,
                "INVALID_VALUE_FOR_COLUMN",
                f'Field "{f.name}" cannot accept a value because the field is computed',
            )
        if value is None:
            return None
        if isinstance(value, str) and (f.name, value) in self.refused_values:
            raise refuse()
        if f.type in _TEXT_TYPES:
            if not isinstance(value, str):
                if typecast and isinstance(value, int | float):
                    return str(value)
                raise refuse()
            return value
        if f.type == "email":
            if not isinstance(value, str) or (value and "@" not in value):
                raise refuse()
            return value
        if f.type == "number":
            if isinstance(value, str) and typecast:
                try:
                    return float(value)
                except ValueError:
                    raise refuse() from None
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise refuse()
            return value
        if f.type == "checkbox":
            if not isinstance(value, bool):
                raise refuse()
            return value
        if f.type in ("dateTime", "date"):
            if not isinstance(value, str):
                raise refuse()
            try:
                datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                raise refuse() from None
            return value
        if f.type == "singleSelect":
            if not isinstance(value, str):
                raise refuse()
            names = [c["name"] for c in f.options["choices"]]
            if value and value not in names:
                if not typecast:
                    raise AirtableError(
                        422,
                        "INVALID_MULTIPLE_CHOICE_OPTIONS",
                        f'Insufficient permissions to create new select option ""{value}""',
                    )
                f.options["choices"].append({"id": _new_id("sel"), "name": value})
            return value
        if f.type == "multipleRecordLinks":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise refuse()
            linked = next(t for t in self.tables if t.id == f.options["linkedTableId"])
            for record_id in value:
                if record_id not in linked.records:
                    raise AirtableError(
                        422, "ROW_DOES_NOT_EXIST", f"Record ID {record_id} does not exist in this table"
                    )
            return list(dict.fromkeys(value))
        return value

    # --- control, for tests, the demo and benchmarks in other processes ---

    async def _control(self, request: Request) -> JSONResponse:
        try:
            table = self.table(request.path_params["table"])
            record_id = request.path_params.get("record")
            if request.method == "GET":
                return JSONResponse({"records": self.records(table.name)})
            if request.method == "POST":
                return JSONResponse({"id": self.add_record(table.name, (await request.json())["fields"])})
            if request.method == "PATCH":
                fields = self._validated(table, (await request.json())["fields"], typecast=True)
                return JSONResponse(
                    self._render(table, self._update(table, record_id, fields, False, single=True))
                )
            del table.records[self._get(table, record_id)["id"]]
            return JSONResponse({"id": record_id, "deleted": True})
        except AirtableError as error:
            return error.response()

    async def _requests(self, _request: Request) -> JSONResponse:
        return JSONResponse({"requests": self.requests})

    async def _settings(self, request: Request) -> JSONResponse:
        body = await request.json()
        self.rate_limit = int(body.get("rate_limit", self.rate_limit))
        self.cooldown_s = float(body.get("cooldown_s", self.cooldown_s))
        return JSONResponse({"rate_limit": self.rate_limit, "cooldown_s": self.cooldown_s})

    def app(self) -> Starlette:
        api = ["GET", "POST", "PATCH", "PUT", "DELETE"]
        return Starlette(
            routes=[
                Route("/v0/meta/whoami", self.handle, methods=["GET"]),
                Route("/v0/bases/{base}/webhooks", self.handle, methods=["GET", "POST"]),
                Route("/v0/bases/{base}/webhooks/{hook}", self.handle, methods=["DELETE"]),
                Route("/v0/bases/{base}/webhooks/{hook}/{action}", self.handle, methods=["GET", "POST"]),
                Route("/v0/meta/bases/{base}/tables", self.handle, methods=["GET"]),
                Route("/v0/meta/bases/{base}/tables/{table}/fields", self.handle, methods=["POST"]),
                Route("/v0/{base}/{table}", self.handle, methods=api),
                Route("/v0/{base}/{table}/{record}", self.handle, methods=api),
                Route("/_standin/requests", self._requests, methods=["GET"]),
                Route("/_standin/settings", self._settings, methods=["PUT"]),
                Route("/_standin/tables/{table}/records", self._control, methods=["GET", "POST"]),
                Route(
                    "/_standin/tables/{table}/records/{record}", self._control, methods=["PATCH", "DELETE"]
                ),
            ]
        )
