"""The ready-to-run scenarios installed with semcom, in the :data:`SCENARIOS` registry.

The files live in ``semcom/scenarios/builtin/*.yaml`` (package data, so ``semcom run quickstart``
works from an installed wheel). The repository's ``scenarios/`` folder holds byte-identical copies for
people working in a checkout (``semcom run scenarios/quickstart.yaml``); a test keeps the two equal.
Each entry's factory returns the file's path; its description is the file's ``description:`` field.
Plug-ins add scenarios through the ``semcom.scenarios`` entry-point group (an object that returns
a path when called).
"""

from __future__ import annotations

from pathlib import Path

import yaml

from semcom.errors import ScenarioError
from semcom.registry import Registry

__all__ = ["BUILTIN_DIR", "SCENARIOS", "resolve_scenario"]

BUILTIN_DIR = Path(__file__).resolve().parent / "builtin"

SCENARIOS = Registry("scenarios", entry_point_group="semcom.scenarios")


class _ScenarioFile:
    """Factory of one built-in scenario: calling it gives the file's path."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __call__(self) -> Path:
        return self.path


def _description(path: Path) -> str:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        return f"(unreadable: {exc})"
    text = data.get("description") if isinstance(data, dict) else None
    return str(text).strip() if text else path.stem


for _path in sorted(BUILTIN_DIR.glob("*.yaml")):
    SCENARIOS.add(_path.stem, _ScenarioFile(_path), _description(_path))


def resolve_scenario(source: str | Path) -> Path:
    """The scenario file ``source`` names: an existing path, else a registered scenario name."""
    path = Path(source).expanduser()
    if path.is_file():
        return path
    name = str(source)
    if name in SCENARIOS:
        return Path(SCENARIOS.create(name))
    if path.exists():
        raise ScenarioError(f"{path}: not a file")
    raise ScenarioError(f"{source}: no such scenario file or built-in scenario; built-ins: "
                        f"{', '.join(SCENARIOS.names()) or '(none)'} (see `semcom list scenarios`)")
