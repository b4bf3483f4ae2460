"""`contact-sync doctor --write-check`: the pusher's writes, tried on the real base.

One throw-away contact row (a Contact Key of its own; no CIN anywhere, so Attestr is never
called) goes through the same client calls the pusher makes: written (an upsert on Contact Key),
written again (the same row, not a second one), linked to a company, read back, deleted. Each
step says what it showed. Whatever step fails, the row is deleted, so both tables are left as
they were (the link's other side goes with the row).
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from service.airtable.client import Airtable
from service.airtable.errors import AirtableError

PREFIX = "ct_write_check_"
WARNING = (
    "This writes one throw-away row to the Contacts table, links it to the first company, reads it "
    "back and deletes it (no CIN anywhere: Attestr is not called). The base's own automations on "
    "Contacts, and on Companies, which sees the link, will see it."
)


@dataclass
class Step:
    name: str
    ok: bool | None  # None: skipped
    detail: str


class _StepFailed(Exception):
    pass


async def run(airtable: Airtable, say: Callable[[Step], None] = lambda _s: None) -> list[Step]:
    """The steps and what each showed; `say` hears each as it ends. Never raises AirtableError:
    a refusal is a failed step. Whatever happens, an interruption included, the row is deleted;
    a row an interrupted earlier run left (its Contact Key starts with `ct_write_check_`) goes
    first."""
    steps: list[Step] = []

    def step(name: str, ok: bool | None, detail: str) -> None:
        steps.append(Step(name, ok, detail))
        say(steps[-1])
        if ok is False:
            raise _StepFailed(detail)

    def refused(exc: AirtableError) -> None:
        steps.append(Step(_next(steps), False, exc.message))
        say(steps[-1])

    try:
        await _leftovers(airtable, step)
    except AirtableError as exc:
        steps.append(Step("earlier rows", False, exc.message))
        say(steps[-1])
        return steps
    key = f"{PREFIX}{secrets.token_hex(4)}"
    try:
        await _steps(airtable, key, step)
    except AirtableError as exc:
        refused(exc)
    except _StepFailed:
        pass
    finally:
        # Shielded: an interruption (Ctrl-C, a signal) cannot stop the row being deleted.
        cleaned = await asyncio.shield(_clean_up(airtable, key))
        if cleaned is not None:
            steps.append(cleaned)
            say(cleaned)
    return steps


async def _leftovers(airtable: Airtable, step: Callable[[str, bool | None, str], None]) -> None:
    rows = await airtable.contact_ids_by_key_prefix(PREFIX)
    if rows:
        await airtable.delete_contacts(rows)
        step("earlier rows", True, f"deleted {len(rows)} row(s) an interrupted write check had left")


async def _steps(airtable: Airtable, key: str, step: Callable[[str, bool | None, str], None]) -> None:
    settings = airtable.settings
    fields = (await airtable.fields())["contacts"]
    missing = [settings.field(k) for k in ("NAME", "CONTACT_KEY") if settings.field(k) not in fields]
    if missing:
        step(
            "write", False, f"the Contacts table lacks {', '.join(missing)}: run `contact-sync doctor --fix`"
        )
    values = _values(airtable, key, fields)

    answer = await airtable.upsert_contacts([{"fields": values}])
    row = answer["records"][0]["id"]
    step(
        "write",
        answer.get("createdRecords") == [row],
        f"created {row} (Contact Key {key}) with {', '.join(values)}",
    )

    again = await airtable.upsert_contacts([{"fields": values}])
    rows = await airtable.contact_ids_by_key([key])
    step(
        "write again",
        again.get("updatedRecords") == [row] and not again.get("createdRecords") and rows == [row],
        f"updated {row}; rows with that Contact Key: {len(rows)}",
    )

    company = await airtable.call(airtable.companies.first, fields=[settings.field("COMPANY_NAME")])
    link = settings.field("COMPANY")
    if company is None:
        step("link to a company", None, "skipped: the Companies table is empty")
    elif link not in fields:
        step("link to a company", None, f'skipped: the Contacts table has no "{link}" field')
    else:
        linked = await airtable.upsert_contacts([{"id": row, "fields": {link: [company["id"]]}}])
        shown = linked["records"][0]["fields"].get(link)
        step(
            "link to a company", shown == [company["id"]], f"{row} → {company['id']}: Airtable shows {shown}"
        )

    read = (await airtable.call(airtable.contacts.get, row))["fields"]
    # Text as Airtable gives it back: a rich text field ends with a line break.
    differ = sorted(
        name for name, value in values.items() if str(read.get(name, "")).strip() != str(value).strip()
    )
    step("read back", not differ, "every value as written" if not differ else f"differs: {', '.join(differ)}")

    await airtable.delete_contacts([row])
    left = await airtable.contact_ids_by_key([key])
    step("delete", not left, f"deleted {row}" if not left else f"still there: {left}")


def _values(airtable: Airtable, key: str, fields: set[str]) -> dict[str, Any]:
    """A contact as the pusher writes one, in the fields the table has: plainly not a person."""
    settings = airtable.settings
    values = {
        "NAME": "contact-sync write check (deleted at once)",
        "CONTACT_KEY": key,
        "PHONE": "+918123456789",  # the example Indian mobile number of phonenumbers' metadata
        "EMAIL": "write-check@example.com",
        "ADDRESS": "contact-sync write check",
        "PHONE_TYPE": "Mobile",
    }
    return {
        settings.field(k): v
        for k, v in values.items()
        if settings.field(k) in fields and (k, v) not in airtable.missing_options
    }


def _next(steps: list[Step]) -> str:
    order = ["write", "write again", "link to a company", "read back", "delete"]
    done = [s for s in steps if s.name in order]
    return order[len(done)] if len(done) < len(order) else "delete"


async def _clean_up(airtable: Airtable, key: str) -> Step:
    """Delete the row however far the steps went: by its Contact Key, which finds it even when
    the write's answer was lost. After a 429 it is tried once more, when the base's cool-down has
    passed (the rate limit waits for it): a rate limit must not leave the row behind."""
    for last in (False, True):
        try:
            rows = await airtable.contact_ids_by_key([key])
            await airtable.delete_contacts(rows)
            if await airtable.contact_ids_by_key([key]):
                raise AirtableError("the row is still there")
            break
        except AirtableError as exc:
            if exc.status == 429 and not last:
                continue
            return Step(
                "clean up",
                False,
                f"the row with Contact Key {key} could not be deleted ({exc.message}): delete it in Airtable",
            )
    return Step(
        "clean up",
        True,
        f"deleted {', '.join(rows) or 'nothing (no row was left)'}: both tables are as they were",
    )
