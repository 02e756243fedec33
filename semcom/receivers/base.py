"""The semantic-receiver interface: received layers 1..r in, a dict of task outputs out.

A receiver is a ``torch.nn.Module`` placed after the channel (the data path: dataset -> transmitter
-> channel -> receiver -> metrics). It gets what a user's receiver may know, a :class:`Received`:

* ``layers``: the received symbol estimates of layers 1..r, complex ``[B, k_i]`` each (with perfect
  CSI the linear MMSE estimate ``conj(h) y / (|h|^2 + N0)``, the JSCC decoders' convention; without
  CSI the raw ``y``);
* ``snr_db``: the nominal SNR Es/N0 in dB, ``[B]`` (what the link budget says, not the fading).

It declares its :attr:`Receiver.tasks` (one :class:`Task` per output: kind, the resolution r it
belongs to, main or proxy), returns ``{task.name: tensor}`` from ``forward`` and turns outputs and
:class:`Targets` into one scalar loss per task with :meth:`Receiver.losses`. The task-weighting
strategies (:mod:`semcom.receivers.weighting`) combine those losses; they read
:meth:`Receiver.shared_parameters` (GradNorm, PCGrad) and ``outputs[SHARED]`` (MGDA-UB).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F

__all__ = [
    "SHARED",
    "SNR_SCALE_DB",
    "Received",
    "Receiver",
    "Targets",
    "Task",
    "TaskKind",
    "coarse_labels",
    "layer_features",
    "mlp",
    "task_loss",
]

TaskKind = Literal["class", "coarse", "image", "snr", "symbols", "aux"]

SHARED = "shared"
"""Key of ``forward``'s output holding the shared representation ``[B, d]`` (read by MGDA-UB)."""

SNR_SCALE_DB = 20.0
"""SNRs enter networks and the SNR-estimation loss as ``snr_db / 20``."""


@dataclass
class Received:
    """What a receiver may use: symbol estimates of layers 1..r and the nominal SNR.

    Attributes:
        layers: r complex tensors ``[B, k_i]`` (layers in order, the first is the most important).
        snr_db: nominal Es/N0 in dB, ``[B]``.
    """

    layers: list[torch.Tensor]
    snr_db: torch.Tensor

    def __post_init__(self) -> None:
        if not self.layers:
            raise ValueError("a receiver needs at least one layer")
        if any(not torch.is_complex(z) or z.dim() != 2 for z in self.layers):
            raise ValueError("received layers must be complex [B, k_i] tensors")
        self.snr_db = torch.as_tensor(self.snr_db, dtype=torch.float32, device=self.layers[0].device)
        if self.snr_db.dim() == 0:
            self.snr_db = self.snr_db.expand(self.batch)

    @property
    def batch(self) -> int:
        return int(self.layers[0].shape[0])

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    def upto(self, r: int) -> Received:
        """The view of a user who received only layers 1..r."""
        return Received(self.layers[:r], self.snr_db)


@dataclass
class Targets:
    """Everything a receiver's losses may be computed against (built by the training loop).

    Attributes:
        labels: class labels ``[B]``.
        coarse: coarse-concept labels ``[B]`` (see :mod:`semcom.receivers.concepts`), or None.
        images: source images ``[B, C, H, W]`` in [0, 1] (reconstruction proxy), or None.
        symbols: the transmitted (clean) layers, complex ``[B, k_i]`` (denoising proxy), or None.
        snr_db: the effective SNR of each image in dB, ``[B]`` (SNR-estimation proxy; equals the
            nominal SNR on AWGN, ``SNR + 10 log10 |h|^2`` on flat fading), or None.
        partner: ``[B]`` row index of each row's hard-negative partner (a different class sent
            through the same channel realisation), -1 where none; None when no pairs were built.
    """

    labels: torch.Tensor
    coarse: torch.Tensor | None = None
    images: torch.Tensor | None = None
    symbols: list[torch.Tensor] | None = None
    snr_db: torch.Tensor | None = None
    partner: torch.Tensor | None = None


@dataclass(frozen=True)
class Task:
    """One output of a receiver.

    Attributes:
        name: key in ``forward``'s output dict, e.g. ``"class@2"``.
        kind: ``class`` (fine labels), ``coarse`` (coarse concept), ``image`` (reconstruction),
            ``snr`` (SNR estimation, dB / 20), ``symbols`` (denoised symbols of layers 1..r,
            real ``[B, 2 (k_1 + .. + k_r)]``), ``aux`` (a receiver-defined regulariser: its
            output is a per-image penalty ``[B]`` and the loss is its mean, unless the receiver
            overrides :meth:`Receiver.task_loss`).
        layer: the resolution r (layers 1..r) the output is computed from.
        main: True for the receiver's answers (evaluated); False for proxy/auxiliary tasks.
        weight: fixed prior weight of the task's loss (multiplied before any weighting strategy).
    """

    name: str
    kind: TaskKind
    layer: int
    main: bool = True
    weight: float = 1.0


def layer_features(z: torch.Tensor) -> torch.Tensor:
    """Complex ``[B, k]`` -> real ``[B, 2k]`` (real and imaginary parts interleaved)."""
    return torch.view_as_real(z.contiguous()).flatten(1)


def mlp(sizes: Sequence[int], final_act: bool = False, dropout: float = 0.0) -> nn.Sequential:
    """Linear layers of the given sizes with GELU between them (and after the last if asked)."""
    mods: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        mods.append(nn.Linear(a, b))
        if i < len(sizes) - 2 or final_act:
            mods.append(nn.GELU())
            if dropout > 0:
                mods.append(nn.Dropout(dropout))
    return nn.Sequential(*mods)


class Receiver(nn.Module):
    """Base class of semantic receivers (see the module docstring).

    Args:
        layer_symbols: ``k_1..k_L`` complex symbols per layer of the transmitter.
        num_classes: number of fine classes.
        image_shape: ``(C, H, W)`` of the source images (for reconstruction tasks).
        coarse_groups: coarse concept of each fine class (``coarse_groups[c]``), for receivers with
            coarse tasks; see :mod:`semcom.receivers.concepts`.
        width: hidden width of the receiver's networks.
        use_snr: append the nominal SNR (dB / 20) to each layer's features.

    Subclasses set :attr:`tasks` and implement ``forward(rx: Received) -> dict[str, Tensor]``;
    outputs of tasks whose layer exceeds ``rx.num_layers`` are left out.
    """

    name = "receiver"
    wants_pairs = False
    """True: the training loop adds hard-negative pairs (:attr:`Targets.partner`)."""

    def __init__(
        self,
        layer_symbols: Sequence[int],
        num_classes: int,
        image_shape: Sequence[int] = (1, 28, 28),
        coarse_groups: Sequence[int] | None = None,
        width: int = 128,
        use_snr: bool = True,
    ) -> None:
        super().__init__()
        if not layer_symbols or any(int(k) < 1 for k in layer_symbols):
            raise ValueError(f"layer_symbols must be positive counts, got {layer_symbols}")
        self.layer_symbols = tuple(int(k) for k in layer_symbols)
        self.num_classes = int(num_classes)
        self.image_shape = tuple(int(s) for s in image_shape)
        self.coarse_groups = None if coarse_groups is None else tuple(int(g) for g in coarse_groups)
        if self.coarse_groups is not None and len(self.coarse_groups) != self.num_classes:
            raise ValueError(f"coarse_groups needs one group per class ({self.num_classes}), "
                             f"got {len(self.coarse_groups)}")
        self.width = int(width)
        self.use_snr = bool(use_snr)
        self.tasks: tuple[Task, ...] = ()

    # -- bookkeeping -------------------------------------------------------------------------
    @property
    def num_layers(self) -> int:
        return len(self.layer_symbols)

    @property
    def num_coarse(self) -> int:
        if self.coarse_groups is None:
            raise ValueError(f"receiver '{self.name}' needs coarse_groups for its coarse tasks")
        return max(self.coarse_groups) + 1

    def task(self, name: str) -> Task:
        for t in self.tasks:
            if t.name == name:
                return t
        raise KeyError(f"receiver '{self.name}' has no task '{name}'")

    def _in_features(self, i: int, snr: bool | None = None) -> int:
        """Real input features of layer ``i`` (0-based): ``2 k_i`` (+1 with the SNR)."""
        return 2 * self.layer_symbols[i] + (1 if (self.use_snr if snr is None else snr) else 0)

    def _layer_input(self, rx: Received, i: int, snr: bool | None = None) -> torch.Tensor:
        f = layer_features(rx.layers[i])
        if self.use_snr if snr is None else snr:
            f = torch.cat([f, (rx.snr_db / SNR_SCALE_DB).unsqueeze(1).to(f.dtype)], dim=1)
        return f

    def shared_parameters(self) -> list[nn.Parameter]:
        """Parameters every task's loss depends on (GradNorm, PCGrad operate on these)."""
        raise NotImplementedError

    def last_shared_parameters(self) -> list[nn.Parameter]:
        """The last shared layer's parameters (GradNorm measures gradient norms here)."""
        return self.shared_parameters()[-2:]

    # -- losses ------------------------------------------------------------------------------
    def losses(self, outputs: dict[str, torch.Tensor], targets: Targets) -> dict[str, torch.Tensor]:
        """One scalar loss per task present in ``outputs`` (scaled by :attr:`Task.weight`)."""
        out: dict[str, torch.Tensor] = {}
        for t in self.tasks:
            loss = self.task_loss(t, outputs, targets)
            if loss is not None:
                out[t.name] = t.weight * loss
        return out

    def task_loss(
        self, task: Task, outputs: dict[str, torch.Tensor], targets: Targets,
    ) -> torch.Tensor | None:
        """The unweighted loss of one task, or None when its output is absent (fewer layers)."""
        if task.name not in outputs:
            return None
        return task_loss(task, outputs[task.name], targets, self.coarse_groups)

    def predict(self, rx: Received) -> dict[str, torch.Tensor]:
        """Outputs in eval mode without gradients (the test-time path)."""
        was = self.training
        self.eval()
        try:
            with torch.no_grad():
                return self(rx)
        finally:
            self.train(was)


def coarse_labels(labels: torch.Tensor, groups: Sequence[int]) -> torch.Tensor:
    """Map fine labels ``[B]`` to their coarse concept through ``groups`` (one entry per class)."""
    table = torch.as_tensor(list(groups), dtype=torch.long, device=labels.device)
    return table[labels]


def task_loss(
    task: Task, output: torch.Tensor, targets: Targets, groups: Sequence[int] | None,
) -> torch.Tensor:
    """The loss of one task: cross-entropy (class, coarse) or mean squared error (the rest)."""
    if task.kind == "class":
        return F.cross_entropy(output, targets.labels)
    if task.kind == "coarse":
        coarse = targets.coarse
        if coarse is None:
            if groups is None:
                raise ValueError(f"task '{task.name}' needs coarse labels or coarse_groups")
            coarse = coarse_labels(targets.labels, groups)
        return F.cross_entropy(output, coarse)
    if task.kind == "image":
        if targets.images is None:
            raise ValueError(f"task '{task.name}' needs the source images in Targets")
        return F.mse_loss(output, targets.images)
    if task.kind == "snr":
        if targets.snr_db is None:
            raise ValueError(f"task '{task.name}' needs the effective SNR in Targets")
        return F.mse_loss(output, targets.snr_db / SNR_SCALE_DB)
    if task.kind == "symbols":
        if targets.symbols is None:
            raise ValueError(f"task '{task.name}' needs the transmitted symbols in Targets")
        clean = torch.cat([layer_features(z) for z in targets.symbols[: task.layer]], dim=1)
        return F.mse_loss(output, clean)
    if task.kind == "aux":
        return output.mean()
    raise ValueError(f"unknown task kind {task.kind!r}")

