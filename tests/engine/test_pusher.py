"""The pusher against the Airtable stand-in: packing, the shared rate limit, deleted companies,
renamed fields, 429s, and marks that survive a change made during a push."""

from __future__ import annotations

import asyncio
import contextlib
import time

import asyncpg
import pytest
from structlog.testing import capture_logs

from service import queries
from service.airtable.client import Airtable
from service.engine import jobs
from service.engine.batches import Outgoing
from service.engine.company_statuses import CompanyStatuses
from service.engine.contacts_table import ContactsTable
from service.engine.pusher import STOP_GRACE_S, Pusher
from service.people.companies import ensure_company
from service.people.dedup import CompanyContacts, upsert_people
from service.people.normalize import normalize_contact
from service.standins.airtable import AirtableStandIn
from service.standins.attestr import AttestrStandIn
from tests.conftest import Running
from tests.engine.test_engine import until
from tests.flow import settings_for


async def seed(pool: asyncpg.Pool, record_ids: list[str], people_each: int, shared: int = 0) -> None:
    """People for each company (the first `shared` of them on every board)."""
    for c, record_id in enumerate(record_ids):
        items = [
            {
                "indexId": f"{20000000 + (i if i < shared else c * 1000 + i)}",
                "fullName": f"Person {c}-{i}",
                "mobileNumber": f"98{c:03d}{i:05d}",
            }
            for i in range(people_each)
        ]
        async with pool.acquire() as conn, conn.transaction():
            company_id = await ensure_company(conn, record_id)
            await upsert_people(conn, [CompanyContacts(company_id, [normalize_contact(x) for x in items])])


async def drain(pusher: Pusher) -> None:
    while await pusher.push_once():
        pass


def pusher_for(
    pool: asyncpg.Pool, airtable: Running[AirtableStandIn], attestr: Running[AttestrStandIn], **env: str
) -> Pusher:
    settings = settings_for(airtable, attestr, **env)
    return Pusher(pool, Airtable(settings, pool), settings, linger_s=0.05)


def companies(airtable: Running[AirtableStandIn], n: int) -> list[str]:
    return [airtable.standin.add_record("Companies", {"Company Name": f"Company {i}"}) for i in range(n)]


async def test_two_pushers_share_the_rate_limit_and_pack_full_batches(
    db_url: str, pool: asyncpg.Pool, airtable: Running[AirtableStandIn], attestr: Running[AttestrStandIn]
) -> None:
    await seed(pool, companies(airtable, 6), people_each=10)
    other_pool = await asyncpg.create_pool(db_url, min_size=1, max_size=4)  # another process
    pushers = [pusher_for(pool, airtable, attestr), pusher_for(other_pool, airtable, attestr)]
    await asyncio.gather(*(drain(p) for p in pushers))
    await other_pool.close()
    assert len(airtable.standin.records("Contacts")) == 60
    writes = [r for r in airtable.standin.write_requests() if r["path"].endswith("/Contacts")]
    assert all(r["records"] <= 10 for r in writes)
    assert len(writes) == 6
    assert {r["status"] for r in airtable.standin.requests} == {200}
    assert await pool.fetchval("SELECT count(*) FROM contacts_pending_sync") == 0


async def test_a_company_deleted_by_hand_loses_its_links(
    pool: asyncpg.Pool, airtable: Running[AirtableStandIn], attestr: Running[AttestrStandIn]
) -> None:
    kept, deleted = companies(airtable, 2)
    await seed(pool, [kept, deleted], people_each=2, shared=1)
    airtable.standin.delete_record("Companies", deleted)
    with capture_logs() as logs:
        await drain(pusher_for(pool, airtable, attestr))
    contacts = airtable.standin.records("Contacts")
    # No junk company named after the deleted record's id (what a typecast link would make).
    assert [r["id"] for r in airtable.standin.records("Companies")] == [kept]
    links = sorted((c["fields"]["Name"], c["fields"].get("Company")) for c in contacts)
    # The shared director stays linked to the company that still exists; the deleted company's
    # own director is not created: a row that would link to nothing.
    assert links == [("Person 0-1", [kept]), ("Person 1-0", [kept])]
    assert await pool.fetchval("SELECT deleted_in_airtable FROM companies WHERE airtable_id = $1", deleted)
    assert any(e["event"] == "airtable.company_deleted" for e in logs)


async def test_a_field_removed_from_the_base_is_no_longer_written(
    pool: asyncpg.Pool, airtable: Running[AirtableStandIn], attestr: Running[AttestrStandIn]
) -> None:
    await seed(pool, companies(airtable, 1), people_each=3)
    pusher = pusher_for(pool, airtable, attestr)
    await pusher.airtable.fields()  # the schema as it was at start
    table = airtable.standin.table("Contacts")
    table.fields = [f for f in table.fields if f.name != "Phone Type"]
    await drain(pusher)
    contacts = airtable.standin.records("Contacts")
    assert len(contacts) == 3 and all("Phone Type" not in c["fields"] for c in contacts)
    assert [r["status"] for r in airtable.standin.write_requests()] == [422, 200]


async def test_a_429_cools_the_base_down_and_nothing_is_lost(
    pool: asyncpg.Pool, airtable: Running[AirtableStandIn], attestr: Running[AttestrStandIn]
) -> None:
    airtable.standin.rate_limit = 2  # the base allows less than the service was told
    airtable.standin.cooldown_s = 0.5
    await seed(pool, companies(airtable, 3), people_each=10)
    pusher = pusher_for(pool, airtable, attestr, AIRTABLE_COOLDOWN_S="0.6")
    with capture_logs() as logs:
        for _ in range(50):
            if await pool.fetchval("SELECT count(*) FROM contacts_pending_sync") == 0:
                break
            await pusher.push_once()
    assert len(airtable.standin.records("Contacts")) == 30
    assert any(e["event"] == "airtable.rate_limited" for e in logs)
    statuses = [r["status"] for r in airtable.standin.requests]
    assert 429 in statuses
    # After a 429 the pusher waits out the cool-down instead of hammering the base.
    assert statuses.count(429) <= 3


async def test_a_row_changed_during_its_push_stays_marked(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn, conn.transaction():
        company_id = await ensure_company(conn, "recAAAAAAAAAAAAAA")
        await upsert_people(conn, [CompanyContacts(company_id, [normalize_contact({"indexId": "01234567"})])])
    (row,) = await pool.fetch(queries.PEOPLE_CLAIM_PUSH, 10, 60.0)
    await pool.execute("UPDATE people SET push_version = push_version + 1")  # a job changed it meanwhile
    await pool.execute(
        queries.PEOPLE_PUSHED, [row["id"]], ["recCCCCCCCCCCCCCC"], [row["push_version"]], [False], ["{}"]
    )
    assert await pool.fetchval("SELECT count(*) FROM contacts_pending_sync") == 1
    assert await pool.fetchval("SELECT airtable_id FROM people") == "recCCCCCCCCCCCCCC"


async def test_a_writes_outcome_reaches_a_sync_that_committed_while_it_waited(
    pool: asyncpg.Pool, airtable: Running[AirtableStandIn], attestr: Running[AttestrStandIn]
) -> None:
    """A person's row is written for one job while another job's sync, holding the person,
    records a row for them: the write's answer waits for the person, and once the sync commits
    its row gets the outcome too (created for the first job, updated for the next)."""
    async with pool.acquire() as conn, conn.transaction():
        company_id = await ensure_company(conn, "recAAAAAAAAAAAAAA")
        await upsert_people(conn, [CompanyContacts(company_id, [normalize_contact({"indexId": "01234567"})])])
    person = await pool.fetchval("SELECT id FROM people")
    job = "INSERT INTO jobs (record_id, status, worker_id) VALUES ('recAAAAAAAAAAAAAA', $1, 'w') RETURNING id"
    first, second = [await pool.fetchval(job, status) for status in ("pushing", "running")]
    await pool.execute("INSERT INTO job_rows (job_id, person_id, version) VALUES ($1, $2, 1)", first, person)
    (row,) = await pool.fetch(queries.PEOPLE_CLAIM_PUSH, 10, 60.0)
    settings = settings_for(airtable, attestr)
    table = ContactsTable(pool, Airtable(settings, pool), settings)
    async with pool.acquire() as sync:
        async with sync.transaction():
            await sync.execute("SELECT 1 FROM people WHERE id = $1 FOR UPDATE", person)
            await sync.execute(
                "INSERT INTO job_rows (job_id, person_id, version) VALUES ($1, $2, 1)", second, person
            )
            answer = {
                "records": [{"id": "recPPPPPPPPPPPPPP", "fields": {}}],
                "createdRecords": ["recPPPPPPPPPPPPPP"],
            }
            written = asyncio.create_task(table.written([Outgoing(row)], answer))

            async def waiting() -> bool:
                return bool(
                    await pool.fetchval(
                        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND pid <> $1",
                        sync.get_server_pid(),
                    )
                )

            await until(waiting)
        await written
    outcomes = await pool.fetch("SELECT job_id, outcome FROM job_rows ORDER BY job_id")
    assert [(r["job_id"], r["outcome"]) for r in outcomes] == [(first, "created"), (second, "updated")]


@pytest.mark.parametrize("missing", ["AIRTABLE_API_KEY", "AIRTABLE_BASE_ID"])
async def test_without_credentials_nothing_is_sent_and_the_reason_is_given(
    pool: asyncpg.Pool, airtable: Running[AirtableStandIn], attestr: Running[AttestrStandIn], missing: str
) -> None:
    pusher = pusher_for(pool, airtable, attestr, **{missing: ""})
    with pytest.raises(Exception, match=missing):
        await pusher.push_once()
    assert airtable.standin.requests == []


def _drop_option(airtable: Running[AirtableStandIn], table: str, field: str, option: str) -> dict:
    """A person deletes a select option in the base; returns it, to be put back later."""
    choices = airtable.standin.table(table).field(field).options["choices"]
    (dropped,) = [c for c in choices if c["name"] == option]
    choices.remove(dropped)
    return dropped


async def test_a_missing_select_option_is_left_out_named_then_sent_once_it_exists(
    pool: asyncpg.Pool, airtable: Running[AirtableStandIn], attestr: Running[AttestrStandIn]
) -> None:
    landline = _drop_option(airtable, "Contacts", "Phone Type", "Landline")
    synced = _drop_option(airtable, "Companies", "Contacts Sync Status", "Synced")
    (record,) = companies(airtable, 1)
    people = [
        {"indexId": "01234567", "fullName": "ANANYA RAO", "mobileNumber": "98450 12345"},
        {"indexId": "02345678", "fullName": "VIKRAM SETHI", "mobileNumber": "080 2345 6789"},  # a landline
        {"indexId": "03456789", "fullName": "MEERA IYER", "mobileNumber": "98450 12347"},
    ]
    async with pool.acquire() as conn, conn.transaction():
        company_id = await ensure_company(conn, record)
        await upsert_people(conn, [CompanyContacts(company_id, [normalize_contact(p) for p in people])])
        await conn.execute(
            "UPDATE companies SET sync_status = 'Synced', contacts_found = 3, synced_at = now(), "
            "push_version = push_version + 1"
        )
    pusher = pusher_for(pool, airtable, attestr)
    with capture_logs() as logs:
        await drain(pusher)
        await drain(pusher)
    contacts = {c["fields"]["Name"]: c["fields"] for c in airtable.standin.records("Contacts")}
    assert {name: f.get("Phone Type") for name, f in contacts.items()} == {
        "Ananya Rao": "Mobile",
        "Vikram Sethi": None,
        "Meera Iyer": "Mobile",
    }
    assert [(r["status"], r["records"]) for r in airtable.standin.write_requests()] == [(200, 3), (200, 1)]
    company = airtable.standin.records("Companies")[0]["fields"]
    assert "Contacts Sync Status" not in company and company["Contacts Found"] == 3
    assert 'field has no option "Landline"' in company["Contacts Sync Error"]
    assert '"Contacts Sync Status" field has no option "Synced"' in company["Contacts Sync Error"]
    missing = sorted((e["field"], e["option"]) for e in logs if e["event"] == "airtable.option_missing")
    assert missing == [("Contacts Sync Status", "Synced"), ("Phone Type", "Landline")]  # once each
    assert await pool.fetchval("SELECT count(*) FROM contacts_pending_sync") == 0

    # Someone adds Landline: the running pusher reads the schema again while an option is missing.
    airtable.standin.table("Contacts").field("Phone Type").options["choices"].append(landline)
    pusher.options_recheck_s = 0.0
    await drain(pusher)
    contacts = {c["fields"]["Name"]: c["fields"] for c in airtable.standin.records("Contacts")}
    assert contacts["Vikram Sethi"]["Phone Type"] == "Landline"
    assert "Landline" not in airtable.standin.records("Companies")[0]["fields"]["Contacts Sync Error"]

    # Synced is added while the service is stopped: the next process finds it and sends the status.
    airtable.standin.table("Companies").field("Contacts Sync Status").options["choices"].append(synced)
    await drain(pusher_for(pool, airtable, attestr))
    company = airtable.standin.records("Companies")[0]["fields"]
    assert company["Contacts Sync Status"] == "Synced" and "Contacts Sync Error" not in company


async def test_an_option_removed_after_the_schema_was_read_costs_one_refused_request(
    pool: asyncpg.Pool, airtable: Running[AirtableStandIn], attestr: Running[AttestrStandIn]
) -> None:
    await seed(pool, companies(airtable, 1), people_each=4)
    pusher = pusher_for(pool, airtable, attestr)
    await pusher.airtable.fields()  # the schema as it was at start
    _drop_option(airtable, "Contacts", "Phone Type", "Mobile")
    await drain(pusher)
    contacts = airtable.standin.records("Contacts")
    assert len(contacts) == 4 and all("Phone Type" not in c["fields"] for c in contacts)
    assert [r["status"] for r in airtable.standin.write_requests()][:2] == [422, 200]  # not split row by row


async def test_an_option_that_appears_is_sent_whichever_process_held_the_value_back(
    pool: asyncpg.Pool, airtable: Running[AirtableStandIn], attestr: Running[AttestrStandIn]
) -> None:
    """Two processes: A sees the option appear first; B, its schema a little older, sends the row
    without it once more. B still sends it once it sees the option in turn."""
    landline = _drop_option(airtable, "Contacts", "Phone Type", "Landline")
    (record,) = companies(airtable, 1)
    async with pool.acquire() as conn, conn.transaction():
        company_id = await ensure_company(conn, record)
        person = normalize_contact(
            {"indexId": "02345678", "fullName": "VIKRAM SETHI", "mobileNumber": "080 2345 6789"}
        )
        await upsert_people(conn, [CompanyContacts(company_id, [person])])
    first, second = pusher_for(pool, airtable, attestr), pusher_for(pool, airtable, attestr)
    await second.airtable.fields()  # B read the schema while Landline was missing
    await drain(first)
    airtable.standin.table("Contacts").field("Phone Type").options["choices"].append(landline)
    first.options_recheck_s = 0.0
    await first._watch_options()  # A sees it, marks the row again, but B pushes it first
    await drain(second)
    assert "Phone Type" not in airtable.standin.records("Contacts")[0]["fields"]
    second.options_recheck_s = 0.0
    await drain(second)  # B reads the schema in turn
    assert airtable.standin.records("Contacts")[0]["fields"]["Phone Type"] == "Landline"


async def test_merged_people_s_rows_are_deleted_once_and_a_refusal_holds_up_nothing(
    db_url: str, pool: asyncpg.Pool, airtable: Running[AirtableStandIn], attestr: Running[AttestrStandIn]
) -> None:
    """Rows of people a migration merged: Airtable refusing their deletion is logged and tried
    again later while the contacts are still written; two pushers never delete a row twice."""
    merged = [airtable.standin.add_record("Contacts", {"Name": f"Merged {i}"}) for i in range(2)]
    await pool.executemany(
        "INSERT INTO airtable_rows_to_delete (airtable_id) VALUES ($1)", [(m,) for m in merged]
    )
    await seed(pool, companies(airtable, 1), people_each=3)
    airtable.standin.faults.append(
        {
            "method": "DELETE",
            "path": "Contacts",
            "status": 403,
            "kind": "INVALID_PERMISSIONS_OR_MODEL_NOT_FOUND",
        }
    )
    with capture_logs() as logs:
        await drain(pusher_for(pool, airtable, attestr))
    assert len(airtable.standin.records("Contacts")) == 5  # the three written, the two still there
    refused = [e for e in logs if e["event"] == "airtable.merged_rows_delete_failed"]
    assert refused and refused[0]["records"] == 2 and "permission" in refused[0]["reason"].lower()
    assert await pool.fetchval("SELECT count(*) FROM airtable_rows_to_delete") == 2

    before = len(airtable.standin.requests)
    other_pool = await asyncpg.create_pool(db_url, min_size=1, max_size=2)  # another process
    try:
        await asyncio.gather(
            drain(pusher_for(pool, airtable, attestr)), drain(pusher_for(other_pool, airtable, attestr))
        )
    finally:
        await other_pool.close()
    deletes = [r for r in airtable.standin.requests[before:] if r["method"] == "DELETE"]
    assert [r["status"] for r in deletes] == [200]
    assert {r["id"] for r in airtable.standin.records("Contacts")}.isdisjoint(merged)
    assert await pool.fetchval("SELECT count(*) FROM airtable_rows_to_delete") == 0


async def test_airtable_not_configured_is_said_once_not_by_every_sender(
    pool: asyncpg.Pool, airtable: Running[AirtableStandIn], attestr: Running[AttestrStandIn]
) -> None:
    pusher = pusher_for(pool, airtable, attestr, AIRTABLE_API_KEY="")
    pusher.poll_s = 0.01
    assert pusher.senders == 5
    stop = asyncio.Event()
    with capture_logs() as logs:
        running = asyncio.create_task(pusher.run(stop))
        await asyncio.sleep(1.5)
        stop.set()
        pusher.wake()
        await asyncio.wait_for(running, 30)
    waiting = [line for line in logs if line["event"] == "airtable.push_waiting"]
    assert len(waiting) == 1 and "AIRTABLE_API_KEY" in waiting[0]["reason"], waiting


async def test_a_stopping_pusher_does_not_sit_out_a_429s_cool_down(
    pool: asyncpg.Pool, airtable: Running[AirtableStandIn], attestr: Running[AttestrStandIn]
) -> None:
    """After a 429 every request waits out the cool-down (here 30 s); a process told to stop
    stops its senders after the grace instead, writes nothing more, and leaves the rows marked."""
    await seed(pool, companies(airtable, 1), people_each=3)
    pusher = pusher_for(pool, airtable, attestr, AIRTABLE_COOLDOWN_S="30")
    await pusher.airtable.limit.block()  # as a 429 does
    stop = asyncio.Event()
    running = asyncio.create_task(pusher.run(stop))
    await asyncio.sleep(0.5)
    before = len(airtable.standin.write_requests())
    stop.set()
    pusher.wake()
    await asyncio.wait_for(running, STOP_GRACE_S + 5)  # not the 30 s of the cool-down
    assert len(airtable.standin.write_requests()) == before == 0
    assert await pool.fetchval("SELECT count(*) FROM contacts_pending_sync") == 3


async def test_rows_linger_only_while_another_job_may_add_to_them(
    pool: asyncpg.Pool, airtable: Running[AirtableStandIn], attestr: Running[AttestrStandIn]
) -> None:
    """A finished job's rows go at once; while a job is still running, fewer than ten wait the
    linger for its rows to join them."""
    settings = settings_for(airtable, attestr)
    patient = Pusher(pool, Airtable(settings, pool), settings, linger_s=3600)
    await seed(pool, companies(airtable, 1), people_each=3)
    # No job running: nothing to wait for (a linger of an hour would outlast the deadline).
    assert await asyncio.wait_for(patient.push_once(), 60)

    pusher = Pusher(pool, Airtable(settings, pool), settings, linger_s=1.5)
    await pusher.airtable.fields()  # the schema, read once: not part of what is timed
    running, _ = await jobs.enqueue(pool, "recRUNNINGJOB0001", "U72200KA2015PTC081234")
    await pool.execute("UPDATE jobs SET status = 'running' WHERE id = $1", running)
    await seed(pool, companies(airtable, 1), people_each=3)
    started = time.monotonic()
    assert await pusher.push_once()
    assert time.monotonic() - started >= 1.0  # lingered for the running job's rows


async def test_ten_statuses_waiting_go_before_people(
    pool: asyncpg.Pool, airtable: Running[AirtableStandIn], attestr: Running[AttestrStandIn]
) -> None:
    """Under a backlog people come first, but a full request of companies' final statuses never
    waits behind them; fewer than ten wait until no person is left."""
    records = companies(airtable, 12)
    await seed(pool, records, people_each=2)
    pusher = pusher_for(pool, airtable, attestr)
    async with pool.acquire() as conn:
        for record in records[:10]:
            await jobs.set_company_status(conn, record, "Synced", contacts_found=2)
    assert await pusher.push_once()
    first = airtable.standin.write_requests()[0]
    assert first["path"].endswith("/Companies") and first["records"] == 10
    async with pool.acquire() as conn:
        for record in records[10:]:
            await jobs.set_company_status(conn, record, "Synced", contacts_found=2)
    await drain(pusher)
    tables = [r["path"].rsplit("/", 1)[1] for r in airtable.standin.write_requests()]
    assert tables == ["Companies", "Contacts", "Contacts", "Contacts", "Companies"]


async def test_passing_statuses_never_go_before_people(
    pool: asyncpg.Pool, airtable: Running[AirtableStandIn], attestr: Running[AttestrStandIn]
) -> None:
    """Ten companies long Queued are not worth a request ten people could have had: they wait
    until no person is left (by then most of them are final)."""
    records = companies(airtable, 10)
    await seed(pool, records, people_each=1)
    async with pool.acquire() as conn:
        for record in records:
            await jobs.set_company_status(conn, record, "Queued")
    await pool.execute("UPDATE companies SET updated_at = now() - interval '1 minute'")  # held long
    await drain(pusher_for(pool, airtable, attestr))
    tables = [r["path"].rsplit("/", 1)[1] for r in airtable.standin.write_requests()]
    assert tables == ["Contacts", "Companies"]


async def test_a_deadlock_while_marking_rows_written_runs_the_mark_again(
    pool: asyncpg.Pool, airtable: Running[AirtableStandIn], attestr: Running[AttestrStandIn]
) -> None:
    """Marking what Airtable took meets another update of the same rows in the other order (as
    the companies shown Waiting while a pause ends): PostgreSQL undoes one of the two. The mark is
    run again at once, rather than its rows waiting out their lease to be sent a second time."""
    settings = settings_for(airtable, attestr)
    statuses = CompanyStatuses(pool, Airtable(settings, pool), settings, settle_s=0)
    async with pool.acquire() as conn:
        for record_id in companies(airtable, 2):
            await ensure_company(conn, record_id)
        await conn.execute("UPDATE companies SET sync_status = 'Synced', push_version = 1")
    claim, args = statuses.claim(False, 60)
    rows = await pool.fetch(claim, *args)
    first, second = sorted(rows, key=lambda row: row["id"])
    async with pool.acquire() as other:
        with contextlib.suppress(asyncpg.InsufficientPrivilegeError):  # so that it is the mark undone
            await other.execute("SET deadlock_timeout = '10s'")
        async with other.transaction():
            await other.execute("UPDATE companies SET updated_at = now() WHERE id = $1", second["id"])
            marking = asyncio.create_task(statuses.written([Outgoing(row, {}) for row in rows], {}))

            async def mark_waits() -> bool:
                return bool(await pool.fetchval("SELECT count(*) FROM pg_locks WHERE NOT granted"))

            await until(mark_waits)
            await other.execute("UPDATE companies SET updated_at = now() WHERE id = $1", first["id"])
        await marking
    marked = await pool.fetch("SELECT pushed_version, push_lease_until FROM companies")
    assert [(row["pushed_version"], row["push_lease_until"]) for row in marked] == [(1, None), (1, None)]


@pytest.mark.parametrize(
    "shape",
    [
        {"records": "not a list"},
        {"records": [{"fields": {}}]},
        {"records": [{"id": "rec1", "fields": []}]},
        [],
    ],
    ids=["records not a list", "a record without id", "fields not an object", "a list, not an object"],
)
async def test_a_200_of_an_unexpected_shape_is_an_airtable_error_not_a_crash(
    pool: asyncpg.Pool, airtable: Running[AirtableStandIn], attestr: Running[AttestrStandIn], shape: object
) -> None:
    """Airtable answered 200 with something its documentation does not describe: the write is
    tried again as after an outage; the pusher never stops on it."""
    from starlette.responses import JSONResponse

    from tests.engine.test_people_edits import NILGIRI, Base, synced
    from tests.flow import running_engine

    base = Base(airtable)
    standin = base.standin
    answer = standin._route
    odd = {"once": True}

    async def odd_once(request, entry):  # type: ignore[no-untyped-def]
        if odd["once"] and request.method == "PATCH" and "/Contacts" in request.url.path:
            odd["once"] = False
            await answer(request, entry)  # applied, then answered strangely
            return JSONResponse(shape)
        return await answer(request, entry)

    standin._route = odd_once  # type: ignore[method-assign]
    with capture_logs() as logs:
        async with running_engine(
            pool, airtable, attestr, **{"ATTESTR_TIMEOUT_S": "0.3", "AIRTABLE_RATE_LIMIT_RPS": "50"}
        ):
            await synced(pool, base.nilgiri, NILGIRI)
    assert not odd["once"]
    assert not [
        line for line in logs if line["event"] in ("pusher.crashed", "job.crashed", "http.unhandled_error")
    ]
    assert sorted(r["fields"]["Name"] for r in standin.records("Contacts")) == [
        "Ananya Rao",
        "Meera Krishnan",
        "Vikram Sethi",
    ]
