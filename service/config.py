"""Settings, read once from the environment (and `.env` when present).

Every variable is documented in `.env.example` and in the design's configuration table.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from starlette.config import Config

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
    "SYNC_NOTE": "Contacts Sync Note",
}


# Attestr's own way of writing the lookup's address ("Company Directors Contact API"):
# `{version}` is `v2` or `v3`, as ATTESTR_API_VERSION says.
ATTESTR_DEFAULT_URL = "https://api.attestr.com/api/{version}/public/leadx/mca-cin-contact"
ATTESTR_VERSIONS = ("v2", "v3")
_LOOKUP_PATH = "/public/leadx/mca-cin-contact"

# What a consent registered per company covers unless ATTESTR_CONSENT_CATEGORIES says otherwise:
# the fields a director-contact answer holds (Attestr's category names, "Data Categories";
# `contact` and `location` from public integrations: not on Attestr's page).
ATTESTR_DEFAULT_CATEGORIES = (
    ("business_identity", ("business_registration_number", "business_name")),
    ("personal_information", ("name",)),
    ("identity", ("din", "pan")),
    ("contact", ("email", "phone")),
    ("location", ("address",)),
)
ATTESTR_CONSENT_PURPOSES = ("kyc_verification", "background_verification")
ATTESTR_CONSENT_MODES = (
    "offline",
    "physical_form",
    "checkbox",
    "email_otp",
    "mobile_otp",
    "digilocker",
    "ivr",
)
ATTESTR_CONSENT_OPERATIONS = ("VERIFY", "FETCH", "STORE", "REPORT", "EXPORT", "SHARE")


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
    attestr_api_version: str = "v2"
    attestr_api_url: str = ATTESTR_DEFAULT_URL.format(version="v2")
    # V3: a reusable consent's id, or what registering one per company takes (consent.py).
    attestr_consent_id: str | None = None
    attestr_consent_purpose: str | None = None
    attestr_service_code: str | None = None
    attestr_consent_categories: tuple[tuple[str, tuple[str, ...]], ...] = ATTESTR_DEFAULT_CATEGORIES
    attestr_consent_operations: tuple[str, ...] = ("FETCH", "STORE")
    attestr_consent_mode: str = "offline"
    attestr_consent_evidence_ref: str | None = None
    attestr_consent_in_array: bool = False
    attestr_lookup_log_days: float = 400.0
    attestr_max_contacts: int = 100
    attestr_timeout_s: float = 30.0
    attestr_cache_ttl_days: float = 30.0
    attestr_no_data_ttl_days: float = 7.0
    # Sized for a backfill of a few hundred companies a day with room to spare (the spend
    # benchmark's 400); an operator raises it on purpose.
    attestr_daily_call_limit: int = 500
    refresh_min_interval_s: float = 3600.0
    attestr_probe_interval_s: float = 300.0
    airtable_api_key: str | None = None
    airtable_base_id: str | None = None
    airtable_api_url: str = "https://api.airtable.com"
    airtable_companies_table: str = "Companies"
    airtable_contacts_table: str = "Contacts"
    airtable_fields: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_FIELDS))
    airtable_rate_limit_rps: float = 5.0
    airtable_cooldown_s: float = 30.0
    airtable_probe_interval_s: float = 60.0
    api_rate_limit: int = 60
    api_rate_window_s: float = 60.0
    ops_session_max_age_s: float = 28_800.0  # the operator's page signs out after 8 hours
    queue_max_jobs: int = 50_000
    job_retention_days: float = 30.0
    attestr_answer_retention_days: float = 90.0
    reconcile_interval_s: float = 900.0  # 0: no sweeps
    # Alerts (engine/alerts.py): incoming-webhook URLs (Slack, Teams, Google Chat), e-mail.
    alert_webhook_urls: tuple[str, ...] = ()
    alert_email_to: tuple[str, ...] = ()
    alert_email_from: str | None = None
    smtp_url: str | None = None
    alert_min_interval_s: float = 600.0
    alert_missed_triggers: int = 10
    # Values of WEBHOOK_SECRETS / API_KEYS ignored for being shorter than MIN_SECRET_LENGTH, by
    # variable: `/ready` and doctor name them; logs still redact them.
    short_secrets: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def field(self, key: str) -> str:
        """The Airtable field name for a logical field, e.g. `field("PHONE")`."""
        return self.airtable_fields[key]

    @property
    def secrets(self) -> tuple[str | None, ...]:
        """Every secret and token configured (unset ones as None): redacted from the logs."""
        return (
            *self.webhook_secrets,
            *self.api_keys,
            *(value for values in self.short_secrets.values() for value in values),
            self.attestr_api_key,
            self.airtable_api_key,
            *self.alert_webhook_urls,  # a chat's incoming-webhook URL is its password
            self.smtp_url,
        )

    @property
    def attestr_consent_url(self) -> str:
        """Where V3's consent endpoints are: beside the lookup (`…/api/v3/public/consent`)."""
        return self.attestr_api_url.removesuffix(_LOOKUP_PATH) + "/public/consent"


# A webhook secret or API key shorter than this is guessable: it counts as not configured.
MIN_SECRET_LENGTH = 16


def _secrets(value: str | None) -> tuple[str, ...]:
    """Comma-separated values. Split on commas alone: Starlette's CommaSeparatedStrings reads
    quotes as shell quoting (a secret holding a quote came out changed, or raised)."""
    return tuple(part.strip() for part in (value or "").split(",") if part.strip())


def _long(values: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(v for v in values if len(v) >= MIN_SECRET_LENGTH)


class SettingsError(ValueError):
    """Settings the service cannot use; `problems` names each variable, its value and what it
    accepts (`PORT='abc': a whole number from 1 to 65535`)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


_TRUE, _FALSE = ("true", "yes", "1"), ("false", "no", "0")
LOG_FORMATS = ("json", "console")
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


def _is_base_id(value: str) -> bool:
    """pyairtable's `utils.is_base_id` rule ("app" and 17 characters in all), written out here:
    importing pyairtable loads its whole API (a quarter of a second) before every command."""
    return value.startswith("app") and len(value) == 17


# The largest counts and day spans a setting may hold: far above any real use, and within what
# PostgreSQL's integers and intervals hold.
_MANY = 100_000_000
_DAYS = 36_500


class _Reader:
    """Reads variables, checking each and gathering every problem: one run names them all."""

    def __init__(self, config: Config) -> None:
        self._config = config
        self.problems: list[str] = []

    def text(self, name: str, default: str) -> str:
        return (self._config(name, default=None) or "").strip() or default

    def optional(self, name: str) -> str | None:
        return (self._config(name, default=None) or "").strip() or None

    def _refuse(self, name: str, value: str, accepts: str) -> None:
        if name in ("DATABASE_URL", "SMTP_URL", "ALERT_WEBHOOK_URL"):  # they may hold a password
            self.problems.append(f"{name} (value not shown): {accepts}")
            return
        shown = value if len(value) <= 40 else value[:40] + "…"
        self.problems.append(f"{name}={shown!r}: {accepts}")

    def whole(self, name: str, default: int | None, low: int, high: int) -> int | None:
        value = self.optional(name)
        if value is None:
            return default
        accepts = f"a whole number from {low:,} to {high:,}"
        try:
            number = int(value)
        except ValueError:
            number = None
        if number is None or number < low or number > high:
            self._refuse(name, value, accepts)
            return default
        return number

    def number(self, name: str, default: float, low: float, high: float, *, zero: bool = False) -> float:
        """A number above `low` (or equal to it when `zero`) and at most `high`, in the variable's
        unit: beyond what makes sense, a value would only break something later (an interval
        PostgreSQL cannot hold, a wait no one can stop)."""
        value = self.optional(name)
        if value is None:
            return default
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not math.isfinite(number) or number < low or (number == low and not zero) or number > high:
            self._refuse(
                name,
                value,
                f"a number {'from' if zero else 'above'} {low:g} {'to' if zero else 'and at most'} {high:g}",
            )
            return default
        return number

    def boolean(self, name: str, default: bool) -> bool:
        value = self.optional(name)
        if value is None:
            return default
        if value.lower() in _TRUE + _FALSE:
            return value.lower() in _TRUE
        self._refuse(name, value, "yes, no, true, false, 1 or 0")
        return default

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.optional(name)
        if value is None:
            return default
        if value.lower() in choices:
            return value.lower()
        self._refuse(name, value, "one of " + ", ".join(choices))
        return default

    def secret(self, name: str) -> str | None:
        """A token, key or secret: it travels in an HTTP header, which carries printable ASCII
        only (RFC 9110, field values), so anything else could never match or be sent."""
        value = self.optional(name)
        if value is not None and not all("!" <= c <= "~" or c == "," for c in value):
            self.problems.append(
                f"{name} (value not shown): letters, digits and punctuation of ASCII only, no spaces or "
                "accented letters (it is sent in an HTTP header)"
            )
            return None
        return value

    def url(
        self, name: str, default: str | None, schemes: tuple[str, ...], value: str | None = None
    ) -> str | None:
        """The URL in variable `name` (or `value`, read from it and rewritten), checked."""
        value = value or self.optional(name)
        if value is None:
            return default
        try:
            parts = urlsplit(value)  # raises ValueError for a bracketed host left open
        except ValueError:
            self._refuse(name, value, "a URL whose host is written whole (a bracket left open)")
            return default
        try:
            parts.port  # noqa: B018 (read for its check: a port out of 0–65535 raises ValueError)
        except ValueError:
            self._refuse(name, value, "a URL whose port is a number from 1 to 65535")
            return default
        if parts.scheme.lower() not in schemes or not (parts.hostname or parts.path):
            self._refuse(name, value, "a URL starting with " + " or ".join(f"{s}://" for s in schemes))
            return default
        return value


SMTP_SCHEMES = ("smtp", "smtp+starttls", "smtps")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def _alerts(read: _Reader) -> dict[str, object]:
    """ALERT_WEBHOOK_URL (one or more, comma-separated), ALERT_EMAIL_TO with SMTP_URL and
    ALERT_EMAIL_FROM (all three, or none), ALERT_MIN_INTERVAL_S, ALERT_MISSED_TRIGGERS."""
    urls = tuple(
        url
        for given in _secrets(read.optional("ALERT_WEBHOOK_URL"))
        if (url := read.url("ALERT_WEBHOOK_URL", None, ("https", "http"), given))
    )
    to = _secrets(read.optional("ALERT_EMAIL_TO"))
    for address in to:
        if not _EMAIL.fullmatch(address):
            read._refuse("ALERT_EMAIL_TO", address, "e-mail addresses, comma-separated")
    sender = read.optional("ALERT_EMAIL_FROM")
    if sender is not None and not _EMAIL.fullmatch(sender):
        read._refuse("ALERT_EMAIL_FROM", sender, "an e-mail address")
    smtp = read.url("SMTP_URL", None, SMTP_SCHEMES)
    given = {"ALERT_EMAIL_TO": bool(to), "SMTP_URL": bool(smtp), "ALERT_EMAIL_FROM": bool(sender)}
    if any(given.values()) and not all(given.values()):
        missing = " and ".join(name for name, there in given.items() if not there)
        read.problems.append(
            f"e-mail alerts need ALERT_EMAIL_TO, SMTP_URL and ALERT_EMAIL_FROM: set {missing}"
        )
    return {
        "alert_webhook_urls": urls,
        "alert_email_to": to,
        "alert_email_from": sender,
        "smtp_url": smtp,
        "alert_min_interval_s": read.number("ALERT_MIN_INTERVAL_S", 600.0, 0, 86_400, zero=True),
        "alert_missed_triggers": read.whole("ALERT_MISSED_TRIGGERS", 10, 1, _MANY) or 10,
    }


_CONSENT_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_SERVICE_CODE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_CATEGORY = re.compile(r"([a-z_]+):([a-z_]+(?:,[a-z_]+)*)")
_NAMED_VERSION = re.compile(r"/api/(v\d+)/")


def _attestr_url(read: _Reader, version: str, *, check_version: bool = True) -> str:
    """ATTESTR_API_URL with `{version}` filled in; one naming the other version is refused (the
    service would call V2 while believing it called V3), and so is, for V3, one that does not end
    in the lookup's path (the consent endpoints are found beside it)."""
    written = read.optional("ATTESTR_API_URL") or ATTESTR_DEFAULT_URL
    url = written.replace("{version}", version)
    if read.url("ATTESTR_API_URL", None, ("https", "http"), url) is None:
        return ATTESTR_DEFAULT_URL.format(version=version)
    named = _NAMED_VERSION.search(urlsplit(url).path)
    if not check_version:
        return url
    if named and named.group(1) != version:
        read.problems.append(
            f"ATTESTR_API_URL={written[:60]!r}: it names {named.group(1)}, but ATTESTR_API_VERSION is "
            f"{version}: write {version}, or {{version}}, in its place"
        )
    elif version == "v3" and not urlsplit(url).path.endswith(_LOOKUP_PATH):
        read.problems.append(
            f"ATTESTR_API_URL={written[:60]!r}: with ATTESTR_API_VERSION=v3 it must end in "
            f"{_LOOKUP_PATH} (the consent endpoints are beside it)"
        )
    return url


def _attestr_consent(read: _Reader) -> dict[str, object]:
    """The V3 consent settings (used only with ATTESTR_API_VERSION=v3), each checked."""
    consent_id = read.optional("ATTESTR_CONSENT_ID")
    if consent_id is not None and not _CONSENT_ID.fullmatch(consent_id):
        read.problems.append(
            f"ATTESTR_CONSENT_ID={consent_id[:40]!r}: a consent id as Attestr gives it "
            "(letters, digits, _ and -, such as CX3oM_bNstq9xWxgRd)"
        )
        consent_id = None
    purpose = read.optional("ATTESTR_CONSENT_PURPOSE")
    if purpose is not None:
        purpose = read.choice("ATTESTR_CONSENT_PURPOSE", "", ATTESTR_CONSENT_PURPOSES) or None
    if consent_id and purpose:
        read.problems.append(
            "ATTESTR_CONSENT_ID and ATTESTR_CONSENT_PURPOSE are both set: set ATTESTR_CONSENT_ID for a "
            "reusable consent, or ATTESTR_CONSENT_PURPOSE (and what goes with it) to register one per "
            "company, not both"
        )
    code = read.optional("ATTESTR_SERVICE_CODE")
    if code is not None and not _SERVICE_CODE.fullmatch(code):
        read._refuse("ATTESTR_SERVICE_CODE", code, "a service code as Attestr's console shows it")
        code = None
    categories = ATTESTR_DEFAULT_CATEGORIES
    if (written := read.optional("ATTESTR_CONSENT_CATEGORIES")) is not None:
        parts = [_CATEGORY.fullmatch(part.strip()) for part in written.split(";") if part.strip()]
        if parts and all(parts):
            categories = tuple((m.group(1), tuple(m.group(2).split(","))) for m in parts if m)
        else:
            read._refuse(
                "ATTESTR_CONSENT_CATEGORIES",
                written,
                "categories with their values, as in identity:din,pan;contact:email,phone",
            )
    operations: tuple[str, ...] = ("FETCH", "STORE")
    if (written := read.optional("ATTESTR_CONSENT_OPERATIONS")) is not None:
        named = tuple(op.strip().upper() for op in written.split(",") if op.strip())
        if named and set(named) <= set(ATTESTR_CONSENT_OPERATIONS) and {"VERIFY", "FETCH"} & set(named):
            operations = named
        else:
            read._refuse(
                "ATTESTR_CONSENT_OPERATIONS",
                written,
                "comma-separated, from " + ", ".join(ATTESTR_CONSENT_OPERATIONS) + ", with VERIFY or FETCH",
            )
    placement = read.choice("ATTESTR_CONSENT_FIELD", "object", ("object", "array"))
    return {
        "attestr_consent_id": consent_id,
        "attestr_consent_purpose": purpose,
        "attestr_service_code": code,
        "attestr_consent_categories": categories,
        "attestr_consent_operations": operations,
        "attestr_consent_mode": read.choice("ATTESTR_CONSENT_MODE", "offline", ATTESTR_CONSENT_MODES),
        "attestr_consent_evidence_ref": read.optional("ATTESTR_CONSENT_EVIDENCE_REF"),
        "attestr_consent_in_array": placement == "array",
        # The DPDP Rules ask that logs of processing be kept a year at least.
        "attestr_lookup_log_days": read.number("ATTESTR_LOOKUP_LOG_DAYS", 400.0, 365, _DAYS, zero=True),
    }


def _env_file(path: Path) -> dict[str, str]:
    """`.env`'s variables, read as starlette.config reads one (KEY=value lines, `#` comments,
    quotes around a value dropped), but as UTF-8 with or without a byte-order mark: an editor
    that adds one must not hide the first line. Raises SettingsError for a file of other bytes."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except (UnicodeDecodeError, OSError) as exc:
        raise SettingsError(
            [f"{path}: not readable as UTF-8 text ({type(exc).__name__}); save it as UTF-8"]
        ) from exc
    values = {}
    for line in text.splitlines():
        line = line.strip()
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            values[key.strip()] = value.strip().strip("\"'")
    return values


def load_settings(environ: Mapping[str, str] | None = None, env_file: str | None = ".env") -> Settings:
    """Build Settings from `environ` (default: the process environment) and the `.env` file.

    Every variable is checked; raises SettingsError naming each one the service cannot use."""
    env = dict(os.environ if environ is None else environ)
    from_file = _env_file(Path(env_file)) if env_file and Path(env_file).is_file() else {}
    config = Config(environ={**from_file, **env})  # the environment wins over the file
    read = _Reader(config)
    given = {name: _secrets(read.secret(name)) for name in ("WEBHOOK_SECRETS", "API_KEYS")}
    short = {name: tuple(v for v in values if v not in _long(values)) for name, values in given.items()}
    cache_days = read.number("ATTESTR_CACHE_TTL_DAYS", 30.0, 0, _DAYS, zero=True)
    no_data_days = read.number("ATTESTR_NO_DATA_TTL_DAYS", 7.0, 0, _DAYS, zero=True)
    known = len(read.problems)
    version = read.choice("ATTESTR_API_VERSION", "v2", ATTESTR_VERSIONS)
    version_given = len(read.problems) == known  # else the URL is not held against a fallback
    base_id = read.optional("AIRTABLE_BASE_ID")
    if base_id is not None and not _is_base_id(base_id):
        read.problems.append(
            f"AIRTABLE_BASE_ID={base_id[:40]!r}: a base id, 17 characters starting with 'app', as in "
            "the base's URL (airtable.com/appXXXXXXXXXXXXXX/…)"
        )
    settings = Settings(
        database_url=read.url("DATABASE_URL", None, ("postgresql", "postgres")),
        data_dir=Path(read.text("DATA_DIR", ".data")),
        port=read.whole("PORT", 8000, 1, 65535) or 8000,
        worker_in_web=read.boolean("WORKER_IN_WEB", True),
        worker_concurrency=read.whole("WORKER_CONCURRENCY", 8, 1, 1000) or 8,
        job_lease_s=read.number("JOB_LEASE_S", 60.0, 0, 3600),
        job_max_attempts=read.whole("JOB_MAX_ATTEMPTS", 8, 1, 100) or 8,
        job_retry_base_s=read.number("JOB_RETRY_BASE_S", 2.0, 0, 600),
        log_format=read.choice("LOG_FORMAT", "json", LOG_FORMATS),
        log_level=read.choice("LOG_LEVEL", "info", LOG_LEVELS),
        webhook_secrets=_long(given["WEBHOOK_SECRETS"]),
        api_keys=_long(given["API_KEYS"]),
        short_secrets={name: values for name, values in short.items() if values},
        attestr_api_key=read.secret("ATTESTR_API_KEY"),
        attestr_api_version=version,
        attestr_api_url=_attestr_url(read, version, check_version=version_given),
        **_attestr_consent(read),  # type: ignore[arg-type]
        attestr_max_contacts=read.whole("ATTESTR_MAX_CONTACTS", 100, 1, 100) or 100,
        attestr_timeout_s=read.number("ATTESTR_TIMEOUT_S", 30.0, 0, 600),
        attestr_cache_ttl_days=cache_days,
        attestr_no_data_ttl_days=no_data_days,
        attestr_daily_call_limit=read.whole("ATTESTR_DAILY_CALL_LIMIT", 500, 1, _MANY) or 500,
        refresh_min_interval_s=read.number("REFRESH_MIN_INTERVAL_S", 3600.0, 0, 604_800, zero=True),
        attestr_probe_interval_s=read.number("ATTESTR_PROBE_INTERVAL_S", 300.0, 0, 86_400),
        airtable_api_key=read.secret("AIRTABLE_API_KEY"),
        airtable_base_id=base_id,
        airtable_api_url=read.url("AIRTABLE_API_URL", Settings.airtable_api_url, ("https", "http"))
        or Settings.airtable_api_url,
        airtable_companies_table=read.text("AIRTABLE_COMPANIES_TABLE", "Companies"),
        airtable_contacts_table=read.text("AIRTABLE_CONTACTS_TABLE", "Contacts"),
        airtable_fields={
            key: read.text(f"AIRTABLE_FIELD_{key}", name) for key, name in DEFAULT_FIELDS.items()
        },
        airtable_rate_limit_rps=read.number("AIRTABLE_RATE_LIMIT_RPS", 5.0, 0.1, 100, zero=True),
        airtable_cooldown_s=read.number("AIRTABLE_COOLDOWN_S", 30.0, 0, 3600, zero=True),
        airtable_probe_interval_s=read.number("AIRTABLE_PROBE_INTERVAL_S", 60.0, 0, 86_400),
        api_rate_limit=read.whole("API_RATE_LIMIT", 60, 1, _MANY) or 60,
        api_rate_window_s=read.number("API_RATE_WINDOW_S", 60.0, 0, 86_400),
        ops_session_max_age_s=read.number("OPS_SESSION_MAX_AGE_S", 28_800.0, 60, 2_592_000, zero=True),
        queue_max_jobs=read.whole("QUEUE_MAX_JOBS", 50_000, 1, _MANY) or 50_000,
        job_retention_days=read.number("JOB_RETENTION_DAYS", 30.0, 0, _DAYS),
        # Never shorter than the cache: an answer still fresh would be paid for again.
        attestr_answer_retention_days=max(
            read.number("ATTESTR_ANSWER_RETENTION_DAYS", 90.0, 0, _DAYS), cache_days, no_data_days
        ),
        reconcile_interval_s=read.number("RECONCILE_INTERVAL_S", 900.0, 0, 604_800, zero=True),
        **_alerts(read),  # type: ignore[arg-type]
    )
    if read.problems:
        raise SettingsError(read.problems)
    return settings
