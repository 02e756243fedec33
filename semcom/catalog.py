"""One view of everything semcom can use, read from the registries (for ``semcom list``)."""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["REGISTRIES", "SYSTEM_TYPES", "catalog"]

#: The ``type`` words of a scenario's systems (semcom.scenarios.schema), for ``semcom list systems``.
SYSTEM_TYPES: dict[str, str] = {
    "jscc": "deep JSCC: a zoo model (`semcom models`) or a checkpoint",
    "linear": "linear analog code (SoftCast / KLT, LMMSE receiver): an anchored zoo model's own, or a "
    "`semcom fit-linear` file",
    "sscc": "separate coding: image codec + 5G LDPC + QAM on the same channel uses, or the capacity bound",
    "receiver": "a JSCC model whose class decisions come from a trained semantic receiver",
    "plugin": "a system from an installed plug-in factory",
}

# kind -> (module, registry attribute). Nothing here names an entry: the registries do.
REGISTRIES: dict[str, tuple[str, str]] = {
    "channels": ("semcom.channels", "CHANNELS"),
    "codecs": ("semcom.sscc.codecs", "CODECS"),
    "models": ("semcom.jscc.zoo", "MODELS"),
    "receivers": ("semcom.receivers", "RECEIVERS"),
    "scenarios": ("semcom.scenarios", "SCENARIOS"),
}


def catalog(kinds: list[str] | None = None) -> dict[str, list[dict[str, Any]]]:
    """``{kind: [{"name", "description", "origin"}, ...]}`` for every registry (or the ones asked).

    Datasets are listed too (from :data:`semcom.data.DATASETS`).
    """
    from semcom.data import DATASETS

    out: dict[str, list[dict[str, Any]]] = {}
    wanted = kinds or ["systems", *REGISTRIES, "mcs", "datasets"]
    for kind in wanted:
        if kind == "mcs":
            from semcom.sscc.mcs import MCS_TABLE

            out[kind] = [{"name": m.name, "description": f"{2 ** m.modulation_order}-QAM, 5G LDPC rate "
                          f"{m.code_rate} ({m.spectral_efficiency:g} info bits per symbol)", "origin": "semcom"}
                         for m in MCS_TABLE]
            out[kind] += [{"name": "adaptive", "description": "highest-rate MCS whose cached BLER is below the "
                           "target at the (worst) user's SNR", "origin": "semcom"},
                          {"name": "capacity", "description": "ideal: error-free floor(k log2(1 + |h|^2 SNR)) bits",
                           "origin": "semcom"}]
            continue
        if kind == "systems":
            out[kind] = [{"name": name, "description": text, "origin": "semcom"} for name, text in SYSTEM_TYPES.items()]
            continue
        if kind == "datasets":
            out[kind] = [{"name": s.name, "description": s.description, "origin": "semcom"}
                         for s in DATASETS.values()]
            continue
        if kind not in REGISTRIES:
            raise KeyError(f"unknown kind '{kind}'; one of: {', '.join(['systems', *REGISTRIES, 'mcs', 'datasets'])}")
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
