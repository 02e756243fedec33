"""One epoch of JSCC training steps: the loss, the learning-rate schedule and which parameters train.

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
(per stage in successive mode). Data order, SNR draws and channel noise are seeded per epoch, so a
resumed run repeats what an uninterrupted run would have done.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from semcom.channels import Channel
from semcom.channels.base import ChannelOutput
from semcom.data import ImageDataset
from semcom.distributed import SINGLE, ProcessGroup
from semcom.jscc.config import TrainConfig
from semcom.jscc.model import JsccOutput, MultiResJscc
from semcom.jscc.run_state import RunState
from semcom.metrics import mse_per_image, psnr_from_mse

__all__ = ["EpochResult", "EpochTrainer", "Plan", "TimeBudget", "lr_at", "reconstruction_loss", "stage_params"]


@dataclass(frozen=True)
class Plan:
    """The shape of a run: ``stages`` stages (successive: one per layer) of ``epochs`` epochs each."""

    steps_per_epoch: int
    epochs: int
    stages: int
    successive: bool

    @classmethod
    def of(cls, cfg: TrainConfig, images: int, layers: int) -> Plan:
        """The plan of ``cfg`` for ``images`` training images and a model of ``layers`` layers."""
        successive = cfg.mode == "successive"
        return cls(images // cfg.batch_size, cfg.epochs, layers if successive else 1, successive)

    @property
    def total_epochs(self) -> int:
        return self.epochs * self.stages

    def stage(self, epoch: int) -> int:
        """The stage epoch ``epoch`` (0-based) belongs to."""
        return min(epoch // self.epochs, self.stages - 1) if self.successive else 0

    def starts_stage(self, epoch: int) -> bool:
        """Whether epoch ``epoch`` begins a new successive stage (a fresh optimiser)."""
        return self.successive and epoch % self.epochs == 0

    def stage_steps(self, stage: int) -> tuple[int, int]:
        """``(first step, steps)`` of stage ``stage``: the span of its learning-rate schedule."""
        per_stage = self.steps_per_epoch * self.epochs
        return stage * per_stage, per_stage


class TimeBudget:
    """A run's wall-clock limit, and how far along it the learning-rate schedule is.

    The budget keeps 8% (at least 30 s) for the evaluation and checkpoints of the last epoch (a
    budget the reserve eats entirely stops before the first step). In joint mode the cosine schedule
    follows whichever is further along, the planned steps or the wall clock (``progress``, 0..1), so
    a run cut short by the budget still ends annealed.
    """

    def __init__(self, max_minutes: float | None, joint: bool, progress: float = 0.0) -> None:
        self.start = time.monotonic()
        self.seconds = None if max_minutes is None else max_minutes * 60 * 0.92 - 30
        self.timed = self.seconds is not None and joint
        self.progress0 = progress
        self.progress = progress

    def spent(self) -> bool:
        """Whether the budget is gone; a timed run's ``progress`` moves on with the clock."""
        if self.seconds is None:
            return False
        used = time.monotonic() - self.start
        if used > self.seconds:
            return True
        if self.timed:
            share = used / max(self.seconds, 1e-3)
            self.progress = max(self.progress, self.progress0 + (1.0 - self.progress0) * share)
        return False


@dataclass(frozen=True)
class EpochResult:
    """What an epoch did: ``steps`` taken; ``stopped`` when the time budget ended it early;
    ``step_mse``: each step's training MSE of every decoder trained (``[steps][layers]``, this
    process's share of the batch), for loss curves."""

    steps: int
    stopped: bool
    step_mse: list[list[float]] = field(default_factory=list)


def reconstruction_loss(decoded: torch.Tensor, images: torch.Tensor, kind: str,
                        group: ProcessGroup = SINGLE) -> torch.Tensor:
    """Mean squared error, or its PSNR-weighted form (see the module docstring).

    With several processes each holds a share of the batch; the PSNR weights use the mean MSE of the
    whole batch (averaged over ``group``), as one process holding the whole batch would.
    """
    per_image = mse_per_image(images, decoded)
    if kind == "psnr":
        batch_mse = per_image.mean() if not group.joined else group.mean(per_image.detach().mean())
        weights = (batch_mse / per_image.clamp_min(1e-10)).detach()
        return (weights * per_image).mean()
    return per_image.mean()


def lr_at(cfg: TrainConfig, step: int, total: int, progress: float = 0.0) -> float:
    """Warm-up, then cosine decay over ``total`` steps, or further along if ``progress`` (0..1) says so."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    t = min(1.0, max(progress, (step - cfg.warmup_steps) / max(1, total - cfg.warmup_steps)))
    lo = cfg.lr * cfg.lr_min_factor
    return lo + 0.5 * (cfg.lr - lo) * (1.0 + math.cos(math.pi * t))


def stage_params(model: MultiResJscc, cfg: TrainConfig, stage: int) -> list[nn.Parameter]:
    """Trainable parameters: everything (joint) or layer ``stage``'s part (successive).

    With ``heads_only`` only the decoders' semantic heads are trained (on the cross-entropy terms;
    the reconstruction terms do not depend on them), and the best checkpoint is the one with the best
    mean accuracy. With ``freeze_encoder`` only decoders are trained: the transmitted symbols stay
    bit-identical, so receivers trained on them (and users served by the same broadcast) stay valid.
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


def _flip(images: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    mask = torch.rand(images.shape[0], generator=gen) < 0.5
    return torch.where(mask.view(-1, 1, 1, 1), images.flip(-1), images)


class _BatchShard(nn.Module):
    """The training channel as seen by one process holding rows ``[lo, hi)`` of a batch of ``batch`` rows.

    The channel draws its noise and gains for the whole batch (the rows of the other processes sent
    as zeros) and this process keeps its rows: every process consumes the channel's random stream as
    one process would, so row i of the batch meets the same noise whatever the number of processes.
    """

    def __init__(self, channel: Channel, lo: int, hi: int, batch: int, snr_db: torch.Tensor) -> None:
        super().__init__()
        self.channel, self.lo, self.hi, self.batch = channel, lo, hi, batch
        self.snr_db = snr_db  # the whole batch's SNRs [batch]

    def forward(self, x: torch.Tensor, snr_db: torch.Tensor, layer_sizes: Sequence[int] | None = None
                ) -> ChannelOutput:
        before = x.new_zeros(self.lo, x.shape[1])
        after = x.new_zeros(self.batch - self.hi, x.shape[1])
        out = self.channel(torch.cat([before, x, after]), self.snr_db, layer_sizes=layer_sizes)
        rows = slice(self.lo, self.hi)
        return ChannelOutput(y=out.y[rows], h=out.h[rows], no=out.no[rows], csi=out.csi)


class _RunningScores:
    """Moving averages of PSNR and accuracy per layer, shown on the progress bar."""

    def __init__(self, layers: int) -> None:
        self.psnr = [0.0] * layers
        self.acc = [0.0] * layers
        self.step_mse: list[list[float]] = []

    @torch.no_grad()
    def update(self, images: torch.Tensor, labels: torch.Tensor, outs: Sequence[JsccOutput]) -> str:
        """Fold in one step's outputs; returns the bar's text for the layers trained."""
        mses = [mse_per_image(images, o.images.detach()) for o in outs]
        self.step_mse.append([float(m.mean()) for m in mses])
        for o, mse in zip(outs, mses, strict=True):
            i = o.layer - 1
            p = float(psnr_from_mse(mse).mean())
            self.psnr[i] = p if self.psnr[i] == 0 else 0.98 * self.psnr[i] + 0.02 * p
            if o.logits is not None:
                a = float((o.logits.argmax(1) == labels).float().mean())
                self.acc[i] = 0.98 * self.acc[i] + 0.02 * a
        return " ".join(f"L{o.layer}:{self.psnr[o.layer - 1]:.2f}dB/{100 * self.acc[o.layer - 1]:.0f}%"
                        for o in outs)


class EpochTrainer:
    """The steps of a run: model, optimiser and training channel; :meth:`run_epoch` does one epoch.

    ``state`` is where the run stands: its stage picks the trainable parameters, and a resumed
    run's saved optimiser state is loaded unless the run resumes at the start of a stage.

    With a process ``group`` of N processes every process draws the data order, flips, SNRs and
    channel noise of the whole batch, as one process does, and trains on its N-th of the rows
    (:meth:`~semcom.distributed.ProcessGroup.shard`); DistributedDataParallel averages the gradients,
    so the step is the one-process step up to the order of floating-point sums.
    """

    def __init__(self, model: MultiResJscc, cfg: TrainConfig, plan: Plan, state: RunState, device: str,
                 group: ProcessGroup = SINGLE) -> None:
        self.model, self.cfg, self.plan, self.device, self.group = model, cfg, plan, device, group
        if group.joined:
            group.shard(cfg.batch_size)  # refuses a batch that does not split evenly
        self.stage = plan.stage(state.epoch)
        self.optimizer = torch.optim.Adam(stage_params(model, cfg, self.stage), lr=cfg.lr)
        if state.optimizer is not None and not plan.starts_stage(state.epoch):
            self.optimizer.load_state_dict(state.optimizer)
        self.weights = cfg.layer_weights or [1.0] * model.num_layers
        self.channel = cfg.channel.build(cfg.seed, device)
        self.network = self._replicated()

    def _replicated(self) -> nn.Module:
        """The model the steps run: itself, or wrapped to average gradients over the process group.

        Wrapped again whenever the trainable parameters change (a new successive stage). Parameters
        with no gradient in a step (semantic heads with ``ce_weight`` 0) are looked for only when
        there can be some.
        """
        if not self.group.joined:
            return self.model
        unused = self.cfg.ce_weight == 0 and bool(self.model.semantic_heads())
        ids = [torch.device(self.device).index or 0] if self.device.startswith("cuda") else None
        # broadcast_buffers off: the model keeps no running statistics, its buffers never change
        return DistributedDataParallel(self.model, device_ids=ids, broadcast_buffers=False,
                                       find_unused_parameters=unused)

    def run_epoch(self, dataset: ImageDataset, state: RunState, budget: TimeBudget) -> EpochResult:
        """Train epoch ``state.epoch`` on ``dataset``; advances ``state.step`` and ``state.progress``."""
        self._enter_stage(self.plan.stage(state.epoch))
        first, total = self.plan.stage_steps(self.stage)
        self.model.train()
        gen = torch.Generator().manual_seed(self.cfg.seed * 100_003 + state.epoch)
        self.channel.seed(self.cfg.seed * 1_000_003 + state.epoch)
        scores = _RunningScores(self.model.num_layers)
        bar = self._progress_bar(dataset.batches(self.cfg.batch_size, shuffle=True, generator=gen, drop_last=True),
                                 state.epoch)
        done, stopped = 0, False
        for images, labels in bar:
            if self._budget_spent(budget):
                stopped = True
                break
            lr = lr_at(self.cfg, state.step - first, total, budget.progress)
            images, labels, outs = self._step(images, labels, gen, lr)
            state.step += 1
            done += 1
            bar.set_postfix_str(scores.update(images, labels, outs), refresh=False)
        bar.close()
        state.progress = budget.progress
        return EpochResult(done, stopped, scores.step_mse)

    def _budget_spent(self, budget: TimeBudget) -> bool:
        """Whether to stop; with several processes rank 0's clock decides, for the stop and the schedule."""
        if not self.group.joined or budget.seconds is None:
            return budget.spent()
        spent, budget.progress = self.group.from_main([float(budget.spent()), budget.progress])
        return bool(spent)

    def _enter_stage(self, stage: int) -> None:
        if stage != self.stage:
            self.stage = stage
            self.optimizer = torch.optim.Adam(stage_params(self.model, self.cfg, stage), lr=self.cfg.lr)
            self.network = self._replicated()

    def _progress_bar(self, batches: Iterator[tuple[torch.Tensor, torch.Tensor]], epoch: int) -> tqdm:
        return tqdm(
            batches,
            total=self.plan.steps_per_epoch,
            desc=f"epoch {epoch + 1}/{self.plan.total_epochs}",
            disable=not self.cfg.progress or not self.group.main,
            mininterval=1.0 if sys.stderr.isatty() else 30.0,
            dynamic_ncols=True,
        )

    def _step(
        self, images: torch.Tensor, labels: torch.Tensor, gen: torch.Generator, lr: float
    ) -> tuple[torch.Tensor, torch.Tensor, list[JsccOutput]]:
        """One optimiser step on a batch; returns the batch (as trained on) and the decoders' outputs."""
        cfg, device = self.cfg, self.device
        if cfg.augment_flip:
            images = _flip(images, gen)
        images, labels = images.to(device, non_blocking=True), labels.to(device, non_blocking=True)
        for g in self.optimizer.param_groups:
            g["lr"] = lr
        snr = cfg.snr_min + (cfg.snr_max - cfg.snr_min) * torch.rand(images.shape[0], generator=gen)
        resolution = self.stage + 1 if self.plan.successive else self.model.num_layers
        channel: nn.Module = self.channel
        if self.group.joined:  # the whole batch was drawn; this process trains on its rows
            lo, hi = self.group.shard(images.shape[0])
            channel = _BatchShard(self.channel, lo, hi, images.shape[0], snr.to(device))
            images, labels, snr = images[lo:hi], labels[lo:hi], snr[lo:hi]
        outs = self.network(images, channel, snr.to(device), resolution=resolution)
        if self.plan.successive:
            outs = outs[-1:]
        loss = images.new_zeros(())
        for o in outs:
            loss = loss + self.weights[o.layer - 1] * reconstruction_loss(o.images, images, cfg.loss, self.group)
            if o.logits is not None and cfg.ce_weight > 0:
                loss = loss + cfg.ce_weight * nn.functional.cross_entropy(o.logits, labels)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return images, labels, outs
