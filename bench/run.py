"""contact-sync benchmarks, each side by side with a floor measured in the same run.

    python bench/run.py              # full sizes (a few minutes)
    python bench/run.py --smoke      # small sizes, as CI runs it
    python bench/run.py --write-readme   # the table into bench/README.md
    python bench/run.py --only backlog latency

Everything runs on this machine: an embedded PostgreSQL in a temporary directory, the service
as a child process, the stand-ins in threads. Ratios matter more than figures: machines are
shared and noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import sys
import tempfile
from collections.abc import Awaitable, Callable
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent))

from harness import ROOT, Row
from rows_airtable import airtable_backlog
from rows_commands import command_latency
from rows_intake import intake
from rows_latency import service_share, time_to_airtable
from rows_memory import large_answers
from rows_ops import ops_page
from rows_people import generate, normalisation, upsert_vs_copy
from rows_spend import spend
from rows_startup import startup

from service.database import embedded
from service.logs import configure_logging

# The groups of rows, in bench/README.md's order (`--only` picks some).
GROUPS = (
    "normalisation",
    "upsert",
    "intake",
    "backlog",
    "latency",
    "spend",
    "memory",
    "ops",
    "commands",
    "startup",
)


async def _one(row: Awaitable[Row]) -> list[Row]:
    return [await row]


async def _listed(*rows: Row) -> list[Row]:
    return list(rows)


async def _joined(*groups: Awaitable[list[Row]]) -> list[Row]:
    """The rows of `groups`, run one after another (never at once: each is timed)."""
    return [row for group in groups for row in await group]


def table(rows: list[Row], when: str) -> str:
    """bench/README.md's table of `rows`, and when they were measured."""
    lines = ["| what | how | figure | floor | ratio | target | met |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        ratio = f"{r.ratio:.2f}" if r.ratio is not None else ""
        met = "" if r.met is None else ("yes" if r.met else "**no**")
        lines.append(f"| {r.what} | {r.how} | {r.figure} | {r.floor} | {ratio} | {r.target} | {met} |")
    return "\n".join(lines) + f"\n\nMeasured {when} with `python bench/run.py`."


async def main(smoke: bool, write_readme: bool, only: list[str]) -> int:
    """Every row in bench/README.md's order (or the groups named in `only`); prints the table (and
    writes it into bench/README.md); 1 when a correctness row is wrong."""
    configure_logging("console", "error")  # the service parts running in this process stay quiet
    rows: list[Row] = []
    # The bench's own PostgreSQL is stopped before its folder goes: nothing is left running.
    with tempfile.TemporaryDirectory(dir="/tmp") as tmp, embedded(Path(tmp) / "pg") as server:
        data = functools.cache(lambda: generate(2_000 if smoke else 100_000))
        groups: dict[str, Callable[[], Awaitable[list[Row]]]] = {
            "normalisation": lambda: _listed(normalisation(data())),
            "upsert": lambda: _one(upsert_vs_copy(server, data())),
            # Smoke sizes show that each row runs and its correctness holds, not a figure to compare.
            "intake": lambda: intake(
                server, 2_000 if smoke else 20_000, 2 if smoke else 10, 1 if smoke else 2
            ),
            "backlog": lambda: airtable_backlog(server, 30 if smoke else 300),
            "latency": lambda: _joined(
                time_to_airtable(server, 3 if smoke else 30), service_share(server, 3 if smoke else 30)
            ),
            "spend": lambda: _one(spend(server, 40 if smoke else 400)),
            "memory": lambda: _one(large_answers(server, 8, 4 if smoke else 26)),
            "ops": lambda: ops_page(
                server, 5_000 if smoke else 100_000, 5 if smoke else 21, 2 if smoke else 10
            ),
            "commands": lambda: command_latency(server),
            "startup": lambda: _listed(startup(Path(tmp))),
        }
        assert tuple(groups) == GROUPS
        for name, rows_of in groups.items():
            if not only or name in only:
                rows += await rows_of()
    text = table(rows, f"{date.today():%Y-%m-%d}" + (" (smoke sizes)" if smoke else ""))
    print(text)
    if write_readme:
        readme = ROOT / "bench" / "README.md"
        content = readme.read_text()
        start, end = content.index("<!-- bench:start -->"), content.index("<!-- bench:end -->")
        readme.write_text(content[: start + len("<!-- bench:start -->")] + "\n" + text + "\n" + content[end:])
    wrong = [r.what for r in rows if r.correctness and not r.met]
    if wrong:
        print(f"\nWrong results: {', '.join(wrong)}", file=sys.stderr)
    return 1 if wrong else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--smoke", action="store_true", help="small sizes (CI)")
    parser.add_argument("--write-readme", action="store_true", help="put the table into bench/README.md")
    parser.add_argument("--only", nargs="+", default=[], choices=GROUPS, help="only these groups of rows")
    args = parser.parse_args()
    if args.only and args.write_readme:
        parser.error("--write-readme writes the whole table: run every group")
    sys.exit(asyncio.run(main(args.smoke, args.write_readme, args.only)))
