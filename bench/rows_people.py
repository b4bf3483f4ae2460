"""Normalisation and the de-duplicating upsert, on generated Attestr-like answers.

Rows: phone normalisation (floor: phonenumbers' own parse of the same numbers) and the
de-duplicating upsert (floor: `COPY` of the resulting rows into the same indexed tables).
"""

from __future__ import annotations

import random
import time
from typing import Any

import asyncpg
import phonenumbers
from harness import Row, create_database

from service.identifiers import phone as normalize_phone
from service.migrations import migrate
from service.people.companies import ensure_companies
from service.people.dedup import PEOPLE_COLUMNS, CompanyContacts, upsert_people
from service.people.normalize import normalize_contact


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
    """The service's phone normalisation of every generated phone; floor: phonenumbers.parse of
    the same phones."""
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
    """The de-duplicating upsert of every generated contact; floor: COPY of the people and links
    it produced into a fresh database with the same tables and indexes."""
    contacts = [(record_id, [normalize_contact(item) for item in items]) for record_id, items in data]
    dsn = await create_database(server, "bench_upsert")
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

    floor_dsn = await create_database(server, "bench_copy")
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
