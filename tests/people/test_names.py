"""Names: the merge rule (service/people/names.py: case, spacing, dots, normalisation form and
honorifics written as such do not count; initials are initials; a name agrees with a shorter form
of itself) and the display rule (service/people/names_shown.py: as people write them; the fuller
name stays). Tables of real cases, then properties over generated names."""

from __future__ import annotations

import unicodedata
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.people.names import HONORIFICS, SHORT_HONORIFICS, fullness, name_key, names_agree
from service.people.names_shown import display_name, shown_name


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Mr. Suresh Pillai", "SURESH PILLAI"),
        ("Smt. Lakshmi  Devi", "lakshmi devi"),
        ("Smt.Lakshmi Devi", "LAKSHMI DEVI"),
        ("Dr. A.K. Sharma", "A K SHARMA"),
        ("R. K.", "Ravi Kumar"),
        ("Ravi Kumar", "RAVI KUMAR SHARMA"),
        ("R Ravi", "Ravi Rao"),  # each word its own match: R→Rao, Ravi→Ravi
        ("KM RAO", "Kiran Mohan Rao"),  # joined initials
        ("KM RAO", "K. M. Rao"),
        ("RAO ANANYA", "Ananya Rao"),  # surname first
        ("D'SOUZA PETER", "Peter DSouza"),
        ("सुरेश पिल्लै", "सुरेश  पिल्लै"),
        ("OM PRAKASH", "Om Prakash"),
    ],
)
def test_names_that_agree(a: str, b: str) -> None:
    assert names_agree(a, b) and names_agree(b, a)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Nisha Kapoor", "Deepak Gupta"),
        ("Ravi Kumar", "Ravi Shankar"),
        ("Company Secretary", "Arjun Mehta"),
        # Indic scripts: vowel signs and viramas belong to their word; consonants are no initials.
        ("सुरेश पिल्लै", "सरिता पाल"),
        ("सुनील शर्मा", "संजय शाह"),
        ("முருகன் ராஜா", "மோகன் ரவி"),
        # Two letters before a name are initials in a filing, not an honorific.
        ("KM RAO", "DR RAO"),
        ("MS REDDY", "KM REDDY"),
        ("DR RAO", "MS RAO"),
    ],
)
def test_names_that_disagree(a: str, b: str) -> None:
    assert not names_agree(a, b) and not names_agree(b, a)


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("Mr. Suresh  PILLAI", "suresh pillai"),
        ("MR SURESH PILLAI", "m r suresh pillai"),  # no dot: two initials, as filings write them
        ("Dr RAO", "d r rao"),
        ("Dr. Rao", "rao"),
        ("SHRI RAM KUMAR", "ram kumar"),  # never initials
        ("KM RAO", "k m rao"),
        ("AMIT DE", "amit de"),  # two letters last: a name
        ("K.V.RAO", "k v rao"),
        ("D’SOUZA", "dsouza"),
        ("Late Shri A. Rao", "a rao"),
    ],
)
def test_what_a_name_is_compared_by(name: str, key: str) -> None:
    assert name_key(name) == key


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("ANANYA RAO", "Ananya Rao"),
        ("K. V. RAO", "K. V. Rao"),
        ("K.V.RAO", "K.V. Rao"),
        ("D'SOUZA", "D'Souza"),
        ("MOHAMMED BIN RASHID", "Mohammed bin Rashid"),
        ("MR. SURESH PILLAI", "Mr. Suresh Pillai"),  # as people write it: the title stays
        ("SMT.  LAKSHMI DEVI", "Smt. Lakshmi Devi"),
        ("SMT.LAKSHMI DEVI", "Smt. Lakshmi Devi"),
        ("ADV. RAVI SHANKAR", "Adv. Ravi Shankar"),
        ("CA RAVI KUMAR", "CA Ravi Kumar"),
        ("cs priya nair", "CS Priya Nair"),
        ("Y V REDDY", "Y V Reddy"),
        ("KM RAO", "KM Rao"),
        ("RAO (ANANYA)", "Rao (Ananya)"),
        ("AMIT DE", "Amit De"),
        ("OM PRAKASH", "Om Prakash"),
        ("ravi kumar", "Ravi Kumar"),
        ("Vikram sethi", "Vikram sethi"),  # mixed case: as written
        ("  VIKRAM   SETHI ", "Vikram Sethi"),
        ("सुरेश पिल्लै", "सुरेश पिल्लै"),
    ],
)
def test_a_name_is_shown_as_people_write_it(raw: str, shown: str) -> None:
    assert display_name(raw) == shown


@pytest.mark.parametrize(
    ("current", "newer", "shown"),
    [
        ("K V Rao", "KOTA VENKATA RAO", "Kota Venkata Rao"),  # the fuller name wins
        ("Kota Venkata Rao", "K V RAO", "Kota Venkata Rao"),  # and stays
        ("Ananya Rao", "RAO ANANYA", "Ananya Rao"),  # no flip between orders
        ("Vikram Sethi", "VIKRAM  SETHI", "Vikram Sethi"),
        ("Ananya Rao", "ANANYA IYER", "Ananya Iyer"),  # another name (a DIN's newer filing): taken
        (None, "ANANYA RAO", "Ananya Rao"),
        ("Ananya Rao", None, "Ananya Rao"),
    ],
)
def test_which_spelling_is_shown(current: str | None, newer: str | None, shown: str) -> None:
    assert shown_name(current, newer) == shown


# Letters whose case maps back and forth (Latin), and letters without case (Devanagari).
_word = st.text(
    st.sampled_from(list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZकखगघचजटडतदनपबमयरलवसह")),
    min_size=1,
    max_size=8,
)
_names = st.lists(_word, min_size=1, max_size=4).map(" ".join)
# Devanagari words as written: a consonant, then vowel signs or a virama and another consonant.
_CONSONANTS = "कखगघचजटडतदनपबमयरलवसह"
_SIGNS = "ािीुूेैोौं"
_syllable = st.tuples(st.sampled_from(_CONSONANTS), st.sampled_from(["", *_SIGNS, "्"])).map("".join)
_indic_word = st.lists(_syllable, min_size=2, max_size=4).map("".join).filter(lambda w: not w.endswith("्"))
_indic_names = st.lists(_indic_word, min_size=2, max_size=3).map(" ".join)
# Latin words of three letters or more, none a title: not initials, whatever their case.
_long_word = st.text(st.sampled_from(list("abcdefghijklmnopqrstuvwxyz")), min_size=3, max_size=8).filter(
    lambda w: w not in HONORIFICS
)


@settings(max_examples=500, deadline=None)
@given(_names, _names)
def test_agreement_is_symmetric(a: str, b: str) -> None:
    assert names_agree(a, b) == names_agree(b, a)


@settings(max_examples=300, deadline=None)
@given(_indic_names, _indic_names)
def test_indic_names_agree_only_word_for_word(a: str, b: str) -> None:
    """Two names in an Indic script agree only when every word of the shorter is a word of the
    longer: a shared first consonant is no initial."""
    words_a, words_b = Counter(name_key(a).split()), Counter(name_key(b).split())
    same_words = words_a <= words_b or words_b <= words_a
    assert names_agree(a, b) == same_words


@settings(max_examples=300, deadline=None)
@given(st.one_of(_names, _indic_names), st.sampled_from(["NFC", "NFD", "NFKC", "NFKD"]))
def test_the_normalisation_form_does_not_count(name: str, form: str) -> None:
    written = unicodedata.normalize(form, name)
    assert name_key(written) == name_key(name) and names_agree(written, name)


@settings(max_examples=500, deadline=None)
@given(
    st.lists(_long_word, min_size=1, max_size=3),
    st.sampled_from(sorted(HONORIFICS | SHORT_HONORIFICS)),
    st.sampled_from([str.upper, str.lower, str.title]),
)
def test_an_honorific_written_as_one_does_not_count(words: list[str], honorific: str, case) -> None:  # type: ignore[no-untyped-def]
    name = " ".join(words)
    titled = f"{case(honorific)}.  " + "  ".join(case(w) for w in words)
    assert name_key(titled) == name_key(name)
    assert name_key(display_name(titled)) == name_key(name)


@settings(max_examples=500, deadline=None)
@given(
    st.text(st.sampled_from(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ")), min_size=2, max_size=2),
    st.text(st.sampled_from(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ")), min_size=2, max_size=2),
    _long_word,
)
def test_two_letters_before_a_name_are_initials(a: str, b: str, surname: str) -> None:
    """ "KM RAO" and "DR RAO" are two people unless their letters are the same; each agrees with
    its initials written apart."""
    first, second = f"{a} {surname.upper()}", f"{b} {surname.upper()}"
    if a.casefold() == "om" or b.casefold() == "om":
        return
    assert names_agree(first, second) == (sorted(a) == sorted(b))  # initials in any order
    assert names_agree(first, f"{a[0]}. {a[1]}. {surname.title()}")


@settings(max_examples=300, deadline=None)
@given(st.one_of(_names, _indic_names))
def test_showing_a_name_keeps_its_words(name: str) -> None:
    shown = display_name(name)
    assert shown is not None and name_key(shown) == name_key(name)
    assert display_name(shown) == shown  # stable


@settings(max_examples=300, deadline=None)
@given(_names, _names)
def test_the_name_shown_never_flips_back_and_forth(a: str, b: str) -> None:
    """Whatever two spellings of a person alternate, the name shown settles after one of each."""
    shown = shown_name(shown_name(None, a), b)
    assert shown_name(shown_name(shown, a), b) == shown
    if names_agree(a, b):
        assert fullness(shown) == max(fullness(a), fullness(b))
