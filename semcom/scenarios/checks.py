"""Checks that need the built run: what the file alone cannot tell (``semcom validate`` and ``run``).

The schema and :func:`~semcom.scenarios.loader.reference_problems` judge the file; these judge the
file against what it names. Building the plan's systems raises what a run would raise (a user asking
more layers than any system has, a factory that fails, weights that do not verify); the warnings say
what a run would do without telling: use fewer images than asked, or take a model outside the SNRs it
was trained on. :func:`run_size` and :func:`estimate_seconds` say how big the run is and roughly how
long it will take.
"""

from __future__ import annotations

import time
from typing import Any

import torch

from semcom.data import ImageDataset
from semcom.evaluation import Link, evaluate_links
from semcom.scenarios.cache import PointState, RunCache, process_cache
from semcom.scenarios.plan import RunPlan

__all__ = ["check_plan", "estimate_seconds", "format_duration", "run_size", "training_snr_range"]

#: Images each system is timed on by :func:`estimate_seconds` (at most; a batch of the run's size).
TIMED_IMAGES = 16


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
    """The size of the run in words: images x points x draws x systems (each sent to every user)."""
    systems = len(plan.scenario.systems)
    total = images * len(plan.points) * plan.draws * systems
    parts = [f"{images:,} images", f"{len(plan.points)} points", f"{plan.draws:,} draws", f"{systems} systems"]
    return " x ".join(parts) + f" = {total:,} transmissions"


def estimate_seconds(plan: RunPlan, state: PointState, images: int = TIMED_IMAGES) -> float:
    """A rough guess of the run's compute time in one process, in seconds.

    Each system sends the first ``images`` images to every user at the middle SNR point of the plan,
    one draw, after a warm-up on one image (first calls build tables and templates); the time per
    image, times images x points x draws, summed over the systems, is the guess. Rough: a batch of a
    few images is slower per image than the run's full batches, SSCC systems take longer at some
    SNRs than at others (the codec search depends on the bit budget), and the load on the machine
    changes. Timed with one torch thread, as a run computes by default. Torch's global generator and
    thread count are left as they were, and every reception of a run reseeds its channel, so a run
    after this gives the same numbers.
    """
    sc = plan.scenario
    if not plan.points or not len(state.images):
        return 0.0
    point = plan.points[len(plan.points) // 2]
    sample = state.images.subset(min(images, len(state.images)))
    links = [Link(u.name, plan.snr[u.name][point], u.resolution, frozenset(u.tasks)) for u in sc.users]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.random.fork_rng(devices=[]):
            per_image = sum(_seconds_per_image(plan, state, spec.label, spec.mode, sample, links, point)
                            for spec in sc.systems)
    finally:
        torch.set_num_threads(threads)
    return per_image * len(state.images) * len(plan.points) * plan.draws


def _seconds_per_image(plan: RunPlan, state: PointState, label: str, mode: str, sample: ImageDataset, links: list[Link],
                       point: int) -> float:
    """Seconds one system takes per image of ``sample`` (after a warm-up on one image)."""
    system = state.systems[label]
    kwargs: dict[str, Any] = {"point": point, "draws": 1, "broadcast": mode == "broadcast", "device": plan.device}
    evaluate_links(system, sample.subset(1), state.channel, links, batch_size=1, **kwargs)
    start = time.perf_counter()
    evaluate_links(system, sample, state.channel, links, batch_size=len(sample), **kwargs)
    return (time.perf_counter() - start) / len(sample)



def format_duration(seconds: float) -> str:
    """``"40 s"``, ``"12 min"``, ``"3.2 h"``: a duration at the precision a rough guess deserves."""
    if seconds < 90:
        return f"{max(seconds, 1):.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"
