"""`GET /openapi.json`, and schemathesis over every endpoint it describes, against the service
on a real database with its worker and both stand-ins: no 5xx, and every answer (status, content
type, body) as the document says."""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import hypothesis
import pytest
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from service.standins.airtable import AirtableStandIn
from service.standins.attestr import AttestrStandIn
from service.web.openapi import document
from tests.conftest import Running
from tests.flow import API_KEY, SECRET, Flow, running_flow

schema = schemathesis.openapi.from_dict(document())
# CI runs a few minutes of fuzzing; FUZZ_EXAMPLES raises it for a longer run.
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "100"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture
def api(
    tmp_path: Path, db_url: str, airtable: Running[AirtableStandIn], attestr: Running[AttestrStandIn]
) -> Iterator[Flow]:
    """Configured in full (a 503 `not_configured` is right for a half-set-up service, but a fuzzer
    only reaches the code behind it on a whole one), with no rate limit in the way."""
    asyncio.run(_register_airtable_webhook(db_url, airtable.standin.base_id))
    airtable.standin.rate_limit = 1000  # jobs end quickly, so that `wait` and /contacts/fetch do
    env = {"API_RATE_LIMIT": "1000000", "AIRTABLE_RATE_LIMIT_RPS": "50"}
    with running_flow(tmp_path, db_url, airtable, attestr, **env) as flow:
        yield flow


async def _register_airtable_webhook(db_url: str, base_id: str) -> None:
    conn = await asyncpg.connect(db_url)
    await conn.execute(
        """INSERT INTO airtable_webhooks (id, base_id, table_id, cin_field_id, mac_secret, notification_url)
           VALUES ('achFuzz00000000001', $1, 'tblCompanies', 'fldCIN', 'bWFjLXNlY3JldA==', 'http://x/')""",
        base_id,
    )
    await conn.close()


def test_the_document_is_served_and_names_every_route(api: Flow) -> None:
    from service.web.app import ROUTES

    served = api.http.get("/openapi.json").json()
    assert served == document()
    # The operator's page is HTML for a browser, not the JSON API: docs/reference/http.md lists it.
    assert {route.path for route in ROUTES if not route.path.startswith("/ops")} == set(served["paths"])


@schema.parametrize()
@hypothesis.settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(hypothesis.HealthCheck),
    derandomize=True,
)
def test_every_endpoint_answers_as_documented(case: schemathesis.Case, api: Flow) -> None:
    case.call_and_validate(
        base_url=api.service.url,
        headers={"X-API-Key": API_KEY, "X-Webhook-Secret": SECRET},
        checks=CHECKS,
        timeout=70,  # /contacts/fetch waits up to 25 s for its job, a sync with `wait` up to 60
    )
    errors = [line for line in api.service.logs() if line.get("level") in ("error", "critical")]
    assert not [line for line in errors if line.get("event") in ("http.crashed", "pusher.crashed")]


# Bodies a generator seldom makes: a field holding JSON nested 900 deep (as deep as the client's
# own encoder goes; deeper bytes are tests/web/test_hardening.py's), other scripts, NUL and emoji.
_DEEP: Any = "U72200KA2015PTC081234"
for _ in range(900):
    _DEEP = [_DEEP]
_ODD_VALUES = [
    _DEEP,
    "U७२२००KA२०१५PTC०८१२३४",
    "\u0000\ufeff\u200b",
    "رقم 🏢 公司",
    {"nested": {"deeper": [_DEEP]}},
]
_PATH_VALUES = {"record_id": "recAAAAAAAAAAAAAA", "job_id": "1"}


@pytest.mark.parametrize(
    "operation",
    [r.ok() for r in schema.get_all_operations() if r.ok().body],
    ids=lambda op: f"{op.method.upper()} {op.path}",
)
def test_nested_and_non_ascii_bodies_answer_as_documented(operation: Any, api: Flow) -> None:
    fields = [
        name for body in operation.body for name in body.definition.get("schema", {}).get("properties", {})
    ]
    parameters = {name: _PATH_VALUES[name] for name in re.findall(r"\{(\w+)\}", operation.path)}
    for value in _ODD_VALUES:
        for field in fields:
            case = operation.Case(
                body={field: value}, path_parameters=parameters, media_type="application/json"
            )
            case.call_and_validate(
                base_url=api.service.url,
                headers={"X-API-Key": API_KEY, "X-Webhook-Secret": SECRET},
                checks=CHECKS,
                timeout=70,
            )
