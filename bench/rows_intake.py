"""Webhook intake: `contact-sync serve` against its floor, bench/floor_app.py (a bare Starlette +
uvicorn app storing each request with one asyncpg INSERT), on the same machine in the same run.

Rows: throughput and p99 under a burst (floor: the floor app's; figures to watch, no target), p99 at
a steady 200/s (floor: the floor app's), p99 while /metrics is polled (floor: the same while
webhooks are posted instead), the web process's peak RSS (floor: the floor app's), and that every
202 is a stored job (correctness).

Intake is a guard: the targets are p99 under 25 ms at a steady 200/s and every 202 a stored job.
Airtable's automations send far less (a base's runs are counted by the month), and what a webhook
does beyond a bare INSERT (authentication, validation, the queue's cap, the stored body, metrics)
is what makes it safe: its ratio to the floor app is no longer a target.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
from collections import Counter
from typing import Any

import asyncpg
from harness import ROOT, SECRET, Row, create_database, free_port, peak_rss_mb, wait_ready
from load import hammer, poll, request, steady

_METRICS = b"GET /metrics HTTP/1.1\r\nHost: bench\r\n\r\n"


def _webhook(n: int) -> bytes:
    """The n-th webhook, the way the automation script sends it (a new company each time)."""
    body = json.dumps(
        {"record_id": f"rec{n:014d}", "cin": "U72200KA2015PTC081234", "refresh": False}
    ).encode()
    return request("/webhooks/airtable", body, {"X-Webhook-Secret": SECRET})


async def _intake_run(server: str, name: str, run: int, total: int, steady_s: float) -> dict[str, Any]:
    """One server (the floor app or `contact-sync serve`) on a fresh database: a burst, then a
    steady rate; what it answered and what it stored."""
    dsn = await create_database(server, f"bench_intake_{name}_{run}")
    port = free_port()
    if name == "service":
        command = [sys.executable, "-m", "service", "serve", "--host", "127.0.0.1", "--port", str(port)]
        env = {
            **os.environ,
            "DATABASE_URL": dsn,
            "WEBHOOK_SECRETS": SECRET,
            "WORKER_IN_WEB": "false",
            "QUEUE_MAX_JOBS": "10000000",  # the intake is measured, not the queue cap
        }
    else:
        command = [sys.executable, str(ROOT / "bench" / "floor_app.py"), "--dsn", dsn, "--port", str(port)]
        env = dict(os.environ)
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=log, cwd=ROOT)
        try:
            wait_ready(f"http://127.0.0.1:{port}", process)
            await hammer(port, lambda n: _webhook(10_000_000 + n), min(500, total // 4), 64)  # warm-up
            burst = await hammer(port, _webhook, total, 64)
            calm = await steady(port, _webhook, 200, steady_s, offset=total)
            polled = posted = None
            scrapes = pushes = Counter[int]()
            if name == "service":
                # The same steady rate while 16 clients poll /metrics back to back (no key), and
                # while 16 clients post webhooks back to back: a scrape must cost no more.
                polled, scrapes = await asyncio.gather(
                    steady(port, _webhook, 200, steady_s, offset=total + 100_000),
                    poll(port, lambda _n: _METRICS, steady_s, 16),
                )
                posted, pushes = await asyncio.gather(
                    steady(port, _webhook, 200, steady_s, offset=total + 200_000),
                    poll(port, _webhook, steady_s, 16, offset=total + 300_000),
                )
            rss = peak_rss_mb(process.pid)
        finally:
            process.terminate()
            process.wait(30)
    conn = await asyncpg.connect(dsn)
    stored = await conn.fetchval(f"SELECT count(*) FROM {'jobs' if name == 'service' else 'floor_jobs'}")
    await conn.close()
    accepted = burst.statuses[202] + calm.statuses[202] + min(500, total // 4)
    accepted += polled.statuses[202] + posted.statuses[202] + pushes[202] if polled and posted else 0
    return {
        "burst": burst,
        "calm": calm,
        "polled": polled,
        "scrapes": scrapes,
        "posted": posted,
        "rss": rss,
        "stored": stored,
        "accepted": accepted,
    }


async def intake(server: str, total: int, steady_s: float, rounds: int = 2) -> list[Row]:
    """`total` webhooks, 64 in flight, then `steady_s` seconds at 200/s, to the service and to the
    floor app in turn: throughput, p99s, peak RSS and stored jobs, each beside the floor's."""
    # Floor and service alternate, best round of each: the machine is shared and its speed drifts
    # between one run and the next (the floor alone has measured 1,200 to 2,600/s here).
    runs: dict[str, list[dict[str, Any]]] = {"floor": [], "service": []}
    for run in range(rounds):
        for name in ("floor", "service"):
            runs[name].append(await _intake_run(server, name, run, total, steady_s))
    results = {
        name: {
            **max(found, key=lambda r: r["burst"].rps),
            "calm": min((r["calm"] for r in found), key=lambda c: c.percentile(0.99)),
            "polled": min(
                (r for r in found if r["polled"]), key=lambda r: r["polled"].percentile(0.99), default=None
            ),
            "rss": max(r["rss"] for r in found),
            "stored": sum(r["stored"] for r in found),
            "accepted": sum(r["accepted"] for r in found),
            "refused": set().union(*(set(r["burst"].statuses) - {202} for r in found)),
        }
        for name, found in runs.items()
    }
    s, f = results["service"], results["floor"]
    rps_ratio = s["burst"].rps / f["burst"].rps
    p99_ratio = s["burst"].percentile(0.99) / f["burst"].percentile(0.99)
    how = (
        f"{total:,} POSTs, 64 in flight, raw-socket client, best of {rounds} alternating runs; "
        "floor: Starlette + one asyncpg INSERT"
    )
    return [
        Row(
            "webhook intake throughput",
            how,
            f"{s['burst'].rps:,.0f}/s",
            f"{f['burst'].rps:,.0f}/s",
            rps_ratio,
            "",
            None,
        ),
        Row(
            "webhook intake p99",
            how,
            f"{s['burst'].percentile(0.99):.1f} ms",
            f"{f['burst'].percentile(0.99):.1f} ms",
            p99_ratio,
            "",
            None,
        ),
        Row(
            "webhook p99 at a steady 200/s",
            f"{steady_s:.0f} s at 200 requests/s, best of {rounds}",
            f"{s['calm'].percentile(0.99):.1f} ms",
            f"{f['calm'].percentile(0.99):.1f} ms",
            None,
            "< 25 ms",
            s["calm"].percentile(0.99) < 25,
        ),
        Row(
            "webhook p99 while /metrics is polled",
            f"{steady_s:.0f} s at 200 requests/s while 16 clients poll /metrics back to back "
            f"({s['polled']['scrapes'].total():,} scrapes), best of {rounds}; "
            "floor: the same while 16 clients post webhooks back to back instead",
            f"{s['polled']['polled'].percentile(0.99):.1f} ms",
            f"{s['polled']['posted'].percentile(0.99):.1f} ms",
            s["polled"]["polled"].percentile(0.99) / s["polled"]["posted"].percentile(0.99),
            "≤ 1",
            s["polled"]["polled"].percentile(0.99) <= s["polled"]["posted"].percentile(0.99),
        ),
        Row(
            "web process peak RSS",
            "VmHWM after the runs above",
            f"{s['rss']:.0f} MB",
            f"{f['rss']:.0f} MB",
            s["rss"] / f["rss"],
            "< 150 MB",
            s["rss"] < 150,
        ),
        Row(
            "every 202 is a stored job",
            "jobs in the database vs 202 answers",
            f"{s['stored']:,} / {s['accepted']:,}",
            "",
            None,
            "equal",
            s["stored"] == s["accepted"] and not s["refused"],
            correctness=True,
        ),
    ]
