"""One SNR point of a scenario: every system, every user, every layer, as rows of the results table.

For each system, :func:`semcom.evaluation.evaluate_links` sends the plan's images to all users at
their SNRs of this point (one encoding per batch, or one per user with ``mode: unicast``), with the
seeds of :class:`ScenarioSeeds`; each (user, layer) collector becomes one row. The collectors also
keep the reconstructions of the first few images of the dataset (draw 0), for the image grid
(:mod:`semcom.scenarios.reconstructions`); keeping them changes no number.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from semcom.evaluation import Link, evaluate_links
from semcom.scenarios.cache import RunCache, process_cache
from semcom.scenarios.plan import RunPlan, derive_seed
from semcom.scenarios.reconstructions import SAVED_IMAGES, SAVED_USERS, Reconstruction, Reconstructions

__all__ = ["PointResult", "ScenarioSeeds", "evaluate_point"]


@dataclass(frozen=True)
class ScenarioSeeds:
    """The runner's seeds: every random stream of system ``system`` hashed from its path.

    The channel of (system, user, point, draw, batch) restarts at
    ``derive_seed(seed, "channel", system, user, point, draw, batch)``, and torch's global generator
    likewise (``"prepare"``, ``"receive"``) around every ``prepare`` and ``receive``: no number
    depends on the order in which points run, nor on the number of worker processes.
    """

    seed: int
    system: str

    def prepare(self, point: int, link: str | None, batch: int) -> int | None:
        if link is None:  # one broadcast encoding for all users
            return derive_seed(self.seed, "prepare", self.system, point, batch)
        return derive_seed(self.seed, "prepare", self.system, link, point, batch)

    def channel(self, point: int, link: str, draw: int, batch: int) -> int | None:
        return derive_seed(self.seed, "channel", self.system, link, point, draw, batch)

    def receive(self, point: int, link: str, draw: int, batch: int) -> int | None:
        return derive_seed(self.seed, "receive", self.system, link, point, draw, batch)


@dataclass
class PointResult:
    """The rows of one SNR point, the systems' descriptions, the seconds it took and the kept
    reconstructions (None: none kept, e.g. a partial result of an older semcom)."""

    point: int
    rows: list[dict[str, Any]]
    systems: list[dict[str, Any]]
    seconds: float
    images: Reconstructions | None = None


def _pixels(images: torch.Tensor) -> np.ndarray:
    """Floats in [0, 1] ``[n, C, H, W]`` as the uint8 numpy array a picture shows, ``round(255 x)``."""
    return images.clamp(0.0, 1.0).mul(255.0).round().to(torch.uint8).numpy()


def evaluate_point(plan: RunPlan, point: int, tick: Callable[[], None] | None = None, *,
                   cache: RunCache | None = None) -> PointResult:
    """Evaluate every system for every user at SNR point ``point`` (an index into the full sweep).

    ``tick`` is called after each reception (system, batch, user, draw). ``cache`` keeps the dataset
    and the built systems for the next point (default: this process's, :func:`~semcom.scenarios.cache.process_cache`).
    """
    start = time.perf_counter()
    state = (cache or process_cache()).state(plan)
    sc = plan.scenario
    snrs = {u.name: plan.snr[u.name][point] for u in sc.users}
    links = [Link(u.name, snrs[u.name], u.resolution, frozenset(u.tasks)) for u in sc.users]
    rows: list[dict[str, Any]] = []
    kept: list[Reconstruction] = []
    for spec in sc.systems:
        label = spec.label
        system = state.systems[label]
        collected = evaluate_links(system, state.images, state.channel, links, point=point, draws=plan.draws,
                                   batch_size=sc.batch_size, broadcast=spec.mode == "broadcast",
                                   seeds=ScenarioSeeds(sc.seed, label), device=plan.device, label=label, tick=tick,
                                   keep_images=SAVED_IMAGES)
        for u, user in enumerate(sc.users):
            for r, collector in enumerate(collected[user.name], start=1):
                rows.append({"system": label, "kind": str(system.kind), "user": user.name, "layer": r,
                             "symbols": int(sum(system.layer_symbols[:r])),
                             "point": point, "snr_db": snrs[user.name],
                             "sweep_snr_db": plan.sweep_snr(point),
                             "images": len(state.images), "draws": plan.draws,
                             "samples": len(state.images) * plan.draws,
                             **collector.row()})
                if u < SAVED_USERS:
                    kept.append(Reconstruction(label, user.name, r, point, snrs[user.name], plan.sweep_snr(point),
                                               _pixels(collector.kept_images()),
                                               tuple(bool(v) for v in collector.kept_outages())))
    data = state.images
    n = min(SAVED_IMAGES, len(data))
    images = Reconstructions(data.pixels[:n].numpy().copy(), tuple(int(v) for v in data.labels[:n]),
                             tuple(data.classes), tuple(int(v) for v in data.indices[:n]), tuple(kept))
    return PointResult(point, rows, state.descriptions, time.perf_counter() - start, images)
