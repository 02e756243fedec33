"""Uncertainty-aware, physically guided proxy tasks for classification over unseen channels.

After "Uncertainty-Aware Physically Guided Proxy Tasks for Unseen Domain Face Anti-Spoofing" (Wu,
Yu, Liu, Wang, Chandraker, arXiv 2020). There, branches learn physically meaningful cues (depth,
material, reflection) as proxy tasks; an uncertainty-aware attention fuses the branches' features
for the main task, its weights drawn from a learned Gaussian during training (their mean at test);
and hard-negative pairs (same identity, different label) keep the features on the task. Here:

* branches and their proxy task, each physically meaningful for a channel:
  ``reconstruction`` (the source image from layers 1..r, MSE), ``snr`` (the effective SNR of the
  image, ``SNR + 10 log10 |h|^2`` on fading, in dB / 20, MSE; this branch is *blind*: it sees the
  received symbols only, never the SNR the receiver is told, so it must read the noise level off
  the signal) and ``denoising`` (the transmitted symbols of layers 1..r from the received ones, MSE);
* main task: the class from layers 1..r, on the attention-fused branch features;
* attention: for resolution r, a small network maps the branch features to a mean ``mu_j`` and a
  log-variance ``log s_j^2`` per branch; training draws ``a = mu + s * eps`` (reparameterised),
  test uses ``a = mu``; the branch weights are ``softmax(a)``. A KL term
  ``KL(N(mu, s^2) || N(0, 1))`` (weight 1e-3, our choice: the paper does not give one) keeps the
  variance from collapsing to zero. ``proxy-softmax`` is the same network with plain softmax
  attention (``a = mu`` always, no KL): the control;
* hard negatives: the training loop sends, for every image, an image of another class through the
  same channel realisation (same gain and noise); a margin loss ``max(0, m - ||u_a - u_b||)^2`` on
  the normalised fused features ``u`` at the top resolution pushes the pair apart, so the features
  carry the class rather than the channel.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import cast

import torch
from torch import nn
from torch.nn import functional as F

from semcom.receivers.base import SHARED, Received, Receiver, Targets, Task, mlp

__all__ = ["BRANCHES", "ProxyTaskReceiver", "proxy_softmax", "proxy_uncertainty"]

BRANCHES = ("reconstruction", "snr", "denoising")


class ProxyTaskReceiver(Receiver):
    """Branches with proxy tasks, fused by (uncertainty-aware) attention for classification.

    Args:
        layer_symbols, num_classes, image_shape, coarse_groups, width, use_snr: as :class:`Receiver`.
        branches: proxy branches to build, a subset of :data:`BRANCHES` (order kept).
        uncertainty: True: Gaussian attention weights, sampled in training; False: plain softmax.
        proxy_weight: fixed weight of each proxy loss relative to the classification losses.
        pair_weight: weight of the hard-negative margin loss (0: no pairs are asked for).
        margin: the hard-negative margin ``m`` on unit-norm features (distances lie in [0, 2]).
        kl_weight: weight of the attention KL term (uncertainty attention only).

    Tasks: ``class@r`` (main); ``image@r``, ``snr@r``, ``symbols@r`` (proxies, per branch);
    ``hard-negative`` and ``attention-kl`` (regularisers). Outputs also carry ``attention@r``
    (``[B, J]`` branch weights) and ``embedding`` (``[B, width]`` unit-norm fused features).
    """

    name = "proxy-uncertainty"

    def __init__(
        self,
        layer_symbols: Sequence[int],
        num_classes: int,
        branches: Sequence[str] = BRANCHES,
        uncertainty: bool = True,
        proxy_weight: float = 1.0,
        pair_weight: float = 0.1,
        margin: float = 1.0,
        kl_weight: float = 1e-3,
        **kwargs: object,
    ) -> None:
        super().__init__(layer_symbols, num_classes, **kwargs)  # type: ignore[arg-type]
        unknown = set(branches) - set(BRANCHES)
        if unknown or not branches:
            raise ValueError(f"branches must be a non-empty subset of {BRANCHES}, got {list(branches)}")
        self.branches = tuple(branches)
        self.uncertainty = bool(uncertainty)
        self.margin = float(margin)
        self.wants_pairs = pair_weight > 0
        n, w, nb = self.num_layers, self.width, len(self.branches)
        self.embed = nn.ModuleDict({
            b: nn.ModuleList(mlp([self._in_features(i, self._sees_snr(b)), w, w], final_act=True)
                             for i in range(n))
            for b in self.branches
        })
        self.pool = nn.ModuleDict({b: mlp([w, w], final_act=True) for b in self.branches})
        self.attention = mlp([nb * w, w, 2 * nb])
        self.classifiers = nn.ModuleList(mlp([w, w, self.num_classes]) for _ in range(n))
        pixels = math.prod(self.image_shape)
        if "reconstruction" in self.branches:
            self.decoder = mlp([w, 2 * w, pixels])
        if "snr" in self.branches:
            self.snr_head = nn.Linear(w, 1)
        if "denoising" in self.branches:
            self.denoisers = nn.ModuleList(nn.Linear(w, 2 * k) for k in self.layer_symbols)
        tasks = []
        proxy_kind = {"reconstruction": "image", "snr": "snr", "denoising": "symbols"}
        for r in range(1, n + 1):
            tasks.append(Task(f"class@{r}", "class", r))
            for b in self.branches:
                kind = proxy_kind[b]
                tasks.append(Task(f"{kind}@{r}", kind, r, main=False, weight=proxy_weight))  # type: ignore[arg-type]
        if self.wants_pairs:
            tasks.append(Task("hard-negative", "aux", n, main=False, weight=pair_weight))
        if self.uncertainty and kl_weight > 0:
            tasks.append(Task("attention-kl", "aux", 1, main=False, weight=kl_weight))
        self.tasks = tuple(tasks)

    def forward(self, rx: Received) -> dict[str, torch.Tensor]:
        r_max = min(rx.num_layers, self.num_layers)
        inputs = {s: [self._layer_input(rx, i, s) for i in range(r_max)] for s in (False, True)}
        w = self.width
        # per-branch, per-layer embeddings; the concatenation is the shared representation
        emb = torch.cat([cast(nn.ModuleList, self.embed[b])[i](inputs[self._sees_snr(b)][i])
                         for b in self.branches for i in range(r_max)], dim=1)
        out: dict[str, torch.Tensor] = {SHARED: emb}
        per = emb.reshape(rx.batch, len(self.branches), r_max, w)    # [B, J, r, w]
        kl = emb.new_zeros(rx.batch)
        for r in range(1, r_max + 1):
            pooled = per[:, :, :r].sum(dim=2)                           # [B, J, w]
            feats = torch.stack([self.pool[b](pooled[:, j]) for j, b in enumerate(self.branches)], dim=1)
            stats = self.attention(feats.flatten(1)).reshape(rx.batch, 2, len(self.branches))
            mu, log_var = stats[:, 0], stats[:, 1].clamp(-8.0, 4.0)
            if self.uncertainty and self.training:
                a = mu + torch.exp(0.5 * log_var) * torch.randn_like(mu)
            else:
                a = mu
            if self.uncertainty:
                kl = kl + 0.5 * (mu.square() + log_var.exp() - 1.0 - log_var).sum(dim=1)
            att = torch.softmax(a, dim=1)
            fused = (att.unsqueeze(2) * feats).sum(dim=1)              # [B, w]
            out[f"attention@{r}"] = att
            out[f"class@{r}"] = self.classifiers[r - 1](fused)
            for j, b in enumerate(self.branches):
                if b == "reconstruction":
                    image = torch.sigmoid(self.decoder(feats[:, j]))
                    out[f"image@{r}"] = image.reshape(-1, *self.image_shape)
                elif b == "snr":
                    out[f"snr@{r}"] = self.snr_head(feats[:, j]).squeeze(1)
                else:
                    den = per[:, j, :r]
                    out[f"symbols@{r}"] = torch.cat([self.denoisers[i](den[:, i]) for i in range(r)], dim=1)
            if r == self.num_layers:
                out["embedding"] = F.normalize(fused, dim=1)
        if self.uncertainty:
            out["attention-kl"] = kl / r_max
        return out

    def _sees_snr(self, branch: str) -> bool:
        """Whether a branch gets the told SNR as input (the SNR-estimation branch never does)."""
        return self.use_snr and branch != "snr"

    def task_loss(
        self, task: Task, outputs: dict[str, torch.Tensor], targets: Targets,
    ) -> torch.Tensor | None:
        if task.name != "hard-negative":
            return super().task_loss(task, outputs, targets)
        if "embedding" not in outputs or targets.partner is None:
            return None
        keep = targets.partner >= 0
        if not bool(keep.any()):
            return None
        u = outputs["embedding"]
        d = (u[keep] - u[targets.partner[keep]]).norm(dim=1)
        return F.relu(self.margin - d).square().mean()

    def shared_parameters(self) -> list[nn.Parameter]:
        return list(self.embed.parameters())

    def last_shared_parameters(self) -> list[nn.Parameter]:
        return [p for b in self.branches for e in cast(nn.ModuleList, self.embed[b])
                for p in cast(nn.Sequential, e)[-2].parameters()]


def proxy_uncertainty(layer_symbols: Sequence[int], num_classes: int, **kwargs: object) -> ProxyTaskReceiver:
    """Proxy tasks (reconstruction, SNR, denoising) fused by uncertainty-aware attention (after Wu et al.)."""
    kwargs.setdefault("uncertainty", True)
    return ProxyTaskReceiver(layer_symbols, num_classes, **kwargs)  # type: ignore[arg-type]


def proxy_softmax(layer_symbols: Sequence[int], num_classes: int, **kwargs: object) -> ProxyTaskReceiver:
    """Proxy-task branches fused by plain softmax attention (the control for the uncertainty attention)."""
    kwargs.setdefault("uncertainty", False)
    rx = ProxyTaskReceiver(layer_symbols, num_classes, **kwargs)  # type: ignore[arg-type]
    rx.name = "proxy-softmax"
    return rx
