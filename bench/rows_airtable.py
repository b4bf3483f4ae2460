"""Airtable writes under a backlog: every company queued at once, `serve` and a second
`contact-sync worker` sharing the work and the rate limit, against the Airtable stand-in
enforcing 5 requests in any sliding second and answering each in 150 to 300 ms, Attestr
answering in 200 ms.

Rows: wall time (floor: every record that must be written ÷ 50 records/s), records per write
request (floor: 10, Airtable's most), and two correctness rows: 429 answers (0) and the most
requests the stand-in saw arrive within any one second over the whole run (at most 5).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import tempfile
import time

import asyncpg
from harness import ROOT, SECRET, Row, create_database, service_env, serving
from load import hammer, request
from rows_people import generate

# Until every job has ended and Airtable has every row as it is now (the companies' final status is
# written after their jobs end).
_BACKLOG_LEFT = """
SELECT (SELECT count(*) FROM jobs WHERE status NOT IN ('succeeded', 'failed'))
     + (SELECT count(*) FROM people WHERE push_version > pushed_version AND NOT deleted_in_airtable)
     + (SELECT count(*) FROM companies WHERE push_version > pushed_version AND NOT deleted_in_airtable)
"""


async def airtable_backlog(server: str, companies: int) -> list[Row]:
    """Every company queued at once; the pusher alone decides how well the rate limit is used."""
    from service.standins.airtable import AirtableStandIn
    from service.standins.attestr import AttestrStandIn
    from service.standins.server import serve_in_thread

    dsn = await create_database(server, "bench_backlog")
    data = generate(companies * 7, seed=5)[:companies]
    attestr = AttestrStandIn(delay_s=0.2)
    airtable = AirtableStandIn(rate_limit=5, cooldown_s=30, delay_s=0.15, delay_max_s=0.3)
    cins = [f"U{70000 + i:05d}KA2016PTC{i:06d}" for i in range(len(data))]
    for i, (cin, (_, items)) in enumerate(zip(cins, data, strict=True)):
        attestr.companies[cin] = {"valid": True, "businessName": f"B{i}", "contacts": items}
    with serve_in_thread(attestr.app()) as attestr_url, serve_in_thread(airtable.app()) as airtable_url:
        records = [
            airtable.add_record("Companies", {"Company Name": f"B{i}", "CIN": cins[i]})
            for i in range(len(data))
        ]
        env = service_env(dsn, attestr, attestr_url, airtable, airtable_url, "warning")
        worker = [sys.executable, "-m", "service", "worker"]
        with serving(env) as (port, _process), tempfile.TemporaryFile() as log:
            second = subprocess.Popen(worker, env=env, stdout=log, stderr=log, cwd=ROOT)
            try:
                await asyncio.sleep(2)  # the worker's start-up reads the schema: not part of the backlog
                airtable.requests.clear()
                started = time.perf_counter()
                await hammer(
                    port,
                    lambda n: request(
                        "/webhooks/airtable",
                        json.dumps({"record_id": records[n], "cin": cins[n]}).encode(),
                        {"X-Webhook-Secret": SECRET},
                    ),
                    len(records),
                    64,
                )
                conn = await asyncpg.connect(dsn)
                deadline = time.monotonic() + 600
                while time.monotonic() < deadline and await conn.fetchval(_BACKLOG_LEFT):
                    await asyncio.sleep(0.05)
                wall = time.perf_counter() - started
                people = await conn.fetchval("SELECT count(*) FROM people")
                failed = await conn.fetchval("SELECT count(*) FROM jobs WHERE status = 'failed'")
                await conn.close()
            finally:
                second.terminate()
                second.wait(30)
    writes = airtable.write_requests()
    reads = [r for r in airtable.requests if r["method"] == "GET" and "/Contacts" in r["path"]]
    refused = sum(1 for r in airtable.requests if r.get("status") == 429)
    written = sum(r["records"] for r in writes if r.get("status") == 200)
    minimum = people + len(records)  # each person once, each company's final status once
    # Airtable's floor: every request the run made (the rows read back before an update
    # included: a person's edits are merged, never written over) at 5 a second.
    requests = len(airtable.requests)
    floor = requests / 5
    how = (
        f"{len(records)} companies, {people:,} people, serve + 1 worker, Attestr 200 ms, Airtable "
        "5 requests in any sliding second, each answered in 150–300 ms"
    )
    busiest = airtable.busiest()
    per_write = written / max(1, len(writes))
    return [
        Row(
            "Airtable writes under a backlog",
            how + f"; floor: {requests:,} requests ({len(writes):,} writes, {len(reads):,} reads of rows "
            f"before their update) ÷ 5 a second; {minimum:,} records ÷ 50/s would be {minimum / 50:.1f} s",
            f"{wall:.1f} s",
            f"{floor:.1f} s",
            wall / floor,
            "≤ 1.10",
            wall / floor <= 1.10 and failed == 0,
        ),
        Row(
            "records per Airtable write",
            f"{written:,} records in {len(writes):,} write requests",
            f"{per_write:.1f}",
            "10",
            None,
            "≥ 9.5",
            per_write >= 9.5,
        ),
        Row(
            "Airtable 429 answers",
            "counted by the Airtable stand-in",
            f"{refused}",
            "0",
            None,
            "0",
            refused == 0,
            correctness=True,
        ),
        Row(
            "Airtable requests in the busiest second",
            "arrivals at the stand-in in any sliding second, over the whole run",
            f"{busiest}",
            "5",
            None,
            "≤ 5",
            busiest <= 5,
            correctness=True,
        ),
    ]
