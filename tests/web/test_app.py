"""`contact-sync serve` as a real process: health, readiness, JSON errors and logs, clean stop."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import httpx
import pytest

from service.config import load_settings
from service.web.app import missing_settings
from tests.conftest import run_service


@pytest.mark.process
def test_serve_migrates_and_answers_health_and_ready(tmp_path: Path, empty_db_url: str) -> None:
    with run_service(tmp_path, {"DATABASE_URL": empty_db_url}) as service:
        assert httpx.get(f"{service.url}/health").json() == {"status": "ok"}
        ready = httpx.get(f"{service.url}/ready")
        assert ready.status_code == 200
        assert ready.json()["database"] == "ok"
        assert "ATTESTR_API_KEY" in ready.json()["missing_settings"]

        missing = httpx.get(f"{service.url}/no/such/path")
        assert missing.status_code == 404
        assert missing.json() == {"error": {"code": "not_found", "message": "Not Found"}}

        async def forget_migration() -> None:
            conn = await asyncpg.connect(empty_db_url)
            await conn.execute("DELETE FROM schema_migrations")
            await conn.close()

        asyncio.run(forget_migration())
        not_ready = httpx.get(f"{service.url}/ready")
        assert not_ready.status_code == 503
        assert not_ready.json()["error"]["code"] == "unavailable"
        assert "001_schema.sql" in not_ready.json()["error"]["message"]
        assert service.stop() == 0
    events = [line["event"] for line in service.logs()]
    assert "db.migrated" in events and "service.started" in events
    assert all("timestamp" in line and "level" in line for line in service.logs())


@pytest.mark.process
def test_serve_with_the_embedded_database(tmp_path: Path) -> None:
    env = {"DATABASE_URL": "", "DATA_DIR": str(tmp_path / "data")}
    with run_service(tmp_path, env) as service:
        assert httpx.get(f"{service.url}/ready").status_code == 200
        assert service.stop() == 0
    assert (tmp_path / "data" / "postgres" / "PG_VERSION").is_file()
    with run_service(tmp_path, env) as service:  # the data is kept between runs
        assert httpx.get(f"{service.url}/ready").status_code == 200
        assert "db.migrated" not in [line["event"] for line in service.logs()]


def test_ready_lists_a_missing_v3_consent_like_a_missing_credential() -> None:
    v3 = load_settings({"ATTESTR_API_VERSION": "v3", "ATTESTR_API_KEY": "a-token"}, env_file=None)
    assert "ATTESTR_CONSENT_ID (or ATTESTR_CONSENT_PURPOSE to register one per company)" in missing_settings(
        v3
    )
    per_lookup = load_settings(
        {"ATTESTR_API_VERSION": "v3", "ATTESTR_CONSENT_PURPOSE": "kyc_verification"}, env_file=None
    )
    assert {"ATTESTR_SERVICE_CODE", "ATTESTR_CONSENT_EVIDENCE_REF"} <= set(missing_settings(per_lookup))
    held = load_settings(
        {"ATTESTR_API_VERSION": "v3", "ATTESTR_CONSENT_ID": "CX3oM_bNstq9xWxgRd"}, env_file=None
    )
    assert not [name for name in missing_settings(held) if "CONSENT" in name]
