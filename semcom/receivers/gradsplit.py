"""GradSplit: a receiver trunk whose feature groups learn only from the tasks they do not conflict with.

After "Split to Learn: Gradient Split for Multi-Task Human Image Analysis" (Deng, Suh, Yu, Faraki,
Zheng, Chandraker, WACV 2023). A shared trunk of D modules (``Linear + GELU``) reads all received
layers; the ``w`` output features of every module are split into T contiguous groups, group ``g``
belonging to task ``g``. The forward pass is that of a plain shared trunk: every task's head reads
all ``w`` features. Only the backward pass changes: with a task-relation matrix ``R`` (``[T, T]``,
0/1, ``R[g, g] = 1``), the gradient of task ``s`` reaches the features of group ``g`` (at every
module) only where ``R[g, s] = 1``. So each module learns a set of task-specific features from the
shared features of the previous module, and the tasks' conflicting gradients never meet in one
weight.

Mechanism. A task's gradient must stay apart from the other tasks' all the way down the trunk: at
module k, group g may take task s's part of the gradient only, not the sum over tasks that one
backward pass would carry. The trunk therefore runs, while training, one *gradient channel* per
task: T copies of the forward computation with identical values (each copy is the very same
sequence of operations on the same inputs, so the values are bitwise those of one plain pass), head
``s`` reading copy ``s``. After every module, copy ``s`` passes through :func:`mask_gradient`, the
identity in the forward pass and ``grad * m_s`` in the backward pass, with ``m_s[c] = R[group(c), s]``.
A weight of module k producing group g then gets ``sum_s R[g, s] * dL_s/dW``, and nothing else,
whatever weighting strategy combines the losses (they all end in a backward pass or ``autograd.grad``
of the task losses). At test time, or when ``R`` is all ones, one copy is run: inference costs what
one shared trunk costs, and ``R = 1`` *is* the hard-sharing baseline (``shared-trunk``). Training
costs T trunk passes.

Relation matrix (``relation``):

* ``"identity"`` (the paper's default split): group g learns from task g only;
* ``"all"``: every group learns from every task (hard sharing, the baseline at matched design);
* ``"estimate"``: gradient agreement, measured during the first ``estimate_steps`` training steps
  (trained meanwhile with ``R = 1``). At every module and step the gradient that each task sends to
  the features (copy ``s`` of the trunk carries task ``s``'s alone) is taken over the batch; on group
  ``g``'s slice, the cosine between the owner task ``g``'s gradient and task ``s``'s gradient is
  averaged over modules and steps: ``C[g, s]``. Then ``R[g, s] = 1`` iff ``g = s`` or
  ``C[g, s] > threshold`` (default 0: a negative mean cosine, the conflict criterion of "Gradient
  Surgery for Multi-Task Learning", Yu et al. 2020, is a conflict). ``R`` is asymmetric: ``C[g, s]``
  is measured on group g's features, ``C[s, g]`` on group s's. The estimate and ``C`` are buffers,
  saved with the checkpoint;
* a ``T x T`` list of 0/1 with ones on the diagonal: given.

Baselines at matched design: ``shared-trunk`` (this trunk with ``R = 1``) and ``separate-trunks``
(:class:`SeparateTrunksReceiver`: one trunk of the same depth and width per task, the same heads).
Every receiver here reads all L layers (and the told SNR) and answers at r = L only: tasks
``class@L`` (cross-entropy), ``coarse@L`` (coarse concept, :mod:`semcom.receivers.concepts`) and
``image@L`` (reconstruction, MSE), each from a head ``mlp([w, w, out])``.

FLOPs (:meth:`TrunkReceiver.inference_flops`): multiply-accumulates of the ``Linear`` layers for one
image at inference (the convention of most architecture tables; biases, activations and the
sigmoid are not counted).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, cast

import torch
from torch import nn
from torch.nn import functional as F

from semcom.receivers.base import SHARED, SNR_SCALE_DB, Received, Receiver, Task, layer_features, mlp

__all__ = [
    "TASK_KINDS",
    "GradSplitReceiver",
    "SeparateTrunksReceiver",
    "TrunkReceiver",
    "feature_groups",
    "gradsplit",
    "gradsplit_estimated",
    "linear_macs",
    "mask_gradient",
    "relation_from_agreement",
    "separate_trunks",
    "shared_trunk",
]

TASK_KINDS = ("class", "coarse", "image")
"""Task kinds these receivers answer (at r = L)."""


class _GradientMask(torch.autograd.Function):
    """Identity forward; backward multiplies the incoming gradient by a 0/1 mask."""

    @staticmethod
    def forward(ctx: Any, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(mask)
        return features.view_as(features)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (mask,) = ctx.saved_tensors
        return grad * mask, None


def mask_gradient(features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The features unchanged; in the backward pass their gradient times ``mask`` (broadcast).

    Args:
        features: ``[B, w]``.
        mask: ``[w]`` of 0/1: zero entries block the gradient of that feature (exactly 0, not small).
    """
    return cast(torch.Tensor, _GradientMask.apply(features, mask))


def feature_groups(width: int, groups: int) -> list[slice]:
    """``groups`` contiguous slices covering ``range(width)``; the first ``width % groups`` are one wider."""
    if groups < 1 or width < groups:
        raise ValueError(f"cannot split {width} features into {groups} non-empty groups")
    base, extra = divmod(width, groups)
    out, start = [], 0
    for g in range(groups):
        size = base + (1 if g < extra else 0)
        out.append(slice(start, start + size))
        start += size
    return out


def relation_from_agreement(agreement: torch.Tensor, threshold: float = 0.0) -> torch.Tensor:
    """``R[g, s] = 1`` iff ``g = s`` or ``agreement[g, s] > threshold`` (float 0/1, ``[T, T]``).

    ``agreement[g, s]``: mean cosine, on group g's features, between the gradients of task g (the
    group's owner) and of task s.
    """
    if agreement.dim() != 2 or agreement.shape[0] != agreement.shape[1]:
        raise ValueError(f"agreement must be [T, T], got {tuple(agreement.shape)}")
    relation = (agreement > threshold).float()
    relation.fill_diagonal_(1.0)
    return relation


def linear_macs(module: nn.Module) -> int:
    """Multiply-accumulates of every ``nn.Linear`` in ``module`` for one input row (``in * out`` each)."""
    return sum(m.in_features * m.out_features for m in module.modules() if isinstance(m, nn.Linear))


class TrunkReceiver(Receiver):
    """Common part of the trunk receivers: input features, task heads, FLOPs.

    Args:
        layer_symbols, num_classes, image_shape, coarse_groups, width, use_snr: as :class:`Receiver`
            (``width``: the trunk's features per module, ``w``).
        tasks: task kinds, a subset of :data:`TASK_KINDS` (order kept: task t owns group t).
        depth: number of trunk modules D.

    The input is all L received layers as reals (``2 (k_1 + .. + k_L)``), plus the told SNR
    (dB / 20) when ``use_snr``. Subclasses build the trunk, return it from :meth:`trunk_layers` and
    implement ``forward``.
    """

    def __init__(
        self,
        layer_symbols: Sequence[int],
        num_classes: int,
        tasks: Sequence[str] = ("class", "image"),
        depth: int = 3,
        **kwargs: Any,
    ) -> None:
        super().__init__(layer_symbols, num_classes, **kwargs)
        kinds = tuple(tasks)
        if not kinds or len(set(kinds)) != len(kinds) or set(kinds) - set(TASK_KINDS):
            raise ValueError(f"tasks must be distinct kinds from {TASK_KINDS}, got {list(tasks)}")
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        self.kinds = kinds
        self.depth = int(depth)
        top = self.num_layers
        self.tasks = tuple(Task(f"{kind}@{top}", kind, top) for kind in kinds)  # type: ignore[arg-type]
        self.in_features = 2 * sum(self.layer_symbols) + (1 if self.use_snr else 0)
        w = self.width
        outputs = {"class": self.num_classes, "image": math.prod(self.image_shape)}
        if "coarse" in kinds:
            outputs["coarse"] = self.num_coarse
        self.heads = nn.ModuleDict({kind: mlp([w, w, outputs[kind]]) for kind in kinds})

    @property
    def num_tasks(self) -> int:
        return len(self.kinds)

    def _input(self, rx: Received) -> torch.Tensor:
        """``[B, in_features]``: layers 1..L as reals, then the told SNR / 20."""
        parts = [layer_features(z) for z in rx.layers[: self.num_layers]]
        if self.use_snr:
            parts.append((rx.snr_db / SNR_SCALE_DB).unsqueeze(1).to(parts[0].dtype))
        return torch.cat(parts, dim=1)

    def _answer(self, kind: str, features: torch.Tensor) -> torch.Tensor:
        """Head ``kind`` on ``[B, w]`` features (images through a sigmoid, shaped ``[B, C, H, W]``)."""
        y = self.heads[kind](features)
        if kind == "image":
            return torch.sigmoid(y).reshape(-1, *self.image_shape)
        return y

    def trunk_layers(self) -> nn.Module:
        """The trunk's layers (what :meth:`inference_flops` counts as trunk)."""
        raise NotImplementedError

    def inference_flops(self) -> dict[str, int]:
        """Multiply-accumulates per image at inference: ``{"trunk", "heads", "total"}``."""
        trunk, heads = linear_macs(self.trunk_layers()), linear_macs(self.heads)
        return {"trunk": trunk, "heads": heads, "total": trunk + heads}


class GradSplitReceiver(TrunkReceiver):
    """A shared trunk trained with GradSplit (see the module docstring).

    Args:
        layer_symbols, num_classes, image_shape, coarse_groups, width, use_snr, tasks, depth: as
            :class:`TrunkReceiver`.
        relation: ``"identity"``, ``"all"`` (hard sharing), ``"estimate"`` or a ``T x T`` 0/1 list
            (rows: feature groups, columns: tasks; ones on the diagonal).
        estimate_steps: training steps (train-mode forward passes with gradients) over which
            ``"estimate"`` measures the gradient agreement before fixing ``R``.
        threshold: ``R[g, s] = 1`` where the mean cosine exceeds it (``"estimate"``).

    Buffers (saved with a checkpoint): ``relation`` ``[T, T]``, the agreement sums ``cosine_sum``
    and counts ``cosine_count`` ``[T, T]``, ``steps`` (training steps seen) and ``estimated`` (1
    once ``R`` has been estimated). ``outputs[SHARED]`` is the trunk's last features ``[B, w]`` when
    one copy runs; while T gradient channels run, it is left out (MGDA-UB then works on the trunk
    parameters, plain MGDA).

    Example:
        >>> rx = Received([torch.randn(4, 8, dtype=torch.cfloat)] * 2, snr_db=10.0)
        >>> net = GradSplitReceiver((8, 8), num_classes=10, image_shape=(1, 4, 4), width=12)
        >>> sorted(net.predict(rx)), net.relation.tolist()
        (['class@2', 'image@2', 'shared'], [[1.0, 0.0], [0.0, 1.0]])
    """

    name = "gradsplit"

    relation: torch.Tensor
    cosine_sum: torch.Tensor
    cosine_count: torch.Tensor
    steps: torch.Tensor
    estimated: torch.Tensor

    def __init__(
        self,
        layer_symbols: Sequence[int],
        num_classes: int,
        relation: str | Sequence[Sequence[float]] = "identity",
        estimate_steps: int = 100,
        threshold: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(layer_symbols, num_classes, **kwargs)
        t, w = self.num_tasks, self.width
        self.groups = feature_groups(w, t)
        self.trunk = nn.ModuleList(nn.Linear(self.in_features if k == 0 else w, w) for k in range(self.depth))
        self.estimate = relation == "estimate"
        self.estimate_steps = int(estimate_steps)
        self.threshold = float(threshold)
        if isinstance(relation, str):
            if relation == "identity":
                matrix = torch.eye(t)
            elif relation in ("all", "estimate"):
                matrix = torch.ones(t, t)
            else:
                raise ValueError(f"relation must be 'identity', 'all', 'estimate' or a {t}x{t} 0/1 matrix, "
                                 f"got {relation!r}")
        else:
            matrix = torch.as_tensor([[float(v) for v in row] for row in relation])
            if matrix.shape != (t, t) or not bool(((matrix == 0) | (matrix == 1)).all()):
                raise ValueError(f"relation must be a {t}x{t} matrix of 0/1, got {matrix.tolist()}")
            if not bool((matrix.diagonal() == 1).all()):
                raise ValueError("relation needs ones on the diagonal: a group always learns from its own task")
        self.register_buffer("relation", matrix)
        self.register_buffer("cosine_sum", torch.zeros(t, t))
        self.register_buffer("cosine_count", torch.zeros(t, t))
        self.register_buffer("steps", torch.zeros(()))
        self.register_buffer("estimated", torch.zeros(()))
        owner = torch.zeros(w, dtype=torch.long)
        for g, cols in enumerate(self.groups):
            owner[cols] = g
        self.group_of_feature: torch.Tensor
        self.register_buffer("group_of_feature", owner, persistent=False)

    # -- relation ---------------------------------------------------------------------------
    @property
    def estimating(self) -> bool:
        """True while ``"estimate"`` is still measuring the gradient agreement."""
        return self.estimate and not bool(self.estimated)

    def agreement(self) -> torch.Tensor:
        """Mean cosine ``C[g, s]`` measured so far (``[T, T]``; 1 where nothing was measured)."""
        count = self.cosine_count
        return torch.where(count > 0, self.cosine_sum / count.clamp_min(1), torch.ones_like(count))

    def fix_relation(self) -> torch.Tensor:
        """End the estimation: ``R = relation_from_agreement(C, threshold)``; returns ``R``."""
        self.relation.copy_(relation_from_agreement(self.agreement(), self.threshold))
        self.estimated.fill_(1.0)
        return self.relation

    def gradient_masks(self) -> torch.Tensor:
        """``[T, w]``: ``masks[s, c] = R[group(c), s]``, what copy s lets through at every module."""
        return self.relation[self.group_of_feature].T.contiguous()

    def _record_agreement(self, grads: torch.Tensor) -> None:
        """Add, per group g and task s, the cosine between ``grads[g]`` and ``grads[s]`` on g's slice.

        ``grads``: ``[T, B, w]``, copy s holding the gradient task s sends to one module's features.
        """
        with torch.no_grad():
            for g, cols in enumerate(self.groups):
                slab = grads[:, :, cols].flatten(1).double()              # [T, B * w_g]
                norms = slab.norm(dim=1)
                dots = slab @ slab[g]
                ok = (norms > 0) & (norms[g] > 0)
                cos = torch.where(ok, dots / (norms * norms[g]).clamp_min(1e-300), torch.zeros_like(dots))
                self.cosine_sum[g] += cos.float()
                self.cosine_count[g] += ok.float()

    def _watch(self, copies: list[torch.Tensor]) -> None:
        """Hooks on one module's copies: once every copy's gradient has arrived, record the agreement."""
        arrived: dict[int, torch.Tensor] = {}

        def hook_for(s: int) -> Any:
            def hook(grad: torch.Tensor) -> None:
                if len(arrived) == len(copies):
                    return  # already recorded this step (a weighting may run several backward passes)
                arrived[s] = grad.detach()
                if len(arrived) == len(copies):
                    self._record_agreement(torch.stack([arrived[i] for i in range(len(copies))]))

            return hook

        for s, h in enumerate(copies):
            h.register_hook(hook_for(s))

    # -- forward ------------------------------------------------------------------------------
    def gradient_channels(self) -> int:
        """Copies of the trunk the next forward runs: T while training with gradients and some group
        is kept from some task (or the agreement is being measured), else 1."""
        if not (self.training and torch.is_grad_enabled()):
            return 1
        if self.estimating or not bool((self.relation == 1).all()):
            return self.num_tasks
        return 1

    def forward(self, rx: Received) -> dict[str, torch.Tensor]:
        if rx.num_layers < self.num_layers:
            return {}
        if self.training and torch.is_grad_enabled():
            if self.estimating and float(self.steps) >= self.estimate_steps:
                self.fix_relation()
            self.steps += 1
        x = self._input(rx)
        channels = self.gradient_channels()
        masks = self.gradient_masks() if channels > 1 else None
        watch = channels > 1 and self.estimating
        copies = [x] * channels
        for layer in self.trunk:
            copies = [F.gelu(layer(h)) for h in copies]
            if masks is not None:
                copies = [mask_gradient(h, masks[s]) for s, h in enumerate(copies)]
                if watch:
                    self._watch(copies)
        out: dict[str, torch.Tensor] = {}
        if channels == 1:
            out[SHARED] = copies[0]
        for s, task in enumerate(self.tasks):
            out[task.name] = self._answer(task.kind, copies[s if channels > 1 else 0])
        return out

    def trunk_layers(self) -> nn.Module:
        return self.trunk

    def shared_parameters(self) -> list[nn.Parameter]:
        return list(self.trunk.parameters())

    def last_shared_parameters(self) -> list[nn.Parameter]:
        return list(self.trunk[-1].parameters())


class SeparateTrunksReceiver(TrunkReceiver):
    """Separate networks: one trunk per task (same depth and width as the shared trunk), same heads.

    Nothing is shared; :meth:`shared_parameters` returns every trunk's parameters (what the
    weighting strategies act on) and ``outputs`` has no ``SHARED`` entry. Inference costs T trunks.
    """

    name = "separate-trunks"

    def __init__(self, layer_symbols: Sequence[int], num_classes: int, **kwargs: Any) -> None:
        super().__init__(layer_symbols, num_classes, **kwargs)
        w = self.width
        self.trunks = nn.ModuleList(
            nn.ModuleList(nn.Linear(self.in_features if k == 0 else w, w) for k in range(self.depth))
            for _ in self.kinds)

    def forward(self, rx: Received) -> dict[str, torch.Tensor]:
        if rx.num_layers < self.num_layers:
            return {}
        x = self._input(rx)
        out: dict[str, torch.Tensor] = {}
        for task, trunk in zip(self.tasks, self.trunks, strict=True):
            h = x
            for layer in cast(nn.ModuleList, trunk):
                h = F.gelu(layer(h))
            out[task.name] = self._answer(task.kind, h)
        return out

    def trunk_layers(self) -> nn.Module:
        return self.trunks

    def shared_parameters(self) -> list[nn.Parameter]:
        return list(self.trunks.parameters())

    def last_shared_parameters(self) -> list[nn.Parameter]:
        return [p for trunk in self.trunks for p in cast(nn.ModuleList, trunk)[-1].parameters()]


def gradsplit(layer_symbols: Sequence[int], num_classes: int, **kwargs: Any) -> GradSplitReceiver:
    """GradSplit with the identity relation: group t learns from task t only (Deng et al., 2023)."""
    kwargs.setdefault("relation", "identity")
    return GradSplitReceiver(layer_symbols, num_classes, **kwargs)


def gradsplit_estimated(layer_symbols: Sequence[int], num_classes: int, **kwargs: Any) -> GradSplitReceiver:
    """GradSplit with the relation estimated from gradient agreement in the first training steps."""
    kwargs.setdefault("relation", "estimate")
    receiver = GradSplitReceiver(layer_symbols, num_classes, **kwargs)
    receiver.name = "gradsplit-estimated"
    return receiver


def shared_trunk(layer_symbols: Sequence[int], num_classes: int, **kwargs: Any) -> GradSplitReceiver:
    """Hard sharing: the GradSplit trunk with every group learning from every task (``R = 1``)."""
    kwargs.setdefault("relation", "all")
    receiver = GradSplitReceiver(layer_symbols, num_classes, **kwargs)
    receiver.name = "shared-trunk"
    return receiver


def separate_trunks(layer_symbols: Sequence[int], num_classes: int, **kwargs: Any) -> SeparateTrunksReceiver:
    """Separate networks: one trunk per task, at the same depth and width."""
    return SeparateTrunksReceiver(layer_symbols, num_classes, **kwargs)
