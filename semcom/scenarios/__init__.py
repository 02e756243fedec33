"""Scenarios: the validated scenario file, the runner that wires it, and the ready-made scenarios.

>>> from semcom.scenarios import load_scenario, run_scenario
>>> scenario = load_scenario("quickstart")                       # doctest: +SKIP
>>> result = run_scenario(scenario, "results/quickstart", quick=True)  # doctest: +SKIP
>>> result.rows[0]["psnr_mean"]                                   # doctest: +SKIP

The names below are imported on first use, so that reading :data:`SCENARIOS` (``semcom list``)
does not import torch. See docs/scenarios.md for the file format and the runner's rules.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "SCENARIOS",
    "RunResult",
    "Scenario",
    "SystemContext",
    "build_system",
    "build_systems",
    "derive_seed",
    "load_results",
    "load_scenario",
    "parse_scenario",
    "resolve_scenario",
    "run_scenario",
    "scenario_json_schema",
]

_WHERE = {
    "SCENARIOS": "builtin",
    "resolve_scenario": "builtin",
    "Scenario": "schema",
    "scenario_json_schema": "schema",
    "load_scenario": "loader",
    "parse_scenario": "loader",
    "SystemContext": "factory",
    "build_system": "factory",
    "build_systems": "factory",
    "RunResult": "runner",
    "derive_seed": "runner",
    "run_scenario": "runner",
    "load_results": "results",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"semcom.scenarios.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'semcom.scenarios' has no attribute '{name}'")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
