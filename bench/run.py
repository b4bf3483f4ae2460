"""contact-sync benchmarks, each side by side with a floor measured in the same run.

    python bench/run.py              # full sizes (a few minutes)
    python bench/run.py --smoke      # small sizes, as CI runs it
    python bench/run.py --write-readme

Everything runs on this machine: an embedded PostgreSQL in a temporary directory, the service
as a child process, the stand-ins in threads. Ratios matter more than figures: machines are
shared and noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import phonenumbers

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent))

from load import hammer, poll, request, steady

from service.database import embedded
from service.identifiers import phone as normalize_phone
from service.logs import configure_logging
from service.migrations import migrate
from service.people.companies import ensure_companies
from service.people.dedup import PEOPLE_COLUMNS, CompanyContacts, upsert_people
from service.people.normalize import normalize_contact

ROOT = Path(__file__).parent.parent
SECRET = "bench-webhook-secret"


@dataclass
class Row:
    what: str
    how: str
    figure: str
    floor: str
    ratio: float | None
    target: str
    met: bool | None
    correctness: bool = False  # not a speed target: a wrong answer here fails the run (and CI)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def _database(server: str, name: str) -> str:
    admin = await asyncpg.connect(server)
    await admin.execute(f"DROP DATABASE IF EXISTS {name}")
    await admin.execute(f"CREATE DATABASE {name}")
    await admin.close()
    return server.replace("/postgres?", f"/{name}?")


def _wait_ready(url: str, process: subprocess.Popen[bytes]) -> None:
    """Until the server answers at all (uvicorn accepts connections once its start-up is done)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("the server exited")
        try:
            httpx.get(url + "/health", timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.05)
    raise RuntimeError("the server did not start")


def _service_env(
    dsn: str, attestr: Any, attestr_url: str, airtable: Any, airtable_url: str, log_level: str
) -> dict[str, str]:
    """The environment of a `contact-sync serve` wired to the bench's stand-ins."""
    from service.standins.attestr import PATH

    return {
        **os.environ,
        "DATABASE_URL": dsn,
        "WEBHOOK_SECRETS": SECRET,
        "ATTESTR_API_KEY": attestr.token,
        "ATTESTR_API_URL": attestr_url + PATH,
        "AIRTABLE_API_KEY": airtable.token,
        "AIRTABLE_BASE_ID": airtable.base_id,
        "AIRTABLE_API_URL": airtable_url,
        "LOG_LEVEL": log_level,
    }


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# --- 1. webhook intake --------------------------------------------------------------------------


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
    dsn = await _database(server, f"bench_intake_{name}_{run}")
    port = _free_port()
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
            _wait_ready(f"http://127.0.0.1:{port}", process)
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
            rss = _peak_rss_mb(process.pid)
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
            "≥ 0.8",
            rps_ratio >= 0.8,
        ),
        Row(
            "webhook intake p99",
            how,
            f"{s['burst'].percentile(0.99):.1f} ms",
            f"{f['burst'].percentile(0.99):.1f} ms",
            p99_ratio,
            "≤ 1.5",
            p99_ratio <= 1.5,
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


# --- 3. de-duplicating upsert -------------------------------------------------------------------


def generate(people: int, seed: int = 11) -> list[tuple[str, list[dict[str, Any]]]]:
    """Attestr-like answers, ~7 directors a company; a fifth are people seen again with other
    spellings of phone and email; a tenth share their company secretary's phone."""
    rng = random.Random(seed)
    spellings = ["+91 {a} {b}", "0{a}{b}", "{a}{b}", "91{a}{b}", "+91-{a}-{b}", "(+91) {a}-{b}"]
    seen: list[int] = []
    companies: list[tuple[str, list[dict[str, Any]]]] = []
    made = 0
    while made < people:
        secretary = f"98{rng.randrange(10**8):08d}"
        items = []
        for _ in range(min(7, people - made)):
            if seen and rng.random() < 0.2:
                n = rng.choice(seen)
            else:
                n = len(seen)
                seen.append(n)
            phone = secretary if rng.random() < 0.1 else f"9{n:09d}"
            items.append(
                {
                    "indexId": f"{n + 1:08d}",
                    "fullName": rng.choice([f"DIRECTOR {n}", f"Director  {n}", f" director {n} "]),
                    "mobileNumber": rng.choice(spellings).format(a=phone[:5], b=phone[5:]),
                    "emailAddress": rng.choice([f"Director.{n}@Example.com", f" director.{n}@example.com "]),
                }
            )
            made += 1
        companies.append((f"rec{len(companies):014d}", items))
    return companies


def normalisation(data: list[tuple[str, list[dict[str, Any]]]]) -> Row:
    phones = [item["mobileNumber"] for _, items in data for item in items]

    def timed(work: Any) -> float:
        started = time.perf_counter()
        for raw in phones:
            work(raw)
        return time.perf_counter() - started

    # Alternated, best of three each: the machine is shared and its speed drifts.
    floors, figures = [], []
    for _ in range(3):
        floors.append(timed(lambda raw: phonenumbers.parse(raw, "IN")))
        figures.append(timed(normalize_phone))
    floor, figure = min(floors), min(figures)

    return Row(
        "phone normalisation",
        f"{len(phones):,} phones as Attestr writes them",
        f"{figure:.2f} s",
        f"{floor:.2f} s (phonenumbers.parse)",
        figure / floor,
        "≤ 1.5",
        figure / floor <= 1.5,
    )


async def upsert_vs_copy(server: str, data: list[tuple[str, list[dict[str, Any]]]]) -> Row:
    contacts = [(record_id, [normalize_contact(item) for item in items]) for record_id, items in data]
    dsn = await _database(server, "bench_upsert")
    conn = await asyncpg.connect(dsn)
    await migrate(conn)
    ids = await ensure_companies(conn, [(r, None, None) for r, _ in contacts])
    started = time.perf_counter()
    for start in range(0, len(contacts), 300):  # 300 companies (~2,100 contacts) a transaction
        async with conn.transaction():
            await upsert_people(conn, [CompanyContacts(ids[r], c) for r, c in contacts[start : start + 300]])
    figure = time.perf_counter() - started
    columns = ", ".join(f"{c}::text" if c == "addresses" else c for c in PEOPLE_COLUMNS)
    people = await conn.fetch(f"SELECT {columns} FROM people ORDER BY id")
    links = await conn.fetch("SELECT company_id, person_id FROM company_people")
    await conn.close()

    floor_dsn = await _database(server, "bench_copy")
    conn = await asyncpg.connect(floor_dsn)
    await migrate(conn)
    await ensure_companies(conn, [(r, None, None) for r, _ in contacts])
    started = time.perf_counter()
    await conn.copy_records_to_table(
        "people",
        records=[tuple(r) for r in people],
        columns=list(PEOPLE_COLUMNS),
    )
    await conn.copy_records_to_table(
        "company_people", records=[tuple(r) for r in links], columns=["company_id", "person_id"]
    )
    floor = time.perf_counter() - started
    await conn.close()
    count = sum(len(c) for _, c in contacts)
    return Row(
        "de-duplicating upsert",
        f"{count:,} contacts → {len(people):,} people, {len(links):,} links",
        f"{figure:.2f} s",
        f"{floor:.2f} s (COPY of the same rows)",
        figure / floor,
        "≤ 5",
        figure / floor <= 5,
    )


# --- 4. spend ----------------------------------------------------------------------------------


async def spend(server: str, companies: int) -> Row:
    from service.config import load_settings
    from service.standins.airtable import AirtableStandIn
    from service.standins.attestr import PATH, AttestrStandIn
    from service.standins.server import serve_in_thread
    from service.web.app import create_app

    dsn = await _database(server, "bench_spend")
    cins = [f"U{50000 + i:05d}KA2015PTC{i:06d}" for i in range(companies // 2)]
    attestr, airtable = AttestrStandIn(delay_s=0.2), AirtableStandIn(rate_limit=10_000)
    for i, cin in enumerate(cins):
        attestr.companies[cin] = {
            "valid": True,
            "businessName": f"C{i}",
            "contacts": [{"indexId": f"{60000000 + i}", "fullName": f"D {i}", "mobileNumber": f"95{i:08d}"}],
        }
    with serve_in_thread(attestr.app()) as attestr_url, serve_in_thread(airtable.app()) as airtable_url:
        records = [airtable.add_record("Companies", {"Company Name": f"C{i}"}) for i in range(companies)]
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


async def large_answers(server: str, jobs: int, answer_mb: int) -> Row:
    """`contact-sync serve` (its worker inside) while Attestr answers `jobs` companies at once with
    `answer_mb` MB each: the process's peak memory against its own before them."""
    from service.standins.airtable import AirtableStandIn
    from service.standins.attestr import AttestrStandIn
    from service.standins.server import serve_in_thread

    dsn = await _database(server, "bench_large")
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
        records = [airtable.add_record("Companies", {"Company Name": f"H{i}"}) for i in range(jobs)]
        port = _free_port()
        env = _service_env(dsn, attestr, attestr_url, airtable, airtable_url, "error")
        command = [sys.executable, "-m", "service", "serve", "--host", "127.0.0.1", "--port", str(port)]
        with tempfile.TemporaryFile() as log:
            process = subprocess.Popen(command, env=env, stdout=log, stderr=log, cwd=ROOT)
            try:
                _wait_ready(f"http://127.0.0.1:{port}", process)
                before = _peak_rss_mb(process.pid)
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
                failed = await conn.fetchval(
                    "SELECT count(*) FROM jobs WHERE status = 'failed' AND attempts = 1"
                )
                await conn.close()
                peak = _peak_rss_mb(process.pid)
            finally:
                process.terminate()
                process.wait(30)
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


# --- 2. Airtable under a backlog ---------------------------------------------------------------


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

    dsn = await _database(server, "bench_backlog")
    data = generate(companies * 7, seed=5)[:companies]
    attestr, airtable = AttestrStandIn(delay_s=0.2), AirtableStandIn(rate_limit=5, cooldown_s=30)
    cins = [f"U{70000 + i:05d}KA2016PTC{i:06d}" for i in range(len(data))]
    for i, (cin, (_, items)) in enumerate(zip(cins, data, strict=True)):
        attestr.companies[cin] = {"valid": True, "businessName": f"B{i}", "contacts": items}
    with serve_in_thread(attestr.app()) as attestr_url, serve_in_thread(airtable.app()) as airtable_url:
        records = [airtable.add_record("Companies", {"Company Name": f"B{i}"}) for i in range(len(data))]
        port = _free_port()
        env = _service_env(dsn, attestr, attestr_url, airtable, airtable_url, "warning")
        command = [sys.executable, "-m", "service", "serve", "--host", "127.0.0.1", "--port", str(port)]
        with tempfile.TemporaryFile() as log:
            process = subprocess.Popen(command, env=env, stdout=log, stderr=log, cwd=ROOT)
            try:
                _wait_ready(f"http://127.0.0.1:{port}", process)
                airtable.requests.clear()  # start-up reads the schema: not part of the backlog
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
                process.terminate()
                process.wait(30)
    writes = airtable.write_requests()
    refused = sum(1 for r in airtable.requests if r.get("status") == 429)
    written = sum(r["records"] for r in writes if r.get("status") == 200)
    minimum = people + len(records)  # each person once, each company's final status once
    floor = minimum / 50
    how = (
        f"{len(records)} companies, {people:,} people, Attestr 200 ms, Airtable 5 requests "
        "in any sliding second"
    )
    per_write = written / max(1, len(writes))
    return [
        Row(
            "Airtable writes under a backlog",
            how + f"; floor: {minimum:,} records ÷ 50 records/s",
            f"{wall:.1f} s",
            f"{floor:.1f} s",
            wall / floor,
            "≤ 1.15",
            wall / floor <= 1.15 and failed == 0,
        ),
        Row(
            "records per Airtable write",
            f"{written:,} records in {len(writes):,} write requests",
            f"{per_write:.1f}",
            "10",
            None,
            "≥ 9",
            per_write >= 9,
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
    ]


# --- 5. start-up -------------------------------------------------------------------------------


def startup(tmp: Path) -> Row:
    data = tmp / "startup"
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"} | {"DATA_DIR": str(data)}

    def serve_once() -> float:
        port = _free_port()
        started = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "-m", "service", "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200:
                        return time.perf_counter() - started
                except httpx.TransportError:
                    pass
                time.sleep(0.01)
            raise RuntimeError("not ready")
        finally:
            process.terminate()
            process.wait(30)

    serve_once()  # creates and migrates the data directory
    figure = min(serve_once() for _ in range(2))
    started = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, pgserver; pgserver.get_server(sys.argv[1])",
            str((data / "postgres").resolve()),
        ],
        check=True,
        capture_output=True,
    )
    floor = time.perf_counter() - started
    return Row(
        "start-up to /ready",
        "`contact-sync serve` on an existing embedded data directory",
        f"{figure:.2f} s",
        f"{floor:.2f} s (pgserver starting it alone)",
        figure / floor,
        "",
        None,
    )


def table(rows: list[Row], when: str) -> str:
    lines = ["| what | how | figure | floor | ratio | target | met |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        ratio = f"{r.ratio:.2f}" if r.ratio is not None else ""
        met = "" if r.met is None else ("yes" if r.met else "**no**")
        lines.append(f"| {r.what} | {r.how} | {r.figure} | {r.floor} | {ratio} | {r.target} | {met} |")
    return "\n".join(lines) + f"\n\nMeasured {when} with `python bench/run.py`."


async def main(smoke: bool, write_readme: bool) -> int:
    configure_logging("console", "error")  # the service parts running in this process stay quiet
    rows: list[Row] = []
    # The bench's own PostgreSQL is stopped before its folder goes: nothing is left running.
    with tempfile.TemporaryDirectory(dir="/tmp") as tmp, embedded(Path(tmp) / "pg") as server:
        data = generate(2_000 if smoke else 100_000)
        rows.append(normalisation(data))
        rows.append(await upsert_vs_copy(server, data))
        rows += await intake(server, 2_000 if smoke else 20_000, 3 if smoke else 10)
        rows += await airtable_backlog(server, 30 if smoke else 300)
        rows.append(await spend(server, 40 if smoke else 400))
        rows.append(await large_answers(server, 8, 4 if smoke else 26))
        rows.append(startup(Path(tmp)))
    text = table(rows, f"{date.today():%Y-%m-%d}" + (" (smoke sizes)" if smoke else ""))
    print(text)
    if write_readme:
        readme = ROOT / "README.md"
        content = readme.read_text()
        start, end = content.index("<!-- bench:start -->"), content.index("<!-- bench:end -->")
        readme.write_text(content[: start + len("<!-- bench:start -->")] + "\n" + text + "\n" + content[end:])
    wrong = [r.what for r in rows if r.correctness and not r.met]
    if wrong:
        print(f"\nWrong results: {', '.join(wrong)}", file=sys.stderr)
    return 1 if wrong else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--smoke", action="store_true", help="small sizes (CI)")
    parser.add_argument("--write-readme", action="store_true", help="put the table into README.md")
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.smoke, args.write_readme)))
