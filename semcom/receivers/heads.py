"""The baseline semantic receiver: one classifier per resolution on layers 1..r."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import torch
from torch import nn

from semcom.receivers.base import SHARED, Received, Receiver, Task, mlp

__all__ = ["PerLayerHeads"]


class PerLayerHeads(Receiver):
    """Plain per-layer heads: classifier ``C_r`` reads layers 1..r, one per resolution r.

    The baseline of "Semantic Multi-Resolution Communications" (Mortaheb, Khojastepour, Chakradhar,
    Ulukus, 2023): each resolution has its own classifier over the current and past layers. Each
    layer ``i`` first goes through its own embedding ``E_i`` (``2 k_i`` reals, plus the SNR, ->
    ``width``); ``C_r`` is an MLP on ``[E_1, .., E_r]``. The embeddings are shared by all heads
    (the shared parameters that the weighting strategies act on); ``outputs[SHARED]`` is their
    concatenation ``[B, r * width]``.

    Tasks: ``class@r`` for r = 1..L (cross-entropy).

    Example:
        >>> rx = Received([torch.randn(4, 8, dtype=torch.cfloat)] * 2, snr_db=10.0)
        >>> PerLayerHeads((8, 8), num_classes=10, width=16)(rx)["class@2"].shape
        torch.Size([4, 10])
    """

    name = "per-layer-heads"

    def __init__(self, layer_symbols: Sequence[int], num_classes: int, **kwargs: object) -> None:
        super().__init__(layer_symbols, num_classes, **kwargs)  # type: ignore[arg-type]
        w = self.width
        self.embed = nn.ModuleList(mlp([self._in_features(i), w, w], final_act=True)
                                   for i in range(self.num_layers))
        self.heads = nn.ModuleList(mlp([w * r, w, self.num_classes]) for r in range(1, self.num_layers + 1))
        self.tasks = tuple(Task(f"class@{r}", "class", r) for r in range(1, self.num_layers + 1))

    def forward(self, rx: Received) -> dict[str, torch.Tensor]:
        r_max = min(rx.num_layers, self.num_layers)
        z = torch.cat([self.embed[i](self._layer_input(rx, i)) for i in range(r_max)], dim=1)
        out = {SHARED: z}
        for r in range(1, r_max + 1):
            out[f"class@{r}"] = self.heads[r - 1](z[:, : r * self.width])
        return out

    def shared_parameters(self) -> list[nn.Parameter]:
        return list(self.embed.parameters())

    def last_shared_parameters(self) -> list[nn.Parameter]:
        # each embedding's output Linear
        return [p for e in self.embed for p in cast(nn.Sequential, e)[-2].parameters()]
