"""Run a stand-in on its own: `python -m service.standins attestr|airtable [--port N]`.

Prints the URL and the token to configure the service with, then serves until stopped.
"""

from __future__ import annotations

import argparse

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
    args = parser.parse_args()
    try:
        _serve(args.which, args.port)
    except OSError as exc:
        parser.exit(
            1, f"python -m service.standins: cannot listen on port {args.port} ({exc.strerror}): use --port\n"
        )


def _serve(which: str, port: int) -> None:
    if which == "attestr":
        attestr = AttestrStandIn()
        print(f"Attestr stand-in. ATTESTR_API_KEY={attestr.token}  ATTESTR_API_URL=<url below>{PATH}")
        print(f"  for V3: ATTESTR_API_VERSION=v3  ATTESTR_CONSENT_ID={STANDIN_CONSENT_ID}  path {PATH_V3}")
        serve_forever(attestr.app(), port, announce="url: ")
    else:
        airtable = AirtableStandIn()
        print(
            f"Airtable stand-in. AIRTABLE_API_KEY={airtable.token}  AIRTABLE_BASE_ID={airtable.base_id}  "
            "AIRTABLE_API_URL=<url below>"
        )
        serve_forever(airtable.app(), port, announce="url: ")


if __name__ == "__main__":
    main()
