"""A deployment moved from a trial base to a new one (another AIRTABLE_BASE_ID): the new base's
rows are written fresh, none taken as deleted by hand, and the old base is left as it was."""

from __future__ import annotations

import asyncpg
from structlog.testing import capture_logs

from service.standins.airtable import AirtableStandIn
from service.standins.attestr import AttestrStandIn
from tests.conftest import Running, _serving, _Switch
from tests.engine.test_engine import FAST
from tests.engine.test_people_edits import KONKAN, NILGIRI, Base, synced
from tests.flow import running_engine


async def test_a_new_base_gets_every_row_fresh_and_the_old_one_is_left_alone(
    pool: asyncpg.Pool,
    airtable: Running[AirtableStandIn],
    attestr: Running[AttestrStandIn],
    _standin_servers: dict[str, tuple[_Switch, str]],
) -> None:
    trial = Base(airtable)
    async with running_engine(pool, airtable, attestr, **FAST):
        await synced(pool, trial.nilgiri, NILGIRI)
    trial_rows = trial.standin.records("Contacts")
    assert len(trial_rows) == 3

    production = AirtableStandIn(base_id="appProduction0001", cooldown_s=1.0)
    with _serving(_standin_servers, "airtable", production) as moved:
        base = Base(moved)
        with capture_logs() as logs:
            async with running_engine(pool, moved, attestr, **FAST):
                await synced(pool, base.nilgiri, NILGIRI)
                nilgiri_rows = base.standin.records("Contacts")
                await synced(pool, base.konkan, KONKAN)  # Vikram sits on both boards: one row
        vikram = [r for r in base.standin.records("Contacts") if r["fields"]["Name"] == "Vikram Sethi"]
        assert [sorted(r["fields"]["Company"]) for r in vikram] == [sorted([base.nilgiri, base.konkan])]
        rows = nilgiri_rows
        # The same three people, written to the new base and linked to its company record.
        assert sorted(r["fields"]["Name"] for r in rows) == ["Ananya Rao", "Meera Krishnan", "Vikram Sethi"]
        assert all(r["fields"]["Company"] == [base.nilgiri] for r in rows)
        assert base.standin.records("Companies")[0]["fields"]["Contacts Sync Status"] == "Synced"
        assert await pool.fetchval("SELECT count(*) FROM people WHERE deleted_in_airtable") == 0
        changed = [e for e in logs if e["event"] == "airtable.base_changed"]
        assert [(e["previous"], e["base"]) for e in changed] == [
            (airtable.standin.base_id, "appProduction0001")
        ]
        # Nothing of the new base was read or written before its company was synced, and no
        # request went to the old base's rows.
        assert all("/Contacts/rec" not in r["path"] for r in base.standin.requests if r["method"] == "DELETE")
    assert trial.standin.records("Contacts") == trial_rows  # the trial base as it was
