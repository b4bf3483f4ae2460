"""contact-sync benchmarks, each side by side with a floor measured in the same run.

    python bench/run.py              # full sizes (a few minutes)
    python bench/run.py --smoke      # small sizes, as CI runs it
    python bench/run.py --write-readme

Everything runs on this machine: an embedded PostgreSQL in a temporary directory, the service
as a child process, the stand-ins in threads. Ratios matter more than figures: machines are
shared and noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent))

from harness import ROOT, Row
from rows_airtable import airtable_backlog
from rows_intake import intake
from rows_memory import large_answers
from rows_people import generate, normalisation, upsert_vs_copy
from rows_spend import spend
from rows_startup import startup

from service.database import embedded
from service.logs import configure_logging


def table(rows: list[Row], when: str) -> str:
    """The README's table of `rows`, and when they were measured."""
    lines = ["| what | how | figure | floor | ratio | target | met |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        ratio = f"{r.ratio:.2f}" if r.ratio is not None else ""
        met = "" if r.met is None else ("yes" if r.met else "**no**")
        lines.append(f"| {r.what} | {r.how} | {r.figure} | {r.floor} | {ratio} | {r.target} | {met} |")
    return "\n".join(lines) + f"\n\nMeasured {when} with `python bench/run.py`."


async def main(smoke: bool, write_readme: bool) -> int:
    """Every row in the README's order; prints the table (and writes it into the README); 1 when
    a correctness row is wrong."""
    configure_logging("console", "error")  # the service parts running in this process stay quiet
    rows: list[Row] = []
    # The bench's own PostgreSQL is stopped before its folder goes: nothing is left running.
    with tempfile.TemporaryDirectory(dir="/tmp") as tmp, embedded(Path(tmp) / "pg") as server:
        data = generate(2_000 if smoke else 100_000)
        rows.append(normalisation(data))
        rows.append(await upsert_vs_copy(server, data))
        rows += await intake(server, 2_000 if smoke else 20_000, 3 if smoke else 10)
        rows += await airtable_backlog(server, 30 if smoke else 300)
        rows.append(await spend(server, 40 if smoke else 400))
        rows.append(await large_answers(server, 8, 4 if smoke else 26))
        rows.append(startup(Path(tmp)))
    text = table(rows, f"{date.today():%Y-%m-%d}" + (" (smoke sizes)" if smoke else ""))
    print(text)
    if write_readme:
        readme = ROOT / "README.md"
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
    parser.add_argument("--write-readme", action="store_true", help="put the table into README.md")
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.smoke, args.write_readme)))
