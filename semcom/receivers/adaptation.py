"""Source-free adaptation of a trained receiver to a new channel.

After "Adversarial Alignment for Source Free Object Detection" (Chu, Li, Chen, Li, Li, AAAI 2023).
A receiver trained on one channel (the source, e.g. AWGN at 0-20 dB) meets receptions from another
(the target, e.g. Rayleigh block fading at a lower SNR). What adaptation may use: the trained
receiver and unlabeled target receptions (:class:`TargetReceptions`); no source data, no target
labels. The steps, as in the paper with a receiver in place of the detector:

1. **Variance split.** The source receiver predicts each target reception ``T`` times with dropout
   on (Monte Carlo dropout, "Dropout as a Bayesian Approximation", Gal and Ghahramani, 2016). The
   prediction variance of a reception is ``v = mean_r sum_c Var_t[p_t^r(c)]``: the variance over the
   ``T`` passes of its class probabilities, summed over classes and averaged over the class outputs
   ``class@r`` (:func:`mc_dropout_variance`). Ranked by ``v``, the receptions fall into a
   source-similar subset (a fraction ``source_fraction``) and a source-dissimilar one
   (:func:`variance_split`). A receiver without dropout gets it at adaptation time only: dropout of
   rate ``dropout`` on the output of every activation (:func:`dropout_active`); the saved receiver
   has none.
2. **Mean teacher.** Student and teacher start as copies of the source receiver. The teacher,
   without dropout, labels each reception with its most likely class where its confidence is at
   least ``threshold``; the student, with dropout on (its perturbed view of the same reception), is
   trained on those pseudo-labels (cross-entropy per class output, averaged over the batch with the
   unconfident receptions counting zero, as in FixMatch). After every step the teacher becomes an
   exponential moving average of the student, ``theta_T <- m theta_T + (1 - m) theta_S``
   (:func:`ema_update`, "Mean teachers are better role models", Tarvainen and Valpola, 2017). The
   adapted receiver is the teacher.
3. **Adversarial alignment.** A discriminator on the student's shared features (``outputs["shared"]``)
   learns to tell the two subsets apart (binary cross-entropy, source-similar = 1). Between the
   features and the discriminator sits a gradient-reversal layer (:class:`GradientReversal`,
   "Unsupervised Domain Adaptation by Backpropagation", Ganin and Lempitsky, 2015): identity forward,
   ``-lambda`` times the gradient backward, so the one step that teaches the discriminator also moves
   the student's features to make the subsets indistinguishable. With ``anchor=True`` (default, our
   choice: the paper does not say which subset moves) the reversed gradient reaches the student only
   through the source-dissimilar receptions; the source-similar features are held where they are,
   so the split's direction decides what moves toward what.
4. **Which end is source-like.** The paper reports that *larger* detection variance marks the
   source-similar images (higher recall). Whether that holds here is checked against an oracle
   (:func:`variance_oracle`): on block fading with perfect CSI, a reception with power gain
   ``|h|^2 = 1`` has exactly the distribution of an AWGN reception at the SNR the receiver is told
   (the LMMSE estimate is ``(x + conj(h) n) / (1 + N0)`` and ``conj(h) n`` is again ``CN(0, N0)``),
   and the further ``10 log10 |h|^2`` is from 0 dB, the further the reception is from anything the
   source receiver saw. ``source_like="auto"`` takes the end of the ranking that the oracle
   supports; the gain is channel state the receiver has with perfect CSI, never a label. Without
   fading (a lower-SNR AWGN target) there is no oracle and ``auto`` falls back to
   :data:`DEFAULT_SOURCE_LIKE`.

>>> receptions = target_receptions(encoder, images, "rayleigh", snr_db=(-5, 5))   # doctest: +SKIP
>>> result = adapt_receiver(source_receiver, receptions, epochs=3)               # doctest: +SKIP
>>> result.receiver, result.source_like, result.oracle                           # doctest: +SKIP
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field, field_validator
from scipy.stats import rankdata, spearmanr
from torch import nn
from torch.nn import functional as F

from semcom.channels.spec import ChannelSpec
from semcom.data import ImageDataset
from semcom.flat_config import FlatConfig
from semcom.receivers.base import SHARED, Received, Receiver, mlp
from semcom.receivers.checkpoint import TrainedReceiver, save_receiver
from semcom.receivers.training import Encoder, encode_dataset, receive
from semcom.receivers.weighting import make_weighting
from semcom.storage import card_path

__all__ = [
    "DEFAULT_SOURCE_LIKE",
    "AdaptConfig",
    "AdaptationResult",
    "GradientReversal",
    "SourceLike",
    "TargetReceptions",
    "adapt_receiver",
    "dropout_active",
    "ema_update",
    "grad_reverse",
    "mc_dropout_variance",
    "pseudo_label_loss",
    "save_adapted_receiver",
    "target_receptions",
    "variance_oracle",
    "variance_split",
]

SourceLike = Literal["low-variance", "high-variance"]

DEFAULT_SOURCE_LIKE: SourceLike = "high-variance"
"""The end of the variance ranking taken as source-similar when no oracle can say (no fading): the
paper's finding, and the end the fading-gain oracle picks on Rayleigh block fading (docs/receivers.md)."""

_ACTIVATIONS = (nn.GELU, nn.ReLU, nn.SiLU, nn.ELU, nn.LeakyReLU, nn.Tanh, nn.Sigmoid)


# -- the target data ---------------------------------------------------------------------------
@dataclass
class TargetReceptions:
    """Unlabeled receptions from the target channel: all that adaptation sees of the target.

    Attributes:
        layers: the receiver's symbol estimates of layers 1..L, complex ``[N, k_i]`` each.
        snr_db: the SNR the receiver is told for each reception, ``[N]`` dB.
        gain: the power gain of each reception's channel, ``mean |h|^2`` over its symbols, ``[N]``
            (1 on AWGN). Only :func:`variance_oracle` reads it.
        channel: the target channel.
        snr_range_db: the range the nominal SNRs were drawn from (uniformly per reception).
        source: what the receptions were made from (dataset, split, images), for the card.
    """

    layers: list[torch.Tensor]
    snr_db: torch.Tensor
    gain: torch.Tensor
    channel: ChannelSpec
    snr_range_db: tuple[float, float]
    source: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.snr_db.shape[0])

    def received(self, sel: torch.Tensor | slice | None = None) -> Received:
        """The receptions ``sel`` (all by default) as a receiver's input."""
        index = slice(None) if sel is None else sel
        return Received([z[index] for z in self.layers], self.snr_db[index])


def target_receptions(
    encoder: Encoder,
    dataset: ImageDataset,
    channel: ChannelSpec | str,
    snr_db: tuple[float, float] | float = (0.0, 20.0),
    *,
    side_snr: str = "nominal",
    seed: int = 0,
    batch_size: int = 500,
) -> TargetReceptions:
    """Send every image of ``dataset`` once through the target channel: the unlabeled target data.

    Only the images are read (the labels never leave ``dataset``). The nominal SNR of each image is
    drawn uniformly from ``snr_db`` (``(min, max)``, or one value); ``side_snr`` is the SNR the
    receiver is told (as in training: ``"nominal"`` or ``"effective"``). The channel and the SNR draws
    are seeded by ``seed``.
    """
    spec = channel if isinstance(channel, ChannelSpec) else ChannelSpec(type=channel)
    lo, hi = (float(snr_db), float(snr_db)) if isinstance(snr_db, int | float) else (float(snr_db[0]),
                                                                                      float(snr_db[1]))
    if lo > hi:
        raise ValueError(f"target SNR range must be MIN,MAX with MIN <= MAX, got {lo:g},{hi:g}")
    if len(dataset) == 0:
        raise ValueError("no target images to receive")
    ch = spec.build(seed=seed)
    gen = torch.Generator().manual_seed(seed)
    sizes = list(encoder.layer_symbols)
    symbols = encode_dataset(encoder, dataset, batch_size)
    layers: list[list[torch.Tensor]] = [[] for _ in sizes]
    told, gains = [], []
    for x in torch.split(symbols, batch_size):
        snr = lo + (hi - lo) * torch.rand(x.shape[0], generator=gen)
        rx, eff, _ = receive(x, ch, snr, sizes, side_snr=side_snr)
        for i, z in enumerate(rx.layers):
            layers[i].append(z)
        told.append(rx.snr_db)
        gains.append(torch.pow(10.0, (eff - snr) / 10.0))
    return TargetReceptions([torch.cat(z) for z in layers], torch.cat(told), torch.cat(gains), spec, (lo, hi),
                            {"dataset": dataset.name, "split": dataset.split, "images": len(dataset)})


# -- mechanisms --------------------------------------------------------------------------------
class GradientReversal(torch.autograd.Function):
    """Identity forward; backward multiplies the incoming gradient by ``-lambda`` (Ganin and Lempitsky, 2015)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, lam: float) -> torch.Tensor:
        ctx.lam = float(lam)
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return -ctx.lam * grad, None


def grad_reverse(x: torch.Tensor, lam: float = 1.0) -> torch.Tensor:
    """``x`` unchanged, with its gradient reversed and scaled by ``lam`` on the way back."""
    return GradientReversal.apply(x, lam)


@torch.no_grad()
def ema_update(teacher: nn.Module, student: nn.Module, momentum: float) -> None:
    """``theta_T <- m theta_T + (1 - m) theta_S`` for every parameter; buffers are copied from the student."""
    if not 0.0 <= momentum <= 1.0:
        raise ValueError(f"EMA momentum must be in [0, 1], got {momentum}")
    for t, s in zip(teacher.parameters(), student.parameters(), strict=True):
        t.mul_(momentum).add_(s.detach(), alpha=1.0 - momentum)
    for tb, sb in zip(teacher.buffers(), student.buffers(), strict=True):
        tb.copy_(sb)


@contextmanager
def dropout_active(receiver: nn.Module, p: float) -> Iterator[None]:
    """Dropout on inside the block, whatever the receiver's mode.

    A receiver with ``nn.Dropout`` modules gets them in training mode (their own rate). One without
    gets dropout of rate ``p`` on the output of every activation module (GELU, ReLU, ...) through
    forward hooks, removed on exit: its weights and saved form do not change.
    """
    if not 0.0 < p < 1.0:
        raise ValueError(f"dropout rate must be in (0, 1), got {p}")
    own = [m for m in receiver.modules() if isinstance(m, nn.Dropout)]
    modes = [m.training for m in own]
    hooks = []
    if own:
        for m in own:
            m.train()
    else:
        acts = [m for m in receiver.modules() if isinstance(m, _ACTIVATIONS)]
        if not acts:
            raise ValueError(f"receiver '{getattr(receiver, 'name', type(receiver).__name__)}' has neither dropout "
                             "nor activation modules to apply Monte Carlo dropout to")

        def drop(_module: nn.Module, _inputs: Any, output: torch.Tensor) -> torch.Tensor:
            return F.dropout(output, p, training=True)

        hooks = [m.register_forward_hook(drop) for m in acts]
    try:
        yield
    finally:
        for h in hooks:
            h.remove()
        for m, was in zip(own, modes, strict=True):
            m.train(was)


def _class_tasks(receiver: Receiver) -> list[str]:
    """The main classification outputs (``class`` and ``coarse`` kinds): what is predicted and pseudo-labeled."""
    names = [t.name for t in receiver.tasks if t.main and t.kind in ("class", "coarse")]
    if not names:
        raise ValueError(f"receiver '{receiver.name}' has no classification output to adapt")
    return names


@torch.no_grad()
def mc_dropout_variance(
    receiver: Receiver, rx: Received, passes: int = 10, p: float = 0.1, batch_size: int = 1000,
) -> torch.Tensor:
    """Monte Carlo dropout prediction variance per reception, ``[N]``.

    ``v = mean_r sum_c Var_t[softmax(class@r)_c]`` over ``passes`` forward passes with dropout on
    (:func:`dropout_active`; population variance over the passes), averaged over the receiver's main
    classification outputs. Dropout draws come from torch's global generator.
    """
    if passes < 2:
        raise ValueError(f"Monte Carlo dropout needs at least 2 passes, got {passes}")
    names = _class_tasks(receiver)
    was = receiver.training
    receiver.eval()
    out = []
    try:
        with dropout_active(receiver, p):
            for start in range(0, rx.batch, batch_size):
                part = Received([z[start:start + batch_size] for z in rx.layers], rx.snr_db[start:start + batch_size])
                runs = [receiver(part) for _ in range(passes)]
                per_task = [torch.stack([torch.softmax(r[n], 1) for r in runs]).var(0, unbiased=False).sum(1)
                            for n in names if n in runs[0]]
                out.append(torch.stack(per_task).mean(0))
    finally:
        receiver.train(was)
    return torch.cat(out)


def variance_split(variance: torch.Tensor, source_fraction: float = 0.5,
                   source_like: SourceLike = DEFAULT_SOURCE_LIKE) -> torch.Tensor:
    """Which receptions are source-similar: a boolean mask ``[N]``.

    The receptions are ranked by variance (ties by index); the ``round(source_fraction N)`` lowest
    (``source_like="low-variance"``) or highest (``"high-variance"``) are source-similar, the rest
    source-dissimilar. Every variance in the low subset is <= every variance in the high subset.
    """
    if not 0.0 < source_fraction < 1.0:
        raise ValueError(f"source_fraction must be in (0, 1), got {source_fraction}")
    if source_like not in ("low-variance", "high-variance"):
        raise ValueError(f"source_like must be 'low-variance' or 'high-variance', not {source_like!r}")
    n = int(variance.shape[0])
    k = round(source_fraction * n)
    order = torch.sort(variance, stable=True).indices
    chosen = order[:k] if source_like == "low-variance" else order[n - k:]
    mask = torch.zeros(n, dtype=torch.bool)
    mask[chosen] = True
    return mask


def variance_oracle(variance: torch.Tensor, gain: torch.Tensor) -> dict[str, Any] | None:
    """How the prediction variance relates to the fading gain: which end of the ranking is source-like.

    The distance of a reception from the source (AWGN at the told SNR) is ``d = |10 log10 gain|``
    dB (0 for ``|h|^2 = 1``; see the module docstring). Receptions with ``d`` at or below its median
    are "near", the others "far". Returns ``None`` when every gain is 1 (no fading: no oracle), else:

    * ``auc_far_higher_variance``: P(variance of a far reception > that of a near one), ties half
      (the Mann-Whitney AUC); above 0.5, low variance marks source-like receptions;
    * ``spearman_variance_gain`` and ``spearman_variance_distance``: rank correlations;
    * ``distance_db_low_half`` / ``distance_db_high_half``: mean ``d`` of the receptions below and
      above the median variance;
    * ``source_like``: ``"low-variance"`` if the AUC is at least 0.5, else ``"high-variance"``.
    """
    v = variance.detach().double().cpu().numpy()
    g = gain.detach().double().cpu().numpy()
    if v.shape != g.shape or v.ndim != 1:
        raise ValueError(f"variance and gain must be [N] each, got {v.shape} and {g.shape}")
    distance = np.abs(10.0 * np.log10(np.clip(g, 1e-12, None)))
    if len(v) < 4 or float(distance.max()) < 1e-6:
        return None
    far = distance > np.median(distance)
    n_far, n_near = int(far.sum()), int((~far).sum())
    if n_far == 0 or n_near == 0:
        return None
    ranks = rankdata(v)  # average ranks for ties
    auc = (float(ranks[far].sum()) - n_far * (n_far + 1) / 2) / (n_far * n_near)
    low = v <= np.median(v)
    return {
        "auc_far_higher_variance": auc,
        "spearman_variance_gain": float(spearmanr(v, g).statistic),
        "spearman_variance_distance": float(spearmanr(v, distance).statistic),
        "distance_db_low_half": float(distance[low].mean()),
        "distance_db_high_half": float(distance[~low].mean()) if (~low).any() else math.nan,
        "receptions": len(v),
        "source_like": "low-variance" if auc >= 0.5 else "high-variance",
    }


def pseudo_label_loss(
    student_out: dict[str, torch.Tensor], teacher_out: dict[str, torch.Tensor], names: Sequence[str],
    threshold: float,
) -> tuple[torch.Tensor, float]:
    """Cross-entropy of the student on the teacher's confident classes, and the fraction kept.

    For each output ``n`` in ``names``: ``mean_i 1[max_c q_i(c) >= threshold] CE(s_i, argmax_c q_i(c))``
    with ``q = softmax(teacher)`` and ``s`` the student's logits; averaged over the outputs.
    """
    losses, kept = [], []
    for n in names:
        if n not in student_out or n not in teacher_out:
            continue
        conf, label = torch.softmax(teacher_out[n].detach(), 1).max(1)
        mask = (conf >= threshold).to(student_out[n].dtype)
        losses.append((F.cross_entropy(student_out[n], label, reduction="none") * mask).mean())
        kept.append(float(mask.mean()))
    if not losses:
        raise ValueError("no classification output to pseudo-label")
    return torch.stack(losses).mean(), sum(kept) / len(kept)


# -- configuration and the loop ----------------------------------------------------------------
class AdaptConfig(FlatConfig):
    """How a receiver is adapted to unlabeled target receptions (the options of ``semcom adapt``)."""

    epochs: int = Field(default=3, ge=1, description="Passes over the target receptions.")
    batch_size: int = Field(default=128, ge=2, description="Batch size.")
    lr: float = Field(default=1e-4, gt=0, description="Adam learning rate (student and discriminator).")
    seed: int = Field(default=0, description="Seed of dropout, batch order and discriminator initialisation.")
    dropout: float = Field(default=0.1, gt=0, lt=1, description="Dropout rate added where the receiver has none "
                                                                "(MC variance and the student's view).")
    mc_passes: int = Field(default=10, ge=2, description="Monte Carlo dropout passes for the variance split.")
    source_fraction: float = Field(default=0.5, gt=0, lt=1, description="Fraction of the receptions in the "
                                                                        "source-similar subset.")
    source_like: Literal["auto", "low-variance", "high-variance"] = Field(
        default="auto", description="Which end of the variance ranking is source-similar: auto (the fading-gain "
                                    "oracle decides; high-variance without fading), low-variance, high-variance.")
    split: Literal["variance", "random"] = Field(default="variance", description="How the subsets are made: by "
                                                 "MC-dropout variance, or at random (ablation).")
    threshold: float = Field(default=0.9, ge=0, le=1, description="Teacher confidence needed for a pseudo-label.")
    momentum: float = Field(default=0.99, ge=0, le=1, description="EMA momentum of the mean teacher.")
    adversarial_weight: float = Field(default=0.1, ge=0, description="lambda of the gradient-reversal layer "
                                                                     "(0: no adversarial alignment).")
    anchor: bool = Field(default=True, description="Reverse the gradient through the source-dissimilar "
                                                   "receptions only (the source-similar are the anchor).")
    discriminator_width: int = Field(default=64, ge=1, description="Hidden width of the subset discriminator.")
    max_steps: int | None = Field(default=None, ge=1, description="Stop after this many steps (smoke tests).")

    @field_validator("source_like", mode="before")
    @classmethod
    def _short_names(cls, value: Any) -> Any:
        return {"low": "low-variance", "high": "high-variance"}.get(value, value)


@dataclass
class AdaptationResult:
    """What :func:`adapt_receiver` returns.

    Attributes:
        receiver: the adapted receiver (the mean teacher), eval mode.
        student: the student at the end.
        variance: MC-dropout variance of every target reception under the source receiver, ``[N]``.
        source_similar: the split, ``[N]`` bool (True: source-similar).
        source_like: the end of the ranking taken as source-similar, and ``source_like_from`` why
            (``"oracle"``, ``"config"``, ``"default"``, or ``"random split"``).
        oracle: :func:`variance_oracle` of the receptions (None without fading).
        config: the options used.
        history: one record per epoch (pseudo-label loss, fraction kept, discriminator loss and accuracy).
        steps: optimiser steps taken.
    """

    receiver: Receiver
    student: Receiver
    variance: torch.Tensor
    source_similar: torch.Tensor
    source_like: SourceLike
    source_like_from: str
    oracle: dict[str, Any] | None
    config: AdaptConfig
    history: list[dict[str, float]] = field(default_factory=list)
    steps: int = 0

    def summary(self) -> dict[str, Any]:
        """The record a card keeps (JSON data)."""
        return {
            "method": "source-free adversarial alignment (after Chu et al., AAAI 2023): MC-dropout variance split, "
                      "mean teacher with pseudo-labels, gradient-reversal discriminator on the shared features",
            "options": self.config.to_flat(),
            "source_like": self.source_like, "source_like_from": self.source_like_from,
            "oracle": self.oracle,
            "variance_mean": float(self.variance.mean()),
            "source_similar": int(self.source_similar.sum()), "receptions": int(self.source_similar.numel()),
            "steps": self.steps, "history": self.history,
        }


def adapt_receiver(
    source: Receiver,
    receptions: TargetReceptions,
    config: AdaptConfig | None = None,
    *,
    log: Callable[[dict[str, float]], None] | None = None,
    **options: Any,
) -> AdaptationResult:
    """Adapt a copy of ``source`` to the unlabeled ``receptions`` (the module docstring's steps 1-4).

    Args:
        source: the trained receiver (not modified). It must return ``outputs["shared"]``, the
            features the discriminator reads.
        receptions: unlabeled target receptions (:func:`target_receptions`).
        config: :class:`AdaptConfig`; ``options`` override its fields by name.
        log: called with each epoch's record.

    ``seed`` seeds dropout (torch's global generator), the batch order and the discriminator's
    initialisation; the same receptions and options give the same weights.
    """
    cfg = AdaptConfig.from_dict({**(config.to_flat() if config else {}), **options})
    if len(receptions) < 2:
        raise ValueError(f"need at least 2 target receptions, got {len(receptions)}")
    if len(receptions.layers) != source.num_layers:
        raise ValueError(f"the receptions have {len(receptions.layers)} layers, the receiver reads {source.num_layers}")
    names = _class_tasks(source)
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    base = copy.deepcopy(source).eval()
    all_rx = receptions.received()
    with torch.no_grad():
        probe = base(Received([z[:2] for z in all_rx.layers], all_rx.snr_db[:2]))
    if SHARED not in probe:
        raise ValueError(f"receiver '{source.name}' returns no outputs['{SHARED}']; adversarial alignment needs "
                         "its shared features")

    # 1 + 4: variance under the source receiver, the oracle, the split
    variance = mc_dropout_variance(base, all_rx, cfg.mc_passes, cfg.dropout)
    oracle = variance_oracle(variance, receptions.gain)
    if cfg.split == "random":
        side: SourceLike = DEFAULT_SOURCE_LIKE
        why = "random split"
        similar = torch.zeros(len(receptions), dtype=torch.bool)
        similar[torch.randperm(len(receptions), generator=gen)[:round(cfg.source_fraction * len(receptions))]] = True
    else:
        if cfg.source_like != "auto":
            side, why = cfg.source_like, "config"
        elif oracle is not None:
            side, why = oracle["source_like"], "oracle"
        else:
            side, why = DEFAULT_SOURCE_LIKE, "default"
        similar = variance_split(variance, cfg.source_fraction, side)

    # 2 + 3: mean teacher, student, discriminator
    teacher = copy.deepcopy(source).eval().requires_grad_(False)
    student = copy.deepcopy(source).train().requires_grad_(True)
    features = int(probe[SHARED].shape[1])
    discriminator = mlp([features, cfg.discriminator_width, 1])
    opt = torch.optim.Adam([*student.parameters(), *discriminator.parameters()], lr=cfg.lr)
    history: list[dict[str, float]] = []
    step = 0
    n = len(receptions)
    with dropout_active(student, cfg.dropout):
        for epoch in range(cfg.epochs):
            sums = {"pseudo_label_loss": 0.0, "kept": 0.0, "discriminator_loss": 0.0, "discriminator_accuracy": 0.0}
            count = 0
            order = torch.randperm(n, generator=gen)
            for start in range(0, n - cfg.batch_size + 1 if n >= cfg.batch_size else 1, cfg.batch_size):
                sel = order[start:start + cfg.batch_size]
                rx = receptions.received(sel)
                with torch.no_grad():
                    teacher_out = teacher(rx)
                student_out = student(rx)
                pl_loss, kept = pseudo_label_loss(student_out, teacher_out, names, cfg.threshold)
                domain = similar[sel].float()
                feats = student_out[SHARED]
                if cfg.anchor:
                    feats = torch.where(similar[sel].unsqueeze(1), feats.detach(), feats)
                logit = discriminator(grad_reverse(feats, cfg.adversarial_weight)).squeeze(1)
                d_loss = F.binary_cross_entropy_with_logits(logit, domain)
                loss = pl_loss + d_loss if cfg.adversarial_weight > 0 else pl_loss
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                ema_update(teacher, student, cfg.momentum)
                sums["pseudo_label_loss"] += float(pl_loss.detach())
                sums["kept"] += kept
                sums["discriminator_loss"] += float(d_loss.detach())
                sums["discriminator_accuracy"] += float(((logit.detach() > 0).float() == domain).float().mean())
                count += 1
                step += 1
                if cfg.max_steps is not None and step >= cfg.max_steps:
                    break
            record = {k: v / max(count, 1) for k, v in sums.items()}
            record.update(epoch=float(epoch + 1), steps=float(step))
            history.append(record)
            if log is not None:
                log(record)
            if cfg.max_steps is not None and step >= cfg.max_steps:
                break
    return AdaptationResult(teacher.eval(), student.eval(), variance, similar, side, why, oracle, cfg, history, step)


# -- checkpoint ----------------------------------------------------------------------------------
def save_adapted_receiver(
    result: AdaptationResult,
    path: str | Path,
    *,
    source_card: dict[str, Any],
    source_path: str | Path,
    encoder: Any,
    receptions: TargetReceptions,
    command: str | None = None,
    test: dict[str, Any] | None = None,
    dtype: torch.dtype = torch.float32,
) -> Path:
    """Write the adapted receiver as a receiver checkpoint (:func:`~semcom.receivers.save_receiver`).

    The card says what it reads and how it was made: the JSCC model of the source card (name and
    sha256, so that a scenario ``type: receiver`` checks it as for any receiver), the target channel
    and SNR range as its ``channel`` and ``training_snr_db``, the adaptation's epochs, steps, batch
    size, learning rate and seed, and two more sections: ``adaptation`` (:meth:`AdaptationResult.summary`
    and the target receptions) and ``source`` (the source checkpoint's path, sha256, channel and SNRs).
    """
    ctor = source_card.get("receiver") or {}
    model = source_card.get("model") or {}
    cfg = result.config
    spec = receptions.channel
    config = {
        "receiver": ctor.get("name", result.receiver.name), "receiver_kwargs": ctor.get("options", {}),
        "model": model.get("name"), "model_sha256": model.get("sha256"),
        "dataset": receptions.source.get("dataset"), "train_images": len(receptions),
        "weighting": source_card.get("weighting"),
        "channel": spec.type, "block": spec.block, "csi": spec.csi, "snr_db": list(receptions.snr_range_db),
        "epochs": cfg.epochs, "batch_size": cfg.batch_size, "lr": cfg.lr, "seed": cfg.seed,
        "steps": result.steps, "side_snr": source_card.get("side_snr", "nominal"),
    }
    trained = TrainedReceiver(result.receiver, make_weighting("equal", result.receiver.tasks), encoder, config,
                              result.history)
    out = save_receiver(trained, path, command=command, test=test, dtype=dtype)
    card_file = card_path(out)
    card = json.loads(card_file.read_text())
    card["adaptation"] = {**result.summary(), "target": {
        "channel": spec.model_dump(), "snr_db": list(receptions.snr_range_db), **receptions.source,
        "labels_used": False}}
    card["source"] = {
        "checkpoint": str(source_path), "sha256": source_card.get("sha256"),
        "channel": source_card.get("channel"), "training_snr_db": source_card.get("training_snr_db"),
        "command": source_card.get("command"),
    }
    tmp = card_file.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(card, indent=2) + "\n")
    tmp.replace(card_file)
    return out
