"""Identifiers read one way (service/identifiers.py): other scripts' digits, invisible and control
characters, lists, numbers; DIN, PAN, CIN, LLPIN and phone numbers."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service import identifiers

# The same digits in the scripts they arrive in: ASCII, Devanagari, Arabic-Indic, Bengali,
# fullwidth.
DIGITS = {
    "ascii": "0123456789",
    "devanagari": "०१२३४५६७८९",
    "arabic-indic": "٠١٢٣٤٥٦٧٨٩",
    "bengali": "০১২৩৪৫৬৭৮৯",
    "fullwidth": "０１２３４５６７８９",
}
INVISIBLE = ["\u200b", "\ufeff", "\u00a0", "\u200d", "\u00ad", "\x00", "\x07", "\u2060"]


def written(text: str, script: str) -> str:
    return "".join(DIGITS[script][int(c)] if c.isdigit() else c for c in text)


@pytest.mark.parametrize("script", DIGITS)
def test_a_din_in_any_script_is_eight_ascii_digits(script: str) -> None:
    assert identifiers.din(written("05678912", script)) == "05678912"
    assert identifiers.din("०५६७८९१२") == "05678912"  # the example


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("\u200b0567\ufeff8912\u00a0", "05678912"),
        (5678912, "05678912"),  # a number that lost its leading zero
        (5678912.0, "05678912"),
        (["", None, "05678912"], "05678912"),  # a list: the first usable
        ([None, "not a din", "5678912"], "05678912"),
        ("<b>05678912</b>", "05678912"),
        ("123456789", None),  # nine digits
        ("5678912¹", None),  # a footnote mark is not a digit
        ("①②③④⑤⑥⑦⑧", None),
        ("ABCPK1234F", None),  # a PAN is not a DIN
        ("00000000", None),
        (True, None),
        ({"din": "05678912"}, None),
        (None, None),
    ],
)
def test_din(value: Any, expected: str | None) -> None:
    assert identifiers.din(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("ABCPK1234F", "ABCPK1234F"),
        ("abcpk1234f", "ABCPK1234F"),
        (" ABCPK\u200b1234F\ufeff", "ABCPK1234F"),
        ("ABCPK१२३४F", "ABCPK1234F"),
        ("ＡＢＣＰＫ１２３４Ｆ", "ABCPK1234F"),  # fullwidth
        (["", "ABCPK1234F"], "ABCPK1234F"),
        ("ABCP1234F", None),
        ("ABCPK12345", None),
        ("05678912", None),
    ],
)
def test_pan(value: Any, expected: str | None) -> None:
    assert identifiers.pan(value) == expected


def test_an_index_id_is_a_din_or_a_pan_never_both() -> None:
    assert identifiers.identity("05678912") == ("05678912", None)
    assert identifiers.identity("ABCPK1234F") == (None, "ABCPK1234F")
    assert identifiers.identity("something else") == (None, None)


@pytest.mark.parametrize("script", DIGITS)
def test_a_cin_in_any_script(script: str) -> None:
    assert identifiers.cin(written("u72200ka2015ptc081234", script)) == "U72200KA2015PTC081234"
    assert identifiers.cin(["", written("AAB-1234", script)]) == "AAB-1234"


@pytest.mark.parametrize("script", DIGITS)
def test_a_phone_in_any_script(script: str) -> None:
    phone = identifiers.phone(written("+91 98450 67321", script))
    assert phone.e164 == "+919845067321" and phone.raw == written("+91 98450 67321", script)


def test_text_as_it_is_written_but_without_invisible_characters() -> None:
    assert identifiers.plain("  <b>RAVI</b>\tKUMAR&nbsp;\n SHARMA\x00 ") == "RAVI KUMAR SHARMA"
    assert identifiers.plain("Ra\u200bvi\ufeff Ku\u00admar") == "Ravi Kumar"
    assert identifiers.plain("रवि कुमार ५") == "रवि कुमार ५"  # names and addresses keep their script
    assert identifiers.plain(["", "first", "second"]) == "first"
    assert identifiers.plain(9845067321.0) == "9845067321" and identifiers.plain([]) is None


# Generated identifiers in every script, with invisible characters anywhere, as lists or numbers.
_scripts = st.sampled_from(list(DIGITS))


def _messy(text: str, script: str, junk: list[tuple[int, str]]) -> str:
    out = written(text, script)
    for position, char in sorted(junk, reverse=True):
        out = out[: position % (len(out) + 1)] + char + out[position % (len(out) + 1) :]
    return out


_junk = st.lists(st.tuples(st.integers(0, 30), st.sampled_from(INVISIBLE)), max_size=4)


@settings(max_examples=300, deadline=None)
@given(st.from_regex(r"[0-9]{8}", fullmatch=True), _scripts, _junk, st.sampled_from(["str", "list"]))
def test_every_din_spelling_reads_as_the_same_din(din: str, script: str, junk: list, shape: str) -> None:
    messy = _messy(din, script, junk)
    value: Any = [None, "", messy] if shape == "list" else messy
    expected = din if int(din) > 0 else None
    assert identifiers.din(value) == expected


@settings(max_examples=300, deadline=None)
@given(st.from_regex(r"[A-Z]{5}[0-9]{4}[A-Z]", fullmatch=True), _scripts, _junk)
def test_every_pan_spelling_reads_as_the_same_pan(pan: str, script: str, junk: list) -> None:
    messy = _messy(pan, script, junk)
    assert identifiers.pan(messy.lower()) == pan and identifiers.identity(messy) == (None, pan)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.none(), st.integers(), st.floats(), st.text(), st.lists(st.text(), max_size=3)))
def test_what_is_read_is_ascii_and_visible(value: Any) -> None:
    for read in (identifiers.din, identifiers.pan, identifiers.cin):
        got = read(value)
        assert got is None or (got.isascii() and got.isprintable() and " " not in got)
    phone = identifiers.phone(value)
    assert phone.e164 is None or (phone.e164.isascii() and phone.e164[1:].isdigit())
