import pytest

from service.identifiers import din as normalize_din
from service.identifiers import phone as normalize_phone
from service.identifiers import plain as clean_text
from service.people.names import name_key
from service.people.normalize import address_text, normalize_contact, normalize_email


@pytest.mark.parametrize(
    "raw",
    [
        "+91 98765 43210",
        "09876543210",
        "9876543210",
        "919876543210",
        "+91-98765-43210",
        "(+91) 98765 43210",
        "0091 9876543210",
        "091-98765 43210",
        "91 98765-43210",
        9876543210,
        9876543210.0,
        "9876543210.0",
        " 98765\u00a043210 ",
        "<b>98765 43210</b>",
        "98765 43210 / 91234 56789",
        "+91 98765 43210, +91 91234 56789",
    ],
)
def test_indian_mobile_in_every_format_is_one_e164(raw: object) -> None:
    phone = normalize_phone(raw)
    assert phone.e164 == "+919876543210"
    assert phone.type == "Mobile"
    assert phone.raw  # the raw value is kept


def test_landline_and_foreign_numbers() -> None:
    landline = normalize_phone("022 2345 6789")
    assert (landline.e164, landline.type) == ("+912223456789", "Landline")
    us = normalize_phone("+1 650 253 0000")
    assert us.e164 == "+16502530000" and us.type is None  # neither mobile nor fixed line


@pytest.mark.parametrize("raw", ["12345", "0000000000", "not a phone", "+91 98765 4321", "N/A"])
def test_invalid_phone_keeps_raw_but_has_no_key(raw: str) -> None:
    phone = normalize_phone(raw)
    assert phone.e164 is None and phone.type is None
    assert phone.raw == raw


def test_a_phone_as_a_list_is_its_first_valid_number() -> None:
    assert normalize_phone(["", "not a phone", "98765 43210", "91234 56789"]).e164 == "+919876543210"
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


@pytest.mark.parametrize("raw", ["ravi@", "@example.com", "ravi at example dot com", "ravi@example", "NA"])
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
