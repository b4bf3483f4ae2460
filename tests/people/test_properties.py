"""Property-based tests (hypothesis) of what reads outside data: the normalisers of Attestr's
answers, the validators of requests, and the masking of logs. Whatever comes in, they answer
with a value of the promised shape or the design's error, never an exception of their own."""

from __future__ import annotations

import json
import re
from typing import Any

import phonenumbers
import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from service import identifiers
from service.identifiers import phone as normalize_phone
from service.logs import mask_text
from service.people.normalize import normalize_contact, normalize_email
from service.web import validation
from service.web.errors import ApiError

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=60),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
# Text the way Attestr and people write it: digits, separators, markup, other scripts.
messy_text = st.text(
    st.sampled_from(list("0123456789 +-().@<>/abcXYZ\u00a0\u0966\u096f\t\n&;")) | st.characters(), max_size=80
)


def _refused(call: Any, *statuses: int) -> ApiError:
    with pytest.raises(ApiError) as caught:
        call()
    assert caught.value.status in statuses
    return caught.value


@given(json_values)
def test_record_id_is_a_record_id_or_a_422_naming_the_field(value: Any) -> None:
    try:
        got = validation.record_id(value, "record_id")
    except ApiError as error:
        assert error.status == 422 and error.field == "record_id"
        return
    assert re.fullmatch(r"rec[A-Za-z0-9]{14}", got)


@given(st.from_regex(r"\s*rec[A-Za-z0-9]{14}\s*", fullmatch=True))
def test_every_well_formed_record_id_is_taken(value: str) -> None:
    assert validation.record_id(value) == value.strip()


@given(json_values | messy_text)
def test_cin_is_canonical_or_a_422(value: Any) -> None:
    try:
        got = validation.cin(value)
    except ApiError as error:
        assert error.status == 422 and error.field == "cin"
        return
    assert got is None or re.fullmatch(r"[LU][0-9]{5}[A-Z]{2}[0-9]{4}[A-Z]{3}[0-9]{6}|[A-Z]{3}-[0-9]{4}", got)


@given(
    st.from_regex(r"[LUlu][0-9]{5}[A-Za-z]{2}[0-9]{4}[A-Za-z]{3}[0-9]{6}", fullmatch=True),
    st.sampled_from(["", " ", "\t"]),
)
def test_every_cin_in_any_case_and_padding_is_taken(cin: str, pad: str) -> None:
    assert validation.cin(f"{pad}{cin}{pad}") == cin.upper()


@given(json_values)
def test_max_contacts_is_in_range_or_a_422(value: Any) -> None:
    try:
        got = validation.integer(value, "max_contacts", 1, 100)
    except ApiError as error:
        assert error.status == 422 and error.field == "max_contacts"
        return
    assert got is None or (isinstance(got, int) and 1 <= got <= 100)


@given(messy_text | st.integers(min_value=-(10**20), max_value=10**20).map(str))
def test_a_number_in_a_path_or_query_is_plain_ascii_digits_or_nothing(text: str) -> None:
    """Job ids, `?limit=` and Content-Length: `int()` alone reads '١٢' as 12, ' 1_0 ' as 10,
    and fails on '²', which `str.isdigit()` lets through."""
    got = validation.whole_number(text)
    if re.fullmatch(r"[0-9]{1,18}", text, re.ASCII):
        assert got == int(text) < 2**63
    else:
        assert got is None


@given(json_values)
def test_booleans_are_booleans_or_a_422(value: Any) -> None:
    try:
        assert isinstance(validation.boolean(value, "force"), bool)
    except ApiError as error:
        assert error.status == 422 and error.field == "force"


@given(st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode()))
def test_any_body_is_an_object_or_a_400_or_422(body: bytes) -> None:
    try:
        assert isinstance(validation.parse_json(body), dict)
    except ApiError as error:
        assert error.status in (400, 422)


@given(json_values | messy_text)
@example("0.049607983760521904")  # a valid German number by phonenumbers' metadata, 17 digits
def test_phone_normalisation_never_fails_and_keeps_its_shape(value: Any) -> None:
    phone = normalize_phone(value)
    assert phone.raw is None or (isinstance(phone.raw, str) and len(phone.raw) <= 100)
    # A type only with a number; a valid number may have none (toll-free, or a range phonenumbers
    # gives as fixed line or mobile, such as +91 77292 00000: the service does not guess).
    assert phone.type in (None, "Mobile", "Landline")
    assert phone.type is None or phone.e164 is not None
    if phone.e164:
        assert re.fullmatch(r"\+\d{8,15}", phone.e164)


@given(
    st.from_regex(r"[6-9][0-9]{9}", fullmatch=True),
    st.sampled_from(
        [
            "{n}",
            "0{n}",
            "91{n}",
            "+91{n}",
            "+91 {a} {b}",
            "+91-{a}-{b}",
            "(+91) {a}-{b}",
            "0091 {n}",
            " {a}\u00a0{b} ",
        ]
    ),
)
def test_an_indian_mobile_in_any_spelling_is_one_number(number: str, spelling: str) -> None:
    # Numbers in a range India has not allocated (+91 66666 66666) are refused by phonenumbers'
    # validity check, which the service relies on: the property is about the spellings.
    assume(phonenumbers.is_valid_number(phonenumbers.parse(f"+91{number}")))
    raw = spelling.format(n=number, a=number[:5], b=number[5:])
    phone = normalize_phone(raw)
    assert phone.e164 == f"+91{number}", raw


@given(json_values | messy_text)
def test_email_normalisation_gives_one_lower_case_address_or_none(value: Any) -> None:
    email = normalize_email(value)
    if email.address is not None:
        assert email.address == email.address.lower().strip()
        assert email.address.count("@") == 1 and not re.search(r"\s", email.address)
        assert len(email.address) <= 320


@given(
    st.dictionaries(
        st.sampled_from(["indexId", "fullName", "mobileNumber", "emailAddress", "addresses", "x"]),
        json_values | messy_text,
        max_size=6,
    )
    | json_values
)
def test_any_contact_from_attestr_is_a_contact_or_nothing(item: Any) -> None:
    contact = normalize_contact(item)
    if contact is not None:
        assert contact.name is None or len(contact.name) <= 500
        assert isinstance(contact.addresses, list) and len(contact.addresses) <= 10


@given(
    st.from_regex(r"[6-9][0-9]{9}", fullmatch=True),
    st.from_regex(r"[a-z]{1,8}\.[a-z]{1,8}@[a-z]{2,8}\.(in|com)", fullmatch=True),
    messy_text,
)
def test_no_phone_or_email_survives_masking(number: str, email: str, noise: str) -> None:
    text = f"{noise} call +91 {number[:5]} {number[5:]} or {number} or mail {email} {noise}"
    masked = mask_text(text)
    assert number not in masked.replace(" ", "") and email not in masked


_SCRIPT_DIGITS = ["0123456789", "०१२३४५६७८९", "٠١٢٣٤٥٦٧٨٩", "০১২৩৪৫৬৭৮৯", "０１２３４５６７８９"]
_GAPS = ["", "", "", " ", "\u200b", "\u00a0", "\u00ad", "\ufeff", "\t"]


@st.composite
def _pan_as_written(draw: st.DrawFn) -> tuple[str, str]:
    """(a PAN, the PAN as someone might have written it): any case, fullwidth letters, another
    script's digits, spaces and invisible characters inside."""
    pan = draw(st.from_regex(r"[A-Z]{5}[0-9]{4}[A-Z]", fullmatch=True))
    digits = draw(st.sampled_from(_SCRIPT_DIGITS))
    written = []
    for char in pan:
        if char.isdigit():
            char = digits[int(char)]
        else:
            char = draw(st.sampled_from([char, char.lower(), chr(ord(char) + 0xFEE0)]))
        written.append(char + draw(st.sampled_from(_GAPS)))
    return pan, "".join(written).rstrip()


@given(_pan_as_written(), messy_text, messy_text)
def test_no_pan_the_service_would_read_survives_masking(
    pan: tuple[str, str], before: str, after: str
) -> None:
    """Whatever `identifiers.pan` reads as a PAN is masked in a log line, however it was written."""
    canonical, written = pan
    assert identifiers.pan(written) == canonical
    masked = mask_text(f"{before} {written}. {after}")
    assert canonical not in (identifiers.folded(masked) or "").replace(" ", "").upper()


def test_a_cin_in_another_script_s_digits_is_read_as_ascii() -> None:
    """Identifiers are read one way (service/identifiers.py): a CIN typed with Devanagari digits,
    or copied with a zero-width space, is the CIN; what is still not one is refused."""
    assert validation.cin("U७२२००KA२०१५PTC०८१२३४") == "U72200KA2015PTC081234"
    assert validation.cin(["", "\ufeffu72200ka2015ptc081234\u200b"]) == "U72200KA2015PTC081234"  # a lookup
    with pytest.raises(ApiError) as caught:
        validation.cin("U७२२००KA२०१५PTC")
    assert caught.value.code == "invalid_cin"
