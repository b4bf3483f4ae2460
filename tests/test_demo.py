"""`contact-sync demo` end to end, as a newcomer runs it."""

from __future__ import annotations

import os
import subprocess
import sys
import time


def test_the_demo_shows_contacts_appearing() -> None:
    started = time.monotonic()
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"} | {"COLUMNS": "220"}
    done = subprocess.run(
        [sys.executable, "-m", "service", "demo"], env=env, capture_output=True, text=True, timeout=90
    )
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "Attestr (stand-in)" in out and "Airtable (stand-in)" in out
    assert out.count("← 202 job") == 3
    assert "← 422 invalid_cin" in out
    assert "succeeded: 3 contacts" in out and "succeeded: 2 contacts" in out
    assert "succeeded: Attestr has no data for this CIN (No Data)" in out
    rows = {line.split("│")[1].strip(): line for line in out.splitlines() if line.startswith("│")}
    assert "Synced" in rows["Nilgiri Software"] and "No Data" in rows["Dormant Holdings"]
    vikram = next(line for line in out.splitlines() if "08234567" in line)
    assert "Nilgiri Software, Konkan Traders" in vikram or "Konkan Traders, Nilgiri Software" in vikram
    assert "+919845012346" in vikram and "vikram@nilgiri.example" in vikram
    contact_rows = [line for line in out.splitlines() if "Mobile" in line or "Landline" in line]
    assert len(contact_rows) == 4  # four people, although five directorships
    assert all(" ct_" in line for line in contact_rows)

    assert elapsed < 60
