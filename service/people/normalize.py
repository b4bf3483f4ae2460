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

import structlog
from email_validator import EmailNotValidError, validate_email

from service import identifiers
from service.identifiers import MAX_TEXT, Phone, placeholder, plain

log = structlog.get_logger(__name__)

_EMAIL_SPLIT = re.compile(r"[\s,;/|]+")
# A DIN written inside a name: "(DIN: 07123456)", "DIN No. 07123456", "[DIN-07123456]".
_DIN_IN_NAME = re.compile(
    r"[(\[]?\s*\bDIN\b\s*(?:No\.?|Number)?\s*[:.#-]?\s*(\d{8})\b\s*[)\]]?", re.IGNORECASE
)
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


# RFC 2142's mailboxes for a service, role or function, and those Indian companies file for
# theirs (the company secretary's `cs@`, `accounts@`, `investors@`…): a company's, not a
# person's, so never a key that could join two people.
ROLE_MAILBOXES = frozenset(
    {
        "info", "marketing", "sales", "support", "abuse", "noc", "security", "postmaster",
        "hostmaster", "usenet", "news", "webmaster", "www", "uucp", "ftp", "accounts", "account",
        "admin", "office", "contact", "contactus", "enquiry", "enquiries", "inquiry", "mail",
        "cs", "secretarial", "compliance", "investor", "investors", "investorrelations", "ir",
        "hr", "finance", "legal", "care", "help", "helpdesk", "hello", "billing", "corporate",
        "grievance", "grievances", "tax", "gst", "team", "query", "queries", "feedback", "ca",
    }
)  # fmt: skip
# Written where no address was known ("na@na.com", "nil@gmail.com", "test@test.com").
_PLACEHOLDER_MAILBOXES = frozenset(
    {
        "na", "nil", "none", "null", "noemail", "nomail", "notavailable", "test", "abc", "xyz",
        "dummy", "example",
    }
)  # fmt: skip


def _local_part(address: str) -> str:
    """The mailbox name compared: before any `+tag`, without dots, hyphens, underscores or
    trailing digits (`info.1@`, `investor-relations@`)."""
    local = address.partition("@")[0].partition("+")[0]
    return re.sub(r"[._-]", "", local).rstrip("0123456789")


def role_mailbox(address: str | None) -> bool:
    """Whether an address is a shared role mailbox (`info@`, `accounts@`, `cs@`…), RFC 2142's
    and those companies file."""
    return bool(address) and _local_part(address) in ROLE_MAILBOXES  # type: ignore[arg-type]


# Domains only written where no address was known ("x@na.com"); "abc.in" may be a company's.
_PLACEHOLDER_DOMAINS = frozenset({"na", "nil", "none", "null", "noemail", "test", "dummy"})


def _placeholder_address(address: str) -> bool:
    local, domain = _local_part(address), address.partition("@")[2]
    return (
        local in _PLACEHOLDER_MAILBOXES or placeholder(local) or domain.split(".")[0] in _PLACEHOLDER_DOMAINS
    )


def normalize_email(value: Any) -> Email:
    """Trimmed and lower-cased; the first valid address of the field (or of a list), or no
    address; a placeholder ("NA", "na@na.com") is no address and no raw value either. The raw
    value is otherwise always kept."""
    if isinstance(value, list | tuple):
        readings = [normalize_email(v) for v in value if not isinstance(v, list | tuple)]
        return next((e for e in readings if e.address), next((e for e in readings if e.raw), Email(None)))
    raw = plain(value, 320)
    if raw is None or placeholder(raw):
        return Email(None)
    placeholders = False
    for token in _EMAIL_SPLIT.split(raw.removeprefix("mailto:")):
        # What encloses an address in a sentence or a header, not part of it; a full stop
        # after it ends the sentence.
        token = token.strip("<>()[]\"',;").removeprefix("mailto:").rstrip(".")
        if token and len(token) <= 254 and (address := _address(token)):
            if not _placeholder_address(address):
                return Email(raw, address)
            placeholders = True
    return Email(None) if placeholders else Email(raw)


def _clean_address(value: Any) -> dict[str, str] | None:
    if not isinstance(value, dict):
        return None
    address = {k: v for k in (*ADDRESS_PARTS, "fullAddress") if (v := plain(value.get(k)))}
    return address or None


# What a spreadsheet reads as the start of a formula (OWASP, "CSV Injection"): no real name
# begins with one, and a Contacts table exported to CSV would run it.
_FORMULA_START = "=+-@"


def address_text(addresses: list[dict[str, str]]) -> str | None:
    """What Airtable's `Address` shows: the first address's fullAddress, or one from its parts;
    never starting with a formula character, as a name never does (`_a_name`)."""
    if not addresses:
        return None
    first = addresses[0]
    text = first.get("fullAddress") or ", ".join(first[k] for k in ADDRESS_PARTS if k in first)
    return text.lstrip(_FORMULA_START + " ") or None


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


def _a_name(name: str | None) -> str | None:
    """`name` as a name: without leading formula characters (dropped, logged), and None when
    nothing in it is a letter (a number such as `1.5e300`, a bare symbol): that is no name."""
    if not name:
        return None
    kept = name.lstrip(_FORMULA_START + " ")
    if kept != name:
        log.warning(
            "contacts.name_cleaned", dropped=name[: len(name) - len(kept)].strip(), reason="formula start"
        )
    if not any(char.isalpha() for char in kept):
        if kept:
            log.warning("contacts.name_cleaned", length=len(kept), reason="no letter: not a name")
        return None
    return kept


MAX_ADDRESSES = 10  # a contact's addresses kept: the first is the one Airtable shows


def merged_by_identity(contacts: list[Contact]) -> tuple[list[Contact], int]:
    """`contacts` with those that share a DIN (or a PAN) merged into the first, field by field,
    and how many were merged. One filing can list a person twice (a director who also signs);
    without this the last one listed overwrote the first's name and phone. The fuller name wins;
    the first phone and email that can be used, else the first written; the addresses of both."""
    kept: dict[str, Contact] = {}
    out: list[Contact] = []
    merged = 0
    for contact in contacts:
        identity = f"din:{contact.din}" if contact.din else f"pan:{contact.pan}" if contact.pan else None
        first = kept.get(identity) if identity else None
        if first is None:
            if identity:
                kept[identity] = contact
            out.append(contact)
            continue
        merged += 1
        if len(contact.name or "") > len(first.name or ""):
            first.name, first.name_raw = contact.name, contact.name_raw
        if not first.phone.e164 and (contact.phone.e164 or not first.phone.raw):
            first.phone = contact.phone
        if not first.email.address and (contact.email.address or not first.email.raw):
            first.email = contact.email
        more = [a for a in contact.addresses if a not in first.addresses]
        first.addresses = (first.addresses + more)[:MAX_ADDRESSES]
    return out, merged


def normalize_contact(item: Any) -> Contact | None:
    """A Contact from one element of Attestr's `contacts`, or None when it holds nothing usable."""
    if not isinstance(item, dict):
        return None
    raw_addresses = item.get("addresses")
    if isinstance(raw_addresses, dict):
        raw_addresses = [raw_addresses]
    if not isinstance(raw_addresses, list):
        raw_addresses = []
    addresses: list[dict[str, str]] = []
    for raw in raw_addresses:  # no more read than are kept, however many came
        if len(addresses) == MAX_ADDRESSES:
            log.warning("contacts.addresses_cut", listed=len(raw_addresses), kept=MAX_ADDRESSES)
            break
        if address := _clean_address(raw):
            addresses.append(address)
    full_name = item.get("fullName")
    name = plain(full_name)
    din, pan = identifiers.identity(item.get("indexId"))
    if name and (written := _DIN_IN_NAME.search(name)):
        # "ANANYA RAO (DIN: 07123456)": the DIN is read (unless indexId gave one) and left out.
        din = din or (None if pan else identifiers.din(written.group(1)))
        name = plain(_DIN_IN_NAME.sub(" ", name))
    if placeholder(name):
        name = None
    name = _a_name(name)
    contact = Contact(
        din=din,
        pan=pan,
        name=name,
        name_raw=full_name[:MAX_TEXT] if name and isinstance(full_name, str) else name,
        phone=identifiers.phone(item.get("mobileNumber")),
        email=normalize_email(item.get("emailAddress")),
        addresses=addresses,
    )
    if not (contact.din or contact.pan or contact.name or contact.phone.raw or contact.email.raw):
        return None
    return contact
