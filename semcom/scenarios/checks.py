"""Checks that need the built run: what the file alone cannot tell (``semcom validate`` and ``run``).

The schema and :func:`~semcom.scenarios.loader.reference_problems` judge the file; these judge the
file against what it names. Building the plan's systems raises what a run would raise (a user asking
more layers than any system has, a factory that fails, weights that do not verify); the warnings say
what a run would do without telling: use fewer images than asked, or take a model outside the SNRs it
was trained on.
"""

from __future__ import annotations

from typing import Any

from semcom.scenarios.cache import PointState, RunCache, process_cache
from semcom.scenarios.plan import RunPlan

__all__ = ["check_plan", "run_size", "training_snr_range"]


def training_snr_range(card: dict[str, Any]) -> tuple[float, float] | None:
    """``(min, max)`` of the SNRs (dB) a model or receiver card says it was trained on, if it says."""
    snrs = card.get("training_snr_db")
    if isinstance(snrs, dict) and {"min", "max"} <= set(snrs):
        return float(snrs["min"]), float(snrs["max"])
    if isinstance(snrs, list) and snrs and all(isinstance(v, int | float) for v in snrs):
        return float(min(snrs)), float(max(snrs))
    return None


def check_plan(plan: RunPlan, cache: RunCache | None = None) -> tuple[PointState, list[str]]:
    """Build what ``plan`` runs (errors as a run would raise them) and list what a user should know.

    Returns:
        the built :class:`PointState` (kept in ``cache``, so a run that follows reuses it) and the
        warnings, one sentence each.
    """
    cache = cache or process_cache()
    sc = plan.scenario
    state = cache.state(plan)
    warnings: list[str] = []
    available = len(cache.split(sc.dataset.name, sc.dataset.split, plan.data_root))
    if plan.images is not None and plan.images > available:
        warnings.append(f"dataset {sc.dataset.name} ({sc.dataset.split}) has {available:,} images, fewer than "
                        f"the {plan.images:,} asked: the run uses all {available:,}")
    snrs = [plan.snr[user][p] for user in plan.snr for p in plan.points]
    for label, system in state.systems.items():
        trained = training_snr_range(getattr(system, "card", None) or {})
        if trained is None or not snrs:
            continue
        low, high = trained
        outside = [s for s in snrs if s < low - 1e-9 or s > high + 1e-9]
        if outside:
            used = f"{min(outside):g} dB" if min(outside) == max(outside) else \
                f"{min(outside):g} to {max(outside):g} dB"
            warnings.append(f"system '{label}' was trained at {low:g} to {high:g} dB; this run also uses "
                            f"{used}, where it extrapolates")
    return state, warnings


def run_size(plan: RunPlan, images: int) -> str:
    """The size of the run in words: images x points x draws x systems."""
    systems = len(plan.scenario.systems)
    total = images * len(plan.points) * plan.draws * systems
    parts = [f"{images:,} image(s)", f"{len(plan.points)} point(s)", f"{plan.draws:,} draw(s)",
             f"{systems} system(s)"]
    return " x ".join(parts) + f" = {total:,} image transmissions (each received by every user)"
