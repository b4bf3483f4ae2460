"""`contact-sync demo`: the whole flow on this machine, with no accounts.

An embedded PostgreSQL in a temporary directory, the package's Attestr and Airtable stand-ins,
and the real service (web, worker, pusher) with only the two base URLs pointed at the stand-ins.
Webhooks go in the way the Airtable automation script sends them; what comes out is read back
from the Airtable stand-in. However the demo ends (done, failed, Ctrl-C), it leaves nothing
running and no folder behind.
"""

from __future__ import annotations

import signal
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from service.config import load_settings
from service.database import embedded
from service.standins.airtable import AirtableStandIn
from service.standins.attestr import PATH, PATH_V3, STANDIN_CONSENT_ID, AttestrStandIn
from service.standins.server import serve_in_thread
from service.web.app import create_app

SECRET = "demo-webhook-secret"
API_KEY = "demo-api-key-for-the-demo"
# Sample companies: Nilgiri and Konkan share a director, Dormant has no data at Attestr, and the
# last one has a CIN with a typo (an O for a 0).
COMPANIES = [
    ("Nilgiri Software", "U72200KA2015PTC081234"),
    ("Konkan Traders", "U51909MH2018PTC309876"),
    ("Dormant Holdings", "U01100DL2020PTC365432"),
    ("Typo Textiles", "U1711OTN2019PTC123456"),
]
FINAL = ("succeeded", "failed")


def run(console: Console, *, attestr_v3: bool = False) -> int:
    """The demo; `attestr_v3`: through Attestr's V3, with the stand-in's reusable consent."""
    started = time.monotonic()
    _interrupt_on_termination()
    console.print("[bold]contact-sync demo[/]: the real service, with stand-ins for Attestr and Airtable\n")
    try:
        # Left in reverse order, whatever happens: the service and stand-ins stop, then the
        # database, then its folder is deleted.
        with tempfile.TemporaryDirectory(prefix="contact-sync-demo-") as tmp, embedded(Path(tmp)) as database:
            console.print(f"• PostgreSQL: embedded, in {tmp} (stopped and deleted at the end)")
            _serve_and_flow(console, tmp, database, attestr_v3)
    except KeyboardInterrupt:
        console.print("\nInterrupted: the demo's PostgreSQL is stopped and its folder deleted.")
        return 130
    console.print(
        f"\nDone in {time.monotonic() - started:.0f} s. With real accounts, set ATTESTR_API_KEY, "
        "AIRTABLE_API_KEY and AIRTABLE_BASE_ID and run `contact-sync serve` (see the README)."
    )
    return 0


def _interrupt_on_termination() -> None:
    """SIGTERM (`kill`, a time limit) and SIGHUP (its terminal closed) unwind the demo like Ctrl-C:
    by default Python dies at once, leaving its PostgreSQL running on a deleted folder."""
    for name in ("SIGTERM", "SIGHUP"):
        if hasattr(signal, name):  # Windows has no SIGHUP
            signal.signal(getattr(signal, name), signal.default_int_handler)


def _serve_and_flow(console: Console, tmp: str, database: str, attestr_v3: bool) -> None:
    """The stand-ins and the service, in threads of this process, for the flow's time."""
    attestr, airtable = AttestrStandIn(), AirtableStandIn(cooldown_s=5)
    # V3 beside V2: the stand-in serves both, and holds a reusable consent for the demo.
    version = (
        {"ATTESTR_API_VERSION": "v3", "ATTESTR_CONSENT_ID": STANDIN_CONSENT_ID}
        if attestr_v3
        else {"ATTESTR_API_VERSION": "v2"}
    )
    with serve_in_thread(attestr.app()) as attestr_url, serve_in_thread(airtable.app()) as airtable_url:
        said = f"V3, consent {STANDIN_CONSENT_ID}" if attestr_v3 else "V2"
        console.print(f"• Attestr [yellow](stand-in)[/] at {attestr_url} ({said}), with sample company data")
        console.print(
            f"• Airtable [yellow](stand-in)[/] at {airtable_url}, base {airtable.base_id}, "
            "tables Companies and Contacts"
        )
        settings = load_settings(
            {
                "WEBHOOK_SECRETS": SECRET,
                "API_KEYS": API_KEY,
                "ATTESTR_API_KEY": attestr.token,
                "ATTESTR_API_URL": attestr_url + (PATH_V3 if attestr_v3 else PATH),
                **version,
                "AIRTABLE_API_KEY": airtable.token,
                "AIRTABLE_BASE_ID": airtable.base_id,
                "AIRTABLE_API_URL": airtable_url,
                "DATA_DIR": tmp,
            },
            env_file=None,
        )
        with serve_in_thread(create_app(settings, database), lifespan="on") as service_url:
            console.print(f"• contact-sync at {service_url} (web, worker and pusher)\n")
            _flow(console, airtable, service_url)


def _flow(console: Console, airtable: AirtableStandIn, service_url: str) -> None:
    console.print(
        "[bold]1.[/] Someone types a CIN on four companies in Airtable; the automation script sends:"
    )
    names: dict[str, str] = {}
    job_ids: dict[str, str] = {}
    with httpx.Client(base_url=service_url, timeout=30) as http:
        for name, cin in COMPANIES:
            record_id = airtable.add_record("Companies", {"Company Name": name, "CIN": cin})
            names[record_id] = name
            body = {"record_id": record_id, "cin": cin, "refresh": False}
            response = http.post("/webhooks/airtable", json=body, headers={"X-Webhook-Secret": SECRET})
            answer = response.json()
            console.print(f"   POST /webhooks/airtable {{record_id: {record_id}, cin: {cin}}}  ({name})")
            if response.status_code == 202:
                job_ids[record_id] = answer["job_id"]
                console.print(f"   ← 202 job {answer['job_id']} queued")
            else:
                console.print(
                    f"   ← {response.status_code} {answer['error']['code']}: {answer['error']['message']}"
                    " [dim](the automation run fails with this message)[/]"
                )

        console.print(
            "\n[bold]2.[/] The worker fetches each company's directors from Attestr, stores them "
            "(de-duplicated) and the pusher writes them to Airtable:"
        )
        seen: dict[str, str] = {}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for record_id, job_id in job_ids.items():
                job = http.get(f"/jobs/{job_id}", headers={"X-API-Key": API_KEY}).json()
                if seen.get(job_id) != job["status"]:
                    seen[job_id] = job["status"]
                    console.print(f"   {names[record_id]:<18} job {job_id}: {_describe(job)}")
            if all(status in FINAL for status in seen.values()) and len(seen) == len(job_ids):
                break
            time.sleep(0.2)
        time.sleep(1.5)  # the final status fields go out after the jobs end
    console.print("\n[bold]3.[/] What the Airtable base shows now [yellow](the stand-in's tables)[/]:")
    _tables(console, airtable, names)


def _describe(job: dict[str, Any]) -> str:
    result = job.get("result") or {}
    if job["status"] == "succeeded" and result.get("outcome") == "no_data":
        return "succeeded: Attestr has no data for this CIN (No Data)"
    if job["status"] == "succeeded":
        return (
            f"succeeded: {result.get('contacts_fetched')} contacts, {result.get('airtable_created')} new "
            f"row(s), {result.get('airtable_updated')} updated"
        )
    if job["status"] == "pushing":
        return f"pushing: {result.get('contacts_fetched')} contacts stored, being written to Airtable"
    return job["status"] + (f": {job['wait_reason']}" if job.get("wait_reason") else "")


def _tables(console: Console, airtable: AirtableStandIn, names: dict[str, str]) -> None:
    companies = Table(
        "Company Name",
        "CIN",
        "Contacts Sync Status",
        "Contacts Found",
        "Contacts Sync Error",
        title="Companies",
    )
    for record in airtable.records("Companies"):
        fields = record["fields"]
        companies.add_row(
            fields.get("Company Name", ""),
            fields.get("CIN", ""),
            fields.get("Contacts Sync Status", ""),
            str(fields.get("Contacts Found", "")),
            fields.get("Contacts Sync Error", ""),
        )
    console.print(companies)
    contacts = Table(
        "Name", "Phone Number", "Phone Type", "Email", "DIN", "Company", "Contact Key", title="Contacts"
    )
    for record in airtable.records("Contacts"):
        fields = record["fields"]
        contacts.add_row(
            fields.get("Name", ""),
            fields.get("Phone Number", ""),
            fields.get("Phone Type", ""),
            fields.get("Email", ""),
            fields.get("DIN", ""),
            ", ".join(names.get(c, c) for c in fields.get("Company", [])),
            fields.get("Contact Key", ""),
        )
    console.print(contacts)
    console.print(
        "Vikram Sethi sits on both boards: one row, linked to both companies. Phones are E.164, "
        "emails lower-cased, whatever Attestr sent."
    )
