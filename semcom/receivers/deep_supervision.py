"""Deep supervision with intermediate concepts on a progressive receiver trunk.

"Deep Supervision with Intermediate Concepts" (Li, Zia, Tran, Yu, Hager, Chandraker, TPAMI 2018)
attaches the supervision of simpler concepts to earlier hidden layers of one network and the final
task to its top, in a fixed order of increasing complexity; the intermediate concepts act as a
curriculum and a regulariser of the shared features. Here the network is a trunk that grows with
the received layers,

    z_1 = B_1(E_1(layer 1)),    z_r = B_r([z_{r-1}, E_r(layer r)])   for r = 2..L,

so depth r is also resolution r. ``schedule[r-1]`` lists the concepts supervised on ``z_r``:
``"coarse"`` (a coarse grouping of the classes, :mod:`semcom.receivers.concepts`) or ``"class"``.

Registered variants (the comparisons of the paper):

* ``deep-supervision``: coarse on ``z_1`` (layer 1's features), class on ``z_2..z_L``;
* ``top-only``: only the class, only on ``z_L``;
* ``all-at-top``: coarse and class, both on ``z_L``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import torch
from torch import nn

from semcom.receivers.base import SHARED, Received, Receiver, Task, mlp

__all__ = ["DeepSupervision", "all_at_top", "deep_supervision", "top_only"]

_CONCEPTS = ("coarse", "class")


class DeepSupervision(Receiver):
    """Progressive trunk with concept heads at chosen depths (see the module docstring).

    Args:
        layer_symbols, num_classes, image_shape, coarse_groups, width, use_snr: as :class:`Receiver`.
        schedule: for each depth r = 1..L, the concepts supervised there (``"coarse"``, ``"class"``).
            Default: ``[("coarse",), ("class",), ..., ("class",)]``.

    Tasks: ``coarse@r`` / ``class@r`` as the schedule says. ``outputs[SHARED]`` is ``[E_1..E_r]``.
    """

    name = "deep-supervision"

    def __init__(
        self,
        layer_symbols: Sequence[int],
        num_classes: int,
        schedule: Sequence[Sequence[str]] | None = None,
        **kwargs: object,
    ) -> None:
        super().__init__(layer_symbols, num_classes, **kwargs)  # type: ignore[arg-type]
        n = self.num_layers
        if schedule is None:
            schedule = [("coarse",)] + [("class",)] * (n - 1) if n > 1 else [("coarse", "class")]
        if len(schedule) != n:
            raise ValueError(f"schedule needs one entry per layer ({n}), got {len(schedule)}")
        self.schedule = tuple(tuple(s) for s in schedule)
        for concepts in self.schedule:
            for c in concepts:
                if c not in _CONCEPTS:
                    raise ValueError(f"unknown concept {c!r}; use one of {_CONCEPTS}")
        if not any(self.schedule):
            raise ValueError("the schedule supervises nothing")
        w = self.width
        self.embed = nn.ModuleList(mlp([self._in_features(i), w, w], final_act=True) for i in range(n))
        self.blocks = nn.ModuleList(mlp([w if r == 0 else 2 * w, w, w], final_act=True) for r in range(n))
        self.heads = nn.ModuleDict()
        tasks = []
        for r, concepts in enumerate(self.schedule, start=1):
            for c in concepts:
                out = self.num_classes if c == "class" else self.num_coarse
                self.heads[f"{c}@{r}"] = nn.Linear(w, out)
                tasks.append(Task(f"{c}@{r}", "class" if c == "class" else "coarse", r))
        self.tasks = tuple(tasks)
        self._deepest = max(r for r, concepts in enumerate(self.schedule, start=1) if concepts)

    def forward(self, rx: Received) -> dict[str, torch.Tensor]:
        r_max = min(rx.num_layers, self.num_layers, self._deepest)
        e = torch.cat([self.embed[i](self._layer_input(rx, i)) for i in range(r_max)], dim=1)
        out = {SHARED: e}
        w = self.width
        z = e.new_zeros(0)
        for r in range(1, r_max + 1):
            er = e[:, (r - 1) * w: r * w]
            z = self.blocks[r - 1](er if r == 1 else torch.cat([z, er], dim=1))
            for c in self.schedule[r - 1]:
                out[f"{c}@{r}"] = self.heads[f"{c}@{r}"](z)
        return out

    def shared_parameters(self) -> list[nn.Parameter]:
        return list(self.embed.parameters()) + list(self.blocks[0].parameters())

    def last_shared_parameters(self) -> list[nn.Parameter]:
        return list(cast(nn.Sequential, self.blocks[0])[-2].parameters())


def deep_supervision(layer_symbols: Sequence[int], num_classes: int, **kwargs: object) -> DeepSupervision:
    """Deep supervision: coarse concept on layer 1's features, class on layers 2..L (Li et al., 2018)."""
    n = len(layer_symbols)
    kwargs.setdefault("schedule", [("coarse",)] + [("class",)] * (n - 1) if n > 1 else [("coarse", "class")])
    return DeepSupervision(layer_symbols, num_classes, **kwargs)  # type: ignore[arg-type]


def top_only(layer_symbols: Sequence[int], num_classes: int, **kwargs: object) -> DeepSupervision:
    """Same trunk, supervised with the class at the top only (the no-intermediate-concept control)."""
    n = len(layer_symbols)
    kwargs.setdefault("schedule", [()] * (n - 1) + [("class",)])
    return DeepSupervision(layer_symbols, num_classes, **kwargs)  # type: ignore[arg-type]


def all_at_top(layer_symbols: Sequence[int], num_classes: int, **kwargs: object) -> DeepSupervision:
    """Same trunk, coarse concept and class both at the top (multi-task without depth ordering)."""
    n = len(layer_symbols)
    kwargs.setdefault("schedule", [()] * (n - 1) + [("coarse", "class")])
    return DeepSupervision(layer_symbols, num_classes, **kwargs)  # type: ignore[arg-type]
