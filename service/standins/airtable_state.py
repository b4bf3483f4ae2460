"""The Airtable stand-in's tables kept in a file, so that a stand-in run on its own is the same
base after a restart.

A real base keeps its rows when the service restarts; a stand-in that came back empty under the
same base id looked to the service like every row deleted by hand (a second trial with `.data`
kept). Only the tables are kept (schema and records, with their ids): webhooks are not, and the
service creates its webhook again when the stand-in no longer knows it, as it would after a real
webhook expired.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

from .airtable_schema import Field, Table


def load(path: Path) -> list[Table] | None:
    """The tables saved at `path`, or None when there is no such file yet.

    Raises ValueError when the file is not one this module wrote."""
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read the stand-in's tables from {path}: {exc}") from exc
    try:
        return [
            Table(
                name=t["name"],
                id=t["id"],
                fields=[Field(**f) for f in t["fields"]],
                records=t["records"],
            )
            for t in saved["tables"]
        ]
    except (KeyError, TypeError) as exc:
        raise ValueError(f"{path} does not hold the stand-in's tables: delete it to start afresh") from exc


def save(path: Path, tables: list[Table]) -> None:
    """Write `tables` to `path` whole, through a temporary file: a stand-in stopped mid-write
    leaves the previous copy, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    body: dict[str, Any] = {"tables": [dataclasses.asdict(t) for t in tables]}
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(body), encoding="utf-8")
    os.replace(partial, path)
