"""The de-duplication rules on plain data (`matching.resolve`), without PostgreSQL.

Each rule is a few Attestr answers stored one after another and what the people are after the
last one. `Memory` stands in for the people table between answers the way `upsert_people` uses
it: the people read back unchanged, new ones given ids in the order they were made, a company's
links replaced by its latest answer. test_dedup.py checks the same rules against PostgreSQL;
here they run in milliseconds, so hypothesis can throw messy answers at them.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, replace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.people.matching import CompanyContacts, Person, Plan, resolve
from service.people.normalize import ROLE_MAILBOXES, normalize_contact

ACME, BETA = 1, 2
SECRETARY = {"phone": "98200 11111", "email": "cs@acme.example"}
OFFICE = "022 2345 1111"


def person(din: Any = None, name: Any = None, phone: Any = None, email: Any = None, **extra: Any) -> dict:
    """One element of an Attestr answer's `contacts`."""
    return {"indexId": din, "fullName": name, "mobileNumber": phone, "emailAddress": email, **extra}


class Memory:
    """The people PostgreSQL would hold after each answer, kept in memory."""

    def __init__(self) -> None:
        self.people: list[Person] = []

    def store(self, company_id: int, *items: Any, replace_links: bool = True) -> Plan:
        """Match one answer of one company against everyone stored, and keep the outcome."""
        contacts = [c for c in map(normalize_contact, items) if c]
        # Read back as `_load_candidates` would: fresh rows that nothing has changed yet.
        known = [
            replace(p, company_ids=set(p.company_ids), changed=False, visible=False) for p in self.people
        ]
        plan = resolve([CompanyContacts(company_id, contacts, replace_links=replace_links)], known)
        next_id = max((p.id or 0 for p in known), default=0) + 1
        for p in plan.index.people:
            if p.id is None:
                p.id = p.age = next_id
                next_id += 1
            if replace_links and all(p is not q for q in plan.links[company_id]):
                p.company_ids.discard(company_id)
        self.people = sorted(plan.index.people, key=lambda p: p.age)
        return plan


def _row(p: Person) -> dict[str, Any]:
    """A person as test_dedup.py reads its row: the columns, and its companies in order."""
    return {**vars(p), "companies": sorted(p.company_ids)}


def _how(plan: Plan, company_id: int) -> list[str]:
    return [how for _contact, _person, how in plan.matched[company_id]]


@dataclass(frozen=True)
class Rule:
    name: str
    answers: list[tuple[int, list[dict]]]  # (company, its answer's contacts), stored in this order
    people: list[dict[str, Any]]  # everyone afterwards, oldest first: only the fields named are checked
    how: list[str]  # how the last answer's contacts matched, in the answer's order
    limited: bool = False  # the last answer is of a sync limited by max_contacts: it unlinks no one


RULES = [
    Rule(
        "same DIN under two companies is one person with two links",
        [
            (ACME, [person("01234567", "Ravi Kumar", "9845067321")]),
            (BETA, [person("01234567", "RAVI KUMAR", "+91 98450 67321")]),
        ],
        [{"din": "01234567", "name": "Ravi Kumar", "companies": [ACME, BETA]}],
        ["din"],
    ),
    Rule(
        "a phone in four spellings is one person, the first spelling kept",
        [
            (ACME, [person(name="Meera Iyer", phone=spelling)])
            for spelling in ["+91 98450 67321", "09845067321", "9845067321", "919845067321"]
        ],
        [{"phone_e164": "+919845067321", "phone_raw": "+91 98450 67321"}],
        ["weak"],
    ),
    Rule(
        "emails differing in case and spaces are one person, not renamed by a weak match",
        [
            (ACME, [person(name="Meera Iyer", email="Meera.Iyer@Example.com")]),
            (BETA, [person(name="M Iyer", email="  meera.iyer@EXAMPLE.COM ")]),
        ],
        [{"email": "meera.iyer@example.com", "name": "Meera Iyer", "companies": [ACME, BETA]}],
        ["weak"],
    ),
    Rule(
        "people without phone or email do not collide; the same name in one answer does",
        [
            (
                ACME,
                [
                    person(name="Asha Rao"),
                    person(name="Vikram Shah"),
                    person(name="Lata Menon"),
                    person(name="Vikram Shah", phone="N/A", email="none"),
                ],
            )
        ],
        [
            {"name": "Asha Rao", "phone_e164": None, "email": None},
            {"name": "Vikram Shah", "phone_e164": None, "phone_raw": None, "email": None},
            {"name": "Lata Menon", "phone_e164": None, "email": None},
        ],
        ["new", "new", "new", "new"],
    ),
    Rule(
        "two DINs sharing the secretary's phone and email stay two people",
        [
            (
                ACME,
                [
                    person("01111111", "Arjun Mehta", **SECRETARY),
                    person("02222222", "Kavita Mehta", **SECRETARY),
                ],
            ),
            (BETA, [person("02222222", "Kavita Mehta", **SECRETARY)]),
        ],
        [
            {"din": "01111111", "name": "Arjun Mehta", "phone_e164": "+919820011111", "companies": [ACME]},
            {
                "din": "02222222",
                "name": "Kavita Mehta",
                "phone_e164": "+919820011111",
                "companies": [ACME, BETA],
            },
        ],
        ["din"],
    ),
    Rule(
        "a shared phone without an identity joins no one whose name disagrees",
        [
            (
                ACME,
                [
                    person("01111111", "Arjun Mehta", "98200 11111"),
                    person("02222222", "Kavita Mehta", "98200 11111"),
                ],
            ),
            (BETA, [person(name="Company Secretary", phone="98200 11111")]),
        ],
        [
            {"name": "Arjun Mehta", "companies": [ACME]},
            {"name": "Kavita Mehta", "companies": [ACME]},
            {"name": "Company Secretary", "din": None, "companies": [BETA]},
        ],
        ["new"],
    ),
    Rule(
        "a shared phone joins the oldest person whose name agrees",
        [
            (
                ACME,
                [
                    person("01111111", "Arjun Mehta", "98200 11111"),
                    person("02222222", "Kavita Mehta", "98200 11111"),
                ],
            ),
            (BETA, [person(name="Company Secretary", phone="98200 11111")]),
            (
                BETA,
                [
                    person(name="A. MEHTA", phone="98200 11111"),
                    person(name="Company Secretary", phone="98200 11111"),
                ],
            ),
        ],
        [
            {"name": "Arjun Mehta", "companies": [ACME, BETA]},
            {"name": "Kavita Mehta", "companies": [ACME]},
            {"name": "Company Secretary", "companies": [BETA]},
        ],
        ["weak", "weak"],
    ),
    Rule(
        "a DIN-less person found by phone gets the DIN, and the filing's values",
        [
            (ACME, [person(name="Sunil Joshi", phone="9811122233")]),
            (BETA, [person("03333333", "SUNIL JOSHI", "+91 98111 22233", "sunil@joshi.example")]),
        ],
        [
            {
                "din": "03333333",
                "name": "Sunil Joshi",  # differs only in case: the name shown stays
                "name_raw": "SUNIL JOSHI",
                "email": "sunil@joshi.example",
                "companies": [ACME, BETA],
            }
        ],
        ["claim"],
    ),
    Rule(
        "once claimed, the person matches by the DIN and takes newer values",
        [
            (ACME, [person(name="Sunil Joshi", phone="9811122233")]),
            (BETA, [person("03333333", "SUNIL JOSHI", "+91 98111 22233", "sunil@joshi.example")]),
            (BETA, [person("03333333", "Sunil K Joshi", "9811122233")]),
        ],
        [{"din": "03333333", "name": "Sunil K Joshi", "email": "sunil@joshi.example"}],
        ["din"],
    ),
    Rule(
        "a DIN-less person found by email, or by company and name, gets the DIN",
        [
            (ACME, [person(name="Nisha Kapoor", email="nisha@kapoor.example"), person(name="Om Prakash")]),
            (
                ACME,
                [
                    person("04444444", "Nisha Kapoor", email="NISHA@kapoor.example"),
                    person("05555555", "om  prakash"),
                ],
            ),
        ],
        [{"name": "Nisha Kapoor", "din": "04444444"}, {"name": "Om Prakash", "din": "05555555"}],
        ["claim", "claim"],
    ),
    Rule(
        "a secretary's record is not given a director's DIN",
        [
            (ACME, [person(name="Rekha Pillai (CS)", phone="9822233344")]),
            (ACME, [person("06666666", "Manoj Verma", "9822233344")]),
        ],
        [
            {"name": "Rekha Pillai (CS)", "din": None, "companies": []},  # unlinked by the newer answer
            {"name": "Manoj Verma", "din": "06666666", "phone_e164": "+919822233344", "companies": [ACME]},
        ],
        ["new"],
    ),
    Rule(
        "phone and email pointing at different people: the phone wins, the email stays",
        [
            (
                ACME,
                [
                    person(name="Deepa Nair", phone="9833344455"),
                    person(name="Divya Nair", email="divya@nair.example"),
                ],
            ),
            (BETA, [person(name="D Nair", phone="9833344455", email="divya@nair.example")]),
        ],
        [
            {"name": "Deepa Nair", "phone_e164": "+919833344455", "email": None, "companies": [ACME, BETA]},
            {"name": "Divya Nair", "phone_e164": None, "email": "divya@nair.example", "companies": [ACME]},
        ],
        ["conflict"],
    ),
    Rule(
        "duplicates inside one answer collapse, the DIN's values winning",
        [
            (
                ACME,
                [
                    person(name="Farhan Ali", phone="9844455566"),
                    person("07777777", "Farhan Ali", "09844455566", "farhan@ali.example"),
                    person("07777777", "FARHAN ALI", None, None, addresses=[{"city": "Hyderabad"}]),
                    person(name="Farhan Ali", email="FARHAN@ali.example"),
                ],
            )
        ],
        [
            {
                "din": "07777777",
                "name": "Farhan Ali",
                "name_raw": "FARHAN ALI",
                "phone_e164": "+919844455566",
                "email": "farhan@ali.example",
                "addresses": [{"city": "Hyderabad"}],
                "companies": [ACME],
            }
        ],
        ["new", "new", "new", "new"],
    ),
    Rule(
        "a contact without an identity is judged against the answer's DINs, wherever it stands",
        [
            (
                ACME,
                [
                    person(name="R Kumar", phone="9845067321", email="kumar@acme.example"),
                    person("02222222", "Rajesh Kumar", email="kumar@acme.example"),
                    person("01111111", "Ravi Kumar", "9845067321"),
                ],
            )
        ],
        [  # R Kumar's phone is Ravi's, and the phone wins over the email (not Rajesh claiming it)
            {"din": "02222222", "name": "Rajesh Kumar", "phone_e164": None, "email": "kumar@acme.example"},
            {"din": "01111111", "name": "Ravi Kumar", "phone_e164": "+919845067321", "email": None},
        ],
        ["new", "new", "new"],
    ),
    Rule(
        "a DIN match takes newer values but never blanks one",
        [
            (
                ACME,
                [
                    person(
                        "08888888", "Old Name", "9855566677", "old@x.example", addresses=[{"city": "Delhi"}]
                    )
                ],
            ),
            (ACME, [person("08888888", "New Name", None, "new@x.example", addresses=[])]),
            (ACME, [person("08888888", "", "12345", "not-an-email")]),
        ],
        [
            {
                "name": "New Name",
                "phone_e164": "+919855566677",
                "phone_raw": "9855566677",
                "email": "new@x.example",
                "addresses": [{"city": "Delhi"}],
            }
        ],
        ["din"],
    ),
    Rule(
        "a weak match only fills empty fields",
        [
            (ACME, [person(name="Gita Bose", phone="9866677788")]),
            (
                ACME,
                [
                    person(
                        name="Gita B",
                        phone="9866677788",
                        email="gita@bose.example",
                        addresses=[{"city": "Kolkata"}],
                    )
                ],
            ),
        ],
        [{"name": "Gita Bose", "email": "gita@bose.example", "addresses": [{"city": "Kolkata"}]}],
        ["weak"],
    ),
    Rule(
        "the latest answer replaces a company's links; people stay",
        [
            (ACME, [person("01000001", "A One"), person("01000002", "B Two")]),
            (ACME, [person("01000003", "C Three")]),
        ],
        [{"companies": []}, {"companies": []}, {"companies": [ACME]}],
        ["new"],
    ),
    Rule(
        "a limited answer links without unlinking anyone",
        [
            (ACME, [person("01000001", "A One"), person("01000002", "B Two")]),
            (ACME, [person("01000003", "C Three")]),
        ],
        [{"companies": [ACME]}, {"companies": [ACME]}, {"companies": [ACME]}],
        ["new"],
        limited=True,
    ),
    Rule(
        "signatories with different PANs sharing the office phone stay two",
        [
            (
                ACME,
                [person("ABCPK1234F", "NISHA KAPOOR", OFFICE), person("BCDPG2345K", "DEEPAK GUPTA", OFFICE)],
            )
        ],
        [
            {"name": "Nisha Kapoor", "pan": "ABCPK1234F", "din": None, "phone_e164": "+912223451111"},
            {"name": "Deepak Gupta", "pan": "BCDPG2345K", "din": None, "phone_e164": "+912223451111"},
        ],
        ["new", "new"],
    ),
    Rule(
        "a DIN holder and a PAN holder sharing a phone and a name stay two people",
        [
            (ACME, [person("01234567", "Ravi Kumar", "9845067321")]),
            (BETA, [person("ABCPK1234F", "RAVI KUMAR", "+91 98450 67321")]),
        ],
        [
            {"din": "01234567", "pan": None, "companies": [ACME]},
            {"din": None, "pan": "ABCPK1234F", "companies": [BETA]},
        ],
        ["new"],
    ),
    Rule(
        "another PAN on the same phone is another person",
        [
            (ACME, [person("01234567", "Ravi Kumar", "9845067321")]),
            (BETA, [person("ABCPK1234F", "RAVI KUMAR", "+91 98450 67321")]),
            (BETA, [person("ZZZPK9999Z", "Ravi Kumar", "9845067321")]),
        ],
        [
            {"din": "01234567", "pan": None},
            {"din": None, "pan": "ABCPK1234F"},
            {"din": None, "pan": "ZZZPK9999Z"},
        ],
        ["new"],
    ),
    Rule(
        "a PAN never claims a person whose name disagrees",
        [
            (ACME, [person("01234567", "ANANYA RAO", OFFICE)]),
            (ACME, [person("01234567", "ANANYA RAO", OFFICE), person("ABCPK1234F", "NISHA KAPOOR", OFFICE)]),
        ],
        [
            {"name": "Ananya Rao", "din": "01234567", "pan": None},
            {"name": "Nisha Kapoor", "pan": "ABCPK1234F"},
        ],
        ["din", "new"],
    ),
    Rule(
        "a DIN in Devanagari digits, or in a list with invisible characters, is the same director",
        [
            (ACME, [person("05678912", "Meera Iyer")]),
            (BETA, [person("०५६७८९१२", "MEERA IYER")]),
            (BETA, [person(["", "\u200b05678912\ufeff"], "Meera Iyer")]),
        ],
        [{"din": "05678912", "companies": [ACME, BETA]}],
        ["din"],
    ),
    Rule(
        "one person however the filing writes the name",
        [
            (
                ACME,
                [
                    person(name="Mr. Suresh Pillai", phone="98470 11223"),
                    person(name="SURESH PILLAI", phone="9847011223"),
                ],
            )
        ],
        [{"name": "Mr. Suresh Pillai", "phone_e164": "+919847011223"}],  # as first written
        ["new", "new"],
    ),
    Rule(
        "a mobile number has the type Mobile",
        [(ACME, [person("01234567", "Ravi Kumar", "98450 12345")])],
        [{"phone_e164": "+919845012345", "phone_type": "Mobile"}],
        ["new"],
    ),
    Rule(
        "the phone type follows the phone (a toll-free number has none)",
        [
            (ACME, [person("01234567", "Ravi Kumar", "98450 12345")]),
            (ACME, [person("01234567", "Ravi Kumar", "1800 200 3000")]),
        ],
        [{"phone_e164": "+9118002003000", "phone_type": None}],
        ["din"],
    ),
    Rule(
        "the name shown does not flip with the company synced last",
        [
            (ACME, [person("08234567", "VIKRAM SETHI")]),
            (BETA, [person("08234567", "Vikram  Sethi")]),
            (ACME, [person("08234567", "VIKRAM SETHI")]),
        ],
        [{"name": "Vikram Sethi", "name_raw": "VIKRAM SETHI"}],
        ["din"],
    ),
    *(
        Rule(
            f"a director and a signatory named in one answer are two people ({order})",
            [(ACME, answer)],
            [{"din": din, "pan": pan} for din, pan in identities],
            ["new", "new"],
        )
        for order, answer, identities in [
            (
                "signatory first",
                [person("ABCPK1234F", "R KUMAR", OFFICE), person("01234567", "RAJESH KUMAR", OFFICE)],
                # Contacts with an identity are matched in the answer's order, so made in it.
                [(None, "ABCPK1234F"), ("01234567", None)],
            ),
            (
                "director first",
                [person("01234567", "RAJESH KUMAR", OFFICE), person("ABCPK1234F", "R KUMAR", OFFICE)],
                [("01234567", None), (None, "ABCPK1234F")],
            ),
        ]
    ),
    Rule(
        "a PAN stored for another company is linked, not stored twice",
        [
            (BETA, [person("ABCPK1234F", "Ravi Kumar", "9820011111")]),
            (ACME, [person("01234567", "Ravi Kumar", OFFICE), person("ABCPK1234F", "Ravi Kumar", OFFICE)]),
        ],
        [
            {"din": None, "pan": "ABCPK1234F", "companies": [ACME, BETA]},
            {"din": "01234567", "pan": None, "companies": [ACME]},
        ],
        ["new", "pan"],
    ),
    # --- people as real filings write them (names, initials, scripts, placeholders, masks) ---
    Rule(
        "two people in an Indic script on one office phone stay two",
        [(ACME, [person(name="सुरेश पिल्लै", phone=OFFICE), person(name="सरिता पाल", phone=OFFICE)])],
        [{"name": "सुरेश पिल्लै"}, {"name": "सरिता पाल"}],
        ["new", "new"],
    ),
    Rule(
        "two people named by joined initials and one name stay two",
        [(ACME, [person(name="KM RAO", phone=OFFICE)]), (ACME, [person(name="DR RAO", phone=OFFICE)])],
        [{"name": "KM Rao", "companies": []}, {"name": "DR Rao", "companies": [ACME]}],
        ["new"],
    ),
    Rule(
        "a masked number is no one's phone and no key",
        [
            (
                ACME,
                [person(name="Asha Rao", phone="98XXXXXX45"), person(name="Vikram Shah", phone="98XXXXXX45")],
            )
        ],
        [
            {"name": "Asha Rao", "phone_e164": None, "phone_raw": "98XXXXXX45"},
            {"name": "Vikram Shah", "phone_e164": None, "phone_raw": "98XXXXXX45"},
        ],
        ["new", "new"],
    ),
    Rule(
        "a shared role mailbox does not make a secretary a director",
        [
            (ACME, [person("01234567", "Ravi Kumar", email="info@acme.example")]),
            (
                ACME,
                [
                    person("01234567", "Ravi Kumar", email="info@acme.example"),
                    person(name="R Kumar", email="info@acme.example"),
                ],
            ),
        ],
        [{"name": "Ravi Kumar", "din": "01234567"}, {"name": "R Kumar", "din": None}],
        ["din", "new"],
    ),
    Rule(
        "a name in NFD is the name in NFC",
        [
            (ACME, [person(name="José Rao")]),
            (ACME, [person("01234567", unicodedata.normalize("NFD", "José Rao"))]),
        ],
        [{"name": "José Rao", "din": "01234567"}],
        ["claim"],
    ),
    Rule(
        "a DIN written in the name is the DIN",
        [(ACME, [person("07123456", "Ananya Rao")]), (BETA, [person(name="ANANYA RAO (DIN: 07123456)")])],
        [{"name": "Ananya Rao", "din": "07123456", "companies": [ACME, BETA]}],
        ["din"],
    ),
    Rule(
        "the full name after initials is the same person, still linked, shown in full",
        [(ACME, [person(name="R K SHARMA")]), (ACME, [person(name="RAVI KUMAR SHARMA")])],
        [{"name": "Ravi Kumar Sharma", "companies": [ACME]}],
        ["weak"],
    ),
    Rule(
        "the full name after initials, with two people it could be, is neither",
        [
            (ACME, [person(name="R Sharma"), person(name="Ravi S")]),
            (ACME, [person(name="Ravi Sharma")]),
        ],
        [
            {"name": "R Sharma", "companies": []},
            {"name": "Ravi S", "companies": []},
            {"name": "Ravi Sharma", "companies": [ACME]},
        ],
        ["new"],
    ),
    Rule(
        "a placeholder in a later filing leaves the real phone and email",
        [
            (ACME, [person("01234567", "Ravi Kumar", "98450 12345", "ravi@kumar.example")]),
            (ACME, [person("01234567", "Ravi Kumar", "9999999999", "na@na.com")]),
        ],
        [{"phone_e164": "+919845012345", "email": "ravi@kumar.example", "phone_raw": "98450 12345"}],
        ["din"],
    ),
    Rule(
        "a placeholder after a real value in one answer does not win",
        [
            (
                ACME,
                [
                    person("01234567", "Ravi Kumar", "98450 12345", "ravi@kumar.example"),
                    person("01234567", "Ravi Kumar", "NA", "nil@gmail.com"),
                ],
            )
        ],
        [{"phone_e164": "+919845012345", "email": "ravi@kumar.example"}],
        ["new", "new"],
    ),
    Rule(
        "a fax beside a mobile gives the mobile",
        [(ACME, [person("01234567", "Ravi Kumar", "Fax 022 2345 6789, Mob 98450 12345")])],
        [{"phone_e164": "+919845012345", "phone_type": "Mobile"}],
        ["new"],
    ),
    Rule(
        "the fuller name wins and the order does not flip",
        [
            (ACME, [person("01234567", "K V RAO")]),
            (ACME, [person("01234567", "KOTA VENKATA RAO")]),
            (ACME, [person("01234567", "RAO KOTA VENKATA")]),
            (ACME, [person("01234567", "K. V. Rao")]),
        ],
        [{"name": "Kota Venkata Rao"}],
        ["din"],
    ),
]


@pytest.mark.parametrize("rule", RULES, ids=[r.name for r in RULES])
def test_rule(rule: Rule) -> None:
    memory = Memory()
    for i, (company_id, answer) in enumerate(rule.answers):
        last = i == len(rule.answers) - 1
        plan = memory.store(company_id, *answer, replace_links=not (rule.limited and last))
    got = [_row(p) for p in memory.people]
    assert [{k: row[k] for k in want} for row, want in zip(got, rule.people, strict=False)] == rule.people
    assert len(got) == len(rule.people), [row["name"] for row in got]
    assert _how(plan, rule.answers[-1][0]) == rule.how


def test_a_conflict_names_the_phones_person_and_the_emails() -> None:
    memory = Memory()
    memory.store(
        ACME,
        person(name="Deepa Nair", phone="9833344455"),
        person(name="Divya Nair", email="divya@nair.example"),
    )
    plan = memory.store(BETA, person(name="D Nair", phone="9833344455", email="divya@nair.example"))
    assert plan.conflicts == [{"company_id": BETA, "position": 0, "phone_person_id": 1, "email_person_id": 2}]


def test_a_conflict_inside_one_answer_is_reported_with_its_position() -> None:
    plan = Memory().store(
        ACME,
        person(name="Deepa Nair", phone="9833344455"),
        person(name="Divya Nair", email="divya@nair.example"),
        person(name="D Nair", phone="9833344455", email="divya@nair.example"),
    )
    assert plan.conflicts == [{"company_id": ACME, "position": 2, "within_answer": True}]
    assert _how(plan, ACME) == ["new", "new", "new"]
    deepa, _divya, d_nair = (p for _c, p, _how in plan.matched[ACME])
    assert d_nair is deepa and len(plan.links[ACME]) == 2  # the phone won


def test_a_company_s_people_are_linked_and_listed_in_the_answer_s_order() -> None:
    """Contacts with an identity are matched first, but the outcome follows the answer."""
    plan = Memory().store(
        ACME,
        person(name="Asha Rao", phone="9811100001"),
        person("01000002", "B Two"),
        person(name="ASHA RAO", phone="9811100001"),
        person("ABCPK1234F", "C Three"),
    )
    assert [p.name for p in plan.links[ACME]] == ["Asha Rao", "B Two", "C Three"]
    assert [(c.name_raw, p.name) for c, p, _how in plan.matched[ACME]] == [
        ("Asha Rao", "Asha Rao"),
        ("B Two", "B Two"),
        ("ASHA RAO", "Asha Rao"),
        ("C Three", "C Three"),
    ]


def test_the_same_answer_again_changes_no_one() -> None:
    """What `upsert_people` updates, and marks for Airtable, is what the matching changed."""
    memory = Memory()
    answer = [
        person(name="Sunil Joshi", phone="9811122233"),
        person("03333333", "SUNIL JOSHI", "+91 98111 22233", "sunil@joshi.example"),
        person("ABCPK1234F", "NISHA KAPOOR", OFFICE, addresses=[{"city": "Pune"}]),
    ]
    memory.store(ACME, *answer)
    plan = memory.store(ACME, *answer)
    assert [p for p in plan.index.people if p.changed or p.id is None] == []


def test_only_a_change_airtable_shows_makes_a_row_visible() -> None:
    """A PAN is never shown in Airtable, nor is a raw spelling: gaining one changes the row
    (it is updated) but does not make it pushed again; a new email does."""
    memory = Memory()
    memory.store(ACME, person(name="Ravi Kumar", phone="9845067321"))
    plan = memory.store(BETA, person("ABCPK1234F", "RAVI KUMAR", "+91 98450 67321"))
    ((ravi,),) = [plan.index.people]
    assert (ravi.changed, ravi.visible, ravi.pan) == (True, False, "ABCPK1234F")
    plan = memory.store(BETA, person("ABCPK1234F", "Ravi Kumar", "9845067321", "ravi@kumar.example"))
    assert [(p.changed, p.visible) for p in plan.index.people] == [(True, True)]


# --- properties over messy answers ---------------------------------------------------------------

_DISAGREEING = [
    "Nisha Kapoor", "Deepak Gupta", "Arjun Mehta", "Company Secretary", "Farah Khan", "KM Rao", "DR Rao",
    "MS Reddy", "सुरेश पिल्लै", "सरिता पाल", "सुनील शर्मा",
]  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(
    st.permutations(_DISAGREEING),
    st.lists(
        st.sampled_from([OFFICE, "98450 12345"]), min_size=len(_DISAGREEING), max_size=len(_DISAGREEING)
    ),
    st.sampled_from(["office@acme.example", "info@acme.example"]),
)
def test_weak_keys_never_join_names_that_disagree_in_any_order(
    names: list[str], phones: list[str], email: str
) -> None:
    memory = Memory()
    memory.store(ACME, *(person(name=n, phone=p, email=email) for n, p in zip(names, phones, strict=True)))
    assert sorted(p.name for p in memory.people) == sorted(_DISAGREEING)


@settings(max_examples=100, deadline=None)
@given(st.permutations(["MR. SURESH PILLAI", "Suresh Pillai", "S. PILLAI", "suresh  pillai"]))
def test_spellings_of_one_name_on_one_phone_are_one_person_in_any_order(spellings: list[str]) -> None:
    memory = Memory()
    memory.store(ACME, *(person(name=n, phone="98470 11223") for n in spellings))
    (one,) = memory.people
    assert one.phone_e164 == "+919847011223"


# Few values, written many ways, so that generated answers keep running into each other.
_IDENTITIES = [
    "01234567",
    "०१२३४५६७",
    " 07654321 ",
    "ABCPK1234F",
    "abcpk1234f",
    "BCDPG2345K",
    None,
    "",
    "N/A",
    1234567,
]
_NAMES = [
    "Ravi Kumar", "RAVI KUMAR", "Mr. Ravi  Kumar", "R. Kumar", "Ravi Kumar Sharma", "Ravi Shankar",
    "Nisha Kapoor", "N KAPOOR", "Company Secretary", "<b>Deepak</b> Gupta", "", None, 42,
    "KM RAO", "DR RAO", "सुरेश पिल्लै", "सरिता पाल", "NA", "RAVI KUMAR (DIN: 01234567)",
]  # fmt: skip
_PHONES = [
    "9845067321",
    "+91 98450 67321",
    OFFICE,
    "02223451111",
    "N/A",
    "12345",
    9845067321,
    None,
    ["", OFFICE],
    "98XXXXXX21",
    "9999999999",
    "Fax: 022 2345 1111",
    "9845067321/9123456789",
]
_EMAILS = [
    "cs@acme.example",
    " CS@ACME.example ",
    "ravi@kumar.example",
    "not-an-email",
    None,
    ["", "n@k.example"],
    "info@acme.example",
    "na@na.com",
    "ravi@kumar.example.",
]
_items = st.fixed_dictionaries(
    {
        "indexId": st.sampled_from(_IDENTITIES),
        "fullName": st.sampled_from(_NAMES),
        "mobileNumber": st.sampled_from(_PHONES),
        "emailAddress": st.sampled_from(_EMAILS),
    },
    optional={
        "addresses": st.sampled_from([[{"city": "Pune"}], {"fullAddress": "<p>5 Park St</p>"}, "x", None])
    },
) | st.sampled_from([None, "garbage", 7, [], {}])
_answers = st.lists(
    st.tuples(st.sampled_from([ACME, BETA]), st.lists(_items, max_size=8)), min_size=1, max_size=4
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_answers)
def test_identities_are_never_merged_nor_lost_whatever_the_answers(
    answers: list[tuple[int, list[Any]]],
) -> None:
    """Two DINs, or two PANs, are never one person; every contact with an identity becomes the
    person holding it; a stored identity never changes."""
    memory = Memory()
    for company_id, answer in answers:
        before = {p.id: (p.din, p.pan) for p in memory.people}
        plan = memory.store(company_id, *answer)
        for kind in ("din", "pan"):
            held = [getattr(p, kind) for p in memory.people if getattr(p, kind)]
            assert len(held) == len(set(held)), f"two people hold one {kind}"
        assert not any(p.din and p.pan for p in memory.people), "a DIN and a PAN joined"
        for contact, p, _how in plan.matched[company_id]:
            assert contact.din in (None, p.din) and contact.pan in (None, p.pan)
        for p in memory.people:
            old_din, old_pan = before.get(p.id, (None, None))
            assert old_din in (None, p.din) and old_pan in (None, p.pan)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_items, max_size=8))
def test_every_contact_is_linked_and_no_one_twice(answer: list[Any]) -> None:
    plan = Memory().store(ACME, *answer)
    contacts = [c for c in map(normalize_contact, answer) if c]
    assert [c for c, _p, _how in plan.matched[ACME]] == contacts
    linked = plan.links[ACME]
    assert len({id(p) for p in linked}) == len(linked)
    assert {id(p) for _c, p, _how in plan.matched[ACME]} == {id(p) for p in linked}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_items, max_size=8), st.sampled_from([ACME, BETA]))
def test_the_same_messy_answer_again_makes_and_changes_no_one(answer: list[Any], company_id: int) -> None:
    """Storing an answer twice changes nothing the second time (so pushes nothing to Airtable),
    a contact with nothing to be known by included (the same raw values again)."""
    memory = Memory()
    memory.store(company_id, *answer)
    plan = memory.store(company_id, *answer)
    assert [p for p in plan.index.people if p.changed or p.id is None] == []


_given_names = st.sampled_from(["Rajesh", "Ravi", "Rohan", "Radha", "Sunita", "Kiran"])
_surnames = st.sampled_from(["Sharma", "Iyer", "Nair", "Reddy"])


@settings(max_examples=200, deadline=None)
@given(
    _given_names,
    _surnames,
    st.sampled_from(sorted(ROLE_MAILBOXES)),
    st.booleans(),
    st.sampled_from([ACME, BETA]),
)
def test_a_role_mailbox_never_makes_a_secretary_a_director(
    given_name: str, surname: str, mailbox: str, secretary_first: bool, director_company: int
) -> None:
    """The secretary's initial fits the director's name and they share the company's mailbox,
    in either order, in one company or two: two people."""
    email = f"{mailbox}@{surname.lower()}exports.example"
    secretary = (ACME, person(name=f"{given_name[0]} {surname}", email=email))
    director = (director_company, person("03456789", f"{given_name} {surname}", email=email))
    memory = Memory()
    for company_id, item in [secretary, director] if secretary_first else [director, secretary]:
        memory.store(company_id, item, replace_links=False)
    assert len(memory.people) == 2
    assert sorted(bool(p.din) for p in memory.people) == [False, True]


@settings(max_examples=200, deadline=None)
@given(_given_names, _given_names, _surnames, st.booleans(), st.booleans())
def test_the_fuller_name_is_shown_whichever_filing_came_first(
    first: str, middle: str, surname: str, full_first: bool, by_din: bool
) -> None:
    """Initials in one filing, the name written out in another: one person, shown in full. With
    a DIN, across two companies; without one, in the same company (an earlier answer's person)."""
    full = f"{first} {middle} {surname}".upper()
    short = f"{first[0]} {middle[0]} {surname}".upper()
    din, later = ("04567891", BETA) if by_din else (None, ACME)
    memory = Memory()
    for company_id, name in [(ACME, full), (later, short)] if full_first else [(ACME, short), (later, full)]:
        memory.store(company_id, person(din, name), replace_links=False)
    (one,) = memory.people
    assert one.name == full.title() and one.company_ids == {ACME, later}
