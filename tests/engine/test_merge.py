"""The three-way merge of a contact row, as properties over generated rows: a person's value (a
correction, a cleared cell, a link made or removed by hand) is never written over; what no person
touched follows the source; a second merge of the merged row changes nothing."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.engine.contacts_table import _same_note
from service.engine.merge import LINKS, VALUES, empty, equivalent, merge_row, same

# Few distinct values, so that generated rows often agree by chance, as real ones do.
_value = st.one_of(
    st.none(),
    st.just(""),
    st.sampled_from(["Ananya Rao", "ANANYA RAO", "+919845012345", "098450 12345", "A@X.IN ", "a@x.in", "x"]),
)
_links = st.lists(st.sampled_from(["recA", "recB", "recC", "recD"]), unique=True, max_size=4)


@st.composite
def rows(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(source, last written, current) for one row."""
    source = {key: draw(_value) for key in VALUES} | {LINKS: draw(_links)}
    last = {key: draw(_value) for key in VALUES} | {LINKS: draw(_links)}
    current = dict(last)
    for key in draw(st.lists(st.sampled_from([*VALUES, LINKS]), unique=True)):  # what a person edited
        current[key] = draw(_links) if key == LINKS else draw(_value)
    return source, last, current


def _applied(current: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
    return {**current, **fields}


@given(rows())
def test_a_value_a_person_changed_is_never_written_over(row: tuple[dict, dict, dict]) -> None:
    source, last, current = row
    merged = merge_row(source, last, current)
    for key in VALUES:
        if not same(current[key], last[key]):
            assert key not in merged.fields, (key, merged)


@given(rows())
def test_what_no_person_touched_follows_the_source(row: tuple[dict, dict, dict]) -> None:
    source, last, _current = row
    merged = merge_row(source, last, dict(last))
    after = _applied(last, merged.fields)
    for key in VALUES:
        if source[key] is not None or key == "PHONE_TYPE" or not empty(last[key]):
            assert same(after[key], source[key]), key  # a value the service withdrew is cleared
        else:
            assert key not in merged.fields  # nothing to say about an empty cell
    assert set(after[LINKS]) == set(source[LINKS])
    assert not merged.notes


@given(rows())
def test_links_made_or_removed_by_hand_stay_and_the_services_own_follow_the_source(
    row: tuple[dict, dict, dict],
) -> None:
    source, last, current = row
    merged = merge_row(source, last, current)
    final = set(_applied(current, merged.fields)[LINKS] or [])
    made_by_hand = set(current[LINKS]) - set(last[LINKS])
    removed_by_hand = set(last[LINKS]) - set(current[LINKS])
    untouched = set(last[LINKS]) & set(current[LINKS])
    assert made_by_hand <= final
    assert not removed_by_hand & final
    assert final & untouched == untouched & set(source[LINKS])
    assert not made_by_hand & set(merged.written[LINKS])  # a hand-made link is never the service's


@given(rows())
def test_a_second_merge_of_the_merged_row_changes_nothing(row: tuple[dict, dict, dict]) -> None:
    source, last, current = row
    first = merge_row(source, last, current)
    after = _applied(current, first.fields)
    second = merge_row(source, first.written, after)
    assert second.fields == {}
    assert second.notes == first.notes


@given(rows())
def test_a_note_only_where_both_changed(row: tuple[dict, dict, dict]) -> None:
    source, last, current = row
    merged = merge_row(source, last, current)
    for key, (theirs, sources) in merged.notes.items():
        assert not same(current[key], last[key]) and not same(source[key], last[key])
        assert (theirs, sources) == (current[key], source[key])
        assert not same(theirs, sources)


def test_the_examples() -> None:
    last = {"NAME": "Ananya Rao", "PHONE": "+919845012345", "EMAIL": "a@x.in", LINKS: ["recA"]}
    # A corrected phone and a cleared email, the same filing again: both stay as the person left them.
    current = {**last, "PHONE": "+919845099999", "EMAIL": None, LINKS: ["recA", "recHand"]}
    again = merge_row({**last, LINKS: ["recA"]}, last, current)
    assert again.fields == {} and again.notes == {}
    # A newer filing with another phone: the person's stays, the filing's is noted.
    newer = merge_row({**last, "PHONE": "+919845000000", LINKS: ["recA", "recB"]}, last, current)
    assert newer.fields == {LINKS: ["recA", "recHand", "recB"]}
    assert newer.notes == {"PHONE": ("+919845099999", "+919845000000")}
    assert newer.written[LINKS] == ["recA", "recB"]
    # Nothing known of what was written (a row adopted from an older table): the value people
    # typed stays, with the source's beside it; an empty cell is filled; the source's own value
    # in another spelling is the service's to tidy.
    source = {"NAME": "Ananya Rao", "EMAIL": "a@x.in", "PHONE": "+919845012345", "DIN": "01234567"}
    older = {"NAME": "A. Rao", "PHONE": "098450 12345", "DIN": "1234567"}
    adopted = merge_row(source, None, older)
    assert adopted.fields == {"EMAIL": "a@x.in", "PHONE": "+919845012345"}
    assert set(adopted.notes) == {"NAME", "DIN"}
    assert equivalent("NAME", "Mr. ANANYA  rao", "Ananya Rao") and equivalent("EMAIL", " A@X.IN", "a@x.in")
    assert not equivalent("PHONE", "9845012345", "+919845012346") and not equivalent("DIN", "1", "01")
    assert empty([]) and empty("") and empty(None) and not empty("0")


@given(rows())
def test_a_write_applied_whose_answer_was_lost_is_recognised_as_the_services(
    row: tuple[dict, dict, dict],
) -> None:
    """The retry finds the row as the lost write left it: merged with what that write would have
    recorded (`pending`), it comes out as if the answer had arrived."""
    source, last, current = row
    first = merge_row(source, last, current)
    applied = _applied(current, first.fields)
    answered = merge_row(source, first.written, applied)
    lost = merge_row(source, last, applied, pending=first.written)
    assert lost.fields == answered.fields == {}
    assert set(lost.written[LINKS]) == set(answered.written[LINKS])


@given(rows())
def test_a_row_whose_history_is_unknown_keeps_what_people_typed_and_fills_what_is_empty(
    row: tuple[dict, dict, dict],
) -> None:
    """A row adopted from an older table (nothing known of what the service wrote): a value it
    holds stays unless it is the source's spelt another way, the source fills an empty cell, its
    links stay and the source's are added; from then on the rows merge as any other (a second
    merge changes nothing)."""
    source, _last, current = row
    merged = merge_row(source, None, current)
    after = _applied(current, merged.fields)
    for key in VALUES:
        if not empty(current[key]) and not equivalent(key, current[key], source[key]):
            assert key not in merged.fields, (key, merged)
        elif source[key] is not None and key != "PHONE_TYPE":
            assert same(after[key], source[key]), key
    assert set(after[LINKS]) == set(current[LINKS]) | set(source[LINKS])
    assert set(merged.written[LINKS]) == set(source[LINKS])  # the source's links are the service's
    assert not merge_row(source, merged.written, after).fields


@pytest.mark.parametrize(
    ("theirs", "same_as_ours"),
    [
        ("Phone Number: the latest filing says +919845000000; yours is kept", True),
        ("Phone Number: the latest filing says \\+919845000000; yours is kept\n", True),  # rich text
        ("Phone Number: the latest filing says +919845000001; yours is kept", False),
        (None, False),
    ],
)
def test_the_sync_note_compares_as_text_when_the_field_is_rich_text(theirs: Any, same_as_ours: bool) -> None:
    ours = "Phone Number: the latest filing says +919845000000; yours is kept"
    assert _same_note(ours, theirs) is same_as_ours
    assert _same_note(None, "\n") and _same_note(None, None)
