"""Settings, read once from the environment (and `.env` when present).

Every variable is documented in `.env.example` and in the design's configuration table.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from starlette.config import Config
from starlette.datastructures import CommaSeparatedStrings

# Airtable field names, keyed by the suffix of their AIRTABLE_FIELD_* variable.
DEFAULT_FIELDS: dict[str, str] = {
    "COMPANY_NAME": "Company Name",
    "CIN": "CIN",
    "SYNC_STATUS": "Contacts Sync Status",
    "SYNC_ERROR": "Contacts Sync Error",
    "SYNCED_AT": "Contacts Synced At",
    "CONTACTS_FOUND": "Contacts Found",
    "REFRESH": "Refresh Contacts",
    "NAME": "Name",
    "PHONE": "Phone Number",
    "PHONE_TYPE": "Phone Type",
    "EMAIL": "Email",
    "DIN": "DIN",
    "ADDRESS": "Address",
    "COMPANY": "Company",
    "CONTACT_KEY": "Contact Key",
}


@dataclass(frozen=True)
class Settings:
    database_url: str | None = None
    data_dir: Path = Path(".data")
    port: int = 8000
    worker_in_web: bool = True
    worker_concurrency: int = 8
    job_lease_s: float = 60.0
    job_max_attempts: int = 8
    job_retry_base_s: float = 2.0
    log_format: str = "json"
    log_level: str = "info"
    webhook_secrets: tuple[str, ...] = ()
    api_keys: tuple[str, ...] = ()
    attestr_api_key: str | None = None
    attestr_api_url: str = "https://api.attestr.com/api/v2/public/leadx/mca-cin-contact"
    attestr_max_contacts: int = 100
    attestr_timeout_s: float = 30.0
    attestr_cache_ttl_days: float = 30.0
    attestr_no_data_ttl_days: float = 7.0
    attestr_daily_call_limit: int | None = None
    attestr_probe_interval_s: float = 300.0
    airtable_api_key: str | None = None
    airtable_base_id: str | None = None
    airtable_api_url: str = "https://api.airtable.com"
    airtable_companies_table: str = "Companies"
    airtable_contacts_table: str = "Contacts"
    airtable_fields: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_FIELDS))
    airtable_rate_limit_rps: float = 5.0
    airtable_cooldown_s: float = 30.0
    api_rate_limit: int = 60
    api_rate_window_s: float = 60.0
    queue_max_jobs: int = 50_000
    job_retention_days: float = 30.0
    attestr_answer_retention_days: float = 90.0
    reconcile_interval_s: float = 900.0  # 0: no sweeps
    # Values of WEBHOOK_SECRETS / API_KEYS ignored for being shorter than MIN_SECRET_LENGTH, by
    # variable: `/ready` and doctor name them; logs still redact them.
    short_secrets: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def field(self, key: str) -> str:
        """The Airtable field name for a logical field, e.g. `field("PHONE")`."""
        return self.airtable_fields[key]


# A webhook secret or API key shorter than this is guessable: it counts as not configured.
MIN_SECRET_LENGTH = 16


def _secrets(value: str | None) -> tuple[str, ...]:
    return tuple(s for s in CommaSeparatedStrings(value or "") if s)


def _long(values: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(v for v in values if len(v) >= MIN_SECRET_LENGTH)


def load_settings(environ: Mapping[str, str] | None = None, env_file: str | None = ".env") -> Settings:
    """Build Settings from `environ` (default: the process environment) and the `.env` file."""
    env = dict(os.environ if environ is None else environ)
    config = Config(env_file if env_file and Path(env_file).is_file() else None, environ=env)

    def opt(name: str) -> str | None:
        return config(name, default=None) or None

    limit = opt("ATTESTR_DAILY_CALL_LIMIT")
    given = {name: _secrets(opt(name)) for name in ("WEBHOOK_SECRETS", "API_KEYS")}
    short = {name: tuple(v for v in values if v not in _long(values)) for name, values in given.items()}
    return Settings(
        database_url=opt("DATABASE_URL"),
        data_dir=Path(config("DATA_DIR", default=".data")),
        port=config("PORT", cast=int, default=8000),
        worker_in_web=config("WORKER_IN_WEB", cast=bool, default=True),
        worker_concurrency=config("WORKER_CONCURRENCY", cast=int, default=8),
        job_lease_s=config("JOB_LEASE_S", cast=float, default=60.0),
        job_max_attempts=config("JOB_MAX_ATTEMPTS", cast=int, default=8),
        job_retry_base_s=config("JOB_RETRY_BASE_S", cast=float, default=2.0),
        log_format=config("LOG_FORMAT", default="json").lower(),
        log_level=config("LOG_LEVEL", default="info").lower(),
        webhook_secrets=_long(given["WEBHOOK_SECRETS"]),
        api_keys=_long(given["API_KEYS"]),
        short_secrets={name: values for name, values in short.items() if values},
        attestr_api_key=opt("ATTESTR_API_KEY"),
        attestr_api_url=config("ATTESTR_API_URL", default=Settings.attestr_api_url),
        attestr_max_contacts=config("ATTESTR_MAX_CONTACTS", cast=int, default=100),
        attestr_timeout_s=config("ATTESTR_TIMEOUT_S", cast=float, default=30.0),
        attestr_cache_ttl_days=config("ATTESTR_CACHE_TTL_DAYS", cast=float, default=30.0),
        attestr_no_data_ttl_days=config("ATTESTR_NO_DATA_TTL_DAYS", cast=float, default=7.0),
        attestr_daily_call_limit=int(limit) if limit else None,
        attestr_probe_interval_s=config("ATTESTR_PROBE_INTERVAL_S", cast=float, default=300.0),
        airtable_api_key=opt("AIRTABLE_API_KEY"),
        airtable_base_id=opt("AIRTABLE_BASE_ID"),
        airtable_api_url=config("AIRTABLE_API_URL", default=Settings.airtable_api_url),
        airtable_companies_table=config("AIRTABLE_COMPANIES_TABLE", default="Companies"),
        airtable_contacts_table=config("AIRTABLE_CONTACTS_TABLE", default="Contacts"),
        airtable_fields={
            key: config(f"AIRTABLE_FIELD_{key}", default=name) for key, name in DEFAULT_FIELDS.items()
        },
        airtable_rate_limit_rps=config("AIRTABLE_RATE_LIMIT_RPS", cast=float, default=5.0),
        airtable_cooldown_s=config("AIRTABLE_COOLDOWN_S", cast=float, default=30.0),
        api_rate_limit=config("API_RATE_LIMIT", cast=int, default=60),
        api_rate_window_s=config("API_RATE_WINDOW_S", cast=float, default=60.0),
        queue_max_jobs=config("QUEUE_MAX_JOBS", cast=int, default=50_000),
        job_retention_days=config("JOB_RETENTION_DAYS", cast=float, default=30.0),
        # Never shorter than the cache: an answer still fresh would be paid for again.
        attestr_answer_retention_days=max(
            config("ATTESTR_ANSWER_RETENTION_DAYS", cast=float, default=90.0),
            config("ATTESTR_CACHE_TTL_DAYS", cast=float, default=30.0),
            config("ATTESTR_NO_DATA_TTL_DAYS", cast=float, default=7.0),
        ),
        reconcile_interval_s=config("RECONCILE_INTERVAL_S", cast=float, default=900.0),
    )
