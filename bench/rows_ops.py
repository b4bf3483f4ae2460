"""The operator's page: its jobs page with 100,000 jobs in the database, beside the bare query it
runs; and webhooks at a steady rate while operators keep the page open, beside the same rate with
nobody looking.

Rows: the jobs page's slowest filter, median of its loads (floor: the page's query alone, by
asyncpg, with the same filter); webhook p99 at 200/s while 10 tabs reload the page every 3 s, as an
open page with unfinished jobs does (floor: the same rate with no tab open).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from datetime import datetime, timedelta, timezone
from typing import Any

import asyncpg
import httpx
from harness import SECRET, Row, create_database, serving
from load import Result, steady
from rows_intake import _webhook

from service import queries
from service.engine.history import contains_pattern
from service.migrations import migrate

API_KEY = "bench-api-key-long-enough"
# Open tabs: one operator, and ten (far more than a small team keeps open).
TABS = (1, 10)
CIN = "U72200KA2015PTC081234"
# The jobs page as an operator filters it: (what, query string, the bare query's parameters).
FILTERS: list[tuple[str, str, tuple[Any, ...]]] = [
    ("newest", "", (None, None, None, None, None, None)),
    ("failed", "status=failed", ("failed", None, None, None, None, None)),
    (
        "a company's name",
        "company=Traders+0042",
        (None, "Traders 0042", contains_pattern("Traders 0042"), None, None, None),
    ),
    ("a CIN", f"cin={CIN}", (None, None, None, CIN, None, None)),
    ("last 24h", "since=24h", (None, None, None, None, "since", None)),
    ("a page deep", "before=50000", (None, None, None, None, None, 50_000)),
]


async def _seed(dsn: str, jobs: int) -> None:
    """`jobs` jobs over jobs/5 companies in 30 days: most succeeded (half served by a stored
    answer), 1 in 20 failed, a few queued; a paid answer for each paid job."""
    conn = await asyncpg.connect(dsn)
    await migrate(conn)
    companies = max(jobs // 5, 1)
    await conn.execute(
        """
        INSERT INTO companies (airtable_id, cin, name, sync_status)
        SELECT 'rec' || lpad(n::text, 14, '0'), 'U72200KA2015PTC' || lpad((n % 999999)::text, 6, '0'),
               'Traders ' || lpad(n::text, 4, '0') || ' Private Limited', 'Synced'
        FROM generate_series(1, $1) AS n""",
        companies,
    )
    await conn.execute(
        """
        INSERT INTO jobs (record_id, cin, status, source, attempts, last_error, result,
                          created_at, updated_at)
        SELECT 'rec' || lpad((n % $2 + 1)::text, 14, '0'),
               CASE WHEN n % 997 = 0 THEN $3
                    ELSE 'U72200KA2015PTC' || lpad(((n % $2 + 1) % 999999)::text, 6, '0') END,
               CASE WHEN n % 20 = 0 THEN 'failed' WHEN n > $1 - 5 THEN 'queued' ELSE 'succeeded' END,
               'webhook', 1,
               CASE WHEN n % 20 = 0 THEN 'Attestr refused the request as malformed (code 4001)' END,
               CASE WHEN n % 20 <> 0 AND n <= $1 - 5 THEN jsonb_build_object(
                   'outcome', 'synced', 'contacts_fetched', 7, 'contacts_new', 2, 'contacts_updated', 1,
                   'airtable_created', 2, 'airtable_updated', 1, 'airtable_failed', 0,
                   'attestr_called', n % 2 = 0) END,
               now() - ($1 - n) * (interval '30 days' / $1), now() - ($1 - n) * (interval '30 days' / $1)
        FROM generate_series(1, $1) AS n""",
        jobs,
        companies,
        CIN,
    )
    await conn.execute(
        """
        INSERT INTO attestr_answers (cin, job_id, outcome, http_status, called_at)
        SELECT cin, id, 'synced', 200, created_at FROM jobs WHERE (result ->> 'attestr_called')::boolean"""
    )
    await conn.execute("ANALYZE")
    await conn.close()


def _median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


async def _page_loads(client: httpx.AsyncClient, query: str, loads: int) -> list[float]:
    taken = []
    for _ in range(loads):
        started = time.perf_counter()
        answer = await client.get(f"/ops/jobs?{query}")
        taken.append(time.perf_counter() - started)
        assert answer.status_code == 200, answer.text[:200]
    return taken


async def _bare_queries(dsn: str, params: tuple[Any, ...], loads: int) -> list[float]:
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=1)
    taken = []
    for _ in range(loads):
        wanted = tuple(datetime.now(timezone.utc) - timedelta(days=1) if p == "since" else p for p in params)
        started = time.perf_counter()
        await pool.fetch(queries.OPS_JOBS, *wanted, 50)
        taken.append(time.perf_counter() - started)
    await pool.close()
    return taken


async def _tabs(url: str, cookies: httpx.Cookies, seconds: float, tabs: int, every_s: float) -> int:
    """`tabs` browsers, as operators use the page: each opens the overview, then the jobs page,
    which reloads itself every `every_s` while it shows unfinished jobs (the stylesheet is cached);
    the pages loaded."""
    loaded = 0

    async def tab(n: int) -> None:
        nonlocal loaded
        async with httpx.AsyncClient(base_url=url, cookies=cookies) as client:
            await asyncio.sleep(every_s * n / tabs)  # not all at once
            for path in ("/ops/", "/ops/ops.css"):
                assert (await client.get(path)).status_code == 200
            end = time.perf_counter() + seconds
            while time.perf_counter() < end:
                assert (await client.get("/ops/jobs")).status_code == 200
                loaded += 1
                await asyncio.sleep(every_s)

    await asyncio.gather(*(tab(n) for n in range(tabs)))
    return loaded


async def ops_page(server: str, jobs: int, loads: int, steady_s: float) -> list[Row]:
    dsn = await create_database(server, "bench_ops")
    await _seed(dsn, jobs)
    env = {
        **os.environ,
        "DATABASE_URL": dsn,
        "WEBHOOK_SECRETS": SECRET,
        "API_KEYS": API_KEY,
        "WORKER_IN_WEB": "false",  # the page and the intake are measured, not the sync
        "QUEUE_MAX_JOBS": "10000000",
        "RECONCILE_INTERVAL_S": "0",
        "LOG_LEVEL": "warning",
    }
    pages: dict[str, float] = {}
    bare: dict[str, float] = {}
    with serving(env) as (port, _process):
        url = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=url) as client:
            signed = await client.post("/ops/signin", data={"api_key": API_KEY})
            assert signed.status_code == 303, signed.text[:200]
            for what, query, params in FILTERS:
                await _page_loads(client, query, 2)  # warm: connections, plans, templates
                pages[what] = _median_ms(await _page_loads(client, query, loads))
                bare[what] = _median_ms(await _bare_queries(dsn, params, loads))
            cookies = client.cookies
        # Alternating, best of 2 each: the machine is shared and its speed drifts between runs.
        alone: list[Result] = []
        watched: dict[int, list[Result]] = {tabs: [] for tabs in TABS}
        loaded = dict.fromkeys(TABS, 0)
        for run in range(2):
            alone.append(await steady(port, _webhook, 200, steady_s, offset=50_000_000 + run * 100_000))
            for tabs in TABS:
                seen, pages_loaded = await asyncio.gather(
                    steady(port, _webhook, 200, steady_s, offset=60_000_000 + run * 100_000 + tabs * 10_000),
                    _tabs(url, cookies, steady_s, tabs, 3.0),
                )
                watched[tabs].append(seen)
                loaded[tabs] += pages_loaded
    slowest = max(pages, key=lambda what: pages[what])
    calm = min(r.percentile(0.99) for r in alone)
    every = ", ".join(f"{what} {pages[what]:.0f} ms" for what in pages)
    rows = [
        Row(
            f"operator's jobs page, {jobs:,} jobs",
            f"GET /ops/jobs signed in, median of {loads} loads for each filter ({every}); the slowest "
            f"shown; floor: the page's query alone (asyncpg, same filter)",
            f"{pages[slowest]:.1f} ms",
            f"{bare[slowest]:.1f} ms",
            pages[slowest] / bare[slowest] if bare[slowest] else None,
            "≤ 200 ms",
            pages[slowest] <= 200,
        )
    ]
    # Two runs with nobody looking differ by this much: a page whose cost is within it costs
    # nothing measurable (one tab loads the jobs page about 3 times in 10 s, each in a few ms).
    spread = max(r.percentile(0.99) for r in alone) / calm
    for tabs in TABS:
        busy = min(r.percentile(0.99) for r in watched[tabs])
        target = max(spread, 1.05) if tabs == 1 else 1.25
        rows.append(
            Row(
                f"webhook p99 while the operator's page is open in {tabs} tab(s)",
                f"{steady_s:.0f} s at 200 webhooks/s while {tabs} tab(s) open the overview, then the jobs "
                f"page, which reloads itself every 3 s ({loaded[tabs]} loads), best of 2; floor: the same "
                "rate with no tab open, alternating with it",
                f"{busy:.1f} ms",
                f"{calm:.1f} ms",
                busy / calm,
                f"≤ {target:.2f}" + (" (the floor's own run-to-run spread)" if tabs == 1 else ""),
                busy <= target * calm,
            )
        )
    return rows
