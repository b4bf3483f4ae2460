"""The settings reader, over any text an operator might put in any variable: each value is
taken or named as a problem (SettingsError), never a traceback from a parser underneath."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import service.config
from service.config import Settings, SettingsError, load_settings

# Every variable the reader reads, found in its source: a new one is covered without a list to keep.
_VARIABLES = sorted(
    set(re.findall(r'"([A-Z][A-Z0-9_]{2,})"', Path(service.config.__file__).read_text()))
    - {"A", "FETCH", "STORE"}
)
_AWKWARD = st.sampled_from(
    [
        "postgresql://[::1/x",  # an open bracket: urlsplit raises
        "postgresql://u:p@h:99999/d",
        "http://[",
        "1e400",
        "nan",
        "-0",
        "9" * 5000,  # beyond int()'s digit limit
        "\x00",
        " ",
        "yes",
        "https://",
        "a=b;c",
        "\u200b5",
    ]
)


@pytest.mark.parametrize("value", ["postgresql://[::1/x", "postgres://h:0x10/d", "postgresql://u@[h]:5/d"])
def test_a_malformed_database_url_is_named_not_a_traceback(value: str) -> None:
    with pytest.raises(SettingsError) as refused:
        load_settings({"DATABASE_URL": value}, env_file=None)
    assert [p.split(":")[0] for p in refused.value.problems] == ["DATABASE_URL (value not shown)"]
    assert value not in str(refused.value)  # it may hold a password


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(_VARIABLES), st.one_of(st.text(max_size=60), _AWKWARD), max_size=6))
def test_any_value_of_any_variable_is_taken_or_named(environ: dict[str, str]) -> None:
    try:
        assert isinstance(load_settings(environ, env_file=None), Settings)
    except SettingsError as refused:
        assert refused.problems and all(isinstance(p, str) for p in refused.problems)


def test_a_secret_holding_a_quote_is_kept_as_written() -> None:
    """Secrets are split on commas alone: a quote is a character of the secret, not shell quoting."""
    settings = load_settings(
        {"WEBHOOK_SECRETS": 'a"quoted-secret-0001,second-secret-0002', "API_KEYS": "it's-an-api-key-0003"},
        env_file=None,
    )
    assert settings.webhook_secrets == ('a"quoted-secret-0001', "second-secret-0002")
    assert settings.api_keys == ("it's-an-api-key-0003",)
