"""structlog set-up: JSON lines on stdout, with personal data masked and secrets redacted.

Monitoring is built on these lines, so event names are stable (docs/reference/log-events.md).
Every line of a job carries `job_id`, `record_id` and `cin`, bound once with
`structlog.contextvars.bound_contextvars`.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

from service import identifiers

_EMAIL = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+\.[A-Za-z]{2,})")
# Ten or more digits standing alone, possibly with a leading + and separators: a phone number
# (Indian mobiles have ten digits). DINs have eight and stay readable; ids like `rec…` never match.
_PHONE = re.compile(r"(?<![\w+])\+?\d(?:[\s().-]?\d){9,}(?!\w)")
# A PAN (five letters, four digits, a letter) is sensitive: never logged, however it came: in
# fullwidth letters, another script's digits, spaced out or with invisible characters inside.
# The pattern finds candidates (any letters and digits); `identifiers.pan` decides, so what is
# masked is exactly what the service would read as a PAN.
_GAP = r"[\s\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufeff]*"
_PAN = re.compile(rf"(?<![^\W_])(?:[^\W\d_]{_GAP}){{5}}(?:\d{_GAP}){{4}}[^\W\d_](?![^\W_])")
_PLAIN_KEYS = frozenset({"timestamp", "level", "logger", "event", "job_id", "record_id", "cin"})
_SECRET_KEYS = re.compile(r"secret|token|password|authorization|api_key|apikey|x-api-key", re.I)


def _mask_phone(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    return "•" * (len(digits) - 2) + digits[-2:]


# The service's own secrets and tokens (set by `configure_logging`): redacted wherever they
# appear, e.g. echoed back in an outside service's error message.
_known_secrets: tuple[str, ...] = ()


def mask_text(text: str) -> str:
    """Mask every email address and phone number in `text`, keeping enough to tell them apart,
    redact PANs and the service's own secrets."""
    for secret in _known_secrets:
        if secret in text:
            text = text.replace(secret, "[redacted]")
    text = _EMAIL.sub(lambda m: f"{m.group(1)}•••@{m.group(2)}", text)
    text = _PAN.sub(lambda m: "[PAN]" if identifiers.pan(m.group(0)) else m.group(0), text)
    return _PHONE.sub(_mask_phone, text)


def _mask(value: Any) -> Any:
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, dict):
        return {k: "[redacted]" if _SECRET_KEYS.search(str(k)) else _mask(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_mask(v) for v in value]
    return value


def mask_personal_data(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: the last word before rendering, so nothing escapes it."""
    for key, value in list(event_dict.items()):
        if key in _PLAIN_KEYS:
            continue
        event_dict[key] = "[redacted]" if _SECRET_KEYS.search(key) else _mask(value)
    return event_dict


def _drop_color_message(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    event_dict.pop("color_message", None)  # uvicorn's copy of the message with terminal colours
    return event_dict


def configure_logging(
    log_format: str = "json",
    level: str = "info",
    *,
    cache: bool = False,
    secrets: tuple[str | None, ...] = (),
    stream: TextIO | None = None,
) -> None:
    """Route structlog and the standard library (uvicorn, asyncpg) to one JSON stream.

    `cache` (the long-running processes) binds each module's logger once instead of at every
    line; tests leave it off, since `structlog.testing.capture_logs` cannot see cached loggers.
    `secrets` are redacted from every line and every outside error message kept. `stream`: where
    the lines go (default: stdout)."""
    global _known_secrets
    _known_secrets = tuple(s for s in secrets if s and len(s) >= 6)
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        _drop_color_message,
        mask_personal_data,
    ]
    renderer: Any = (
        structlog.dev.ConsoleRenderer(colors=False)
        if log_format == "console"
        else structlog.processors.JSONRenderer()
    )
    numeric_level = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        logger_factory=structlog.WriteLoggerFactory(stream),  # a quarter cheaper than print
        cache_logger_on_first_use=cache,
    )
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.ExtraAdder(), *shared],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric_level)
    logging.getLogger("pgserver").setLevel(logging.WARNING)  # it narrates every start at info
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # Access lines repeat what the service logs itself; keep them at debug level only.
    logging.getLogger("uvicorn.access").setLevel(max(numeric_level, logging.WARNING))
