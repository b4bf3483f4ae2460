"""Statements with named placeholders (queries.Named): numbered for asyncpg, casts untouched,
every value given by name and none forgotten."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service import queries
from service.queries import Named


def test_names_are_numbered_in_order_of_first_use_and_casts_stay() -> None:
    named = Named("SELECT :b::text[], :a, :b, 'x:y', c::int, now()::date WHERE id = :a_1")
    assert named.names == ["b", "a", "a_1"]
    assert named.sql == "SELECT $1::text[], $2, $1, 'x:y', c::int, now()::date WHERE id = $3"
    assert named.bind(a=1, b=[2], a_1=3) == (named.sql, [2], 1, 3)


def test_a_value_missing_or_unknown_is_refused_by_name() -> None:
    named = Named("UPDATE t SET v = :value WHERE id = :id")
    with pytest.raises(TypeError, match="no value for id"):
        named.bind(value=1)
    with pytest.raises(TypeError, match="no placeholder for idd"):
        named.bind(value=1, id=2, idd=3)


@given(st.lists(st.from_regex(r"[a-z_][a-z0-9_]{0,12}", fullmatch=True), min_size=1, max_size=8))
def test_any_names_bind_to_their_own_values(names: list[str]) -> None:
    named = Named(" AND ".join(f"c = :{name}::text" for name in names))
    values = {name: f"value of {name}" for name in names}
    sql, *bound = named.bind(**values)
    numbers = [int(n) for n in re.findall(r"\$(\d+)", sql)]
    assert [bound[n - 1] for n in numbers] == [values[name] for name in names]


def test_every_named_statement_numbers_its_placeholders_from_one() -> None:
    statements = [q for q in vars(queries).values() if isinstance(q, Named)]
    assert len(statements) >= 8
    for statement in statements:
        numbers = {int(n) for n in re.findall(r"\$(\d+)", statement.sql)}
        assert numbers == set(range(1, len(statement.names) + 1)), statement.sql
        assert not re.search(r"(?<![:\w]):[a-z_]", statement.sql), statement.sql
