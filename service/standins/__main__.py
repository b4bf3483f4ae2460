"""Run a stand-in on its own: `python -m service.standins attestr|airtable [--port N]`.

Prints the URL and the token to configure the service with, then serves until stopped.
"""

from __future__ import annotations

import argparse

from .airtable import AirtableStandIn
from .attestr import PATH, AttestrStandIn
from .server import serve_forever


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m service.standins",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("which", choices=["attestr", "airtable"])
    parser.add_argument("--port", type=int, default=0, help="default: a free port")
    args = parser.parse_args()
    if args.which == "attestr":
        attestr = AttestrStandIn()
        print(f"Attestr stand-in. ATTESTR_API_KEY={attestr.token}  ATTESTR_API_URL=<url below>{PATH}")
        serve_forever(attestr.app(), args.port, announce="url: ")
    else:
        airtable = AirtableStandIn()
        print(
            f"Airtable stand-in. AIRTABLE_API_KEY={airtable.token}  AIRTABLE_BASE_ID={airtable.base_id}  "
            "AIRTABLE_API_URL=<url below>"
        )
        serve_forever(airtable.app(), args.port, announce="url: ")


if __name__ == "__main__":
    main()
