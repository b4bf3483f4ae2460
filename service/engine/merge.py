"""The three-way merge of a contact row: what the service wrote last, what the row holds now in
Airtable, and what the source (PostgreSQL) says now.

Airtable is where people work: a value a person changed (or cleared) since the service last wrote
it wins over the source. Per field:

* unchanged by a person (the row holds what the service wrote last): the source's value, or
  none once the source has withdrawn what it wrote;
* changed by a person, the source still saying what it said then: the person's value stays;
* changed by both: the person's value stays, and the source's newer value is shown beside it
  (`notes`, for the optional Contacts Sync Note field, and the log).

A value is the service's again once the row holds what the source says (a write Airtable applied
whose answer was lost looks the same as a person typing the source's value).

Links (the Company field) merge link by link the same way: the service adds and removes only the
links it made; a link a person made stays and is never counted as the service's, and one a person
removed stays removed. The service's own fields (Contact Key, the note) are written as they are.
Values are compared as Airtable gives them back: a missing field, `None`, `""` and `[]` are all
empty.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from service.identifiers import phone
from service.people.names import name_key
from service.people.normalize import address_text, normalize_email

# Logical field keys (config.DEFAULT_FIELDS) merged one value each, and the link field.
VALUES = ("NAME", "PHONE", "PHONE_TYPE", "EMAIL", "DIN", "ADDRESS")
LINKS = "COMPANY"


@dataclass
class Merged:
    """What to write to one row (`fields`, by logical key: only what changes), what the service
    will then have written last (`written`, to keep for the next merge), and the fields a person
    changed that the source changed too (`notes`: key → (the person's value, the source's))."""

    fields: dict[str, Any] = field(default_factory=dict)
    written: dict[str, Any] = field(default_factory=dict)
    notes: dict[str, tuple[Any, Any]] = field(default_factory=dict)


def empty(value: Any) -> bool:
    return value is None or value == "" or value == []


def same(a: Any, b: Any) -> bool:
    if empty(a) and empty(b):
        return True
    if isinstance(a, list) and isinstance(b, list):
        return sorted(map(str, a)) == sorted(map(str, b))
    return bool(a == b)


def equivalent(key: str, a: Any, b: Any) -> bool:
    """The same value written two ways (as an older tool or a person may have): one E.164 phone,
    one email address, or one name but for case, spacing, punctuation and honorifics."""
    if same(a, b):
        return True
    if empty(a) or empty(b):
        return False
    if key == "PHONE":
        return phone(a).e164 is not None and phone(a).e164 == phone(b).e164
    if key == "EMAIL":
        return (
            normalize_email(a).address is not None
            and normalize_email(a).address == normalize_email(b).address
        )
    if key == "NAME":
        return isinstance(a, str) and isinstance(b, str) and name_key(a) == name_key(b)
    return False


def merge_row(
    source: dict[str, Any],
    last: dict[str, Any] | None,
    current: dict[str, Any],
    pending: dict[str, Any] | None = None,
) -> Merged:
    """The merge of one existing row. `source`: the values the service would write, by logical key
    (a value of None: the source has none, so nothing is written for it, except where the row
    still holds a value the service wrote, now withdrawn: a masked number read as a phone by an
    earlier version, a phone erased with a forgotten person; that is cleared. Phone Type follows
    the phone); `last`: what the service wrote last (None: nothing known, as for a row
    adopted from an older table, so a value the row holds that the source does not say, even
    spelt another way (`equivalent`), is taken as a person's, and a link it holds that the
    source lists as the service's; a key it lacks: that
    field's value is taken as the service's own, as after a field was renamed); `current`: the
    row's values in Airtable now, by logical key; `pending`: what a write whose answer never came
    would have made the service's (Airtable may have applied it): a field holding that is the
    service's."""
    if last is None:  # a value the source says too, spelt its own way, is the service's to tidy
        last = {
            key: current[key]
            for key in VALUES
            if key in current and key in source and equivalent(key, current[key], source[key])
        }
        last[LINKS] = [r for r in current.get(LINKS) or [] if r in (source.get(LINKS) or [])]
    else:
        last = {**current, **last}
    for key, value in (pending or {}).items():
        if key != LINKS and key in current and same(current[key], value):
            last[key] = value
    if pending and LINKS in pending and LINKS in current:
        # Link by link: one whose presence is what the lost write would have made it, is that.
        now, sent = set(current[LINKS] or []), set(pending[LINKS] or [])
        was = set(last.get(LINKS) or [])
        for record in now | sent | was:
            if (record in now) == (record in sent):
                was = was | {record} if record in sent else was - {record}
        last[LINKS] = sorted(was)
    merged = Merged()
    phone_kept = False
    for key in VALUES:
        if key not in source:
            continue
        new, was, now = source[key], last.get(key), current.get(key)
        if key == "PHONE_TYPE" and phone_kept:
            merged.written[key] = was  # a phone a person chose: its type is theirs too
            continue
        if new is None and key != "PHONE_TYPE" and (empty(was) or not same(now, was)):
            merged.written[key] = was  # the source has nothing to say
            continue
        if same(now, was):  # as the service left it
            if not same(new, now):
                merged.fields[key] = new
            merged.written[key] = new
        elif same(new, now):  # the row holds what the source says (a retried write that Airtable
            merged.written[key] = new  # applied, or a person agreeing): the service's from now on
        else:  # a person's value: it stays
            phone_kept |= key == "PHONE"
            merged.written[key] = was
            if not same(new, was):
                merged.notes[key] = (now, new)
    if LINKS in source:
        _merge_links(merged, source[LINKS] or [], last.get(LINKS) or [], current.get(LINKS) or [])
    return merged


def _merge_links(merged: Merged, new: list[str], last: list[str], now: list[str]) -> None:
    """Link by link: one the row holds as the service left it follows the source; one a person
    added or removed stays as they left it, and the service's record of it does not move."""
    wanted, written, held = set(new), set(last), set(now)
    final = [record for record in now]
    own = []
    for record in dict.fromkeys([*now, *last, *new]):  # every record once, in a stable order
        if (record in written) == (record in held):  # as the service left it
            if record in wanted:
                own.append(record)
                if record not in held:
                    final.append(record)
            elif record in held:
                final.remove(record)
        elif record in written:  # the service's link, removed by a person: stays removed
            own.append(record)
    if not same(final, now):
        merged.fields[LINKS] = final
    merged.written[LINKS] = own


def recorded(stored: Any, names: Mapping[str, tuple[str | None, str]]) -> dict[str, Any] | None:
    """What the service wrote to a row, by logical key, from its stored record (`airtable_written`
    or `airtable_pending`: keyed by field id, which stays when a person renames the field, or by
    field name as kept before ids were). None: nothing recorded. `names`: key → (id, name)."""
    record = json.loads(stored) if isinstance(stored, str) else stored
    if record is None:
        return None
    found = {}
    for key, (field_id, name) in names.items():
        if field_id is not None and field_id in record:
            found[key] = record[field_id]
        elif name in record:
            found[key] = record[name]
    return found


def to_record(written: Mapping[str, Any], names: Mapping[str, tuple[str | None, str]]) -> dict[str, Any]:
    """`written` (by logical key) as stored: by field id where the schema gave one."""
    return {names[key][0] or names[key][1]: value for key, value in written.items() if key in names}


def contact_values(row: Mapping[str, Any]) -> dict[str, Any]:
    """What the source says a person's row holds, by logical key (a value of None: nothing), from
    their PostgreSQL row with `company_record_ids`."""
    addresses = row["addresses"]
    return {
        "NAME": row["name"],
        "PHONE": row["phone_e164"],
        "PHONE_TYPE": row["phone_type"],
        "EMAIL": row["email"],
        "DIN": row["din"],
        "ADDRESS": address_text(json.loads(addresses) if isinstance(addresses, str) else addresses),
        LINKS: list(row["company_record_ids"]),
    }


def written_whole(source: dict[str, Any]) -> dict[str, Any]:
    """What the service has written after creating a row with `source`: every value, an empty one
    too (a cell left empty is the service's, so what a person types there later is theirs)."""
    return {key: value for key, value in source.items() if key in (*VALUES, LINKS)}
