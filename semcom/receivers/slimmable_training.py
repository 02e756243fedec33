"""Train a slimmable receiver, and open and measure one at a chosen budget and preferences.

Training is part 1's loop (:func:`semcom.receivers.train_receiver`): the slimmable receiver's
training-mode ``forward`` applies the sandwich rule and adds the distillation loss itself
(:mod:`semcom.receivers.slimmable`); :func:`train_slimmable` only names its two training options.
:func:`open_slimmable` and :func:`evaluate_control` are what ``semcom slim`` runs: a checkpoint, a
budget and preferences in; the chosen configuration, its FLOPs and its measured accuracy and PSNR out,
with no retraining.

>>> run = train_slimmable("mnist-mr3-awgn", "mnist", kd_weight=1.0, epochs=5)           # doctest: +SKIP
>>> evaluate_control(run, 0.1, {"class": 2, "image": 1}, "mnist", snrs_db=[10])         # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from semcom.data import ImageDataset
from semcom.errors import CheckpointError
from semcom.receivers.checkpoint import TrainedReceiver, load_receiver, model_sha256
from semcom.receivers.slimmable import Priority, SlimmableReceiver
from semcom.receivers.training import ReceiverTrainConfig, evaluate_receiver, load_encoder, train_receiver
from semcom.receivers.weighting import make_weighting

__all__ = ["evaluate_control", "open_slimmable", "train_slimmable"]


def train_slimmable(
    model_name_or_path: str | Path | Any,
    dataset: str | ImageDataset,
    config: ReceiverTrainConfig | None = None,
    *,
    kd_weight: float = 1.0,
    random_configs: int = 2,
    log: Callable[[dict[str, float]], None] | None = None,
    **options: Any,
) -> TrainedReceiver:
    """Train a ``slimmable`` receiver on a frozen JSCC encoder (sandwich rule, distillation loss).

    Args:
        model_name_or_path, dataset, config, log, options: as :func:`~semcom.receivers.train_receiver`
            (``receiver_kwargs`` carries the receiver's ``width``, ``decoder_width``, ``ratios``, ...).
        kd_weight: weight of the configuration-invariant distillation loss (0: trained without it).
        random_configs: random configurations per step, besides the largest and the smallest.
    """
    cfg = ReceiverTrainConfig.from_dict({**(config.to_flat() if config else {}), **options})
    kwargs = {**cfg.receiver_kwargs, "kd_weight": float(kd_weight), "random_configs": int(random_configs)}
    return train_receiver("slimmable", model_name_or_path, dataset, cfg, log=log, receiver_kwargs=kwargs)


def open_slimmable(source: str | Path, model: str | Path | None = None) -> TrainedReceiver:
    """A slimmable receiver checkpoint with the frozen encoder it reads (``model``: the card's by default).

    Raises:
        CheckpointError: unreadable, not a slimmable receiver, no model named, or a model whose
            weights differ from those the receiver was trained on.
    """
    receiver, card = load_receiver(source)
    if not isinstance(receiver, SlimmableReceiver):
        raise CheckpointError(f"{source}: receiver '{receiver.name}' is not slimmable; a budget and task "
                              "preferences apply to receivers trained as `slimmable` only")
    trained_on = card.get("model") or {}
    model = model if model is not None else trained_on.get("name")
    if model is None:
        raise CheckpointError(f"{source}: its card names no JSCC model; give the model it was trained on")
    sha = model_sha256(model)
    if sha and trained_on.get("sha256") and sha != trained_on["sha256"]:
        raise CheckpointError(f"{source}: trained on JSCC weights with sha256 {trained_on['sha256'][:12]}.., but "
                              f"{model} has {sha[:12]}..")
    config = {"receiver": "slimmable", "model": str(model), "side_snr": card.get("side_snr", "nominal"),
              "dataset": (card.get("dataset") or {}).get("name"),
              "receiver_kwargs": (card.get("receiver") or {}).get("options", {})}
    return TrainedReceiver(receiver, make_weighting("equal", receiver.tasks), load_encoder(model), config)


def evaluate_control(
    trained: TrainedReceiver,
    mflops: float | None,
    prefer: Mapping[str, float] | None,
    dataset: str | ImageDataset | None,
    snrs_db: Sequence[float] = (10.0,),
    priority: Priority = "decoders",
    **evaluate: Any,
) -> dict[str, Any]:
    """Choose the configuration for ``mflops``, ``prefer`` and ``priority``, activate it and measure it on ``dataset``.

    ``evaluate`` goes to :func:`~semcom.receivers.evaluate_receiver` (``channel``, ``subset``,
    ``data_root``, ...). Returns :meth:`SlimmableReceiver.describe` of the chosen configuration plus
    ``budget_mflops``, ``prefer`` and ``rows`` (accuracy and PSNR per SNR, from all layers; none
    when ``dataset`` is None).

    Raises:
        ValueError: a budget below the smallest configuration, an unknown task, bad weights.
    """
    receiver = trained.receiver
    if not isinstance(receiver, SlimmableReceiver):
        raise TypeError(f"receiver '{receiver.name}' is not slimmable")
    config = receiver.apply_control(mflops, prefer, priority)
    rows = [] if dataset is None else evaluate_receiver(trained, dataset, snrs_db, **evaluate)
    return {**receiver.describe(config), "budget_mflops": mflops, "prefer": dict(prefer or {}), "priority": priority,
            "rows": [r for r in rows if r["layer"] == receiver.num_layers]}
