"""Normalisation of the contacts Attestr returns: names, emails, addresses, and their
identifiers (DIN or PAN, phone) read by `identifiers`.

Everything that comes from Attestr is untrusted: a field may be missing, null, a number where a
string was expected, a list, carry HTML markup or invisible characters, or hold two values at
once. Raw values are always kept; only the normalised ones are used as keys and sent to Airtable.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from email_validator import EmailNotValidError, validate_email

from service import identifiers
from service.identifiers import MAX_TEXT, Phone, plain

_EMAIL_SPLIT = re.compile(r"[\s,;/|]+")
ADDRESS_PARTS = (
    "line1",
    "line2",
    "line3",
    "line4",
    "locality",
    "district",
    "city",
    "state",
    "country",
    "zip",
)


class Email(NamedTuple):
    raw: str | None
    address: str | None = None


def _address(token: str) -> str | None:
    """The address, lower-cased, when email-validator finds its syntax valid (no network
    lookup); never another address: a leading or doubled dot is an invalid address, not one to
    mend (it would be someone else's mailbox)."""
    try:
        found = validate_email(token, check_deliverability=False)
    except EmailNotValidError:
        return None
    return found.normalized.lower()


def normalize_email(value: Any) -> Email:
    """Trimmed and lower-cased; the first valid address of the field (or of a list), or no
    address. The raw value is always kept."""
    if isinstance(value, list | tuple):
        readings = [normalize_email(v) for v in value if not isinstance(v, list | tuple)]
        return next((e for e in readings if e.address), next((e for e in readings if e.raw), Email(None)))
    raw = plain(value, 320)
    if raw is None:
        return Email(None)
    for token in _EMAIL_SPLIT.split(raw.removeprefix("mailto:")):
        # What encloses an address in a sentence or a header, not part of it.
        token = token.strip("<>()[]\"',;").removeprefix("mailto:")
        if token and len(token) <= 254 and (address := _address(token)):
            return Email(raw, address)
    return Email(raw)


def _clean_address(value: Any) -> dict[str, str] | None:
    if not isinstance(value, dict):
        return None
    address = {k: v for k in (*ADDRESS_PARTS, "fullAddress") if (v := plain(value.get(k)))}
    return address or None


def address_text(addresses: list[dict[str, str]]) -> str | None:
    """What Airtable's `Address` shows: the first address's fullAddress, or one from its parts."""
    if not addresses:
        return None
    first = addresses[0]
    return first.get("fullAddress") or ", ".join(first[k] for k in ADDRESS_PARTS if k in first) or None


@dataclass
class Contact:
    """One contact of an Attestr answer, normalised. `din` or `pan` is the person's identity
    (never both: Attestr's `indexId` is one or the other)."""

    din: str | None = None
    pan: str | None = None
    name: str | None = None
    name_raw: str | None = None
    phone: Phone = field(default_factory=lambda: Phone(None))
    email: Email = field(default_factory=lambda: Email(None))
    addresses: list[dict[str, str]] = field(default_factory=list)


def normalize_contact(item: Any) -> Contact | None:
    """A Contact from one element of Attestr's `contacts`, or None when it holds nothing usable."""
    if not isinstance(item, dict):
        return None
    raw_addresses = item.get("addresses")
    if isinstance(raw_addresses, dict):
        raw_addresses = [raw_addresses]
    addresses = (
        [a for a in map(_clean_address, raw_addresses or []) if a] if isinstance(raw_addresses, list) else []
    )
    full_name = item.get("fullName")
    name = plain(full_name)
    din, pan = identifiers.identity(item.get("indexId"))
    contact = Contact(
        din=din,
        pan=pan,
        name=name,
        name_raw=full_name[:MAX_TEXT] if name and isinstance(full_name, str) else name,
        phone=identifiers.phone(item.get("mobileNumber")),
        email=normalize_email(item.get("emailAddress")),
        addresses=addresses[:10],
    )
    if not (contact.din or contact.pan or contact.name or contact.phone.raw or contact.email.raw):
        return None
    return contact
