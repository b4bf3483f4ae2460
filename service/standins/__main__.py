"""Run a stand-in on its own: `python -m service.standins attestr|airtable [--port N]`.

Prints the URL and the token to configure the service with, then serves until stopped. The
Airtable stand-in keeps its tables in the data folder (`--data-dir`, default `$DATA_DIR` or
`.data`), so a restarted stand-in is the same base, as a real one would be.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from .airtable import AirtableStandIn
from .attestr import PATH, PATH_V3, STANDIN_CONSENT_ID, AttestrStandIn
from .server import serve_forever


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m service.standins",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("which", choices=["attestr", "airtable"])
    parser.add_argument("--port", type=int, default=0, help="default: a free port")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path(os.environ.get("DATA_DIR") or ".data"),
        help="where the Airtable stand-in keeps its tables (default: $DATA_DIR or .data)",
    )
    parser.add_argument(
        "--base-id",
        default=AirtableStandIn.base_id,
        help=f"the Airtable stand-in's base id (default {AirtableStandIn.base_id}): another id, another base",
    )
    args = parser.parse_args()
    try:
        _serve(args.which, args.port, args.data_dir / f"standin-airtable-{args.base_id}.json", args.base_id)
    except ValueError as exc:
        parser.exit(1, f"python -m service.standins: {exc}\n")
    except OSError as exc:
        parser.exit(
            1, f"python -m service.standins: cannot listen on port {args.port} ({exc.strerror}): use --port\n"
        )


def _serve(which: str, port: int, state_file: Path, base_id: str) -> None:
    if which == "attestr":
        attestr = AttestrStandIn()
        print(f"Attestr stand-in. ATTESTR_API_KEY={attestr.token}  ATTESTR_API_URL=<url below>{PATH}")
        print(f"  for V3: ATTESTR_API_VERSION=v3  ATTESTR_CONSENT_ID={STANDIN_CONSENT_ID}  path {PATH_V3}")
        serve_forever(attestr.app(), port, announce="url: ")
    else:
        airtable = AirtableStandIn(base_id=base_id, state_file=state_file)
        print(
            f"Airtable stand-in, tables kept in {state_file}. AIRTABLE_API_KEY={airtable.token}  "
            f"AIRTABLE_BASE_ID={airtable.base_id}  AIRTABLE_API_URL=<url below>"
        )
        serve_forever(airtable.app(), port, announce="url: ")


if __name__ == "__main__":
    main()
