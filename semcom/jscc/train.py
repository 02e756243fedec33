"""Training runs of multi-resolution JSCC models: ``semcom train`` as a library call, and evaluation.

:func:`train` runs what a :class:`~semcom.jscc.config.TrainConfig` describes: it loads the data and
holds out the validation images, builds (or loads, or resumes) the model, then trains epoch after
epoch (:mod:`semcom.jscc.epoch`: the loss, the schedule, the steps), scores each epoch on the
validation images and writes the run folder (:mod:`semcom.jscc.run_state`: ``latest.*``,
``best.*``, the training state) and the cards (:mod:`semcom.jscc.card`); at the end it scores the
best checkpoint on the test split. A resumed run repeats what an uninterrupted run would have done.

Started by ``torchrun`` (:mod:`semcom.distributed`), the same run is shared by the processes: each
trains on its share of every batch and DistributedDataParallel averages the gradients, while rank 0
alone evaluates, logs and writes the run folder, the cards and the zoo copy (the others wait for it
after every epoch). Every rank starts from the same files, so resuming works as in one process.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from semcom.analog.store import fit_linear_code
from semcom.channels import Channel
from semcom.data import ImageDataset, load_dataset, without_mnist_sample
from semcom.distributed import SINGLE, ProcessGroup, process_group
from semcom.evaluation import StreamPerSnr, evaluate_system
from semcom.jscc.anchored import AnchoredJscc, build_jscc
from semcom.jscc.card import epoch_card, export, public_card, run_card, test_card
from semcom.jscc.checkpoint import load_checkpoint, save_checkpoint
from semcom.jscc.config import TrainConfig
from semcom.jscc.epoch import EpochResult, EpochTrainer, Plan, TimeBudget
from semcom.jscc.model import MultiResJscc
from semcom.jscc.run_state import RunFolder, RunState, checkpoint_score
from semcom.jscc.system import JsccSystem

__all__ = ["EpochReport", "TrainConfig", "TrainingImages", "build_model", "evaluate", "finish_run", "public_card",
           "resolve_device", "train"]

_DATA_NOTES = {
    "cifar10": "CIFAR-10, official binary files under the data root.",
    "mnist": "MNIST, official IDX files (exact pixels).",
}


@dataclass(frozen=True)
class TrainingImages:
    """Images for :func:`train` given in Python instead of by ``cfg.dataset`` (a notebook's own split).

    ``train``: the training images; the validation images are held out of them by the run's usual rule
    (``cfg.validation`` images, at most a fifth, drawn with ``cfg.validation_seed``). ``test``: the
    images the best checkpoint is scored on at the end (never used to choose anything). ``note``:
    what the card says about where they come from.
    """

    train: ImageDataset
    test: ImageDataset
    note: str = "images given to semcom.jscc.train in Python"


@dataclass(frozen=True)
class EpochReport:
    """What :func:`train` tells an ``on_epoch`` callback after each epoch (main process only).

    Attributes:
        epoch: epochs done (fractional for one cut short by the time budget).
        steps: optimiser steps done in the run so far.
        seconds: wall time of this epoch, validation included.
        step_mse: this epoch's training MSE per step and decoder, ``[steps][layers]``.
        validation: :func:`evaluate`'s numbers on the validation images at ``cfg.eval_snrs``.
        score: the checkpoint score of those numbers (higher is better).
        best: whether this epoch became the best checkpoint.
    """

    epoch: float
    steps: int
    seconds: float
    step_mse: list[list[float]]
    validation: dict[str, Any]
    score: float
    best: bool


def train(cfg: TrainConfig, command: str | None = None, *, images: TrainingImages | None = None,
          on_epoch: Callable[[EpochReport], None] | None = None) -> Path:
    """Train (or resume) a model as ``cfg`` says; returns the path of the best checkpoint.

    Writes ``cfg.out/{latest,best}.safetensors`` + ``.json`` cards after every epoch, and, when
    ``cfg.zoo_name`` is set, copies each new best into the zoo directory under that name (float16).
    ``cfg.out/FINISHED`` marks a run that did all its epochs (not one stopped by ``max_minutes``).
    Under ``torchrun`` every process calls it (see the module docstring); all return the same path.

    ``images`` replaces the dataset ``cfg`` names (``cfg.dataset`` is then only the name on the card);
    ``on_epoch`` is called with an :class:`EpochReport` after every epoch (for loss curves).
    """
    cfg = TrainConfig.model_validate(cfg.model_dump())  # checked again: fields may have been set since
    threads_before = torch.get_num_threads()
    torch.set_num_threads(cfg.threads)
    out = Path(cfg.out)
    fresh = not out.exists()
    with process_group(resolve_device(cfg.device)) as (group, device):
        try:
            return _run(cfg, command, device, group, images, on_epoch)
        except BaseException:
            if group.main and fresh and out.is_dir() and not any(out.iterdir()):
                out.rmdir()  # a run that failed before writing anything leaves no empty folder behind
            raise
        finally:
            torch.set_num_threads(threads_before)  # a library call must not change the caller's setting


def build_model(cfg: TrainConfig, image_shape: Sequence[int], num_classes: int) -> MultiResJscc:
    """The model ``cfg`` describes for images of ``image_shape`` ``(C, H, W)`` (anchored: not yet anchored)."""
    return build_jscc(cfg.architecture.config_for(image_shape, num_classes))


@dataclass(frozen=True)
class _Data:
    """The images of a run: training, the validation images scored each epoch, the test split."""

    train: ImageDataset
    evaluation: ImageDataset
    test: ImageDataset
    info: dict[str, Any]


def _run(cfg: TrainConfig, command: str | None, device: str, group: ProcessGroup = SINGLE,
         images: TrainingImages | None = None, on_epoch: Callable[[EpochReport], None] | None = None) -> Path:
    torch.manual_seed(cfg.seed)
    folder = RunFolder(cfg.out)
    log = _log if group.main else _quiet
    data = _prepare_data(cfg, images)
    model = _start_model(cfg, data.train)
    plan = Plan.of(cfg, len(data.train), model.num_layers)
    resumed = folder.resume(model) if cfg.resume else None
    model, state = resumed or (model, RunState())
    if isinstance(model, AnchoredJscc) and resumed is None and not cfg.init:
        code, fit_card = fit_linear_code(data.train, model.linear.config)
        model.anchor_on(code)
        log(f"anchored on a {code.config.transform.upper()} linear code fitted on {len(data.train)} training "
             f"images in {fit_card['fit_seconds']} s")
    model.to(device)
    trainer = EpochTrainer(model, cfg, plan, state, device, group)
    if resumed is not None:
        log(f"resumed {folder.out} at epoch {state.epoch}/{plan.total_epochs} (step {state.step})")
    processes = f", {group.world_size} processes ({group.backend})" if group.joined else ""
    log(
        f"training {model.config.name} {model.config.layer_symbols} symbols, "
        f"{sum(p.numel() for p in model.parameters())} parameters, {len(data.train)} images, "
        f"{plan.steps_per_epoch} steps/epoch, {plan.total_epochs} epochs, mode {cfg.mode}{processes}"
    )
    card = run_card(cfg, model, data.info, command, group.describe() if group.joined else None)
    run = _Run(cfg, folder, data, trainer, card, TimeBudget(cfg.max_minutes, cfg.mode == "joint", state.progress),
               group, on_epoch)
    stopped = False
    while state.epoch < plan.total_epochs and not stopped:
        stopped = run.epoch(state)
    done_all = state.epoch >= plan.total_epochs
    if group.main:
        if (done_all or stopped) and cfg.final_eval_count != 0 and folder.best.is_file():
            # a run cut by its time budget ends annealed too: it gets its test numbers (and stays resumable)
            _final_test(cfg, folder.out, data.test, device)
        if done_all:
            folder.finish(state.epoch)
    group.barrier()  # the others return once rank 0 has written everything
    return folder.best


@dataclass
class _Run:
    """A run under way: its options, folder, data, trainer, the card's fixed part and the time budget."""

    cfg: TrainConfig
    folder: RunFolder
    data: _Data
    trainer: EpochTrainer
    card: dict[str, Any]
    budget: TimeBudget
    group: ProcessGroup = SINGLE
    on_epoch: Callable[[EpochReport], None] | None = None
    seconds: list[float] = field(default_factory=list)  # wall time of each whole epoch

    def epoch(self, state: RunState) -> bool:
        """Train epoch ``state.epoch``, score it and save; returns whether the time budget stopped it."""
        t0 = time.monotonic()
        result = self.trainer.run_epoch(self.data.train, state, self.budget)
        if result.stopped:  # mid-epoch: keep the weights, redo this epoch's data order on resume
            log = _log if self.group.main else _quiet
            log(f"time budget of {self.cfg.max_minutes} min reached in epoch {state.epoch + 1} "
                f"({result.steps} steps); stopping (resumable)")
            if result.steps == 0:
                return True
        else:
            state.epoch += 1
            self.seconds.append(time.monotonic() - t0)
        if self.group.main:
            self._save(state, result, t0)
        self.group.barrier()  # the next epoch (or a resume) starts from what rank 0 wrote
        return result.stopped

    def _save(self, state: RunState, result: EpochResult, t0: float) -> None:
        """Score the epoch on the validation images; write ``latest``, and ``best`` (and the zoo copy) if
        better (successive mode: always, each stage's last epoch being the one to keep)."""
        cfg, model, plan = self.cfg, self.trainer.model, self.trainer.plan
        metrics = evaluate(model, self.data.evaluation, cfg.channel.build(0, self.trainer.device), cfg.eval_snrs)
        score = checkpoint_score(metrics, cfg.heads_only)
        epochs = round(state.epoch + result.steps / plan.steps_per_epoch, 2) if result.stopped else state.epoch
        card = epoch_card(self.card, cfg, metrics, epochs=epochs, steps=state.step, epoch_seconds=self.seconds,
                          progress=self.budget.progress if self.budget.timed else None)
        self.folder.save_latest(model, card, self.trainer.optimizer, state, score)
        _log(
            f"epoch {card['epochs']}/{plan.total_epochs} {time.monotonic() - t0:.0f}s; "
            f"validation PSNR by layer at {cfg.eval_snrs} dB: "
            f"{metrics['psnr_db']}; acc {metrics['accuracy']}"
        )
        best = score > state.best or cfg.mode == "successive"
        if best:
            state.best = score
            self.folder.save_best(model, card)
            if cfg.zoo_name:
                export(model, cfg, card)
        if self.on_epoch is not None:
            self.on_epoch(EpochReport(card["epochs"], state.step, time.monotonic() - t0, result.step_mse, metrics,
                                      score, best))


def _prepare_data(cfg: TrainConfig, images: TrainingImages | None = None) -> _Data:
    """The run's images; a small training set (a test, a quick probe) gives at most a fifth of itself to
    validation."""
    if images is None:
        train_ds, test_ds, info = _load_data(cfg)
    else:
        train_ds = images.train.subset(cfg.train_count) if cfg.train_count else images.train
        test_ds = images.test
        info = {"name": cfg.dataset, "images": len(train_ds), "note": images.note}
    held = min(cfg.validation, max(1, len(train_ds) // 5))
    train_ds, val_ds = train_ds.split_validation(held, cfg.validation_seed)
    info["images"] = len(train_ds)
    info["validation"] = {
        "images": len(val_ds),
        "seed": cfg.validation_seed,
        "rule": "ImageDataset.split_validation: a seeded random draw from the training images (at most a "
        "fifth of them), held out from training; it picks the best checkpoint",
    }
    return _Data(train_ds, val_ds.subset(min(cfg.eval_count, len(val_ds))), test_ds, info)


def _start_model(cfg: TrainConfig, train_ds: ImageDataset) -> MultiResJscc:
    """The model a run starts from: ``cfg.init``'s checkpoint, or a new one; checked against the data."""
    model = load_checkpoint(cfg.init) if cfg.init else build_model(cfg, train_ds.shape, train_ds.num_classes)
    if tuple(model.config.image_shape) != tuple(train_ds.shape):
        raise ValueError(f"model expects images {model.config.image_shape}, dataset has {train_ds.shape}")
    if cfg.layer_weights is not None and len(cfg.layer_weights) != model.num_layers:
        raise ValueError(f"layer_weights needs {model.num_layers} values")
    return model



def resolve_device(name: str) -> str:
    """``"auto"`` -> ``"cuda"`` when PyTorch sees a GPU, else ``"cpu"``; other names checked and kept."""
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name not in ("cpu", "cuda") and not name.startswith("cuda:"):
        raise ValueError(f"device must be 'cpu', 'cuda' or 'auto', not {name!r}")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {name!r}: PyTorch sees no CUDA GPU here (use --device cpu or auto)")
    return name



@torch.no_grad()
def evaluate(
    model: MultiResJscc,
    dataset: ImageDataset,
    channel: Channel,
    snrs_db: Sequence[float],
    batch_size: int = 500,
    seed: int = 1234,
) -> dict[str, Any]:
    """Per-layer PSNR (mean per image, its std, pooled) and top-1 accuracy at each SNR.

    Returns ``{"snr_db": [...], "count": N, "psnr_db": [[layer 1 per SNR], ...], "psnr_std_db": ...,
    "psnr_pooled_db": ..., "accuracy": [[...], ...]}`` (accuracy lists are empty without a semantic
    head). Pooled PSNR is ``10 log10(1 / mean MSE)`` over all images.

    The loop is :func:`semcom.evaluation.evaluate_system` on the model as a
    :class:`~semcom.jscc.system.JsccSystem`: at the i-th SNR the channel restarts at ``seed + i``
    and runs on over the batches.
    """
    device = next(model.parameters()).device
    result = evaluate_system(JsccSystem(model, device=str(device)), dataset, channel, snrs_db,
                             batch_size=batch_size, seeds=StreamPerSnr(seed), device=device)
    stats = [[result.summary(si, r) for si in range(len(snrs_db))] for r in range(1, model.num_layers + 1)]
    has_head = model.config.num_classes > 0
    return {
        "snr_db": [float(s) for s in snrs_db],
        "count": len(dataset),
        "psnr_db": [[round(s.psnr.mean, 3) for s in layer] for layer in stats],
        "psnr_std_db": [[round(s.psnr.std, 3) for s in layer] for layer in stats],
        "psnr_pooled_db": [[round(s.psnr_pooled, 3) for s in layer] for layer in stats],
        "accuracy": [[round(s.accuracy.mean, 4) for s in layer] for layer in stats] if has_head else [],
    }



def _load_data(cfg: TrainConfig) -> tuple[ImageDataset, ImageDataset, dict[str, Any]]:
    train_ds = load_dataset(cfg.dataset, cfg.split, root=cfg.data_root)
    info: dict[str, Any] = {"name": cfg.dataset, "split": cfg.split, "official_size": len(train_ds)}
    if cfg.exclude_mnist_sample:
        train_ds = without_mnist_sample(train_ds)
        info["excluded"] = (
            "the 5,000 images of the offline sample 'mnist-sample' (first 500 training images "
            "of each digit, semcom.data.mnist_sample_indices)"
        )
    if cfg.train_count:
        train_ds = train_ds.subset(cfg.train_count)
    info["images"] = len(train_ds)
    info["note"] = " ".join(n for n in (_DATA_NOTES.get(cfg.dataset, ""), cfg.data_note or "") if n)
    test_ds = load_dataset(cfg.dataset, "test", root=cfg.data_root)
    return train_ds, test_ds, info


def _final_test(cfg: TrainConfig, out: Path, test_ds: ImageDataset, device: str = "cpu") -> dict[str, Any]:
    """Score ``out/best`` on the test split; write the numbers into its card (and the zoo copy)."""
    best_model = load_checkpoint(out / "best.safetensors", map_location=device)
    best_card = json.loads((out / "best.json").read_text())
    ds = test_ds if cfg.final_eval_count is None else test_ds.subset(min(cfg.final_eval_count, len(test_ds)))
    metrics = evaluate(best_model, ds, cfg.channel.build(0, device), cfg.eval_snrs)
    card = test_card(best_card, cfg, metrics, len(ds), len(test_ds))
    save_checkpoint(best_model, out / "best.safetensors", card)
    if cfg.zoo_name:
        export(best_model, cfg, card)
    _log(f"final test PSNR by layer: {metrics['psnr_db']}; accuracy {metrics['accuracy']}")
    return card


def finish_run(out: str | Path, zoo_name: str | None = None, zoo_dir: str | None = None,
               data_root: str | None = None) -> dict[str, Any]:
    """Score the best checkpoint of an earlier run on the whole test split and write it into its card.

    For a run stopped before its final evaluation: the options come from the card's ``train_config``
    (``data_root`` and the zoo target may be given anew). Returns the new card.
    """
    out = Path(out)
    if not (out / "best.json").is_file():
        raise ValueError(f"{out}: no best checkpoint (best.safetensors + best.json) to finish")
    recorded = dict(json.loads((out / "best.json").read_text()).get("train_config") or {})
    known = TrainConfig.flat_fields()
    options = {k: v for k, v in recorded.items() if k in known}
    options.update(final_eval_count=None, zoo_name=zoo_name, zoo_dir=zoo_dir)
    if data_root is not None:
        options["data_root"] = data_root
    cfg = TrainConfig.from_dict(options)
    test_ds = load_dataset(cfg.dataset, "test", root=cfg.data_root)
    return _final_test(cfg, out, test_ds, resolve_device(cfg.device))


def _quiet(msg: str) -> None:
    """The log of a rank other than 0: silent (rank 0 speaks for the run)."""


def _log(msg: str) -> None:
    print(f"[{datetime.now(UTC).strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)
