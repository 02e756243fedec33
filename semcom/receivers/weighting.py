"""Task-weighting strategies for multi-task receivers, behind one interface.

Every strategy is a :class:`Weighting` built from the receiver's tasks. One training step is::

    outputs = receiver(rx)
    losses = receiver.losses(outputs, targets)              # {task name: scalar}
    optimizer.zero_grad()
    weights = weighting.backward(losses, shared=receiver.shared_parameters(),
                                 last_shared=receiver.last_shared_parameters(),
                                 representation=outputs.get(SHARED))
    optimizer.step()                                        # over receiver + weighting.parameters()

``backward`` fills ``.grad`` of the receiver's parameters (and of its own learnable parameters) and
returns the weight it gave each task, for logging. Regularisers (tasks of kind ``aux``, e.g. an
attention KL term) are not balanced: every strategy adds them with weight 1. Strategies:

* ``equal``: ``sum_i L_i``.
* ``uncertainty``: homoscedastic uncertainty weighting, "Multi-Task Learning Using Uncertainty to
  Weigh Losses for Scene Geometry and Semantics" (Kendall, Gal, Cipolla, 2018).
* ``gradnorm``: "GradNorm: Gradient Normalization for Adaptive Loss Balancing in Deep Multitask
  Networks" (Chen, Badrinarayanan, Lee, Rabinovich, 2018).
* ``pcgrad``: "Gradient Surgery for Multi-Task Learning" (Yu, Kumar, Gupta, Levine, Hausman, Finn,
  2020).
* ``mgda-ub``: "Multi-Task Learning as Multi-Objective Optimization" (Sener, Koltun, 2018), the
  upper-bound variant on the shared representation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from semcom.receivers.base import Task
from semcom.registry import Registry

__all__ = [
    "WEIGHTINGS",
    "EqualWeighting",
    "GradNorm",
    "MgdaUb",
    "PcGrad",
    "UncertaintyWeighting",
    "Weighting",
    "make_weighting",
    "min_norm_weights",
    "pcgrad_project",
]

WEIGHTINGS = Registry("weightings", entry_point_group="semcom.weightings")


def _flat(grads: Sequence[torch.Tensor | None], params: Sequence[torch.Tensor]) -> torch.Tensor:
    return torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(-1)
                      for g, p in zip(grads, params, strict=True)])


def _task_grads(losses: Sequence[torch.Tensor], wrt: Sequence[torch.Tensor]) -> torch.Tensor:
    """``[T, D]``: the flattened gradient of each loss with respect to ``wrt`` (graph kept)."""
    rows = [_flat(torch.autograd.grad(loss, list(wrt), retain_graph=True, allow_unused=True), wrt)
            for loss in losses]
    return torch.stack(rows)


def _assign(params: Sequence[torch.Tensor], flat: torch.Tensor) -> None:
    """Write a flat gradient vector into ``.grad`` of ``params``."""
    start = 0
    for p in params:
        n = p.numel()
        p.grad = flat[start:start + n].view_as(p).clone()
        start += n


class Weighting(nn.Module):
    """Base class: combine per-task losses and run the backward pass.

    Args:
        tasks: the receiver's tasks (a strategy may treat classification and regression apart).
    """

    name = "weighting"

    def __init__(self, tasks: Sequence[Task]) -> None:
        super().__init__()
        if not tasks:
            raise ValueError("a weighting needs at least one task")
        self.task_names = tuple(t.name for t in tasks)
        self.task_kinds = {t.name: t.kind for t in tasks}

    def backward(
        self,
        losses: dict[str, torch.Tensor],
        shared: Sequence[torch.Tensor] = (),
        last_shared: Sequence[torch.Tensor] | None = None,
        representation: torch.Tensor | None = None,
    ) -> dict[str, float]:
        """Fill the gradients for this step; return the weight given to each task."""
        raise NotImplementedError

    def split(self, losses: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
        """The tasks to balance, and the sum of the regularisers (``aux`` tasks, always weight 1)."""
        aux = [v for k, v in losses.items() if self.task_kinds.get(k) == "aux"]
        tasks = {k: v for k, v in losses.items() if self.task_kinds.get(k) != "aux"}
        return tasks, (torch.stack(aux).sum() if aux else None)


class EqualWeighting(Weighting):
    """``L = sum_i L_i``: every task weighs 1."""

    name = "equal"

    def backward(
        self,
        losses: dict[str, torch.Tensor],
        shared: Sequence[torch.Tensor] = (),
        last_shared: Sequence[torch.Tensor] | None = None,
        representation: torch.Tensor | None = None,
    ) -> dict[str, float]:
        torch.stack(list(losses.values())).sum().backward()
        return {k: 1.0 for k in losses}


class UncertaintyWeighting(Weighting):
    """Homoscedastic task uncertainty (Kendall, Gal, Cipolla, 2018), with ``s_i = log sigma_i^2`` learned.

    Regression tasks (Gaussian likelihood): ``0.5 exp(-s_i) L_i + 0.5 s_i``; classification tasks
    (scaled softmax likelihood): ``exp(-s_i) L_i + 0.5 s_i``. At the optimum of ``s_i`` the
    regression weight ``exp(-s_i)`` equals ``1 / L_i``: for a mean-squared error, the inverse of the
    task's noise variance. The ``s_i`` are parameters of this module: give them to the optimizer.
    """

    name = "uncertainty"

    def __init__(self, tasks: Sequence[Task]) -> None:
        super().__init__(tasks)
        self.log_var = nn.Parameter(torch.zeros(len(self.task_names)))

    def backward(
        self,
        losses: dict[str, torch.Tensor],
        shared: Sequence[torch.Tensor] = (),
        last_shared: Sequence[torch.Tensor] | None = None,
        representation: torch.Tensor | None = None,
    ) -> dict[str, float]:
        losses, aux = self.split(losses)
        total = self.log_var.new_zeros(()) if aux is None else aux
        weights = {}
        for i, name in enumerate(self.task_names):
            if name not in losses:
                continue
            s = self.log_var[i]
            scale = 1.0 if self.task_kinds[name] in ("class", "coarse") else 0.5
            total = total + scale * torch.exp(-s) * losses[name] + 0.5 * s
            weights[name] = float(scale * torch.exp(-s.detach()))
        total.backward()
        return weights


class GradNorm(Weighting):
    """GradNorm (Chen et al., 2018): learn weights ``w_i`` that equalise the tasks' training rates.

    With ``G_i = ||grad_W w_i L_i||`` on the last shared layer ``W``, the mean ``G_bar``, the loss
    ratios ``L~_i = L_i(t) / L_i(0)`` and the relative inverse training rates
    ``r_i = L~_i / mean_j L~_j``, the weights follow ``grad_w sum_i |G_i - G_bar r_i^alpha|`` (the
    target held constant) with their own optimizer, then are renormalised to ``sum_i w_i = T``. The
    network itself gets the gradient of ``sum_i w_i L_i``. ``alpha = 0`` equalises the gradient
    norms; larger ``alpha`` pushes harder on tasks that train slowly.
    """

    name = "gradnorm"

    def __init__(self, tasks: Sequence[Task], alpha: float = 1.5, lr: float = 0.025) -> None:
        super().__init__(tasks)
        self.alpha = float(alpha)
        self.w: torch.Tensor
        self.initial: torch.Tensor
        self.register_buffer("w", torch.ones(len(self.task_names)))
        self.register_buffer("initial", torch.full((len(self.task_names),), float("nan")))
        self._w = self.w.clone().requires_grad_(True)
        self._opt = torch.optim.Adam([self._w], lr=lr)

    def backward(
        self,
        losses: dict[str, torch.Tensor],
        shared: Sequence[torch.Tensor] = (),
        last_shared: Sequence[torch.Tensor] | None = None,
        representation: torch.Tensor | None = None,
    ) -> dict[str, float]:
        losses, aux = self.split(losses)
        names = [n for n in self.task_names if n in losses]
        idx = torch.tensor([self.task_names.index(n) for n in names])
        params = list(last_shared if last_shared is not None else shared)
        if not params:
            raise ValueError("GradNorm needs the receiver's last shared parameters")
        task_losses = torch.stack([losses[n] for n in names])
        grads = _task_grads(list(task_losses), params)          # [T, D], unweighted
        norms = grads.norm(dim=1).detach()                       # ||grad_W L_i||
        first = torch.isnan(self.initial[idx])
        self.initial[idx[first]] = task_losses.detach()[first].clamp_min(1e-12)
        w = self._w[idx]
        g = w * norms                                            # G_i, linear in w_i
        ratio = task_losses.detach() / self.initial[idx]
        rate = ratio / ratio.mean()
        target = (g.mean() * rate.pow(self.alpha)).detach()
        grad_loss = (g - target).abs().sum()
        self._opt.zero_grad()
        grad_loss.backward()
        total = (w.detach() * task_losses).sum()
        (total if aux is None else total + aux).backward()
        self._opt.step()
        with torch.no_grad():
            self._w.clamp_(min=1e-3)
            self._w.mul_(len(self.task_names) / self._w.sum())
            self.w.copy_(self._w)
        return {n: float(self.w[j]) for n, j in zip(names, idx.tolist(), strict=True)}

    def _load_from_state_dict(self, *args: Any, **kwargs: Any) -> None:
        super()._load_from_state_dict(*args, **kwargs)
        with torch.no_grad():
            self._w.copy_(self.w)

    def gradient_norms(
        self, losses: dict[str, torch.Tensor], params: Sequence[torch.Tensor],
    ) -> dict[str, float]:
        """``G_i = w_i ||grad_W L_i||`` for the current weights (for tests and logging)."""
        names = [n for n in self.task_names if n in losses]
        grads = _task_grads([losses[n] for n in names], params)
        return {n: float(self.w[self.task_names.index(n)] * grads[i].norm()) for i, n in enumerate(names)}


def pcgrad_project(grads: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """PCGrad's gradient surgery on ``[T, D]`` task gradients; returns the projected ``[T, D]``.

    For each task ``i`` and each other task ``j`` (in random order): if ``g_i . g_j < 0``,
    ``g_i <- g_i - (g_i . g_j) / ||g_j||^2 g_j`` (projection onto the normal plane of ``g_j``), with
    ``g_j`` the original gradients (Yu et al., 2020, Algorithm 1).
    """
    out = grads.clone()
    t = grads.shape[0]
    for i in range(t):
        order = torch.randperm(t, generator=generator).tolist()
        for j in order:
            if j == i:
                continue
            dot = torch.dot(out[i], grads[j])
            if dot < 0:
                out[i] = out[i] - dot / grads[j].square().sum().clamp_min(1e-20) * grads[j]
    return out


class PcGrad(Weighting):
    """PCGrad (Yu et al., 2020): project away conflicting components of the shared gradients.

    Shared parameters get ``sum_i g_i^PC`` (:func:`pcgrad_project`); task-specific parameters get
    their own task's gradient (the plain sum, where no other task reaches).
    """

    name = "pcgrad"

    def __init__(self, tasks: Sequence[Task], seed: int = 0) -> None:
        super().__init__(tasks)
        self._gen = torch.Generator().manual_seed(seed)

    def backward(
        self,
        losses: dict[str, torch.Tensor],
        shared: Sequence[torch.Tensor] = (),
        last_shared: Sequence[torch.Tensor] | None = None,
        representation: torch.Tensor | None = None,
    ) -> dict[str, float]:
        params = [p for p in shared if p.requires_grad]
        if not params:
            raise ValueError("PCGrad needs the receiver's shared parameters")
        losses, aux = self.split(losses)
        names = list(losses)
        grads = _task_grads([losses[n] for n in names], params)
        projected = pcgrad_project(grads, self._gen).sum(dim=0)
        if aux is not None:  # regularisers are added as they are, not projected
            projected = projected + _task_grads([aux], params)[0]
        total = torch.stack([losses[n] for n in names]).sum()
        (total if aux is None else total + aux).backward()
        _assign(params, projected)
        return {n: 1.0 for n in names}


def min_norm_weights(grads: torch.Tensor, iters: int = 250, tol: float = 1e-6) -> torch.Tensor:
    """Weights ``alpha`` on the simplex minimising ``||sum_i alpha_i g_i||^2`` for ``[T, D]`` gradients.

    Two tasks: the closed form ``alpha_1 = clip((g_2 - g_1) . g_2 / ||g_1 - g_2||^2, 0, 1)``. More
    tasks: Frank-Wolfe on the Gram matrix, each step a two-point line search with that same formula
    (Sener and Koltun, 2018, Algorithms 1-2).
    """
    gram = (grads @ grads.T).double()
    t = gram.shape[0]

    def line(v1v1: torch.Tensor, v1v2: torch.Tensor, v2v2: torch.Tensor) -> torch.Tensor:
        # argmin_gamma ||gamma v1 + (1 - gamma) v2||^2 over [0, 1]
        denom = v1v1 + v2v2 - 2 * v1v2
        if denom <= 1e-20:
            return torch.tensor(0.5, dtype=torch.float64)
        return ((v2v2 - v1v2) / denom).clamp(0.0, 1.0)

    if t == 1:
        return torch.ones(1, dtype=grads.dtype)
    if t == 2:
        a = line(gram[0, 0], gram[0, 1], gram[1, 1])
        return torch.stack([a, 1 - a]).to(grads.dtype)
    alpha = torch.full((t,), 1.0 / t, dtype=torch.float64)
    for _ in range(iters):
        m_alpha = gram @ alpha
        k = int(torch.argmin(m_alpha))
        v1v1 = alpha @ m_alpha          # ||v||^2, v = sum alpha_i g_i
        v1v2 = m_alpha[k]               # v . g_k
        v2v2 = gram[k, k]
        gamma = line(v1v1, v1v2, v2v2)
        new = gamma * alpha
        new[k] += 1 - gamma
        if (new - alpha).abs().sum() < tol:
            alpha = new
            break
        alpha = new
    return alpha.to(grads.dtype)


class MgdaUb(Weighting):
    """MGDA-UB (Sener and Koltun, 2018): the min-norm convex combination of the task gradients.

    The gradients are taken with respect to the shared representation ``Z`` (``outputs[SHARED]``)
    rather than the shared parameters, the paper's upper bound that needs one backward pass per
    task through the heads only. Without a representation the shared parameters are used (plain
    MGDA). ``normalize`` scales each gradient before the solver: ``"loss"`` divides it by its loss,
    ``"l2"`` by its norm, ``"none"`` leaves it (the gradient normalisations the paper discusses).
    The network then gets ``sum_i alpha_i L_i``, the weights multiplied by the number of tasks so
    that the loss scale matches ``equal`` (our choice; it only rescales the learning rate).
    """

    name = "mgda-ub"

    def __init__(self, tasks: Sequence[Task], normalize: str = "loss") -> None:
        super().__init__(tasks)
        if normalize not in ("none", "loss", "l2"):
            raise ValueError(f"normalize must be 'none', 'loss' or 'l2', not {normalize!r}")
        self.normalize = normalize

    def backward(
        self,
        losses: dict[str, torch.Tensor],
        shared: Sequence[torch.Tensor] = (),
        last_shared: Sequence[torch.Tensor] | None = None,
        representation: torch.Tensor | None = None,
    ) -> dict[str, float]:
        losses, aux = self.split(losses)
        names = list(losses)
        wrt = [representation] if representation is not None else [p for p in shared if p.requires_grad]
        if not wrt:
            raise ValueError("MGDA-UB needs the shared representation or the shared parameters")
        grads = _task_grads([losses[n] for n in names], wrt).detach()
        if self.normalize == "loss":
            grads = grads / torch.stack([losses[n].detach() for n in names]).clamp_min(1e-12).unsqueeze(1)
        elif self.normalize == "l2":
            grads = grads / grads.norm(dim=1, keepdim=True).clamp_min(1e-12)
        alpha = min_norm_weights(grads) * len(names)
        total = torch.stack([alpha[i] * losses[n] for i, n in enumerate(names)]).sum()
        (total if aux is None else total + aux).backward()
        return {n: float(alpha[i]) for i, n in enumerate(names)}


WEIGHTINGS.add("equal", EqualWeighting, EqualWeighting.__doc__ or "")
WEIGHTINGS.add("uncertainty", UncertaintyWeighting,
               "homoscedastic uncertainty weighting (Kendall, Gal, Cipolla 2018)")
WEIGHTINGS.add("gradnorm", GradNorm,
               "GradNorm: equalise training rates via gradient norms (Chen et al. 2018)")
WEIGHTINGS.add("pcgrad", PcGrad,
               "PCGrad gradient surgery: drop conflicting components (Yu et al. 2020)")
WEIGHTINGS.add("mgda-ub", MgdaUb,
               "MGDA-UB: min-norm gradient combination on the shared representation (Sener, Koltun 2018)")


def make_weighting(name: str, tasks: Sequence[Task], **kwargs: object) -> Weighting:
    """Build the weighting strategy registered as ``name`` for these tasks."""
    return WEIGHTINGS.create(name, tasks=tasks, **kwargs)
