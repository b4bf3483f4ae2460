"""A stand-in for the Airtable Web API, keeping the rules that real Airtable enforces.

A stand-in that accepts what Airtable refuses hides the bugs users will hit. Each rule comes
from Airtable's documentation (https://airtable.com/developers/web/api/…, page named below);
where it is silent, the stricter behaviour is kept and marked "undocumented".

* Authentication: a bearer token ("Authentication"); scopes per endpoint ("Scopes"); the
  token's user's permission on the base: writes need an editor, schema changes a creator.
* "Rate limits": 5 requests per second per base, and "50 requests per second for all traffic
  using personal access tokens from a given user"; then 429 and a wait (30 s; `cooldown_s`).
* Writes ("Create records", "Update multiple records"): at most 10 records; PATCH merges, PUT
  replaces; `performUpsert.fieldsToMergeOn` (no match creates, one updates, several fail); each
  request applied whole or not at all; 422 `UNKNOWN_FIELD_NAME`; values checked against the
  field's type; links are arrays of existing record ids (else 422 `ROW_DOES_NOT_EXIST`).
* `typecast` ("Update multiple records": "best-effort automatic data conversion"): a select
  value that is not an option becomes a new option ("Field types and cell values") but only for
  a creator, who may customise fields (else 422 `INVALID_MULTIPLE_CHOICE_OPTIONS`, as Airtable
  answers editors: airtable.js#138); a link value that is not a record id is matched to the
  linked table's primary field text, and a new record is created when none matches
  (Airtable's answer in airtable.js#130).
* "List records": at most 100 a page; the `offset` is an opaque iterator that times out
  ("Iteration may timeout due to client inactivity or server restarts": 422
  `LIST_RECORDS_ITERATOR_NOT_AVAILABLE`; the timeout itself is undocumented: `offset_ttl_s`);
  empty values are left out of answers.
* Native webhooks: `airtable_webhooks.py`.

Besides the API (`/v0/…`), `/_standin/…` lets tests and the demo look inside and act as a person
would in the Airtable UI (edit a cell, paste into many rows, delete a row or a field) without
being rate-limited.
"""

from __future__ import annotations

import asyncio
import copy
import random
import string
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .airtable_errors import AirtableError
from .airtable_webhooks import Webhook, WebhookHub
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


@dataclass(frozen=True)
class _ByPrimary:
    """A typecast link value that names no record: the linked record whose primary field is `text`."""

    text: str


def _is_empty(value: Any) -> bool:
    return value is None or value == "" or value is False or value == []


def _now_iso() -> str:
    """A time as the API writes it: UTC, milliseconds ("2022-08-29T07:00:00.000Z")."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class _FormulaRow:
    """A record as `filterByFormula` sees it: fields by name, its id and times."""

    def __init__(self, record: dict[str, Any], by_name: dict[str, str]) -> None:
        self._record, self._by_name = record, by_name
        self.record_id: str = record["id"]
        self.created = _parse_iso(record["createdTime"])

    def field(self, name: str) -> Any:
        return self._record["fields"].get(self._by_name.get(name, ""))

    def modified(self, names: list[str]) -> datetime | None:
        changed = self._record["modified"]
        ids = [self._by_name.get(name, "") for name in names] if names else list(changed)
        times = [changed[i] for i in ids if i in changed]
        return _parse_iso(max(times)) if times else None


@dataclass
class AirtableStandIn:
    token: str = "standin-airtable-token"
    base_id: str = "appStandIn0000001"
    rate_limit: int = 5  # requests in any second, per base
    user_rate_limit: int = 50  # requests in any second, per user, across bases and tokens
    cooldown_s: float = 30.0
    delay_s: float = 0.0  # how long each API request takes, as Airtable's do
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
    _window: deque[float] = field(default_factory=deque)
    _user_window: deque[float] = field(default_factory=deque)
    _blocked_until: float = 0.0
    _iterators: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.hub = WebhookHub(self)

    # --- looking inside ---

    @property
    def webhooks(self) -> dict[str, Webhook]:
        return self.hub.webhooks

    @staticmethod
    def new_id(prefix: str) -> str:
        return _new_id(prefix)

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
        with self.hub.action("client"):
            return self._create(t, self._validated(t, fields, typecast=True))["id"]

    def edit(self, table: str, changes: dict[str, dict[str, Any]]) -> None:
        """Edit cells as a person would in the UI: one action, however many records (a paste)."""
        t = self.table(table)
        with self.hub.action("client"):
            validated = {rid: self._validated(t, fields, typecast=True) for rid, fields in changes.items()}
            for record_id, fields in validated.items():
                self._update(t, record_id, fields, replace=False, single=True)

    def delete_record(self, table: str, record_id: str) -> None:
        """Delete a record as a person would in the UI."""
        t = self.table(table)
        with self.hub.action("client"):
            self._delete(t, [self._get(t, record_id)["id"]], single=True)

    def expire_iterators(self) -> None:
        """Every list offset handed out stops working, as after a restart of Airtable's servers."""
        self._iterators.clear()

    def write_requests(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["method"] in ("POST", "PATCH", "PUT", "DELETE")]

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
        own (`WebhookHub.route`)."""
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
            "records": 0,
        }
        self.requests.append(entry)
        try:
            self._admit(request)
            self._scope(request)
            self._base(request)
            self._fault(request)
            if self.delay_s:
                await request.body()  # received in full: the write happens even if the caller goes away
                await asyncio.sleep(self.delay_s)
            with self.hub.action("publicApi"):  # one request, one action for the webhooks
                response = await self._route(request, entry)
        except AirtableError as error:
            response = error.response()
        entry["status"] = response.status_code
        return response

    async def _route(self, request: Request, entry: dict[str, Any]) -> Response:
        if request.url.path == "/v0/meta/whoami":
            # "Get user info": the scopes only for OAuth tokens, never for personal access tokens.
            return JSONResponse({"id": "usrStandIn0000001"})
        if "/webhooks" in request.url.path:
            # Refresh takes no body ("Refresh a webhook"); create and enableNotifications take JSON.
            body = await self._json(request) if request.method == "POST" and await request.body() else None
            answer = self.hub.route(
                request.method,
                request.path_params.get("hook"),
                request.path_params.get("action"),
                request.query_params,
                body,
            )
            # "This endpoint returns an empty response on success" (delete, enableNotifications).
            return Response(status_code=200) if answer is None else JSONResponse(answer)
        if request.url.path.endswith("/fields"):
            return JSONResponse(
                self._create_field(self.table(request.path_params["table"]), await self._json(request))
            )
        if request.url.path.endswith("/tables") and request.method == "POST":
            return JSONResponse(self._create_table(await self._json(request)))
        if request.url.path.startswith("/v0/meta/"):
            return JSONResponse({"tables": [t.schema() for t in self.tables]})
        table = self.table(request.path_params["table"])
        record_id = request.path_params.get("record")
        method = request.method
        if method == "GET" and record_id:
            return JSONResponse(self._render(table, self._get(table, record_id)))
        if method == "GET" or (method == "POST" and record_id == "listRecords"):
            if method == "GET":
                params: dict[str, Any] = dict(request.query_params)
                params["fields"] = request.query_params.getlist("fields[]") or None
            else:
                params = await self._json(request)
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

    def _create_table(self, body: dict[str, Any]) -> dict[str, Any]:
        """ "Create table": a unique name and at least one field, the first being the primary one
        (of a type that can be primary)."""
        name, fields = body.get("name"), body.get("fields")
        if not isinstance(name, str) or not name.strip() or any(t.name == name for t in self.tables):
            raise AirtableError(422, "DUPLICATE_TABLE_NAME", f'Table name "{name}" is empty or already used')
        if not isinstance(fields, list) or not fields or not all(isinstance(f, dict) for f in fields):
            raise AirtableError(422, "INVALID_REQUEST_UNKNOWN", "A table needs at least one field")
        if fields[0].get("type") not in _TEXT_TYPES | {"email", "number", "date", "dateTime"}:
            raise AirtableError(
                422, "INVALID_PRIMARY_FIELD_TYPE", "This field type cannot be the primary field"
            )
        table = Table(name, [])
        self.tables.append(table)
        try:
            for spec in fields:
                self._create_field(table, spec)
        except AirtableError:
            self.tables.remove(table)
            raise
        return table.schema()

    def remove_field(self, table: str, name: str) -> None:
        """Delete a field, as a person can in the UI (webhooks watching it go into error)."""
        t = self.table(table)
        for gone in [f for f in t.fields if f.name == name]:
            t.fields.remove(gone)
            self.hub.field_deleted(t, gone)

    # --- records ---

    def _get(self, table: Table, record_id: str) -> dict[str, Any]:
        if record_id not in table.records:
            raise AirtableError(404, "NOT_FOUND", "Could not find what you are looking for")
        return table.records[record_id]

    def _render(
        self, table: Table, record: dict[str, Any], by_id: bool = False, only: list[str] | None = None
    ) -> dict[str, Any]:
        """A record as the API answers it; `only`: the `fields` asked for ("List records": "Only
        data for fields whose names or IDs are in this list will be included")."""
        fields = {}
        for f in table.fields:
            if only is not None and f.name not in only and f.id not in only:
                continue
            value = record["fields"].get(f.id)
            if not _is_empty(value):
                fields[f.id if by_id else f.name] = copy.deepcopy(value)
        return {"id": record["id"], "createdTime": record["createdTime"], "fields": fields}

    def _list(self, table: Table, params: dict[str, Any]) -> dict[str, Any]:
        """One page. The offset names an iterator over the records that matched when the listing
        began; it times out when unused for `offset_ttl_s`."""
        page_size = min(int(params.get("pageSize") or 100), 100)
        offset = params.get("offset")
        now = time.monotonic()
        if offset:
            iterator_id = str(offset).split("/", 1)[0]
            if not iterator_id.startswith("itr"):
                raise AirtableError(422, "INVALID_OFFSET_VALUE", f"The value of offset {offset} is invalid")
            iterator = self._iterators.get(iterator_id)
            if (
                iterator is None
                or iterator["table"] != table.id
                or now - iterator["used"] > self.offset_ttl_s
            ):
                self._iterators.pop(iterator_id, None)
                raise AirtableError(422, "LIST_RECORDS_ITERATOR_NOT_AVAILABLE")
        else:
            iterator_id, iterator = (
                _new_id("itr"),
                {"table": table.id, "ids": self._matching(table, params), "at": 0},
            )
        iterator["used"] = now
        ids = [i for i in iterator["ids"][iterator["at"] :] if i in table.records]
        page, rest = ids[:page_size], ids[page_size:]
        only = params.get("fields")
        only = [only] if isinstance(only, str) else only
        out: dict[str, Any] = {"records": [self._render(table, table.records[i], only=only) for i in page]}
        if rest:
            iterator["ids"], iterator["at"] = rest, 0
            self._iterators[iterator_id] = iterator
            out["offset"] = f"{iterator_id}/{rest[0]}"
        else:
            self._iterators.pop(iterator_id, None)
        return out

    def _matching(self, table: Table, params: dict[str, Any]) -> list[str]:
        records = list(table.records.values())
        formula = params.get("filterByFormula")
        if formula:
            try:
                matches, names = compile_formula(formula)
            except FormulaError as exc:
                raise AirtableError(
                    422, "INVALID_FILTER_BY_FORMULA", f"The formula for filtering records is invalid: {exc}"
                ) from None
            # "Formulas can use field names, or field id's" ("List records").
            by_name = {**{f.id: f.id for f in table.fields}, **{f.name: f.id for f in table.fields}}
            if unknown := sorted(names - set(by_name)):
                # As Airtable answers a formula naming a field the table lacks (undocumented wording).
                raise AirtableError(
                    422,
                    "INVALID_FILTER_BY_FORMULA",
                    "The formula for filtering records is invalid: Unknown field names: "
                    + ", ".join(unknown),
                )
            records = [r for r in records if matches(_FormulaRow(r, by_name))]
        max_records = params.get("maxRecords")
        if max_records:
            records = records[: int(max_records)]
        return [r["id"] for r in records]

    def _create(self, table: Table, fields: dict[str, Any]) -> dict[str, Any]:
        record = {
            "id": _new_id("rec"),
            "fields": self._linked(table, fields),
            "createdTime": _now_iso(),
            "modified": {},  # field id -> when a write last changed it (LAST_MODIFIED_TIME)
        }
        table.records[record["id"]] = record
        self.hub.record_changed(table, record["id"], None, record["fields"])
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
        fields = self._linked(table, fields)
        record["fields"] = dict(fields) if replace else {**record["fields"], **fields}
        now = _now_iso()
        for field_id in {*before, *record["fields"]}:
            if before.get(field_id) != record["fields"].get(field_id):
                record["modified"][field_id] = now
        self.hub.record_changed(table, record_id, before, record["fields"])
        return record

    def _linked(self, table: Table, fields: dict[str, Any]) -> dict[str, Any]:
        """Typecast links, once the whole request is known to be valid: a text that names no
        record is matched to the linked table's primary field, or becomes a new record there."""
        out = dict(fields)
        for f in table.fields:
            value = out.get(f.id)
            if f.type != "multipleRecordLinks" or not isinstance(value, list):
                continue
            linked = next(t for t in self.tables if t.id == f.options["linkedTableId"])
            primary = linked.fields[0].id
            ids = []
            for item in value:
                if isinstance(item, _ByPrimary):
                    match = next(
                        (r for r in linked.records.values() if r["fields"].get(primary) == item.text), None
                    )
                    item = match["id"] if match else self._create(linked, {primary: item.text})["id"]
                ids.append(item)
            out[f.id] = list(dict.fromkeys(ids))
        return out

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
            self.hub.record_changed(table, record_id, table.records.pop(record_id)["fields"], None)
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
                if not typecast or self.permission != "creator":
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
            out: list[Any] = []
            for record_id in value:
                if record_id in linked.records:
                    out.append(record_id)
                elif typecast:
                    out.append(_ByPrimary(record_id))  # matched or created once the request is valid
                else:
                    raise AirtableError(
                        422, "ROW_DOES_NOT_EXIST", f"Record ID {record_id} does not exist in this table"
                    )
            return out
        return value

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
                    {"records": [self._render(table, self._get(table, r["id"])) for r in body["records"]]}
                )
            if request.method == "PATCH":
                self.edit(table.name, {record_id: body["fields"]})
                return JSONResponse(self._render(table, self._get(table, record_id)))
            self.delete_record(table.name, record_id)
            return JSONResponse({"id": record_id, "deleted": True})
        except AirtableError as error:
            return error.response()

    async def _requests(self, _request: Request) -> JSONResponse:
        return JSONResponse({"requests": self.requests})

    async def _settings(self, request: Request) -> JSONResponse:
        """Limits, the token's permission, the clock (webhooks' expiry), offsets' lifetime."""
        body = await request.json()
        self.rate_limit = int(body.get("rate_limit", self.rate_limit))
        self.cooldown_s = float(body.get("cooldown_s", self.cooldown_s))
        self.permission = str(body.get("permission", self.permission))
        self.clock_skew_s = float(body.get("clock_skew_s", self.clock_skew_s))
        self.offset_ttl_s = float(body.get("offset_ttl_s", self.offset_ttl_s))
        names = ("rate_limit", "cooldown_s", "permission", "clock_skew_s", "offset_ttl_s")
        return JSONResponse({name: getattr(self, name) for name in names})

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
                Route("/_standin/tables/{table}/records", self._control, methods=["GET", "POST", "PATCH"]),
                Route(
                    "/_standin/tables/{table}/records/{record}", self._control, methods=["PATCH", "DELETE"]
                ),
            ]
        )
