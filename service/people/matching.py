"""Matching contacts to people: the rules of the design's "People" section, in one place.

A wrong merge puts one director's name on another's phone, so the rules err towards keeping
two rows apart:

* A DIN or a PAN identifies a person (Attestr's `indexId` is a DIN for a director, a PAN for a
  signatory who is not one). Two different DINs, or two different PANs, are never merged, even
  when they share a phone or email (filings often give the company secretary's number for
  several people).
* A contact with a DIN (or PAN) that matches nobody by it takes over a person who has neither
  and has the same phone, email, or (same company, same name), when the names agree (one may be
  a shorter form of the other): that person seen before, now with the DIN (PAN). A DIN and a
  PAN are two identities: a phone, an email or a name never joins a DIN holder to a PAN holder,
  and a secretary's record never becomes a director's.
* A contact without a DIN matches by phone, then email, then (same company, same name), over all
  people; the oldest person wins when a key points at several. When phone and email point at
  different people the phone wins, the email stays where it is, and the conflict is logged.
* A shared role mailbox (`info@`, `accounts@`, `cs@`…) is shown but is no key: it is the
  company's, not a person's.
* In one company, a name matches the person of the same name. A contact without a DIN or PAN
  matches else the one person without either, of an earlier answer, whose name agrees with it
  ("Ravi Kumar Sharma" after "R K Sharma"); two agreeing people match neither, and within one
  answer only the same name matches. A DIN or PAN claims by the same name only: "Rajesh Sharma"
  with a DIN is not the "R Sharma" who signs as secretary.
* A DIN match updates every field with the newer non-empty values; any other match only fills
  empty fields, and shows a fuller spelling of the same name. Nothing is ever blanked; a
  placeholder ("NA", "9999999999", "na@na.com") is no value.
* Duplicates inside one answer collapse by the same rules, in the answer's order, because the
  contacts are matched one by one against an index that already holds the earlier ones.

The matching is done in memory, on the people the batch could match (`resolve`); storing
the outcome is `dedup.upsert_people`'s.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import structlog

from service.people.names import fullness, name_key, names_agree
from service.people.names_shown import shown_name
from service.people.normalize import Contact, Email, Phone, role_mailbox

log = structlog.get_logger(__name__)

# Fields Airtable shows: a change to any of them means the row must be pushed again.
# (A PAN is a key in PostgreSQL only: never shown in Airtable.)
_VISIBLE = frozenset({"din", "name", "phone_e164", "phone_type", "email", "addresses"})


IDENTITIES = ("din", "pan")


@dataclass
class CompanyContacts:
    """One Attestr answer for one company, ready to store."""

    company_id: int
    contacts: list[Contact]
    replace_links: bool = True  # False for a sync limited by max_contacts: it unlinks no one
    push_all: bool = False  # a forced sync sends every linked person to Airtable again
    suppressed: int = 0  # contacts left out for being forgotten (`contact-sync contacts forget`)


@dataclass(eq=False)
class Person:
    id: int | None
    age: int
    din: str | None = None
    pan: str | None = None
    name: str | None = None
    name_raw: str | None = None
    phone_e164: str | None = None
    phone_raw: str | None = None
    phone_type: str | None = None
    email: str | None = None
    email_raw: str | None = None
    addresses: list[dict[str, str]] = field(default_factory=list)
    company_ids: set[int] = field(default_factory=set)
    changed: bool = False
    visible: bool = False

    def set(self, column: str, value: Any) -> None:
        if getattr(self, column) != value:
            setattr(self, column, value)
            self.changed = True
            self.visible = self.visible or column in _VISIBLE


class PeopleIndex:
    """Every person the batch can match, by each key, oldest first."""

    def __init__(self, people: Iterable[Person]) -> None:
        self.by_identity: dict[tuple[str, str], Person] = {}  # ("din" or "pan", value)
        self.by_phone: dict[str, list[Person]] = defaultdict(list)
        self.by_email: dict[str, list[Person]] = defaultdict(list)
        self.by_company: dict[int, list[Person]] = defaultdict(list)
        self.people: list[Person] = []
        for person in people:
            self.add(person)

    def add(self, person: Person) -> None:
        self.people.append(person)
        self.reindex(person)

    def reindex(self, person: Person) -> None:
        """Make the person findable by its current keys (old keys are filtered on lookup)."""
        for kind in IDENTITIES:
            if value := getattr(person, kind):
                self.by_identity[(kind, value)] = person
        for key, table in ((person.phone_e164, self.by_phone), (person.email, self.by_email)):
            if key and person not in table[key]:
                table[key].append(person)
                table[key].sort(key=lambda p: p.age)
        for company_id in person.company_ids:
            entries = self.by_company[company_id]
            if person not in entries:
                entries.append(person)
                entries.sort(key=lambda p: p.age)

    def oldest(
        self,
        attr: str,
        key: str | None,
        name: str | None,
        *,
        lacking: tuple[str, ...] = (),
        besides: frozenset[int] = frozenset(),
    ) -> Person | None:
        """The oldest person whose `attr` (phone_e164 or email) is `key` and whose name agrees
        with `name`; with `lacking` ("din", "pan"), only a person without those identities; never
        one of `besides` (ids of people)."""
        table = self.by_phone if attr == "phone_e164" else self.by_email
        shared = attr == "email" and role_mailbox(key)
        for person in table.get(key, ()) if key else ():
            if getattr(person, attr) != key or id(person) in besides:
                continue  # the person's key changed since it was indexed, or is ruled out
            if shared and _known_by(person, email=False):
                continue
            if any(getattr(person, kind) for kind in lacking) or not names_agree(person.name, name):
                continue
            return person
        return None

    def by_company_name(
        self,
        company_id: int,
        name: str | None,
        *,
        lacking: tuple[str, ...] = (),
        besides: frozenset[int] = frozenset(),
        other_forms: bool = False,
    ) -> Person | None:
        """The oldest person of this company with this name; with `other_forms`, else the one
        person without a DIN or PAN stored before this answer whose name agrees (two words at
        least on both sides: a later filing writing out what an earlier one gave as initials).
        With `lacking`, only people without those identities."""
        nk = name_key(name)
        if not nk:
            return None
        people = [
            person
            for person in self.by_company.get(company_id, ())
            if company_id in person.company_ids
            and not any(getattr(person, kind) for kind in lacking)
            and id(person) not in besides
        ]
        if same := next((p for p in people if name_key(p.name) == nk), None):
            return same
        if not other_forms or " " not in nk:
            return None
        agreeing = [
            p
            for p in people
            if p.id is not None
            and not (p.din or p.pan)
            and " " in (name_key(p.name) or "")
            and names_agree(p.name, name)
        ]
        return agreeing[0] if len(agreeing) == 1 else None

    def keyless_again(self, company_id: int, contact: Contact, besides: frozenset[int]) -> Person | None:
        """For a contact with nothing to be known by, the person of this company stored from the
        same raw phone and email: the same filing again, rather than one more row each sync."""
        if _known_by(contact):
            return None
        return next(
            (
                p
                for p in self.by_company.get(company_id, ())
                if company_id in p.company_ids
                and id(p) not in besides
                and not _known_by(p)
                and (p.phone_raw, p.email_raw) == (contact.phone.raw, contact.email.raw)
            ),
            None,
        )


def _known_by(who: Contact | Person, *, email: bool = True) -> bool:
    """Whether a contact or person has something to be known by: a DIN, PAN, name or valid phone,
    and (with `email`) a valid email; else only raw values no rule can read."""
    phone, address = (
        (who.phone.e164, who.email.address) if isinstance(who, Contact) else (who.phone_e164, who.email)
    )
    return bool(who.din or who.pan or phone or (email and address) or name_key(who.name))


def _fill(person: Person, contact: Contact, *, replace: bool, skip_email: bool = False) -> None:
    """Copy the contact's values onto the person: all non-empty ones when `replace` (a DIN
    match), otherwise only into empty fields. A phone or email without a valid key never
    replaces one that has a key."""

    def take(current: Any, new: Any) -> bool:
        return bool(new) and (replace or not current)

    if take(person.name, contact.name):
        person.set("name", shown_name(person.name, contact.name))
        person.set("name_raw", contact.name_raw)
    elif (
        contact.name
        and fullness(contact.name) > fullness(person.name)
        and names_agree(person.name, contact.name)
    ):
        # A fuller spelling of the same name (initials written out) is shown, whatever matched:
        # a later name that only agrees with the initials is then judged against the full one.
        person.set("name", shown_name(person.name, contact.name))
        person.set("name_raw", contact.name_raw)
    if contact.phone.e164 and take(person.phone_e164, contact.phone.e164):
        person.set("phone_e164", contact.phone.e164)
        person.set("phone_raw", contact.phone.raw)
        person.set("phone_type", contact.phone.type)
    elif contact.phone.raw and not person.phone_e164 and take(person.phone_raw, contact.phone.raw):
        person.set("phone_raw", contact.phone.raw)
    if not skip_email:
        if contact.email.address and take(person.email, contact.email.address):
            person.set("email", contact.email.address)
            person.set("email_raw", contact.email.raw)
        elif contact.email.raw and not person.email and take(person.email_raw, contact.email.raw):
            person.set("email_raw", contact.email.raw)
    if take(person.addresses, contact.addresses):
        person.set("addresses", contact.addresses)


def identity_of(contact: Contact) -> tuple[str, str] | None:
    """("din", DIN) or ("pan", PAN): the contact's identity, if it has one."""
    if contact.din:
        return "din", contact.din
    return ("pan", contact.pan) if contact.pan else None


def _match(
    index: PeopleIndex,
    contact: Contact,
    company_id: int,
    *,
    besides: frozenset[int] = frozenset(),
) -> tuple[Person | None, str]:
    """The person this contact is, and how it matched: din, pan, claim, weak, conflict or new.
    `besides`: the people other contacts of the same answer already are (the answer named them
    apart)."""
    phone, email = contact.phone.e164, contact.email.address
    if role_mailbox(email) and _known_by(contact, email=False):
        # A company's mailbox joins no one: only an entry that holds nothing else is the same
        # entry again.
        email = None
    if identity := identity_of(contact):
        kind, _value = identity
        if person := index.by_identity.get(identity):
            return person, kind
        # Weak keys never join two identities: only a person with neither is claimed.
        lacking = IDENTITIES
        person = (
            index.oldest("phone_e164", phone, contact.name, lacking=lacking, besides=besides)
            or index.oldest("email", email, contact.name, lacking=lacking, besides=besides)
            or index.by_company_name(company_id, contact.name, lacking=lacking, besides=besides)
        )
        return (person, "claim") if person else (None, "new")
    # Without an identity, a phone or email is a weak key: an office's number is given for
    # several people, so only a person whose name agrees can be the same one.
    by_phone = index.oldest("phone_e164", phone, contact.name, besides=besides)
    by_email = index.oldest("email", email, contact.name, besides=besides)
    if by_phone and by_email and by_phone is not by_email:
        return by_phone, "conflict"
    person = (
        by_phone
        or by_email
        or index.by_company_name(company_id, contact.name, besides=besides, other_forms=True)
        or index.keyless_again(company_id, contact, besides)
    )
    return (person, "weak") if person else (None, "new")


@dataclass
class Plan:
    index: PeopleIndex
    links: dict[int, list[Person]]
    conflicts: list[dict[str, Any]]
    matched: dict[int, list[tuple[Contact, Person, str]]]  # company -> each contact's person and how


class _Matcher:
    """Contacts matched one by one against an index, each becoming or updating a person."""

    def __init__(self, index: PeopleIndex) -> None:
        self.index = index
        self._new = 0

    def take(
        self, contact: Contact, company_id: int, besides: frozenset[int] = frozenset()
    ) -> tuple[Person, str]:
        """The person the contact is (made or updated) and how it matched; never one of
        `besides` but by its own identity."""
        person, how = _match(self.index, contact, company_id, besides=besides)
        if person is None:
            self._new += 1
            person = Person(id=None, age=2**62 + self._new, changed=True, visible=True)
            _fill(person, contact, replace=True)
            person.set("din", contact.din)
            person.set("pan", contact.pan)
            person.company_ids.add(company_id)
            self.index.add(person)
            return person, how
        # A claim gives the person the contact's identity, unless another person has it.
        for kind in IDENTITIES:
            value = getattr(contact, kind)
            if (
                value
                and not getattr(person, kind)
                and self.index.by_identity.get((kind, value)) in (None, person)
            ):
                person.set(kind, value)
        # A claim makes the person that identity's: like a match by it, the newer values count
        # (the next sync matches by the identity and would change them then).
        _fill(person, contact, replace=how in (*IDENTITIES, "claim"), skip_email=how == "conflict")
        person.company_ids.add(company_id)
        self.index.reindex(person)
        return person, how


def _as_contact(person: Person) -> Contact:
    return Contact(
        din=person.din,
        pan=person.pan,
        name=person.name,
        name_raw=person.name_raw,
        phone=Phone(person.phone_raw, person.phone_e164, person.phone_type),
        email=Email(person.email_raw, person.email),
        addresses=person.addresses,
    )


def _in_order(contacts: list[Contact]) -> list[int]:
    """Positions in the order contacts are matched: those with a DIN or PAN first (they are who
    they say; a weak key is judged against them), then the rest, each in the answer's order. So
    the outcome does not hang on where in a filing a person stands, nor on what the previous
    answer changed."""
    return sorted(range(len(contacts)), key=lambda i: (identity_of(contacts[i]) is None, i))


def _collapse(batch: CompanyContacts) -> tuple[list[tuple[Contact, list[int]]], list[dict[str, Any]]]:
    """The answer's contacts with its own duplicates merged first, by the same rules: each
    merged contact and the positions in the answer it stands for, in matching order; and the
    conflicts found inside the answer (a phone and an email pointing at two of its people)."""
    matcher = _Matcher(PeopleIndex([]))
    merged: list[Person] = []
    positions: dict[int, list[int]] = defaultdict(list)
    conflicts: list[dict[str, Any]] = []
    for position in _in_order(batch.contacts):
        person, how = matcher.take(batch.contacts[position], batch.company_id)
        if how == "conflict":
            conflicts.append({"company_id": batch.company_id, "position": position, "within_answer": True})
        if not positions[id(person)]:
            merged.append(person)
        positions[id(person)].append(position)
    return [(_as_contact(person), sorted(positions[id(person)])) for person in merged], conflicts


def resolve(batches: list[CompanyContacts], candidates: Iterable[Person]) -> Plan:
    """Match every contact of every batch against the candidates and each other: an answer's own
    duplicates merged first, then each merged contact matched to a stored person or made one.
    A company's people are linked, and `matched` listed, in the answer's order."""
    matcher = _Matcher(PeopleIndex(candidates))
    links: dict[int, list[Person]] = {}
    conflicts: list[dict[str, Any]] = []
    matched: dict[int, list[tuple[Contact, Person, str]]] = defaultdict(list)
    for batch in batches:
        merged, inside = _collapse(batch)
        conflicts += inside
        found: list[tuple[int, Contact, Person, str]] = []  # (position, contact, person, how)
        for contact, positions in merged:
            # The answer told its people apart: one of them never joins another's person.
            person, how = matcher.take(contact, batch.company_id, frozenset(id(f[2]) for f in found))
            if how == "conflict":
                email_owner = matcher.index.oldest("email", contact.email.address, contact.name)
                conflicts.append(
                    {
                        "company_id": batch.company_id,
                        "position": positions[0],
                        "phone_person_id": person.id,
                        "email_person_id": email_owner.id if email_owner else None,
                    }
                )
            found += [(i, batch.contacts[i], person, how) for i in positions]
        found.sort(key=lambda f: f[0])
        linked = links.setdefault(batch.company_id, [])
        for _, contact, person, how in found:
            if all(p is not person for p in linked):
                linked.append(person)
            matched[batch.company_id].append((contact, person, how))
    return Plan(matcher.index, links, conflicts, matched)
