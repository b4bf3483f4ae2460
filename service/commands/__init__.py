"""The `contact-sync` command line: `cli.py` holds the parser and main; each other module one
group of commands (see `cli.py`)."""

from __future__ import annotations

import sys


def main() -> None:
    """The console script: loading the command line, and the command's own modules, takes a
    moment, and Ctrl-C during it is an interruption like any other (exit 130), not a traceback."""
    try:
        from service.commands.cli import main as run

        run()
    except KeyboardInterrupt:
        print("contact-sync: interrupted", file=sys.stderr)
        sys.exit(130)
