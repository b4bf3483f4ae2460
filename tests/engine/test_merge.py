"""The three-way merge of a contact row, as properties over generated rows: a person's value (a
correction, a cleared cell, a link made or removed by hand) is never written over; what no person
touched follows the source; a second merge of the merged row changes nothing."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from service.engine.merge import LINKS, VALUES, empty, merge_row, same

# Few distinct values, so that generated rows often agree by chance, as real ones do.
_value = st.one_of(
    st.none(), st.just(""), st.sampled_from(["Ananya Rao", "ANANYA RAO", "+919845012345", "x"])
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
        if source[key] is not None or key == "PHONE_TYPE":
            assert same(after[key], source[key]), key
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
    # Nothing known of what was written (a row from before): taken as the service's own.
    assert merge_row({"NAME": "Ananya Rao"}, None, {"NAME": "ANANYA RAO"}).fields == {"NAME": "Ananya Rao"}
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
