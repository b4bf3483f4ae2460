"""The Airtable client: pyairtable (synchronous) in threads, every request behind the shared
rate limit, every failure a typed exception the pusher can act on.

pyairtable runs with `retry_strategy=None` and an explicit timeout: its default retries a 429
by itself for seconds and would hide it from the cool-down that every process must observe.
It is imported at its first use (`load`), not with this module: loading its models takes a
quarter of a second, which a starting service would otherwise spend before it answers.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import sys
import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

import asyncpg
import requests
import structlog

from service import metrics
from service.airtable.errors import (
    AirtableError,
    AirtableNotConfigured,
    AirtableRateLimited,
    AirtableUnavailable,
    error_from,
)
from service.airtable.ratelimit import AirtableRateLimit, LocalPacing
from service.airtable.transport import (
    MAX_ANSWER_BYTES,
    AnswerTooLarge,
    BoundedAdapter,
    sent_on_kept_alive,
)
from service.config import Settings

if TYPE_CHECKING:
    from pyairtable import Api

log = structlog.get_logger(__name__)
T = TypeVar("T")
LISTING_RESTARTS = 3

THROWAWAY = "contact-sync: adding select options (delete this row)"
_TEXTS = {"singleLineText", "multilineText"}

# The single select options the service writes, by field key, with the field's table.
SELECT_OPTIONS: dict[str, tuple[str, tuple[str, ...]]] = {
    "SYNC_STATUS": ("companies", ("Queued", "Running", "Waiting", "Synced", "No Data", "Failed")),
    "PHONE_TYPE": ("contacts", ("Mobile", "Landline")),
}


def absent_options(
    schema: Any, settings: Settings, table: str, key: str, options: tuple[str, ...]
) -> list[str]:
    """The options of `options` that the field `key` lacks, when it is a single select (a text
    field takes any value; a missing field is not written at all)."""
    name = settings.airtable_companies_table if table == "companies" else settings.airtable_contacts_table
    try:
        field = next((f for f in schema.table(name).fields if f.name == settings.field(key)), None)
    except KeyError:
        return []
    if field is None or str(getattr(field.type, "value", field.type)) != "singleSelect":
        return []
    have = {choice.name for choice in field.options.choices}
    return [option for option in options if option not in have]


async def load() -> None:
    """Import pyairtable in a thread, so that a starting service answers webhooks meanwhile."""
    if "pyairtable" not in sys.modules:
        await asyncio.to_thread(importlib.import_module, "pyairtable")


class Airtable:
    def __init__(self, settings: Settings, pool: asyncpg.Pool | None) -> None:
        """With a pool, requests share the base's rate limit with every process; without one
        (a command run while the database is away) this process paces itself."""
        self.settings = settings
        rps, cooldown = settings.airtable_rate_limit_rps, settings.airtable_cooldown_s
        self.limit: AirtableRateLimit | LocalPacing = (
            AirtableRateLimit(pool, settings.airtable_base_id or "", rps, cooldown)
            if pool is not None
            else LocalPacing(rps, cooldown)
        )
        self._fields: dict[str, set[str]] | None = None
        self._field_ids: dict[str, dict[str, str]] = {}  # table key → field name → field id
        self._fields_lock = asyncio.Lock()
        self._missing_options: frozenset[tuple[str, str]] = frozenset()
        self._schema_read_at = float("-inf")

    @functools.cached_property
    def _api(self) -> Api:
        from pyairtable import Api

        api = Api(
            self.settings.airtable_api_key or "unset",
            timeout=(5, 30),
            retry_strategy=None,
            endpoint_url=self.settings.airtable_api_url,
        )
        for scheme in ("https://", "http://"):
            api.session.mount(scheme, BoundedAdapter())
        return api

    @property
    def missing(self) -> list[str]:
        names = {
            "AIRTABLE_API_KEY": self.settings.airtable_api_key,
            "AIRTABLE_BASE_ID": self.settings.airtable_base_id,
        }
        return [name for name, value in names.items() if not value]

    def require_configured(self) -> None:
        if self.missing:
            raise AirtableNotConfigured(f"Airtable is not configured: set {' and '.join(self.missing)}")

    def _table(self, name: str) -> Any:
        return self._api.table(self.settings.airtable_base_id or "", name)

    @property
    def companies(self) -> Any:
        return self._table(self.settings.airtable_companies_table)

    @property
    def contacts(self) -> Any:
        return self._table(self.settings.airtable_contacts_table)

    async def call(
        self,
        fn: Callable[..., T],
        *args: Any,
        slot: int | None = None,
        background: bool = False,
        **kwargs: Any,
    ) -> T:
        """One Airtable request: a rate-limit slot (unless the caller took one; a background
        request waits behind the others), then pyairtable in a thread; the slot is given back
        when the answer is in."""
        self.require_configured()
        if slot is None:
            slot = await self.limit.acquire(background=background)
        sent: list[float | None] = [None]

        def send() -> T:
            try:
                return fn(*args, **kwargs)
            finally:
                sent[0] = sent_on_kept_alive()

        try:
            result = await asyncio.to_thread(send)
            _check_shape(result)
            metrics.AIRTABLE_REQUESTS.labels("ok").inc()
            return result
        except requests.HTTPError as exc:
            error = error_from(exc)
        except _UNEXPECTED_SHAPE as exc:  # a 200 pyairtable or `_check_shape` could not read
            error = AirtableUnavailable(
                f"Airtable answered in a shape it does not document ({type(exc).__name__})"
            )
        except AnswerTooLarge as exc:
            error = AirtableError(
                f"Airtable's answer was too large ({exc}; the limit is {MAX_ANSWER_BYTES:,})"
            )
        except requests.RequestException as exc:
            error = AirtableUnavailable(f"Airtable could not be reached ({type(exc).__name__})")
        finally:
            self.limit.report(slot, None if sent[0] is None else time.monotonic() - sent[0])
        metrics.AIRTABLE_REQUESTS.labels(
            "rate_limited"
            if isinstance(error, AirtableRateLimited)
            else "unavailable"
            if isinstance(error, AirtableUnavailable)
            else "refused"
        ).inc()
        if isinstance(error, AirtableRateLimited):
            await self.limit.block()
            log.warning("airtable.rate_limited", cooldown_s=self.settings.airtable_cooldown_s)
        raise error

    async def whoami(self) -> dict[str, Any]:
        return await self.call(self._api.whoami)

    async def schema(self) -> Any:
        """The base's schema (tables, fields and their types)."""
        base = self._api.base(self.settings.airtable_base_id or "")  # made here, not in a thread
        return await self.call(lambda: base.schema(force=True))

    async def create_field(self, table_id: str, name: str, kind: str, options: dict[str, Any] | None) -> None:
        await self.call(self._table(table_id).create_field, name, kind, options=options)

    def _base(self) -> Any:
        return self._api.base(self.settings.airtable_base_id or "")

    async def add_webhook(self, notification_url: str, spec: dict[str, Any]) -> Any:
        return await self.call(self._base().add_webhook, notification_url, spec)

    def _webhook_url(self, webhook_id: str, *rest: str) -> str:
        return str(
            self._api.build_url("bases", self.settings.airtable_base_id or "", "webhooks", webhook_id, *rest)
        )

    async def list_webhooks(self) -> list[dict[str, Any]]:
        url = str(self._api.build_url("bases", self.settings.airtable_base_id or "", "webhooks"))
        return (await self.call(self._api.request, "GET", url))["webhooks"]

    async def webhook_payloads(self, webhook_id: str, cursor: int, limit: int) -> dict[str, Any]:
        """One page of a webhook's payloads from `cursor` (one request, behind the rate limit)."""
        url = self._webhook_url(webhook_id, "payloads")
        return await self.call(self._api.request, "GET", url, params={"cursor": cursor, "limit": limit})

    async def refresh_webhook(self, webhook_id: str) -> datetime:
        response = await self.call(self._api.request, "POST", self._webhook_url(webhook_id, "refresh"))
        return datetime.fromisoformat(response["expirationTime"].replace("Z", "+00:00"))

    async def enable_webhook_notifications(self, webhook_id: str) -> None:
        """Turn Airtable's pings on again ("Enable/disable webhook notifications")."""
        url = self._webhook_url(webhook_id, "enableNotifications")
        await self.call(self._api.request, "POST", url, json={"enable": True})

    async def delete_webhook(self, webhook_id: str) -> None:
        await self.call(self._api.request, "DELETE", self._webhook_url(webhook_id))

    async def fields(self, *, refresh: bool = False, force: bool = False) -> dict[str, set[str]]:
        """The field names of the Companies and Contacts tables, from the base's schema. `force`:
        read now, whatever another caller read meanwhile (a pause's probe must ask Airtable)."""
        stale = self._fields
        async with self._fields_lock:  # several senders starting at once read the schema once
            if force or self._fields is None or (refresh and self._fields is stale):
                await self._read_fields()
        assert self._fields is not None
        return self._fields

    def field_id(self, table: str, name: str) -> str | None:
        """The id of the field `name` of `table` ("companies" or "contacts") as of the last schema
        read: it stays when a person renames the field."""
        return self._field_ids.get(table, {}).get(name)

    @property
    def missing_options(self) -> frozenset[tuple[str, str]]:
        """(field key, option) for each option the service writes that its single select field
        lacks, as of the last schema read (`fields`)."""
        return self._missing_options

    @property
    def schema_age_s(self) -> float:
        return time.monotonic() - self._schema_read_at

    async def _read_fields(self) -> None:
        schema = await self.schema()
        found: dict[str, set[str]] = {}
        for key, name in (
            ("companies", self.settings.airtable_companies_table),
            ("contacts", self.settings.airtable_contacts_table),
        ):
            try:
                found[key] = {f.name for f in schema.table(name).fields}
                self._field_ids[key] = {f.name: f.id for f in schema.table(name).fields}
            except KeyError:
                raise AirtableError(
                    f'The Airtable base has no table "{name}"', kind="TABLE_NOT_FOUND"
                ) from None
        self._fields = found
        self._missing_options = frozenset(
            (key, option)
            for key, (table, options) in SELECT_OPTIONS.items()
            for option in absent_options(schema, self.settings, table, key, options)
        )
        self._schema_read_at = time.monotonic()

    async def add_select_options(self, table_id: str, field_name: str, options: list[str]) -> None:
        """Add options to a single select field. Airtable's API cannot edit a field's options
        ("Update field" changes only its name and description), but a write with typecast adds a
        missing option for a creator ("Field types and cell values"): one throw-away record per
        option, named so it can be found, deleted at once. Raises AirtableError; when the
        throw-away rows could not be deleted, the message says so and how they are named."""
        schema = (await self.schema()).table(table_id)
        primary = schema.field(schema.primary_field_id)
        name = primary.name if str(getattr(primary.type, "value", primary.type)) in _TEXTS else None
        table = self._table(table_id)
        created: list[dict[str, Any]] = []
        try:
            named = {name: THROWAWAY} if name else {}
            created = await self.call(
                table.batch_create, [{**named, field_name: option} for option in options], typecast=True
            )
        finally:
            await self._delete_throwaway(table, name, [row["id"] for row in created])

    async def _delete_throwaway(self, table: Any, name: str | None, ids: list[str]) -> None:
        """Delete the throw-away rows: those created, and those found by their name (the
        create's answer may have been lost)."""
        from pyairtable import formulas

        try:
            if name:
                found = await self.list_records(
                    table, formula=formulas.EQ(formulas.Field(name), THROWAWAY), fields=[name]
                )
                ids = sorted({*ids, *(row["id"] for row in found)})
            for start in range(0, len(ids), 10):
                await self.call(table.batch_delete, ids[start : start + 10])
        except AirtableError as exc:
            raise AirtableError(
                f"the option(s) may have been added, but throw-away rows are left in the table "
                f"({', '.join(ids) or f'named {THROWAWAY!r}'}; {exc.message}): delete them"
            ) from exc

    async def company_cin(self, record_id: str, slot: int | None = None) -> tuple[Any, Any]:
        """What the company record's CIN and name cells hold, as Airtable gives them (text, or
        from a lookup or formula a list or a number): `identifiers.cin` and `plain` read them.
        `slot`: a rate-limit slot the caller took."""
        fields = (await self.call(self.companies.get, record_id, slot=slot)).get("fields", {})
        return fields.get(self.settings.field("CIN")), fields.get(self.settings.field("COMPANY_NAME"))

    async def upsert_contacts(self, records: list[dict[str, Any]], slot: int | None = None) -> dict[str, Any]:
        """Up to ten contacts in one request: by id when known, else matched on Contact Key.
        Never with typecast: it would turn the id of a company deleted by hand into a new company
        named after that id (a link is matched to the primary field's text), and invent select
        options. Our values already have the fields' types."""
        key = self.settings.field("CONTACT_KEY")
        return await self.call(self.contacts.batch_upsert, records, key_fields=[key], slot=slot)

    async def update_contacts(
        self, records: list[dict[str, Any]], slot: int | None = None
    ) -> list[dict[str, Any]]:
        """Up to ten contacts Airtable has, by id (`{"id", "fields"}`); no typecast, as above."""
        return await self.call(self.contacts.batch_update, records, slot=slot)

    async def contacts_now(
        self, ids: list[str], fields: list[str], slot: int | None = None
    ) -> dict[str, dict[str, Any]]:
        """The Contacts rows `ids` (at most 100: one request) as they are now, id → their `fields`
        (a cell that is empty is left out, as Airtable leaves it out). A row missing from the
        answer is not in the table any more: deleted by hand."""
        from pyairtable import formulas

        if not 0 < len(ids) <= 100:
            raise ValueError("between 1 and 100 rows a read")
        formula = formulas.OR(*(formulas.EQ(formulas.RECORD_ID(), record_id) for record_id in ids))
        records = await self.call(self.contacts.all, formula=formula, fields=fields, slot=slot)
        return {record["id"]: record.get("fields", {}) for record in records}

    async def companies_present(self, ids: list[str]) -> set[str]:
        """Which of the Companies records `ids` (at most 100: one request) are still in the table."""
        from pyairtable import formulas

        if not 0 < len(ids) <= 100:
            raise ValueError("between 1 and 100 records a read")
        formula = formulas.OR(*(formulas.EQ(formulas.RECORD_ID(), record_id) for record_id in ids))
        records = await self.call(self.companies.all, formula=formula, fields=[self.settings.field("CIN")])
        return {record["id"] for record in records}

    async def list_records(
        self,
        table: Any,
        *,
        formula: Any = None,
        fields: list[str] | None = None,
        on_page: Callable[[int], None] = lambda _n: None,
        background: bool = False,
    ) -> list[dict[str, Any]]:
        """Every record of a listing, one rate-limited request a page of 100 (`background`: at
        the rate limit's lower priority); `on_page` gets the count so far. A list offset is an
        iterator that expires ("List records": 422 LIST_RECORDS_ITERATOR_NOT_AVAILABLE, "It may
        then restart iteration from the beginning"): the listing then starts again, up to
        LISTING_RESTARTS times."""
        for restart in range(LISTING_RESTARTS + 1):
            found: dict[str, dict[str, Any]] = {}
            pages = table.iterate(formula=formula, fields=fields, page_size=100)
            try:
                while (page := await self.call(next, pages, None, background=background)) is not None:
                    found.update((record["id"], record) for record in page)
                    on_page(len(found))
                return list(found.values())
            except AirtableError as exc:
                if exc.kind != "LIST_RECORDS_ITERATOR_NOT_AVAILABLE" or restart == LISTING_RESTARTS:
                    raise
                log.warning("airtable.listing_restarted", table=table.id_or_name, records_read=len(found))
        raise AssertionError("unreachable")

    async def contact_ids_by_key_prefix(self, prefix: str) -> list[str]:
        """The ids of Contacts rows whose Contact Key starts with `prefix`."""
        from pyairtable import formulas

        name = self.settings.field("CONTACT_KEY")
        formula = formulas.EQ(formulas.LEFT(formulas.Field(name), len(prefix)), prefix)
        return [row["id"] for row in await self.list_records(self.contacts, formula=formula, fields=[name])]

    async def contact_ids_by_key(self, keys: list[str]) -> list[str]:
        """The ids of Contacts rows whose Contact Key is one of `keys` (ten keys a request)."""
        from pyairtable import formulas

        name = self.settings.field("CONTACT_KEY")
        found: list[str] = []
        for start in range(0, len(keys), 10):
            formula = formulas.OR(
                *(formulas.EQ(formulas.Field(name), key) for key in keys[start : start + 10])
            )
            found += [
                row["id"] for row in await self.list_records(self.contacts, formula=formula, fields=[name])
            ]
        return found

    async def delete_contacts(self, ids: list[str]) -> int:
        """Delete Contacts rows, ten a request; a row already gone counts as deleted."""
        deleted = 0
        for start in range(0, len(ids), 10):
            batch = ids[start : start + 10]
            try:
                deleted += len(await self.call(self.contacts.batch_delete, batch))
            except AirtableError as error:
                # Gone: named in a batch, or 404 for a single record ("Delete record"); a table
                # that moved (TABLE_NOT_FOUND, or a 404 for several) is no deletion.
                if not (
                    error.kind == "ROW_DOES_NOT_EXIST"
                    or (error.status == 404 and error.kind == "NOT_FOUND" and len(batch) == 1)
                ):
                    raise
                if len(batch) > 1:  # one of them is gone: the others one by one
                    deleted += sum([await self.delete_contacts([record_id]) for record_id in batch])
        return deleted

    async def update_companies(
        self, records: list[dict[str, Any]], slot: int | None = None
    ) -> list[dict[str, Any]]:
        return await self.call(self.companies.batch_update, records, slot=slot)  # no typecast: as above


class _UnexpectedShape(ValueError):
    pass


# What reading a 200 of another shape than Airtable documents raises, in pyairtable or here:
# classified as Airtable unavailable (tried again later), never a crash of the pusher.
_UNEXPECTED_SHAPE = (_UnexpectedShape, KeyError, TypeError, AttributeError, IndexError)


def _check_shape(result: Any) -> None:
    """The records in an answer as "List records", "Update multiple records" and the others
    document them (https://airtable.com/developers/web/api/): each an object with a string `id`,
    its `fields` an object. Raises _UnexpectedShape."""
    records = result.get("records") if isinstance(result, dict) and "records" in result else result
    if isinstance(result, dict) and "fields" in result:
        records = [result]
    if not isinstance(records, list):
        if isinstance(result, dict) and "records" in result:
            raise _UnexpectedShape("records")
        return
    for record in records:
        if not isinstance(record, dict) or not isinstance(record.get("id"), str):
            raise _UnexpectedShape("record")
        if not isinstance(record.get("fields", {}), dict):
            raise _UnexpectedShape("fields")
