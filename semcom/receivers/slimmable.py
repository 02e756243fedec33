"""A controllable multi-task receiver: a slimmable trunk and task decoders, steered at run time by a
compute budget (FLOPs) and task preferences, without retraining.

After Aich, Schulter, Roy-Chowdhury, Chandraker, Suh, "Efficient Controllable Multi-Task
Architectures" (ICCV 2023). One network (the "super-network") holds every sub-network:

* a shared **trunk** reads all L received layers (``2 (k_1 + .. + k_L)`` reals, plus the SNR / 20)
  through two slimmable linear layers of ``round(t * width)`` units, ``t`` the trunk ratio, each
  followed by a parameter-free layer normalisation over the units that run and GELU; its output
  ``h`` is the shared representation. The normalisation plays the part of switchable batch norm in
  slimmable CNNs (Yu et al. 2019, below): without it the features' scale depends on the width, and
  nothing bounds the teacher that the distillation loss chases (it is made of the same weights);
* one **decoder** per task kind, ``class`` (logits) and ``image`` (the source image, sigmoid), each a
  slimmable hidden layer of ``round(d * decoder_width)`` units on the first ``round(t * width)``
  trunk units, then the task's output layer.

A sub-network is a :class:`WidthConfig` (a trunk ratio and one ratio per decoder, each from the
receiver's ``ratios``); it runs the leading units of every layer (Yu, Yang, Xu, Yang, Huang,
"Slimmable Neural Networks", ICLR 2019), so every configuration shares its weights with the largest.
The tasks are ``class@L`` and ``image@L`` (both main tasks: the receiver answers from all L layers;
a user with fewer layers gets no output).

**Training** (largest, smallest and random configurations: the sandwich rule of Yu and Huang,
"Universally Slimmable Networks and Improved Training Techniques", ICCV 2019): in training mode ``forward`` runs, on the
same batch, the largest configuration, the smallest and ``random_configs`` configurations drawn
uniformly from the grid (torch's global generator, which the training loop seeds); each task's loss
is the sum over these configurations. The configuration-invariant knowledge-distillation loss (the
paper's CI-KD) pulls every smaller trunk's features toward the largest trunk's on the same input,

    L_kd = sum_c mean_j (h_c[j] - sg(h_max[j]))^2,   j < round(t_c * width),

(``sg``: no gradient to the teacher; the mean squared distance is our choice) and enters as the aux
task ``distill`` with weight ``kd_weight`` (0: left out). Any part-1 trainer works unchanged
(:func:`semcom.receivers.train_receiver`, ``semcom train-receiver slimmable``).

**Control** (:func:`search_configuration`): the user gives a budget in MFLOPs per image and a
weight per task; the decoder widths follow the weights (the most preferred task gets the full
decoder, the others ``w / w_max`` of it, rounded down to the grid), then the trunk gets the widest
ratio whose total fits the budget; when even the narrowest trunk does not fit, all decoders step
down together and the trunk is searched again. ``priority="trunk"`` (not the paper's) inverts the
order: the widest trunk that fits with the narrowest decoders, then the widest decoders that fit.
In eval mode ``forward`` runs :attr:`active` (the largest until :meth:`SlimmableReceiver.configure`
or :meth:`~SlimmableReceiver.apply_control` says otherwise).

**FLOPs** (:meth:`SlimmableReceiver.flops`): per image, linear layers only: a layer from ``a`` to
``b`` units costs ``2 a b`` (``a b`` multiplications, ``(a - 1) b`` additions and ``b`` bias
additions); normalisations, activations, the input features and the sigmoid are not counted.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

import torch
from torch import nn
from torch.nn import functional as F

from semcom.receivers.base import SHARED, SNR_SCALE_DB, Received, Receiver, Targets, Task, layer_features, task_loss

__all__ = [
    "DECODERS",
    "PRIORITIES",
    "RATIOS",
    "Priority",
    "SlimLinear",
    "SlimmableReceiver",
    "WidthConfig",
    "linear_flops",
    "search_configuration",
]

RATIOS = (0.125, 0.25, 0.5, 0.75, 1.0)
"""Default width ratios of the trunk and of each decoder (the grid the configurations come from)."""

Priority = Literal["decoders", "trunk"]
PRIORITIES: tuple[Priority, ...] = ("decoders", "trunk")
"""What :func:`search_configuration` keeps wide when the budget is tight: the preference-scaled decoders
(the paper's rule, the default) or the trunk."""

DECODERS = ("class", "image")
"""The task decoders, by task kind, in order."""

_SAMPLED = "~"  # key of a sampled configuration's output in training: f"{task}~{i}"


def linear_flops(inputs: int, outputs: int) -> int:
    """FLOPs per image of a linear layer with bias from ``inputs`` to ``outputs`` units: ``2 a b``."""
    return 2 * int(inputs) * int(outputs)


@dataclass(frozen=True)
class WidthConfig:
    """One sub-network: the trunk's width ratio and each decoder's, e.g. ``trunk 0.5, class 1, image 0.25``.

    Attributes:
        trunk: ratio of the trunk's full width, in (0, 1].
        decoders: ``(kind, ratio)`` per task decoder, in the receiver's order.
    """

    trunk: float
    decoders: tuple[tuple[str, float], ...]

    @classmethod
    def of(cls, trunk: float, decoders: Mapping[str, float]) -> WidthConfig:
        """``WidthConfig.of(0.5, {"class": 1.0, "image": 0.25})``."""
        return cls(float(trunk), tuple((str(k), float(v)) for k, v in decoders.items()))

    def decoder(self, kind: str) -> float:
        """The width ratio of decoder ``kind``."""
        for name, ratio in self.decoders:
            if name == kind:
                return ratio
        raise KeyError(f"configuration has no decoder '{kind}'")

    def as_dict(self) -> dict[str, float]:
        """``{"trunk": t, "class": d_class, "image": d_image}``."""
        return {"trunk": self.trunk, **dict(self.decoders)}

    def __str__(self) -> str:
        return ", ".join(f"{k} {v:g}" for k, v in self.as_dict().items())


class SlimLinear(nn.Linear):
    """A linear layer that can run on its leading units only: ``y = x W[:b, :a]^T + c[:b]``.

    ``x`` is ``[B, a]`` with ``a <= in_features`` (the leading inputs the previous slimmed layer
    gave); ``out_features`` ``b`` (default: all) selects the leading outputs. The narrow layer is
    a slice of the wide one, so all widths share weights (Yu et al., "Slimmable Neural Networks", 2019).
    """

    def forward(self, x: torch.Tensor, out_features: int | None = None) -> torch.Tensor:
        b = self.out_features if out_features is None else int(out_features)
        a = x.shape[-1]
        if a > self.in_features or not 1 <= b <= self.out_features:
            raise ValueError(f"slimmed layer {a}->{b} exceeds its full size {self.in_features}->{self.out_features}")
        return F.linear(x, self.weight[:b, :a], None if self.bias is None else self.bias[:b])


class SlimmableReceiver(Receiver):
    """Slimmable trunk and task decoders, controlled by a FLOPs budget and task preferences (module docstring).

    Args:
        layer_symbols, num_classes, image_shape, coarse_groups, use_snr: as :class:`Receiver`.
        width: the trunk's full width (units of each trunk layer).
        decoder_width: each decoder's full hidden width (default: ``width``).
        ratios: the width ratios configurations are made of (each in (0, 1], 1 included).
        kd_weight: weight of the configuration-invariant distillation loss (0: none).
        random_configs: random configurations per training step, besides the largest and smallest.
        image_weight: fixed weight of the reconstruction loss (MSE) relative to the cross-entropy.

    Outputs (eval mode, configuration :attr:`active`): ``class@L`` ``[B, num_classes]``, ``image@L``
    ``[B, C, H, W]`` in [0, 1] and ``shared`` (the trunk's features ``[B, round(t * width)]``).

    Example:
        >>> rx = SlimmableReceiver((8, 8), num_classes=10, image_shape=(1, 4, 4), width=16)
        >>> config = rx.apply_control(mflops=rx.flops(rx.largest) / 2e6, prefer={"class": 2, "image": 1})
        >>> rx.flops(config) <= rx.flops(rx.largest) / 2
        True
    """

    name = "slimmable"

    def __init__(
        self,
        layer_symbols: Sequence[int],
        num_classes: int,
        image_shape: Sequence[int] = (1, 28, 28),
        coarse_groups: Sequence[int] | None = None,
        width: int = 128,
        use_snr: bool = True,
        *,
        decoder_width: int | None = None,
        ratios: Sequence[float] = RATIOS,
        kd_weight: float = 1.0,
        random_configs: int = 2,
        image_weight: float = 1.0,
    ) -> None:
        super().__init__(layer_symbols, num_classes, image_shape, coarse_groups, width, use_snr)
        grid = sorted({float(r) for r in ratios})
        if not grid or grid[0] <= 0 or grid[-1] != 1.0:
            raise ValueError(f"ratios must lie in (0, 1] and include 1, got {list(ratios)}")
        if kd_weight < 0 or random_configs < 0:
            raise ValueError("kd_weight and random_configs must be >= 0")
        self.ratios = tuple(grid)
        self.decoder_width = int(decoder_width or width)
        if self.decoder_width < 1:
            raise ValueError(f"decoder_width must be positive, got {decoder_width}")
        self.kd_weight = float(kd_weight)
        self.random_configs = int(random_configs)
        self.in_features = 2 * sum(self.layer_symbols) + (1 if self.use_snr else 0)
        self.output_sizes = {"class": self.num_classes, "image": math.prod(self.image_shape)}
        w, d = self.width, self.decoder_width
        self.trunk = nn.ModuleList([SlimLinear(self.in_features, w), SlimLinear(w, w)])
        self.decoders = nn.ModuleDict({kind: nn.ModuleList([SlimLinear(w, d), SlimLinear(d, self.output_sizes[kind])])
                                       for kind in DECODERS})
        top = self.num_layers
        tasks = [Task(f"class@{top}", "class", top), Task(f"image@{top}", "image", top, weight=float(image_weight))]
        if self.kd_weight > 0:
            tasks.append(Task("distill", "aux", top, main=False, weight=self.kd_weight))
        self.tasks = tuple(tasks)
        self.active = self.largest

    # -- configurations ------------------------------------------------------------------------
    @property
    def largest(self) -> WidthConfig:
        """Every layer at full width (the teacher of the distillation loss)."""
        return WidthConfig.of(1.0, dict.fromkeys(DECODERS, 1.0))

    @property
    def smallest(self) -> WidthConfig:
        """Every layer at the narrowest ratio."""
        low = self.ratios[0]
        return WidthConfig.of(low, dict.fromkeys(DECODERS, low))

    def configurations(self) -> list[WidthConfig]:
        """Every configuration of the grid (``len(ratios) ** 3``), trunk ratio varying slowest."""
        return [WidthConfig.of(t, dict(zip(DECODERS, ds, strict=True)))
                for t, *ds in itertools.product(self.ratios, repeat=1 + len(DECODERS))]

    def sample_configuration(self) -> WidthConfig:
        """A configuration drawn uniformly from the grid (torch's global generator)."""
        idx = torch.randint(len(self.ratios), (1 + len(DECODERS),)).tolist()
        return WidthConfig.of(self.ratios[idx[0]], {k: self.ratios[i] for k, i in zip(DECODERS, idx[1:], strict=True)})

    def check(self, config: WidthConfig) -> WidthConfig:
        """``config`` if every ratio is on the grid and it has exactly this receiver's decoders; else ValueError."""
        kinds = tuple(k for k, _ in config.decoders)
        if sorted(kinds) != sorted(DECODERS):
            raise ValueError(f"a configuration needs one ratio per decoder {', '.join(DECODERS)}; "
                             f"got {', '.join(kinds)}")
        off = [r for r in config.as_dict().values() if r not in self.ratios]
        if off:
            raise ValueError(f"ratios {off} are not on this receiver's grid {list(self.ratios)}")
        return WidthConfig.of(config.trunk, {k: config.decoder(k) for k in DECODERS})

    def configure(self, config: WidthConfig) -> WidthConfig:
        """Run ``config`` from now on (eval mode); returns it."""
        self.active = self.check(config)
        return self.active

    def apply_control(self, mflops: float | None = None, prefer: Mapping[str, float] | None = None,
                      priority: Priority = "decoders") -> WidthConfig:
        """Choose and activate the configuration for a budget and preferences (:func:`search_configuration`)."""
        return self.configure(search_configuration(self, mflops, prefer, priority))

    @staticmethod
    def units(full: int, ratio: float) -> int:
        """Units a layer of ``full`` width runs at ``ratio``: ``round(ratio * full)``, at least 1."""
        return max(1, math.floor(ratio * full + 0.5))

    def flops(self, config: WidthConfig) -> int:
        """FLOPs per image of ``config`` (linear layers: ``2 a b`` each; see the module docstring)."""
        t = self.units(self.width, config.trunk)
        total = linear_flops(self.in_features, t) + linear_flops(t, t)
        for kind in DECODERS:
            d = self.units(self.decoder_width, config.decoder(kind))
            total += linear_flops(t, d) + linear_flops(d, self.output_sizes[kind])
        return total

    def mflops(self, config: WidthConfig) -> float:
        """:meth:`flops` in millions."""
        return self.flops(config) / 1e6

    # -- forward -------------------------------------------------------------------------------
    def _features(self, rx: Received) -> torch.Tensor:
        """``[B, in_features]``: the real features of layers 1..L, then the SNR / 20."""
        parts = [layer_features(z) for z in rx.layers[: self.num_layers]]
        if self.use_snr:
            parts.append((rx.snr_db / SNR_SCALE_DB).unsqueeze(1).to(parts[0].dtype))
        return torch.cat(parts, dim=1)

    def trunk_features(self, x: torch.Tensor, ratio: float) -> torch.Tensor:
        """The trunk at ``ratio`` on input features ``x``: ``[B, round(ratio * width)]``."""
        t = self.units(self.width, ratio)
        h = F.gelu(_normalize(self.trunk[0](x, t)))
        return F.gelu(_normalize(self.trunk[1](h, t)))

    def run(self, rx: Received, config: WidthConfig) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
        """Outputs of configuration ``config`` and its trunk features (``({}, None)`` with fewer than L layers)."""
        if rx.num_layers < self.num_layers:
            return {}, None
        h = self.trunk_features(self._features(rx), config.trunk)
        top = self.num_layers
        out = {SHARED: h}
        for kind in DECODERS:
            hidden, last = cast(nn.ModuleList, self.decoders[kind])
            y = last(F.gelu(hidden(h, self.units(self.decoder_width, config.decoder(kind)))))
            out[f"{kind}@{top}"] = y if kind == "class" else torch.sigmoid(y).reshape(-1, *self.image_shape)
        return out, h

    def forward(self, rx: Received) -> dict[str, torch.Tensor]:
        """Eval: the outputs of :attr:`active`. Training: the sandwich rule (module docstring)."""
        if not self.training:
            return self.run(rx, self.active)[0]
        out, teacher = self.run(rx, self.largest)
        if teacher is None:
            return out
        teacher = teacher.detach()
        penalty = torch.zeros(rx.batch, device=teacher.device)
        sampled = [self.smallest] + [self.sample_configuration() for _ in range(self.random_configs)]
        for i, config in enumerate(sampled, start=1):
            outputs, h = self.run(rx, config)
            assert h is not None
            for task in self.tasks:
                if task.kind in DECODERS:
                    out[f"{task.name}{_SAMPLED}{i}"] = outputs[task.name]
            penalty = penalty + _distance(h, teacher)
        if self.kd_weight > 0:
            out["distill"] = penalty
        return out

    def distillation_loss(self, rx: Received, config: WidthConfig) -> torch.Tensor:
        """The distillation loss of one configuration: ``mean_b mean_j (h_c - sg(h_max))^2``.

        Zero for any configuration with the full trunk (the student is the teacher).
        """
        x = self._features(rx)
        teacher = self.trunk_features(x, 1.0).detach()
        return _distance(self.trunk_features(x, config.trunk), teacher).mean()

    def losses(self, outputs: dict[str, torch.Tensor], targets: Targets) -> dict[str, torch.Tensor]:
        """Each task's loss summed over the configurations in ``outputs`` (one in eval, 2 + random in training)."""
        out = super().losses(outputs, targets)
        for task in self.tasks:
            if task.name not in out:
                continue
            for key in _sampled_keys(outputs, task.name):
                out[task.name] = out[task.name] + task.weight * task_loss(task, outputs[key], targets,
                                                                          self.coarse_groups)
        return out

    def shared_parameters(self) -> list[nn.Parameter]:
        return list(self.trunk.parameters())

    def last_shared_parameters(self) -> list[nn.Parameter]:
        return list(self.trunk[-1].parameters())

    def describe(self, config: WidthConfig | None = None) -> dict[str, Any]:
        """``config`` (default: :attr:`active`) with its units and MFLOPs, for cards and results."""
        config = config or self.active
        return {"configuration": config.as_dict(),
                "units": {"trunk": self.units(self.width, config.trunk),
                          **{k: self.units(self.decoder_width, config.decoder(k)) for k in DECODERS}},
                "mflops": self.mflops(config),
                "mflops_range": [self.mflops(self.smallest), self.mflops(self.largest)]}


def _normalize(z: torch.Tensor) -> torch.Tensor:
    """Layer normalisation without parameters over the units that run: every width's features get
    zero mean and unit variance per image (what switchable batch norm does for slimmable CNNs)."""
    return F.layer_norm(z, (z.shape[-1],))


def _distance(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Per-image mean squared distance to the teacher's leading units, ``[B]``."""
    return (student - teacher[:, : student.shape[1]]).square().mean(dim=1)


def _sampled_keys(outputs: Iterable[str], name: str) -> list[str]:
    return [k for k in outputs if k.startswith(name + _SAMPLED)]


def search_configuration(
    receiver: SlimmableReceiver,
    mflops: float | None = None,
    prefer: Mapping[str, float] | None = None,
    priority: Priority = "decoders",
) -> WidthConfig:
    """The configuration for a compute budget and task preferences (after Aich et al. 2023).

    Args:
        receiver: the slimmable receiver (its grid, widths and FLOPs counter).
        mflops: budget in MFLOPs per image (None: no limit).
        prefer: weight of each task kind (``{"class": 2, "image": 1}``); kinds not named weigh 1.
        priority: which gives way when the budget is tight, see below.

    Decoder ``k`` gets ratio ``floor_grid(s * w_k / max w)`` (at least the narrowest), ``s`` a decoder
    scale on the grid: the preferred task's decoder is ``s`` and the others keep their share of it.
    ``priority="decoders"`` (the paper's rule): ``s`` starts at 1 and the trunk gets the widest ratio
    that keeps the total within the budget; only when even the narrowest trunk does not fit does
    ``s`` step down. ``priority="trunk"``: the trunk gets the widest ratio that fits with the
    narrowest decoders, then ``s`` the largest value that still fits.

    Raises:
        ValueError: an unknown task kind or priority, a negative or all-zero weight, or a budget below
            the smallest configuration's FLOPs.
    """
    if priority not in PRIORITIES:
        raise ValueError(f"priority must be one of {', '.join(PRIORITIES)}, not {priority!r}")
    weights = {k: 1.0 for k in DECODERS}
    for kind, w in (prefer or {}).items():
        if kind not in weights:
            raise ValueError(f"no task '{kind}' to prefer; this receiver's tasks: {', '.join(DECODERS)}")
        if not math.isfinite(float(w)) or float(w) < 0:
            raise ValueError(f"preference of '{kind}' must be a finite number >= 0, got {w}")
        weights[kind] = float(w)
    top = max(weights.values())
    if top <= 0:
        raise ValueError("at least one task preference must be positive")
    budget = math.inf if mflops is None else float(mflops) * 1e6
    if not budget > 0:
        raise ValueError(f"the budget must be positive, got {mflops} MFLOPs")
    grid = receiver.ratios
    pairs = itertools.product(reversed(grid), reversed(grid))  # (outer, inner), widest first
    for outer, inner in pairs:
        scale, trunk = (outer, inner) if priority == "decoders" else (inner, outer)
        config = WidthConfig.of(trunk, {k: _floor_to_grid(scale * w / top, grid) for k, w in weights.items()})
        if receiver.flops(config) <= budget:
            return config
    raise ValueError(f"a budget of {mflops:g} MFLOPs is below this receiver's smallest configuration "
                     f"({receiver.mflops(receiver.smallest):.4g} MFLOPs per image)")


def _floor_to_grid(value: float, grid: Sequence[float]) -> float:
    """The largest ratio of ``grid`` not above ``value`` (the narrowest when none is)."""
    below = [r for r in grid if r <= value + 1e-9]
    return below[-1] if below else grid[0]
