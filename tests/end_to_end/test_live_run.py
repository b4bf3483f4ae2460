"""The live contract run itself (`pytest -m live`, tests/contract.py): skipped, each test saying
why, without credentials; and run against stand-ins given the way a real base and token are, it
passes and leaves the base as it was, also when a request fails midway."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.standins.airtable import AirtableStandIn
from service.standins.attestr import PATH, PATH_V3, STANDIN_CONSENT_ID, AttestrStandIn
from service.standins.server import serve_in_thread
from tests.contract import COMPANIES, CONTACTS

pytestmark = pytest.mark.process  # starts contact-sync (or the tests) in a child process

ROOT = Path(__file__).resolve().parent.parent.parent
CONTRACT_TESTS = [
    "tests/airtable/test_contract_airtable.py",
    "tests/airtable/test_contract_airtable_webhooks.py",
    "tests/attestr/test_contract_attestr.py",
]


def live_run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LIVE_")}
    # Its own base folder: a pytest session given none sets /tmp/pytest-of-<user> to mode 0700,
    # which, run as root, shuts the embedded PostgreSQL's own user out of every other running
    # test's folder (a server another test stops and starts there then cannot be reached).
    with tempfile.TemporaryDirectory(prefix="contact-sync-live-run-") as folder:
        return subprocess.run(
            [
                sys.executable, "-m", "pytest", "-m", "live", "-q", "-rs", "-p", "no:cacheprovider",
                f"--basetemp={folder}/pytest", *args,
            ],
            env={**clean, **env},
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=600,
        )  # fmt: skip


def test_without_credentials_every_live_test_is_skipped_with_its_reason() -> None:
    done = live_run({}, *CONTRACT_TESTS)
    assert done.returncode == 0, done.stdout
    assert " passed" not in done.stdout and " skipped" in done.stdout
    assert "set LIVE_AIRTABLE_TOKEN and LIVE_AIRTABLE_BASE to run it" in done.stdout
    assert "set LIVE_ATTESTR_TOKEN and LIVE_ATTESTR_CIN to run it" in done.stdout


@pytest.fixture
def pretend(
    request: pytest.FixtureRequest,
) -> Iterator[tuple[AirtableStandIn, AttestrStandIn, dict[str, str]]]:
    """Stand-ins where the real services would be, as strict as they are (5 requests a second),
    Attestr on V2 or on V3 with a consent."""
    airtable, attestr = AirtableStandIn(), AttestrStandIn()
    v3 = (
        {"LIVE_ATTESTR_VERSION": "v3", "LIVE_ATTESTR_CONSENT_ID": STANDIN_CONSENT_ID}
        if getattr(request, "param", "v2") == "v3"
        else {}
    )
    with serve_in_thread(airtable.app()) as airtable_url, serve_in_thread(attestr.app()) as attestr_url:
        yield (
            airtable,
            attestr,
            {
                "LIVE_AIRTABLE_URL": airtable_url,
                "LIVE_AIRTABLE_TOKEN": airtable.token,
                "LIVE_AIRTABLE_BASE": airtable.base_id,
                "LIVE_ATTESTR_URL": attestr_url + (PATH_V3 if v3 else PATH),
                "LIVE_ATTESTR_TOKEN": attestr.token,
                "LIVE_ATTESTR_CIN": "U72200KA2015PTC081234",
                **v3,
            },
        )


def _left(airtable: AirtableStandIn) -> dict[str, object]:
    return {
        "records": {t.name: airtable.records(t.name) for t in airtable.tables},
        "webhooks": sorted(airtable.webhooks),
    }


@pytest.mark.parametrize("pretend", ["v2", "v3"], indirect=True)
def test_the_live_run_passes_against_the_real_shapes_and_leaves_the_base_as_it_was(
    pretend: tuple[AirtableStandIn, AttestrStandIn, dict[str, str]],
) -> None:
    airtable, attestr, env = pretend
    airtable.add_record("Companies", {"Company Name": "A company of the base's own", "CIN": "U1"})
    before = _left(airtable)
    v3 = "LIVE_ATTESTR_CONSENT_ID" in env
    # On V3 Attestr's contract alone: Airtable's is the same whichever version Attestr runs.
    done = live_run(env, *(CONTRACT_TESTS[2:] if v3 else CONTRACT_TESTS))
    assert done.returncode == 0, done.stdout[-3000:]
    assert " passed" in done.stdout
    # Every test ran, but on V2 the two that are V3's alone.
    skipped = [line for line in done.stdout.splitlines() if line.startswith("SKIPPED")]
    assert skipped == ([] if v3 else [line for line in skipped if line.endswith(": V3 only")]), skipped
    assert v3 or len(skipped) == 2
    after = _left(airtable)
    made = {} if v3 else {COMPANIES: [], CONTACTS: []}  # the tables Airtable's contract made stay, empty
    assert after["records"] == {**before["records"], **made}
    assert after["webhooks"] == before["webhooks"] == []
    assert len(attestr.calls) == 1  # one paid call
    assert {r["status"] for r in airtable.requests if r["status"] == 429} == set()


def test_a_request_failing_midway_still_leaves_the_base_as_it_was(
    pretend: tuple[AirtableStandIn, AttestrStandIn, dict[str, str]],
) -> None:
    airtable, _attestr, env = pretend
    before = _left(airtable)
    airtable.faults.append({"method": "PATCH", "path": "Contacts", "skip": 1, "status": 503})
    done = live_run(env, "tests/airtable/test_contract_airtable.py", "-k", "upsert_creates")
    assert done.returncode == 1 and "1 failed" in done.stdout
    assert not airtable.faults  # the failure did happen midway
    after = _left(airtable)
    assert after["records"] == {**before["records"], COMPANIES: [], CONTACTS: []}
