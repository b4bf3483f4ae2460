"""What every push of the outbox shares: Airtable's batch size, the pause after a refusal to
try again, the refusals that mean the base's schema changed, and the note for a missing option."""

from __future__ import annotations

from service.airtable.errors import AirtableError, AirtableRateLimited

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
