"""The house's plan in pyproject.toml covers every module: import-linter checks only the modules
its contracts name, so a new top-level module or wing left out of them would go unchecked."""

from __future__ import annotations

from pathlib import Path

import tomllib

SERVICE = Path(__file__).resolve().parents[2] / "service"


def _contracts() -> list[dict[str, object]]:
    config = tomllib.loads((SERVICE.parent / "pyproject.toml").read_text())
    return config["tool"]["importlinter"]["contracts"]


def test_every_module_and_wing_is_in_a_layer() -> None:
    (layers,) = [c["layers"] for c in _contracts() if c["type"] == "layers"]
    named = {name.strip() for layer in layers for name in layer.replace("|", ":").split(":")}  # type: ignore[union-attr]
    top = {f"service.{p.stem}" for p in SERVICE.glob("*.py") if p.stem not in ("__init__", "__main__")}
    wings = {f"service.{p.name}" for p in SERVICE.iterdir() if (p / "__init__.py").is_file()}
    assert top | (wings - {"service.standins"}) == named


def test_the_stand_ins_and_config_contracts_name_every_other_module() -> None:
    (layers,) = [c["layers"] for c in _contracts() if c["type"] == "layers"]
    every = {name.strip() for layer in layers for name in layer.replace("|", ":").split(":")}  # type: ignore[union-attr]
    forbidden = {c["name"]: c for c in _contracts() if c["type"] == "forbidden"}
    apart = forbidden["The stand-ins import nothing of the service"]["forbidden_modules"]
    assert set(apart) == every  # type: ignore[arg-type]
    config = forbidden["config.py imports nothing of the package"]["forbidden_modules"]
    assert set(config) == (every - {"service.config"}) | {"service.standins"}  # type: ignore[operator]
    users = forbidden["Only the command line (the demo) uses the stand-ins"]["source_modules"]
    assert set(users) == every - {"service.commands"}  # type: ignore[arg-type]
