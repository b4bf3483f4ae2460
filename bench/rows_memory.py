"""Memory under huge Attestr answers: `contact-sync serve` while every job gets an answer of
several MB at once (refused at 1 MiB); its peak RSS against its own before them (the floor)."""

from __future__ import annotations

import asyncio
import time

import asyncpg
import httpx
from harness import SECRET, Row, create_database, peak_rss_mb, service_env, serving


async def large_answers(server: str, jobs: int, answer_mb: int) -> Row:
    """`contact-sync serve` (its worker inside) while Attestr answers `jobs` companies at once with
    `answer_mb` MB each: the process's peak memory against its own before them."""
    from service.standins.airtable import AirtableStandIn
    from service.standins.attestr import AttestrStandIn
    from service.standins.server import serve_in_thread

    dsn = await create_database(server, "bench_large")
    attestr, airtable = AttestrStandIn(), AirtableStandIn(rate_limit=10_000)
    contact = {"indexId": "70000000", "fullName": "D " + "x" * 250, "mobileNumber": "9845012345"}
    cins = [f"U{70000 + i:05d}KA2015PTC{i:06d}" for i in range(jobs)]
    for cin in cins:
        attestr.companies[cin] = {
            "valid": True,
            "businessName": "HUGE",
            "contacts": [contact] * (answer_mb * 3_500),
        }
    with serve_in_thread(attestr.app()) as attestr_url, serve_in_thread(airtable.app()) as airtable_url:
        records = [
            airtable.add_record("Companies", {"Company Name": f"H{i}", "CIN": cins[i]}) for i in range(jobs)
        ]
        env = service_env(dsn, attestr, attestr_url, airtable, airtable_url, "error")
        with serving(env) as (port, process):
            before = peak_rss_mb(process.pid)
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
                await asyncio.gather(
                    *(
                        http.post(
                            "/webhooks/airtable",
                            json={"record_id": record, "cin": cin},
                            headers={"X-Webhook-Secret": SECRET},
                        )
                        for record, cin in zip(records, cins, strict=True)
                    )
                )
            conn = await asyncpg.connect(dsn)
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and await conn.fetchval(
                "SELECT count(*) FROM jobs WHERE status NOT IN ('succeeded', 'failed')"
            ):
                await asyncio.sleep(0.2)
            failed = await conn.fetchval("SELECT count(*) FROM jobs WHERE status = 'failed' AND attempts = 1")
            await conn.close()
            peak = peak_rss_mb(process.pid)
    return Row(
        "memory under huge Attestr answers",
        f"{jobs} jobs at once, each answered with {answer_mb} MB (refused at 1 MiB, the job failed at once: "
        f"{failed} of {jobs}); floor: the same process's peak before them",
        f"{peak:.0f} MB",
        f"{before:.0f} MB",
        peak / before,
        "≤ +50 MB",
        peak - before <= 50 and failed == jobs,
    )
