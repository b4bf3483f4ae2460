"""Names (service/people/names.py): compared with case, spacing, dots and honorifics ignored, one agreeing
with a shorter form of itself; shown as people write them."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.people.names import HONORIFICS, display_name, name_key, names_agree


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Mr. Suresh Pillai", "SURESH PILLAI"),
        ("Smt. Lakshmi  Devi", "lakshmi devi"),
        ("Dr. A.K. Sharma", "A K SHARMA"),
        ("R. K.", "Ravi Kumar"),
        ("Ravi Kumar", "RAVI KUMAR SHARMA"),
        ("R Ravi", "Ravi Rao"),  # each word its own match: R→Rao, Ravi→Ravi
    ],
)
def test_names_that_agree(a: str, b: str) -> None:
    assert names_agree(a, b) and names_agree(b, a)


@pytest.mark.parametrize(
    ("a", "b"),
    [("Nisha Kapoor", "Deepak Gupta"), ("Ravi Kumar", "Ravi Shankar"), ("Company Secretary", "Arjun Mehta")],
)
def test_names_that_disagree(a: str, b: str) -> None:
    assert not names_agree(a, b) and not names_agree(b, a)


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("ANANYA RAO", "Ananya Rao"),
        ("K. V. RAO", "K. V. Rao"),
        ("D'SOUZA", "D'Souza"),
        ("MOHAMMED BIN RASHID", "Mohammed bin Rashid"),
        ("MR. SURESH PILLAI", "Suresh Pillai"),
        ("SMT.  LAKSHMI DEVI", "Lakshmi Devi"),
        ("ravi kumar", "Ravi Kumar"),
        ("Vikram sethi", "Vikram sethi"),  # mixed case: as written
        ("  VIKRAM   SETHI ", "Vikram Sethi"),
    ],
)
def test_a_name_is_shown_as_people_write_it(raw: str, shown: str) -> None:
    assert display_name(raw) == shown


# Letters whose case maps back and forth (Latin), and letters without case (Devanagari).
_word = st.text(
    st.sampled_from(list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZकखगघचजटडतदनपबमयरलवसह")),
    min_size=1,
    max_size=8,
)
_names = st.lists(_word, min_size=1, max_size=4).map(" ".join)


@settings(max_examples=500, deadline=None)
@given(_names, _names)
def test_agreement_is_symmetric(a: str, b: str) -> None:
    assert names_agree(a, b) == names_agree(b, a)


@settings(max_examples=500, deadline=None)
@given(
    _names,
    st.sampled_from(sorted(HONORIFICS)),
    st.sampled_from([str.upper, str.lower, str.title]),
    st.booleans(),
)
def test_case_spacing_dots_and_honorifics_do_not_count(name: str, honorific: str, case, dotted: bool) -> None:  # type: ignore[no-untyped-def]
    other = f"{honorific.title()}{'.' if dotted else ''}  " + "  ".join(
        case(w) + ("." if dotted else "") for w in name.split()
    )
    if (name_key(name) or "").split()[0] in HONORIFICS:  # a name that starts like a title
        return
    assert names_agree(name, other) and name_key(display_name(other)) == name_key(name)


@settings(max_examples=300, deadline=None)
@given(_names)
def test_showing_a_name_keeps_its_words(name: str) -> None:
    shown = display_name(name)
    assert shown is not None and name_key(shown) == name_key(name)
    assert display_name(shown) == shown  # stable
