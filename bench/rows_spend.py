"""Attestr spend: companies sharing CINs send their webhooks two or three times at once; each CIN
must cost one Attestr call (floor: the number of CINs). A correctness row: more calls, or a failed
job, fails the run."""

from __future__ import annotations

import asyncio
import json
import random
import time

import asyncpg
from harness import SECRET, Row, create_database
from load import hammer, request


async def spend(server: str, companies: int) -> Row:
    """`companies` companies sharing half as many CINs, each webhook sent two or three times at
    once to the service in this process: Attestr calls against the number of CINs (the floor)."""
    from service.config import load_settings
    from service.standins.airtable import AirtableStandIn
    from service.standins.attestr import PATH, AttestrStandIn
    from service.standins.server import serve_in_thread
    from service.web.app import create_app

    dsn = await create_database(server, "bench_spend")
    cins = [f"U{50000 + i:05d}KA2015PTC{i:06d}" for i in range(companies // 2)]
    attestr, airtable = AttestrStandIn(delay_s=0.2), AirtableStandIn(rate_limit=10_000)
    for i, cin in enumerate(cins):
        attestr.companies[cin] = {
            "valid": True,
            "businessName": f"C{i}",
            "contacts": [{"indexId": f"{60000000 + i}", "fullName": f"D {i}", "mobileNumber": f"95{i:08d}"}],
        }
    with serve_in_thread(attestr.app()) as attestr_url, serve_in_thread(airtable.app()) as airtable_url:
        records = [
            airtable.add_record("Companies", {"Company Name": f"C{i}", "CIN": cins[i % len(cins)]})
            for i in range(companies)
        ]
        settings = load_settings(
            {
                "DATABASE_URL": dsn,
                "WEBHOOK_SECRETS": SECRET,
                "API_KEYS": "bench-api-key-0001",
                "ATTESTR_API_KEY": attestr.token,
                "ATTESTR_API_URL": attestr_url + PATH,
                "AIRTABLE_API_KEY": airtable.token,
                "AIRTABLE_BASE_ID": airtable.base_id,
                "AIRTABLE_API_URL": airtable_url,
                "AIRTABLE_RATE_LIMIT_RPS": "45",  # under the stand-in's 50 a second per user
                "LOG_LEVEL": "error",
            },
            env_file=None,
        )
        with serve_in_thread(create_app(settings, dsn), lifespan="on") as url:
            port = int(url.rsplit(":", 1)[1])
            sends = [(records[i], cins[i % len(cins)]) for i in range(companies) for _ in range(2 + i % 2)]
            random.Random(3).shuffle(sends)
            headers = {"X-Webhook-Secret": SECRET}
            result = await hammer(
                port,
                lambda n: request(
                    "/webhooks/airtable",
                    json.dumps({"record_id": sends[n][0], "cin": sends[n][1]}).encode(),
                    headers,
                ),
                len(sends),
                64,
            )
            conn = await asyncpg.connect(dsn)
            deadline = time.monotonic() + 300
            while await conn.fetchval(
                "SELECT count(*) FROM jobs WHERE status NOT IN ('succeeded', 'failed')"
            ):
                if time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.2)
            failed = await conn.fetchval("SELECT count(*) FROM jobs WHERE status = 'failed'")
            await conn.close()
    calls = len(attestr.calls)
    return Row(
        "Attestr spend",
        f"{companies} companies sharing {len(cins)} CINs, {len(sends)} webhooks at once "
        f"({result.statuses[202]} accepted)",
        f"{calls} calls",
        f"{len(cins)} CINs",
        calls / len(cins),
        "= 1",
        calls == len(cins) and failed == 0,
        correctness=True,
    )
