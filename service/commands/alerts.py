"""`contact-sync alerts test`: one test alert to every configured target, and what each answered."""

from __future__ import annotations

import argparse
import asyncio

from service.commands.context import CommandError, shown
from service.config import Settings
from service.engine import alerts


def arguments(command: str, parser: argparse.ArgumentParser) -> None:
    """The `alerts` command's sub-parser (`cli.py` names it with its summary)."""
    parser.description = (
        "Alerts go to ALERT_WEBHOOK_URL (Slack, Microsoft Teams, Google Chat) and, with SMTP_URL, to "
        "ALERT_EMAIL_TO (docs/how-to/monitor.md).\n\nexamples:\n  contact-sync alerts test"
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    test = actions.add_parser("test", help="send one test alert to every target and say what each answered")
    test.set_defaults(run=_test)


def _test(settings: Settings, _args: argparse.Namespace) -> int:
    targets = alerts.targets(settings)
    if not targets:
        raise CommandError(
            "No alert target is configured: set ALERT_WEBHOOK_URL, or ALERT_EMAIL_TO, SMTP_URL and "
            "ALERT_EMAIL_FROM (docs/how-to/monitor.md)",
            code=2,
        )
    failed = 0
    for target in targets:
        try:
            answered = asyncio.run(
                alerts.send(
                    settings,
                    target,
                    "Test alert",
                    "Test alert from `contact-sync alerts test`: alerts reach this channel.",
                )
            )
            print(f"✓ {target.shown()}: answered {answered}")
        except alerts.SEND_ERRORS as exc:
            failed += 1
            print(f"✗ {target.shown()}: {shown(str(exc) or type(exc).__name__)} ({type(exc).__name__})")
    return 1 if failed else 0
