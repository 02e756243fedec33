"""Evaluation: a dataset through a transmission system and a channel, measured per layer.

* :mod:`semcom.evaluation.loop`: the one loop (:func:`evaluate_links`, and :func:`evaluate_system`
  for one receiver at a list of SNRs) that the scenario runner, JSCC training, receiver evaluation
  and the benchmarks share;
* :mod:`semcom.evaluation.collector`: per-image PSNR, SSIM, top-1 hits and outages of one layer,
  and their summaries (mean, pooled PSNR, 95% intervals over images and over draws);
* :mod:`semcom.evaluation.seeds`: where the channel's and torch's random streams restart.

>>> from semcom.evaluation import evaluate_system
>>> result = evaluate_system(system, dataset, channel, [0.0, 10.0], draws=3)   # doctest: +SKIP
>>> result.rows()[0]["psnr_pooled"]                                            # doctest: +SKIP
"""

from __future__ import annotations

from semcom.evaluation.collector import LayerCollector, LayerSummary, merge_info
from semcom.evaluation.loop import TASKS, Evaluation, Link, evaluate_links, evaluate_system
from semcom.evaluation.seeds import NO_SEEDS, NoSeeds, SeedSchedule, StreamPerSnr, seeded

__all__ = [
    "NO_SEEDS",
    "TASKS",
    "Evaluation",
    "LayerCollector",
    "LayerSummary",
    "Link",
    "NoSeeds",
    "SeedSchedule",
    "StreamPerSnr",
    "evaluate_links",
    "evaluate_system",
    "merge_info",
    "seeded",
]
