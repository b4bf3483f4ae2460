"""How long the de-duplicating upsert takes for N generated people.

    python bench/upsert_people.py --people 10000

Generates Attestr-like answers of about seven directors per company, a fifth of them people
seen again under another company with other spellings of phone and email, some directors
sharing a secretary's phone, and stores them into a fresh database two ways: one transaction
per company (what the worker does) and all companies in one batch.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
from pathlib import Path

import asyncpg

from service.companies import ensure_companies
from service.database import create_pool, start_embedded
from service.dedup import CompanyContacts, upsert_people
from service.migrations import migrate
from service.normalize import Contact, normalize_contact


def generate(people: int, seed: int = 7) -> list[tuple[str, list[Contact]]]:
    rng = random.Random(seed)
    spellings = ["+91 {0} {1}", "0{0}{1}", "{0}{1}", "91{0}{1}", "+91-{0}-{1}"]
    seen: list[int] = []
    companies: list[tuple[str, list[Contact]]] = []
    made = 0
    while made < people:
        record_id = f"rec{len(companies):014d}"
        secretary = f"98{rng.randrange(10**8):08d}"
        contacts = []
        for _ in range(min(7, people - made)):
            if seen and rng.random() < 0.2:
                n = rng.choice(seen)  # someone already seen, written differently
            else:
                n = len(seen)
                seen.append(n)
            phone = secretary if rng.random() < 0.1 else f"9{n:09d}"
            item = {
                "indexId": f"{n + 1:08d}",
                "fullName": f"DIRECTOR {n}" if rng.random() < 0.5 else f"Director  {n}",
                "mobileNumber": rng.choice(spellings).format(phone[:5], phone[5:]),
                "emailAddress": f"Director.{n}@Example.com"
                if rng.random() < 0.5
                else f" director.{n}@example.com ",
            }
            contacts.append(normalize_contact(item))
            made += 1
        companies.append((record_id, contacts))
    return companies


async def main(people: int) -> None:
    data = generate(people)
    with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
        url = start_embedded(Path(tmp))
        for mode in ("per company", "one batch"):
            admin = await asyncpg.connect(url)
            await admin.execute("DROP DATABASE IF EXISTS bench_upsert")
            await admin.execute("CREATE DATABASE bench_upsert")
            await admin.close()
            db = url.replace("/postgres?", "/bench_upsert?")
            pool = await create_pool(db)
            async with pool.acquire() as conn:
                await migrate(conn)
                ids = await ensure_companies(conn, [(r, None, None) for r, _ in data])
            started = time.perf_counter()
            async with pool.acquire() as conn:
                if mode == "per company":
                    for record_id, contacts in data:
                        async with conn.transaction():
                            await upsert_people(conn, [CompanyContacts(ids[record_id], contacts)])
                else:
                    async with conn.transaction():
                        await upsert_people(conn, [CompanyContacts(ids[r], c) for r, c in data])
            elapsed = time.perf_counter() - started
            stored = await pool.fetchval("SELECT count(*) FROM people")
            await pool.close()
            print(
                f"{mode:12s}: {people} contacts from {len(data)} companies -> {stored} people "
                f"in {elapsed:.2f} s ({people / elapsed:,.0f} contacts/s)"
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--people", type=int, default=10_000)
    asyncio.run(main(parser.parse_args().people))
