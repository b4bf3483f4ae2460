"""What every push of the outbox shares: Airtable's batch size, the pause after a refusal to
try again, the refusals that mean the base's schema changed, and the select options the base
lacks (a value held back, and the note that says so)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from service.airtable.errors import AirtableError, AirtableRateLimited
from service.engine.merge import LINKS, VALUES

if TYPE_CHECKING:
    from service.airtable.client import Airtable
    from service.config import Settings

BATCH = 10  # Airtable's limit of records per write request
RETRY_AFTER_S = 5.0
SCHEMA_CHANGED = ("UNKNOWN_FIELD_NAME", "INVALID_MULTIPLE_CHOICE_OPTIONS")


def option_note(field: str, option: str) -> str:
    return (
        f'Airtable\'s "{field}" field has no option "{option}": add it in Airtable (or run '
        "`contact-sync doctor --fix`); until then that value is left out, and it is sent once the "
        "option exists"
    )


def retry_delay(exc: AirtableError) -> float:
    # After a 429 the shared cool-down already holds every request back.
    return 0.0 if isinstance(exc, AirtableRateLimited) else RETRY_AFTER_S


def withheld(airtable: Airtable, key: str, value: Any) -> bool:
    """Whether `value` of the single select field `key` is held back: the base lacks the option."""
    return isinstance(value, str) and (key, value) in airtable.missing_options


def contact_field_names(airtable: Airtable, settings: Settings) -> dict[str, tuple[str | None, str]]:
    """Each merged Contacts field's logical key → (its field id as of the last schema read, its
    name from the settings), for `merge.recorded` and `merge.to_record`."""
    return {
        key: (airtable.field_id("contacts", settings.field(key)), settings.field(key))
        for key in (*VALUES, LINKS)
    }
