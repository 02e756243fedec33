"""Training and evaluation of multi-resolution JSCC models.

Loss (joint mode), for decoders D_1..D_L on a batch, SNR drawn per image:

    L = sum_r w_r * MSE(x, x_hat_r) + ce_weight * sum_r CE(y, logits_r)

With ``loss="psnr"`` each image's squared error is weighted by ``mean_batch(MSE) / MSE_image``
(weights held constant in the backward pass): the gradient is then that of the mean PSNR over the
images (the metric the results report), scaled to the size of the plain MSE gradient so that
``ce_weight`` keeps its meaning. Plain MSE lets the worst images (low SNR) dominate; this gives every
image the same weight in dB.

Successive mode trains layer by layer: stage 1 trains the encoder trunk, layer 1's head and D_1;
stage r > 1 trains only layer r's head and D_r, everything earlier frozen, on loss term r only
(the layered training of "Semantic Multi-Resolution Communications", Mortaheb et al., 2023).

Optimiser: Adam, linear warm-up then cosine decay to ``lr * lr_min_factor`` over all planned steps
(per stage in successive mode). Checkpoints after every epoch in ``out``: ``latest.*`` and
``best.*`` (best mean PSNR over the evaluation SNRs and layers on the held-out evaluation images);
``latest.train.pt`` resumes an interrupted run at the next epoch (``resume=True``). Data order,
SNR draws and channel noise are seeded per epoch, so a resumed run repeats what an uninterrupted
run would have done.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from semcom.channels import Channel, build_channel
from semcom.data import ImageDataset, load_dataset, without_mnist_sample
from semcom.errors import CheckpointError
from semcom.evaluation import StreamPerSnr, evaluate_system
from semcom.jscc.anchored import AnchoredJscc, build_jscc
from semcom.jscc.checkpoint import load_checkpoint, save_checkpoint, total_epochs
from semcom.jscc.config import JsccConfig, split_symbols, symbols_for_ratio
from semcom.jscc.model import MultiResJscc
from semcom.jscc.system import JsccSystem
from semcom.metrics import psnr
from semcom.storage import sha256_file

__all__ = ["TrainConfig", "build_model", "evaluate", "finish_run", "public_card", "resolve_device", "train"]

_DATA_NOTES = {
    "cifar10": "CIFAR-10, official binary files under the data root.",
    "mnist": "MNIST, official IDX files (exact pixels).",
}


def public_card(card: dict[str, Any]) -> dict[str, Any]:
    """``card`` without the training machine's data path: ``--data-root PATH`` reads ``--data-root DATA``.

    Cards ship with models; the folder a dataset sat in on the training machine means nothing to a
    user, who has a data root of their own.
    """
    out = json.loads(json.dumps(card))
    root = (out.get("train_config") or {}).get("data_root")
    if root:
        out["train_config"]["data_root"] = "DATA"
        if isinstance(out.get("command"), str):
            out["command"] = out["command"].replace(f"--data-root {root}", "--data-root DATA")
    if isinstance(out.get("init_from"), dict):
        out["init_from"] = public_card(out["init_from"])
    return out


@dataclass
class TrainConfig:
    """Everything a training run needs (the ``semcom train`` options and YAML keys, same names).

    Architecture: ``layers`` layers splitting ``floor(H W C rho)`` symbols (see
    :func:`~semcom.jscc.config.split_symbols`) unless ``layer_symbols`` is given. ``init`` fine-tunes
    from a checkpoint (its architecture wins over the architecture options). ``arch="anchored"``
    fits the linear analog code (``anchor_*`` options) on the training images first and starts from it.

    Data: ``validation`` images drawn from the training split (seed ``validation_seed``) are held out;
    they pick the best checkpoint (the first ``eval_count`` of them are scored after each epoch). The
    test split is only scored at the end (``final_eval_count`` images, all by default).

    ``device``: ``"cpu"``, ``"cuda"`` or ``"auto"`` (CUDA when available); model, data and channel
    live there.
    """

    dataset: str = "mnist"
    data_root: str | None = None
    split: str = "train"
    exclude_mnist_sample: bool = False
    train_count: int | None = None
    layers: int = 3
    rho: str = "1/6"
    layer_symbols: list[int] | None = None
    enc_width: int = 32
    dec_width: int = 32
    enc_blocks: int = 1
    dec_blocks: int = 1
    hires_blocks: int = 0
    linear_skip: bool = False
    gain_pilot: bool = False
    output: str = "sigmoid"
    anchor_transform: str = "klt"
    anchor_allocation: str = "mmse"
    anchor_design_snr: float | None = 10.0
    anchor_power: str = "average"
    snr_info: bool = True
    arch: str = "conv"
    channel: str = "awgn"
    block: str = "image"
    csi: str = "perfect"
    k_factor: float = 1.0
    snr_min: float = 0.0
    snr_max: float = 20.0
    mode: str = "joint"
    loss: str = "mse"
    freeze_encoder: bool = False
    heads_only: bool = False
    epochs: int = 5
    batch_size: int = 64
    lr: float = 1e-3
    lr_min_factor: float = 0.05
    warmup_steps: int = 100
    layer_weights: list[float] | None = None
    ce_weight: float = 0.01
    augment_flip: bool = False
    seed: int = 0
    threads: int = 2
    out: str = "runs/jscc"
    resume: bool = True
    init: str | None = None
    eval_count: int = 1000
    validation: int = 2000
    validation_seed: int = 0
    device: str = "cpu"
    eval_snrs: list[float] = field(default_factory=lambda: [0.0, 5.0, 10.0, 15.0, 20.0])
    final_eval_count: int | None = None
    max_minutes: float | None = None
    zoo_name: str | None = None
    zoo_dir: str | None = None
    progress: bool = True
    data_note: str | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        bad = sorted(set(data) - known)
        if bad:
            raise ValueError(f"unknown training options: {', '.join(bad)}; known: {', '.join(sorted(known))}")
        return cls(**data)

    def validate(self) -> None:
        if self.mode not in ("joint", "successive"):
            raise ValueError(f"mode must be 'joint' or 'successive', not {self.mode!r}")
        if self.heads_only and self.ce_weight <= 0:
            raise ValueError("heads_only trains on the cross-entropy terms: ce_weight must be > 0")
        if self.heads_only and self.mode != "joint":
            raise ValueError("heads_only trains the semantic heads of all decoders at once: use mode 'joint'")
        if self.loss not in ("mse", "psnr"):
            raise ValueError(f"loss must be 'mse' or 'psnr', not {self.loss!r}")
        if self.snr_min > self.snr_max:
            raise ValueError(f"snr_min {self.snr_min} > snr_max {self.snr_max}")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("epochs and batch_size must be positive")
        if (
            self.layer_weights is not None
            and self.layer_symbols is not None
            and len(self.layer_weights) != len(self.layer_symbols)
        ):
            raise ValueError("layer_weights needs one weight per layer")


def build_model(cfg: TrainConfig, image_shape: Sequence[int], num_classes: int) -> MultiResJscc:
    """The model ``cfg`` describes for images of ``image_shape`` ``(C, H, W)`` (anchored: not yet anchored)."""
    if cfg.layer_symbols:
        sizes = tuple(cfg.layer_symbols)
    else:
        sizes = split_symbols(symbols_for_ratio(image_shape, cfg.rho), cfg.layers)
    name = "deep-jscc" if len(sizes) == 1 else "mr-jscc"
    anchored = cfg.arch == "anchored"
    anchor = {
        "transform": cfg.anchor_transform,
        "allocation": cfg.anchor_allocation,
        "design_snr_db": cfg.anchor_design_snr,
        "power": cfg.anchor_power,
    }
    jc = JsccConfig(
        tuple(image_shape),
        sizes,
        num_classes=num_classes,
        enc_width=cfg.enc_width,  # type: ignore[arg-type]
        dec_width=cfg.dec_width,
        enc_blocks=cfg.enc_blocks,
        dec_blocks=cfg.dec_blocks,
        hires_blocks=cfg.hires_blocks,
        linear_skip=cfg.linear_skip,
        gain_pilot=cfg.gain_pilot,
        output=cfg.output,
        snr_info=cfg.snr_info,
        arch=cfg.arch,
        name=f"anchored-{name}" if anchored else name,
        anchor=anchor if anchored else None,
    )
    return build_jscc(jc)


def resolve_device(name: str) -> str:
    """``"auto"`` -> ``"cuda"`` when PyTorch sees a GPU, else ``"cpu"``; other names checked and kept."""
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name not in ("cpu", "cuda") and not name.startswith("cuda:"):
        raise ValueError(f"device must be 'cpu', 'cuda' or 'auto', not {name!r}")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {name!r}: PyTorch sees no CUDA GPU here (use --device cpu or auto)")
    return name


def _make_channel(cfg: TrainConfig, seed: int, device: str = "cpu") -> Channel:
    k_factor = cfg.k_factor if cfg.channel == "rician" else None
    return build_channel(cfg.channel, block=cfg.block, csi=cfg.csi, seed=seed, k_factor=k_factor, device=device)


def _flip(images: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    mask = torch.rand(images.shape[0], generator=gen) < 0.5
    return torch.where(mask.view(-1, 1, 1, 1), images.flip(-1), images)


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


def _reconstruction_loss(decoded: torch.Tensor, images: torch.Tensor, kind: str) -> torch.Tensor:
    """Mean squared error, or its PSNR-weighted form (see the module docstring)."""
    per_image = (decoded - images).square().flatten(1).mean(1)
    if kind == "psnr":
        weights = (per_image.mean() / per_image.clamp_min(1e-10)).detach()
        return (weights * per_image).mean()
    return per_image.mean()


def _score(metrics: dict[str, Any], heads_only: bool = False) -> float:
    """What "best checkpoint" means: mean PSNR, or mean accuracy when only the heads train."""
    return float(np.mean(metrics["accuracy" if heads_only else "psnr_db"]))


def _lr_at(cfg: TrainConfig, step: int, total: int, progress: float = 0.0) -> float:
    """Warm-up, then cosine decay over ``total`` steps, or further along if ``progress`` (0..1) says so."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    t = min(1.0, max(progress, (step - cfg.warmup_steps) / max(1, total - cfg.warmup_steps)))
    lo = cfg.lr * cfg.lr_min_factor
    return lo + 0.5 * (cfg.lr - lo) * (1.0 + math.cos(math.pi * t))


def _stage_params(model: MultiResJscc, cfg: TrainConfig, stage: int) -> list[nn.Parameter]:
    """Trainable parameters: everything (joint) or layer ``stage``'s part (successive).

    With ``heads_only`` only the decoders' semantic heads are trained (on the cross-entropy terms;
    the reconstruction terms do not depend on them), and the best checkpoint is the one with the best
    mean accuracy. With ``freeze_encoder`` only decoders are trained: the transmitted symbols stay bit-identical, so
    receivers trained on them (and users served by the same broadcast) stay valid.
    """
    if cfg.heads_only:  # images and symbols stay bit-identical; only the class logits change
        parts: list[nn.Module] = model.semantic_heads()
        if not parts:
            raise ValueError("heads_only: this model has no semantic heads (num_classes = 0)")
    elif cfg.mode == "joint":
        parts = [model] if not cfg.freeze_encoder else list(model.decoders)
    else:
        parts = [model.decoders[stage]]
        if not cfg.freeze_encoder:
            parts.append(model.heads[stage])
            if stage == 0:
                parts.append(model.trunk)
    params = [p for m in parts for p in m.parameters()]
    keep = {id(p) for p in params}
    for p in model.parameters():
        p.requires_grad_(id(p) in keep)
    return params


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


def _save_state(path: Path, opt: torch.optim.Optimizer, epoch: int, step: int, best: float, progress: float) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(
        {
            "optimizer": opt.state_dict(),
            "epoch": torch.tensor(epoch),
            "step": torch.tensor(step),
            "best": torch.tensor(best),
            "progress": torch.tensor(progress),
        },
        tmp,
    )
    tmp.replace(path)


def _log(msg: str) -> None:
    print(f"[{datetime.now(UTC).strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def train(cfg: TrainConfig, command: str | None = None) -> Path:
    """Train (or resume) a model as ``cfg`` says; returns the path of the best checkpoint.

    Writes ``cfg.out/{latest,best}.safetensors`` + ``.json`` cards after every epoch, and, when
    ``cfg.zoo_name`` is set, copies each new best into the zoo directory under that name (float16).
    ``cfg.out/FINISHED`` marks a run that did all its epochs (not one stopped by ``max_minutes``).
    """
    cfg.validate()
    threads_before = torch.get_num_threads()
    torch.set_num_threads(cfg.threads)
    out = Path(cfg.out)
    fresh = not out.exists()
    try:
        return _train(cfg, command)
    except BaseException:
        if fresh and out.is_dir() and not any(out.iterdir()):
            out.rmdir()  # a run that failed before writing anything leaves no empty folder behind
        raise
    finally:
        torch.set_num_threads(threads_before)  # a library call must not change the caller's setting


def _train(cfg: TrainConfig, command: str | None) -> Path:
    from tqdm import tqdm

    torch.manual_seed(cfg.seed)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    device = resolve_device(cfg.device)
    train_ds, test_ds, data_info = _load_data(cfg)
    # a small training set (a test, a quick probe) gives at most a fifth of itself to validation
    held = min(cfg.validation, max(1, len(train_ds) // 5))
    train_ds, val_ds = train_ds.split_validation(held, cfg.validation_seed)
    data_info["images"] = len(train_ds)
    data_info["validation"] = {
        "images": len(val_ds),
        "seed": cfg.validation_seed,
        "rule": "ImageDataset.split_validation: a seeded random draw from the training images (at most a "
        "fifth of them), held out from training; it picks the best checkpoint",
    }
    eval_ds = val_ds.subset(min(cfg.eval_count, len(val_ds)))
    image_shape, num_classes = train_ds.shape, train_ds.num_classes

    if cfg.init:
        model = load_checkpoint(cfg.init)
    else:
        model = build_model(cfg, image_shape, num_classes)
    if tuple(model.config.image_shape) != tuple(image_shape):
        raise ValueError(f"model expects images {model.config.image_shape}, dataset has {image_shape}")
    n_layers = model.num_layers
    weights = cfg.layer_weights or [1.0] * n_layers
    if len(weights) != n_layers:
        raise ValueError(f"layer_weights needs {n_layers} values")

    steps_per_epoch = len(train_ds) // cfg.batch_size
    stages = n_layers if cfg.mode == "successive" else 1
    total_epochs = cfg.epochs * stages
    epoch, step, best, progress0 = 0, 0, -math.inf, 0.0
    state_path = out / "latest.train.pt"
    resumed = False
    if cfg.resume and state_path.is_file() and (out / "latest.safetensors").is_file():
        model = load_checkpoint(out / "latest.safetensors", expect=model.config)
        try:
            st = torch.load(state_path, weights_only=True, map_location="cpu")
            epoch, step, best = int(st["epoch"]), int(st["step"]), float(st["best"])
        except Exception as exc:  # truncated, corrupt or foreign: never suggest unpickling it
            raise CheckpointError(f"{state_path}: not a readable training state ({type(exc).__name__}); "
                                  "start the run again with --restart, or delete the file") from None
        progress0 = float(st.get("progress", 0.0))
        resumed = True
    if isinstance(model, AnchoredJscc) and not resumed and not cfg.init:
        from semcom.analog.store import fit_linear_code

        code, fit_card = fit_linear_code(train_ds, model.linear.config)
        model.anchor_on(code)
        _log(f"anchored on a {code.config.transform.upper()} linear code fitted on {len(train_ds)} training "
             f"images in {fit_card['fit_seconds']} s")
    model.to(device)
    stage = min(epoch // cfg.epochs, stages - 1) if cfg.mode == "successive" else 0
    params = _stage_params(model, cfg, stage)
    opt = torch.optim.Adam(params, lr=cfg.lr)
    if resumed and not (cfg.mode == "successive" and epoch % cfg.epochs == 0):
        opt.load_state_dict(st["optimizer"])
    if resumed:
        _log(f"resumed {out} at epoch {epoch}/{total_epochs} (step {step})")
    n_params = sum(p.numel() for p in model.parameters())
    _log(
        f"training {model.config.name} {model.config.layer_symbols} symbols, {n_params} parameters, "
        f"{len(train_ds)} images, {steps_per_epoch} steps/epoch, {total_epochs} epochs, mode {cfg.mode}"
    )

    card_base: dict[str, Any] = {
        "name": cfg.zoo_name or out.name,
        "description": f"{'multi-resolution' if n_layers > 1 else 'single-layer'} deep JSCC, "
        f"{n_layers} layers, "
        f"{cfg.dataset}, {cfg.channel}",
        "dataset": data_info,
        "channel": {
            "name": cfg.channel,
            "block": cfg.block,
            "csi": cfg.csi,
            **({"k_factor": cfg.k_factor} if cfg.channel == "rician" else {}),
        },
        "training_snr_db": {
            "distribution": "uniform per image" if cfg.snr_min < cfg.snr_max else "fixed",
            "min": cfg.snr_min,
            "max": cfg.snr_max,
        },
        "snr_side_information": cfg.snr_info and model.config.snr_info,
        "usage": (
            "one model for all SNRs: the decoders are told each layer's SNR"
            if model.config.snr_info
            else "decoders do not see the SNR"
        ),
        "bandwidth_ratio_cumulative": [round(r, 5) for r in model.config.bandwidth_ratios()],
        "layer_symbols": list(model.config.layer_symbols),
        "mode": cfg.mode,
        "command": command or " ".join(sys.argv),
        "train_config": _effective_config(cfg, model),
        "init_from": _init_info(cfg.init),
    }
    t_start = time.monotonic()
    # With a time budget (joint mode) the cosine schedule follows whichever is further along, the
    # planned steps or the wall clock, so a run cut short by the budget still ends annealed; the
    # budget keeps 8% (at least 30 s) for the evaluation and checkpoints of the last epoch.
    # (a budget that the reserve eats entirely stops before the first step)
    budget_s = None if cfg.max_minutes is None else cfg.max_minutes * 60 * 0.92 - 30
    timed = budget_s is not None and cfg.mode == "joint"
    progress = progress0
    stopped = False
    epoch_times: list[float] = []
    chan = _make_channel(cfg, cfg.seed, device)
    while epoch < total_epochs and not stopped:
        new_stage = min(epoch // cfg.epochs, stages - 1) if cfg.mode == "successive" else 0
        if new_stage != stage:
            stage = new_stage
            params = _stage_params(model, cfg, stage)
            opt = torch.optim.Adam(params, lr=cfg.lr)
        stage_total = steps_per_epoch * cfg.epochs if cfg.mode == "successive" else steps_per_epoch * total_epochs
        stage_step0 = stage * steps_per_epoch * cfg.epochs if cfg.mode == "successive" else 0
        t0 = time.monotonic()
        model.train()
        gen = torch.Generator().manual_seed(cfg.seed * 100_003 + epoch)
        chan.seed(cfg.seed * 1_000_003 + epoch)
        run_psnr = [0.0] * n_layers
        run_acc = [0.0] * n_layers
        done = 0
        bar = tqdm(
            train_ds.batches(cfg.batch_size, shuffle=True, generator=gen, drop_last=True),
            total=steps_per_epoch,
            desc=f"epoch {epoch + 1}/{total_epochs}",
            disable=not cfg.progress,
            mininterval=1.0 if sys.stderr.isatty() else 30.0,
            dynamic_ncols=True,
        )
        for images, labels in bar:
            if budget_s is not None:
                used = time.monotonic() - t_start
                if used > budget_s:
                    stopped = True
                    break
                if timed:
                    progress = max(progress, progress0 + (1.0 - progress0) * used / max(budget_s, 1e-3))
            if cfg.augment_flip:
                images = _flip(images, gen)
            images, labels = images.to(device, non_blocking=True), labels.to(device, non_blocking=True)
            for g in opt.param_groups:
                g["lr"] = _lr_at(cfg, step - stage_step0, stage_total, progress)
            snr = cfg.snr_min + (cfg.snr_max - cfg.snr_min) * torch.rand(images.shape[0], generator=gen)
            snr = snr.to(device)
            r = stage + 1 if cfg.mode == "successive" else n_layers
            outs = model(images, chan, snr, resolution=r)
            if cfg.mode == "successive":
                outs = outs[-1:]
            loss = images.new_zeros(())
            for o in outs:
                loss = loss + weights[o.layer - 1] * _reconstruction_loss(o.images, images, cfg.loss)
                if o.logits is not None and cfg.ce_weight > 0:
                    loss = loss + cfg.ce_weight * nn.functional.cross_entropy(o.logits, labels)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            done += 1
            with torch.no_grad():
                for o in outs:
                    i = o.layer - 1
                    p = float(psnr(images, o.images.detach()).mean())
                    run_psnr[i] = p if run_psnr[i] == 0 else 0.98 * run_psnr[i] + 0.02 * p
                    if o.logits is not None:
                        a = float((o.logits.argmax(1) == labels).float().mean())
                        run_acc[i] = 0.98 * run_acc[i] + 0.02 * a
            shown = [o.layer - 1 for o in outs]
            bar.set_postfix_str(
                " ".join(f"L{i + 1}:{run_psnr[i]:.2f}dB/{100 * run_acc[i]:.0f}%" for i in shown),
                refresh=False,
            )
        bar.close()
        if stopped:  # mid-epoch: keep the weights, redo this epoch's data order on resume
            _log(
                f"time budget of {cfg.max_minutes} min reached in epoch {epoch + 1} ({done} steps); "
                "stopping (resumable)"
            )
            if done == 0:
                break
        else:
            epoch += 1
            epoch_times.append(time.monotonic() - t0)
        metrics = evaluate(model, eval_ds, _make_channel(cfg, 0, device), cfg.eval_snrs)
        score = _score(metrics, cfg.heads_only)
        card = {
            **card_base,
            "epochs": round(epoch + done / steps_per_epoch, 2) if stopped else epoch,
            "steps": step,
            "seconds_per_epoch": round(float(np.mean(epoch_times)), 1) if epoch_times else None,
            "lr_schedule_progress": round(progress, 3) if timed else None,
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "validation": {
                **metrics,
                "dataset": cfg.dataset,
                "split": "validation",
                "images": f"first {metrics['count']} of the validation split",
                "channel": cfg.channel,
            },
        }
        save_checkpoint(model, out / "latest.safetensors", card)
        _save_state(state_path, opt, epoch, step, max(best, score), progress)
        _log(
            f"epoch {card['epochs']}/{total_epochs} {time.monotonic() - t0:.0f}s; "
            f"validation PSNR by layer at {cfg.eval_snrs} dB: "
            f"{metrics['psnr_db']}; acc {metrics['accuracy']}"
        )
        if score > best or cfg.mode == "successive":
            best = score
            save_checkpoint(model, out / "best.safetensors", card)
            if cfg.zoo_name:
                _export(model, cfg, card)
    done_all = epoch >= total_epochs
    if (done_all or stopped) and cfg.final_eval_count != 0 and (out / "best.safetensors").is_file():
        # a run cut by its time budget ends annealed too: it gets its test numbers (and stays resumable)
        _final_test(cfg, out, test_ds, device)
    if done_all:
        (out / "FINISHED").write_text(f"{epoch} epochs\n")
    return out / "best.safetensors"


def _final_test(cfg: TrainConfig, out: Path, test_ds: ImageDataset, device: str = "cpu") -> dict[str, Any]:
    """Score ``out/best`` on the test split; write the numbers into its card (and the zoo copy)."""
    best_model = load_checkpoint(out / "best.safetensors", map_location=device)
    best_card = json.loads((out / "best.json").read_text())
    ds = test_ds if cfg.final_eval_count is None else test_ds.subset(min(cfg.final_eval_count, len(test_ds)))
    metrics = evaluate(best_model, ds, _make_channel(cfg, 0, device), cfg.eval_snrs)
    keep = {
        k: v
        for k, v in best_card.items()
        if k not in ("architecture", "parameters", "weights_file", "size_bytes", "sha256", "storage_dtype")
    }
    keep["test"] = {
        **metrics,
        "dataset": cfg.dataset,
        "split": "test",
        "images": "all" if len(ds) == len(test_ds) else f"first {len(ds)}",
        "channel": cfg.channel,
    }
    save_checkpoint(best_model, out / "best.safetensors", keep)
    if cfg.zoo_name:
        _export(best_model, cfg, keep)
    _log(f"final test PSNR by layer: {metrics['psnr_db']}; accuracy {metrics['accuracy']}")
    return keep


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
    known = {f.name for f in fields(TrainConfig)}
    cfg = TrainConfig.from_dict({k: v for k, v in recorded.items() if k in known})
    cfg.final_eval_count = None
    cfg.zoo_name, cfg.zoo_dir = zoo_name, zoo_dir
    if data_root is not None:
        cfg.data_root = data_root
    test_ds = load_dataset(cfg.dataset, "test", root=cfg.data_root)
    return _final_test(cfg, out, test_ds, resolve_device(cfg.device))


def _effective_config(cfg: TrainConfig, model: MultiResJscc) -> dict[str, Any]:
    """``cfg`` as a dict, its architecture fields read off the model (with ``init`` the checkpoint's win)."""
    out = asdict(cfg)
    arch = model.config.to_dict()
    out.update({k: arch[k] for k in out.keys() & arch.keys()})  # the options that are JsccConfig fields
    out["layers"] = model.num_layers
    out["layer_symbols"] = list(model.config.layer_symbols)
    return out


def _init_info(init: str | None) -> dict[str, Any] | None:
    """Where a fine-tuned model started: the checkpoint, its name and its epochs (from its card)."""
    if not init:
        return None
    info: dict[str, Any] = {"path": init}
    if Path(init).is_file():
        info["sha256"] = sha256_file(init)
    card = Path(init).with_suffix(".json")
    if card.is_file():
        try:
            old = json.loads(card.read_text())
            info.update({"name": old.get("name"), "epochs": old.get("epochs"), "channel": old.get("channel")})
            info["total_epochs"] = total_epochs(old)
            info["heads_only"] = bool((old.get("train_config") or {}).get("heads_only"))
            # the whole recipe: the parent's own command and where it started from
            info["command"] = old.get("command")
            if old.get("init_from"):
                info["init_from"] = old["init_from"]
        except json.JSONDecodeError:
            pass
    return info


def _export(model: MultiResJscc, cfg: TrainConfig, card: dict[str, Any]) -> Path:
    from semcom.zoo import weights_dir

    target = Path(cfg.zoo_dir) if cfg.zoo_dir else weights_dir()
    return save_checkpoint(
        model, target / f"{cfg.zoo_name}.safetensors", public_card({**card, "name": cfg.zoo_name}),
        dtype=torch.float16,
    )
