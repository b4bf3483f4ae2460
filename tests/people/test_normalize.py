"""Normalising what Attestr sends: phones, emails, DINs, names, addresses; values as real filings
write them, as tables and as properties."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from service.identifiers import din as normalize_din
from service.identifiers import inert
from service.identifiers import phone as normalize_phone
from service.identifiers import plain as clean_text
from service.people.names import name_key
from service.people.normalize import address_text, normalize_contact, normalize_email, role_mailbox


@pytest.mark.parametrize(
    "raw",
    [
        "+91 98450 67321",
        "09845067321",
        "9845067321",
        "919845067321",
        "+91-98450-67321",
        "(+91) 98450 67321",
        "0091 9845067321",
        "091-98450 67321",
        "91 98450-67321",
        9845067321,
        9845067321.0,
        "9845067321.0",
        " 98450\u00a067321 ",
        "<b>98450 67321</b>",
        "98450 67321 / 91234 56789",
        "+91 98450 67321, +91 91234 56789",
    ],
)
def test_indian_mobile_in_every_format_is_one_e164(raw: object) -> None:
    phone = normalize_phone(raw)
    assert phone.e164 == "+919845067321"
    assert phone.type == "Mobile"
    assert phone.raw  # the raw value is kept


def test_landline_and_foreign_numbers() -> None:
    landline = normalize_phone("022 2345 6789")
    assert (landline.e164, landline.type) == ("+912223456789", "Landline")
    us = normalize_phone("+1 650 253 0000")
    assert us.e164 == "+16502530000" and us.type is None  # neither mobile nor fixed line


@pytest.mark.parametrize("raw", ["12345", "0000000000", "not a phone", "+91 98765 4321", "98XXXXXX45"])
def test_invalid_phone_keeps_raw_but_has_no_key(raw: str) -> None:
    phone = normalize_phone(raw)
    assert phone.e164 is None and phone.type is None
    assert phone.raw == raw


def test_a_phone_as_a_list_is_its_first_valid_number() -> None:
    assert normalize_phone(["", "not a phone", "98450 67321", "91234 56789"]).e164 == "+919845067321"
    assert normalize_phone([1, 2]) == ("1", None, None)  # none valid: the first, raw, is kept


@pytest.mark.parametrize("raw", [None, "", "   ", True, {"a": 1}, [], [None, ""]])
def test_phone_missing_or_wrong_type(raw: object) -> None:
    assert normalize_phone(raw).raw is None and normalize_phone(raw).e164 is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  Ravi.Kumar@Example.COM ", "ravi.kumar@example.com"),
        ("RAVI.KUMAR@EXAMPLE.COM", "ravi.kumar@example.com"),
        ("mailto:ravi@example.in", "ravi@example.in"),
        ('<a href="mailto:ravi@example.in">ravi@example.in</a>', "ravi@example.in"),
        ("ravi@example.in; accounts@example.in", "ravi@example.in"),
        ("<ravi@example.in>", "ravi@example.in"),
    ],
)
def test_email_normalised(raw: str, expected: str) -> None:
    email = normalize_email(raw)
    assert email.address == expected
    assert email.raw is not None


@pytest.mark.parametrize(
    "raw", ["ravi@", "@example.com", "ravi at example dot com", "ravi@example", "ravi..k@x.in"]
)
def test_email_without_valid_shape_has_no_key(raw: str) -> None:
    email = normalize_email(raw)
    assert email.address is None and email.raw == raw


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("07864946", "07864946"),
        (7864946, "07864946"),
        (" 0786 4946 ", "07864946"),
        ("ABCDE1234F", None),
        (None, None),
        (True, None),
        ("0", None),
        ("123456789", None),
    ],
)
def test_din(raw: object, expected: str | None) -> None:
    assert normalize_din(raw) == expected


def test_clean_text_strips_markup_controls_and_spaces() -> None:
    assert clean_text("  <b>RAVI</b>\tKUMAR&nbsp;\n SHARMA\x00 ") == "RAVI KUMAR SHARMA"
    assert clean_text("x" * 5000) == "x" * 500
    assert clean_text(12) == "12"
    assert clean_text([]) is None


def test_name_key_ignores_case_punctuation_and_spacing() -> None:
    assert name_key("  Ravi   K.  SHARMA ") == name_key("ravi k sharma") == "ravi k sharma"
    assert name_key("...") is None


def test_contact_from_messy_attestr_item() -> None:
    contact = normalize_contact(
        {
            "indexId": 1234567,
            "fullName": "  <i>Anita</i>   DESAI ",
            "mobileNumber": "091-98200 12345",
            "emailAddress": " Anita.Desai@Example.co.in ",
            "addresses": [
                "not an address",
                {"line1": "12 MG Road", "city": "Pune", "zip": 411001, "state": None},
            ],
            "unexpected": {"nested": True},
        }
    )
    assert contact is not None
    assert contact.din == "01234567"
    assert contact.name == "Anita DESAI"
    assert contact.phone.e164 == "+919820012345"
    assert contact.email.address == "anita.desai@example.co.in"
    assert contact.addresses == [{"line1": "12 MG Road", "city": "Pune", "zip": "411001"}]
    assert address_text(contact.addresses) == "12 MG Road, Pune, 411001"


@pytest.mark.parametrize("item", [None, "text", 42, [], {}, {"fullName": None, "mobileNumber": ""}])
def test_contact_with_nothing_usable_is_dropped(item: object) -> None:
    assert normalize_contact(item) is None


def test_address_prefers_full_address() -> None:
    assert (
        address_text([{"fullAddress": "1 A St, Mumbai", "city": "Mumbai"}, {"city": "Pune"}])
        == "1 A St, Mumbai"
    )
    assert address_text([]) is None


# --- values as real filings write them: placeholders, masks, faxes, several numbers ---------------


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        # Placeholders: nothing was known.
        ("NA", None),
        ("N/A", None),
        ("nil", None),
        ("-", None),
        ("9999999999", None),
        ("0000000000", None),
        ("1234567890", None),
        ("9876543210", None),
        ("+91 99999 99999", None),
        # Masked by a published filing: no number, and never a stranger's by keypad letters.
        ("98XXXXXX45", None),
        ("98450 XXXXX", None),
        ("98450*****", None),
        ("1800-FLOWERS", None),
        # A number labelled as a fax is not a contact's phone.
        ("Fax: 022-23456789", None),
        ("Fax 022 2345 6789, Mob 98450 12345", "+919845012345"),
        ("Tel: 022-23456789 Fax: 022-23456790", "+912223456789"),
        # Several numbers in one field, however joined: the first usable one.
        ("9845012345/9123456789", "+919845012345"),
        ("9845012345, 9123456789", "+919845012345"),
        ("9845012345-9123456789", "+919845012345"),
        ("9845012345 9123456789", "+919845012345"),
        ("98450-12345 - 91234-56789", "+919845012345"),
        ("9845012345 or 9123456789", "+919845012345"),
        ("9999999999 / 9845012345", "+919845012345"),
        ("Mob: 98450 12345", "+919845012345"),
    ],
)
def test_phones_as_filings_write_them(raw: str, e164: str | None) -> None:
    assert normalize_phone(raw).e164 == e164


@pytest.mark.parametrize(
    ("raw", "address"),
    [
        ("ananya@x.in.", "ananya@x.in"),  # a full stop after it ends the sentence
        ("Write to ananya@x.in.", "ananya@x.in"),
        ("na@na.com", None),
        ("nil@gmail.com", None),
        ("test@test.com", None),
        ("NA", None),
        ("na@na.com, ravi@x.in", "ravi@x.in"),  # a placeholder before a real one
    ],
)
def test_emails_as_filings_write_them(raw: str, address: str | None) -> None:
    assert normalize_email(raw).address == address


@pytest.mark.parametrize(
    "raw", ["NA", "N/A", "nil", "-", "none", "Not Available", "9999999999", "1234567890"]
)
def test_a_placeholder_phone_is_no_value_at_all(raw: str) -> None:
    """Not a key, not shown, and not even a raw value that could replace a real one."""
    assert normalize_phone(raw) == (None, None, None)


@pytest.mark.parametrize("raw", ["NA", "N/A", "nil", "-", "Not Available", "na@na.com", "noemail@gmail.com"])
def test_a_placeholder_email_is_no_value_at_all(raw: str) -> None:
    assert normalize_email(raw) == (None, None)


@pytest.mark.parametrize(
    ("address", "shared"),
    [
        ("info@acme.in", True),
        ("accounts@acme.in", True),
        ("cs@acme.in", True),
        ("investor.relations@acme.in", True),
        ("investors@acme.in", True),
        ("info1@acme.in", True),
        ("ananya.rao@acme.in", False),
        ("csrao@acme.in", False),
    ],
)
def test_role_mailboxes(address: str, shared: bool) -> None:
    assert role_mailbox(address) is shared


@pytest.mark.parametrize(
    ("name", "din", "shown"),
    [
        ("ANANYA RAO (DIN: 07123456)", "07123456", "ANANYA RAO"),
        ("Ananya Rao DIN No. 07123456", "07123456", "Ananya Rao"),
        ("K M RAO [DIN-01234567]", "01234567", "K M RAO"),
        ("NA", None, None),
        ("-", None, None),
    ],
)
def test_a_din_written_in_the_name_is_read(name: str, din: str | None, shown: str | None) -> None:
    contact = normalize_contact({"fullName": name, "mobileNumber": "98450 12345"})
    assert contact is not None and (contact.din, contact.name) == (din, shown)


_digit_runs = st.sampled_from(["0123456789", "9876543210"]).flatmap(
    lambda run: st.integers(0, 9).map(lambda start: (run * 2)[start : start + 10])
)


@settings(max_examples=200, deadline=None)
@given(
    st.one_of(st.integers(0, 9).map(lambda d: str(d) * 10), _digit_runs),
    st.sampled_from(["{}", "+91 {}", "0{}", "{} ", "+91-{}"]),
)
def test_no_placeholder_number_is_a_phone(digits: str, written: str) -> None:
    assert normalize_phone(written.format(digits)).e164 is None


_MOBILES = (
    st.tuples(st.sampled_from("6789"), st.text("0123456789", min_size=9, max_size=9))
    .map("".join)
    .filter(lambda n: normalize_phone(n).e164 is not None)
)
_SPELLINGS = ["{a}{b}", "+91 {a} {b}", "0{a}-{b}", "+91-{a}{b}", "(+91) {a} {b}", "91 {a} {b}"]
_JOINS = [" ", "/", ",", ", ", " / ", "-", " - ", ";", " or ", " & ", "  "]


@settings(max_examples=300, deadline=None)
@given(_MOBILES, _MOBILES, st.sampled_from(_SPELLINGS), st.sampled_from(_SPELLINGS), st.sampled_from(_JOINS))
def test_several_numbers_in_one_field_give_the_first(
    first: str, second: str, spelled: str, spelled_too: str, join: str
) -> None:
    field = spelled.format(a=first[:5], b=first[5:]) + join + spelled_too.format(a=second[:5], b=second[5:])
    assert normalize_phone(field).e164 == "+91" + first


@settings(max_examples=300, deadline=None)
@given(_MOBILES, st.integers(1, 8), st.sampled_from("Xx*•"))
def test_a_masked_number_is_never_a_phone(number: str, masked: int, mask: str) -> None:
    written = number[:2] + mask * masked + number[2 + masked :]
    assert normalize_phone(written).e164 is None


_local = st.text(st.sampled_from(list("abcdefghijklmnopqrstuvwxyz")), min_size=3, max_size=10)
_domain = st.sampled_from(["acme.in", "nilgiri.example", "gmail.com", "sharma-exports.co.in"])


@settings(max_examples=200, deadline=None)
@given(_local, _domain, st.sampled_from(["", ".", " .", ". ", "  "]), st.sampled_from([str.lower, str.upper]))
def test_an_email_reads_the_same_whatever_ends_its_sentence(local: str, domain: str, end: str, case) -> None:  # type: ignore[no-untyped-def]
    address = f"{local}@{domain}"
    assume(normalize_email(address).address == address)  # not a placeholder ("test@gmail.com")
    assert normalize_email(case(address) + end).address == address


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(["na", "nil", "none", "null", "noemail", "test", "dummy", "xxx"]),
    st.sampled_from(["na.com", "nil.com", "gmail.com", "none.in", "test.com"]),
    st.sampled_from([str.lower, str.upper, str.title]),
)
def test_a_placeholder_mailbox_is_no_email(local: str, domain: str, case) -> None:  # type: ignore[no-untyped-def]
    assert normalize_email(case(f"{local}@{domain}")) == (None, None)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(_local, min_size=2, max_size=3).map(" ".join),
    st.from_regex(r"0[1-9][0-9]{6}", fullmatch=True),
    st.sampled_from(["{} (DIN: {})", "{} DIN {}", "{} [DIN-{}]", "{} DIN No. {}", "{} (DIN:{})"]),
    st.sampled_from([str.upper, str.title]),
)
def test_a_din_written_in_any_name_is_read_and_taken_out(name: str, din: str, written: str, case) -> None:  # type: ignore[no-untyped-def]
    contact = normalize_contact({"fullName": written.format(case(name), din)})
    assert contact is not None and contact.din == din and name_key(contact.name) == name_key(name)


@settings(max_examples=200, deadline=None)
@given(
    _MOBILES, _MOBILES, st.sampled_from(["Fax: {}", "FAX {}", "Fax No. {}", "F: {}"]), st.sampled_from(_JOINS)
)
def test_a_number_labelled_as_a_fax_is_never_the_phone(fax: str, mobile: str, label: str, join: str) -> None:
    assert normalize_phone(label.format(fax)).e164 is None
    assert normalize_phone(label.format(fax) + join + mobile).e164 == "+91" + mobile
    assert normalize_phone(mobile + join + label.format(fax)).e164 == "+91" + mobile


@pytest.mark.parametrize(
    ("full_name", "stored"),
    [
        ('=HYPERLINK("http://x","Ananya Rao")', 'HYPERLINK("http://x","Ananya Rao")'),
        ("+Ananya Rao", "Ananya Rao"),
        ("- Ananya Rao", "Ananya Rao"),
        ("@SUM(A1)", "SUM(A1)"),
        ("=-+@ Meera", "Meera"),
        (1.5e300, None),  # a number given as a name: not 300 digits of name
        ("12345", None),
        ("+=", None),
        ("#$%", None),
        ("Ananya Rao-Sethi", "Ananya Rao-Sethi"),  # a hyphen inside a name stays
    ],
)
def test_a_name_never_starts_a_formula_and_a_number_is_no_name(full_name: object, stored: str | None) -> None:
    contact = normalize_contact({"indexId": "07123456", "fullName": full_name})
    assert contact is not None and contact.name == stored


@settings(max_examples=300)
@given(st.text(alphabet=st.sampled_from("=+-@ \t\u200b") | st.characters(), max_size=40))
def test_no_name_stored_starts_a_formula_or_lacks_a_letter(full_name: str) -> None:
    contact = normalize_contact({"indexId": "07123456", "fullName": full_name})
    assert contact is not None
    if contact.name is not None:
        assert contact.name[0] not in "=+-@" and any(c.isalpha() for c in contact.name)


@settings(max_examples=300)
@given(st.text(max_size=80))
def test_outside_text_shown_at_a_terminal_is_inert(text: str) -> None:
    """No control or format character (an escape sequence, a bidi override, a line break) gets
    through to a terminal: what is printed is one line that cannot rewrite what is around it."""
    shown = inert(text)
    assert all(unicodedata.category(c)[0] != "C" for c in shown)
    assert "\n" not in shown and "\r" not in shown and "\x1b" not in shown


def test_one_din_listed_twice_in_an_answer_is_merged_field_by_field() -> None:
    from structlog.testing import capture_logs

    from service.attestr.client import parse_answer

    raw = {
        "valid": True,
        "contacts": [
            {"indexId": "07123456", "fullName": "A RAO", "mobileNumber": "98XXXXXX45"},
            {"indexId": "01234567", "fullName": "Vikram Sethi"},
            {
                "indexId": "07123456",
                "fullName": "ANANYA RAO",
                "mobileNumber": "98450 12345",
                "emailAddress": "ananya@nilgiri.example",
                "addresses": [{"fullAddress": "12 MG Road, Bengaluru"}],
            },
        ],
    }
    with capture_logs() as logs:
        answer = parse_answer("U72200KA2015PTC081234", raw, 100)
    ananya, vikram = answer.contacts
    assert (ananya.din, ananya.name, ananya.phone.e164, ananya.email.address) == (
        "07123456",
        "ANANYA RAO",
        "+919845012345",
        "ananya@nilgiri.example",
    )
    assert ananya.addresses == [{"fullAddress": "12 MG Road, Bengaluru"}] and vikram.din == "01234567"
    assert [(e["event"], e["merged"]) for e in logs if e["event"] == "attestr.duplicate_identity"] == [
        ("attestr.duplicate_identity", 1)
    ]


def test_a_contact_with_forty_thousand_addresses_keeps_ten_and_says_so() -> None:
    from structlog.testing import capture_logs

    addresses = [{"fullAddress": f"{n} MG Road, Bengaluru"} for n in range(40_000)]
    with capture_logs() as logs:
        contact = normalize_contact({"indexId": "07123456", "fullName": "Ananya Rao", "addresses": addresses})
    assert contact is not None and contact.addresses == addresses[:10]
    assert [(e["listed"], e["kept"]) for e in logs if e["event"] == "contacts.addresses_cut"] == [
        (40_000, 10)
    ]


@pytest.mark.parametrize(
    ("written", "shown"),
    [
        ('=HYPERLINK("x")', 'HYPERLINK("x")'),
        ("- 12 MG Road", "12 MG Road"),
        ("12-A MG Road", "12-A MG Road"),
        ("+", None),
    ],
)
def test_an_address_shown_never_starts_a_formula(written: str, shown: str | None) -> None:
    assert address_text([{"fullAddress": written}]) == shown
