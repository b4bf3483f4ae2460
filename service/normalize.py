"""Normalisation of the contacts Attestr returns: names, Indian phone numbers, emails, DINs.

Everything that comes from Attestr is untrusted: a field may be missing, null, a number where a
string was expected, carry HTML markup, or hold two values at once. Raw values are always kept;
only the normalised ones are used as keys and sent to Airtable.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import phonenumbers
from phonenumbers import PhoneNumberType

MAX_TEXT = 500
# An HTML tag; `<name@example.com>` is an address in angle brackets, not a tag.
_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9]*(?:\s[^<>]*)?/?>")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u200b-\u200f\u2028\u2029\ufeff]")
_SPACE = re.compile(r"\s+")
_EMAIL_SHAPE = re.compile(
    r"^[a-z0-9!#$%&'*+/=?^_`{|}~.-]+@[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*\.[a-z]{2,}$"
)
_EMAIL_SPLIT = re.compile(r"[\s,;/|]+")
_INTEGRAL_FLOAT = re.compile(r"^(\d+)\.0+$")
_PHONE_TYPES = {PhoneNumberType.MOBILE: "Mobile", PhoneNumberType.FIXED_LINE: "Landline"}
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


def clean_text(value: Any, max_len: int = MAX_TEXT) -> str | None:
    """A printable, single-spaced string from anything Attestr might send, or None."""
    if value is None or isinstance(value, bool | dict | list):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = html.unescape(_TAG.sub(" ", str(value)))
    text = _SPACE.sub(" ", _CONTROL.sub(" ", text)).strip()
    return text[:max_len] or None


class Phone(NamedTuple):
    raw: str | None
    e164: str | None = None
    type: str | None = None


class Email(NamedTuple):
    raw: str | None
    address: str | None = None


_WRITTEN_COUNTRY_CODE = re.compile(r"^0+91(\d{10})$")
_PLAIN = re.compile(r"^[0-9 +()./-]*$")  # nothing but what phone numbers are written with


def _valid(text: str) -> tuple[phonenumbers.PhoneNumber, PhoneNumberType] | None:
    """The number and its type when phonenumbers considers it valid. The type is the same test
    as `is_valid_number` (UNKNOWN means not valid), so it is done once."""
    try:
        number = phonenumbers.parse(text, "IN")
    except phonenumbers.NumberParseException:
        return None
    kind = phonenumbers.number_type(number)
    return (number, kind) if kind != PhoneNumberType.UNKNOWN else None


def _parsed_phone(text: str) -> tuple[phonenumbers.PhoneNumber, PhoneNumberType] | None:
    if found := _valid(text):
        return found
    # "091 98200 12345": the country code written after a trunk zero.
    written = _WRITTEN_COUNTRY_CODE.match(re.sub(r"[^\d+]", "", text))
    if written and (found := _valid(f"+91{written.group(1)}")):
        return found
    # Two numbers in one field ("98765 43210 / 91234 56789"): the first valid one.
    for match in phonenumbers.PhoneNumberMatcher(text, "IN", leniency=phonenumbers.Leniency.VALID):
        return match.number, phonenumbers.number_type(match.number)
    return None


def normalize_phone(value: Any) -> Phone:
    """E.164 (default region IN) when phonenumbers considers the number valid; the raw always."""
    if isinstance(value, str) and _PLAIN.match(value):
        raw = " ".join(value.split())[:100] or None  # the common case needs no markup cleaning
    else:
        raw = clean_text(value, 100)
    if raw is None:
        return Phone(None)
    found = _parsed_phone(_INTEGRAL_FLOAT.sub(r"\1", raw))  # 9876543210.0 from a spreadsheet
    if found is None:
        return Phone(raw)
    number, kind = found
    e164 = f"+{number.country_code}{phonenumbers.national_significant_number(number)}"  # E.164
    return Phone(raw, e164, _PHONE_TYPES.get(kind))


def normalize_email(value: Any) -> Email:
    """Trimmed and lower-cased; the first address of a valid shape, or no address."""
    raw = clean_text(value, 320)
    if raw is None:
        return Email(None)
    for token in _EMAIL_SPLIT.split(raw.lower().removeprefix("mailto:")):
        token = token.strip("<>()[]\"'.").removeprefix("mailto:")
        if len(token) <= 254 and _EMAIL_SHAPE.match(token):
            return Email(raw, token)
    return Email(raw)


def normalize_din(value: Any) -> str | None:
    """A DIN is eight digits; a number that lost its leading zeros on the way gets them back."""
    if isinstance(value, bool):
        return None
    text = clean_text(value, 50)
    if text is None:
        return None
    text = text.replace(" ", "")
    if text.isdigit() and len(text) <= 8 and int(text) > 0:
        return text.zfill(8)
    return None


def _clean_address(value: Any) -> dict[str, str] | None:
    if not isinstance(value, dict):
        return None
    address = {k: v for k in (*ADDRESS_PARTS, "fullAddress") if (v := clean_text(value.get(k)))}
    return address or None


def address_text(addresses: list[dict[str, str]]) -> str | None:
    """What Airtable's `Address` shows: the first address's fullAddress, or one from its parts."""
    if not addresses:
        return None
    first = addresses[0]
    return first.get("fullAddress") or ", ".join(first[k] for k in ADDRESS_PARTS if k in first) or None


@dataclass
class Contact:
    """One contact of an Attestr answer, normalised."""

    din: str | None = None
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
    name = clean_text(full_name)
    contact = Contact(
        din=normalize_din(item.get("indexId")),
        name=name,
        name_raw=full_name[:MAX_TEXT] if name and isinstance(full_name, str) else name,
        phone=normalize_phone(item.get("mobileNumber")),
        email=normalize_email(item.get("emailAddress")),
        addresses=addresses[:10],
    )
    if not (contact.din or contact.name or contact.phone.raw or contact.email.raw):
        return None
    return contact


def name_key(name: str | None) -> str | None:
    """How two names are compared: case, punctuation and spacing do not count."""
    if not name:
        return None
    return " ".join(re.sub(r"[^\w\s]", " ", name.casefold()).split()) or None
