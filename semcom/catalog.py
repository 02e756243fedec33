"""One view of everything semcom can use, read from the registries (for ``semcom list``)."""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["REGISTRIES", "catalog"]

# kind -> (module, registry attribute). Nothing here names an entry: the registries do.
REGISTRIES: dict[str, tuple[str, str]] = {
    "channels": ("semcom.channels", "CHANNELS"),
    "codecs": ("semcom.sscc.codecs", "CODECS"),
    "mcs": ("semcom.sscc.mcs", "MCS_REGISTRY"),
    "models": ("semcom.zoo", "MODELS"),
    "receivers": ("semcom.receivers", "RECEIVERS"),
    "scenarios": ("semcom.scenarios", "SCENARIOS"),
}


def catalog(kinds: list[str] | None = None) -> dict[str, list[dict[str, Any]]]:
    """``{kind: [{"name", "description", "origin"}, ...]}`` for every registry (or the ones asked).

    Datasets are listed too (from :data:`semcom.data.DATASETS`).
    """
    from semcom.data import DATASETS

    out: dict[str, list[dict[str, Any]]] = {}
    wanted = kinds or [*REGISTRIES, "datasets"]
    for kind in wanted:
        if kind == "datasets":
            out[kind] = [{"name": s.name, "description": s.description, "origin": "semcom"}
                         for s in DATASETS.values()]
            continue
        if kind not in REGISTRIES:
            raise KeyError(f"unknown kind '{kind}'; one of: {', '.join([*REGISTRIES, 'datasets'])}")
        module, attr = REGISTRIES[kind]
        try:
            registry = getattr(importlib.import_module(module), attr)
        except ModuleNotFoundError as exc:
            if exc.name is None or not module.startswith(exc.name):
                raise  # a missing dependency is a real error, not an absent part
            continue
        out[kind] = [{"name": e.name, "description": e.description, "origin": e.origin}
                     for e in registry.entries()]
    return out
