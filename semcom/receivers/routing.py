"""Recurrent modular routing: the received layers as a sequence, a pool of modules, per-task routes.

After "Multi-Task Recurrent Modular Networks" (Xu, Cheng, Dong, Zong, Yu, Ni, Song, Zhang, Chen,
Zhang, AAAI 2021). There, a recurrent multi-task model's shared encoder is cut into layers of small
sub-networks; at every time step, a policy network per task, followed by differentiable
(Gumbel-softmax) routers, makes binary decisions on which sub-networks connect to each other and to
the task's decoder, so tasks share more or fewer parameters from one step to the next. Here the
sequence is the multi-resolution transmission: step t reads received layer t, and the outputs after
step r are the answers of a user who got layers 1..r.

One step t, for every task k (``class``: the digit, ``image``: the reconstruction)::

    e_t = E_t([layer t, snr])                       shared input embedding, [B, d]
    z   = [e_t, h^k_{t-1}]                          the task's recurrent state enters, [B, 2d]
    g   = router(pi_k([z, snr, onehot(t)]))         binary connection gates, [B, C]
    h^k_t = h^k_{t-1} + pool(z; g)                  residual recurrent update, [B, d], h^k_0 = 0
    y^k_t = head_k(h^k_t)                           class logits or image

The pool has ``depth`` layers of ``modules`` sub-networks each (``Linear + GELU``; the first layer
reads ``z``, the others read ``d`` features). The C = 2M + (D-1) M^2 gates are the connections:
input -> each first-layer module (M), module i of layer l -> module j of layer l+1 (M x M per pair
of layers), each last-layer module -> the state (M). A module runs on the mean of the messages on
its active incoming connections and is silent (outputs zero) when it has none; the state is the mean
of the last-layer modules connected to it (zero when none is).

Routers: the policy gives two logits per connection (off, on). Training draws a Gumbel-softmax
sample at temperature tau: its "on" probability is the gate (``gates="soft"``, the default), or the
sample's argmax is the gate and the soft sample carries the gradient (``gates="straight-through"``:
training already runs hard routes, as the test does). tau anneals
exponentially from ``tau_start`` to ``tau_floor`` over ``anneal_steps`` training forward passes
(counted in a buffer, so it survives a checkpoint). At test time (eval mode) there is no noise: each
connection is on when its "on" logit is the larger, a deterministic hard decision.

Baselines with the same recurrence, input embeddings and task heads, and no routes:

* ``recurrent-shared``: one dense core (``depth`` layers ``Linear + GELU``) and one recurrent state
  for both tasks (hard sharing);
* ``recurrent-separate``: one embedding set, core and state per task (no sharing).

Both take the routing receiver's options and choose their own width so that their parameter count
is the closest to the routing receiver's (:func:`matched_width`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal, cast

import torch
from torch import nn
from torch.nn import functional as F

from semcom.receivers.base import SHARED, SNR_SCALE_DB, Received, Receiver, Task, TaskKind, mlp

__all__ = [
    "ROUTED_TASKS",
    "ModuleLayer",
    "RecurrentReceiver",
    "RoutedRecurrentReceiver",
    "SeparateRecurrentReceiver",
    "SharedRecurrentReceiver",
    "annealed_temperature",
    "connection_count",
    "matched_width",
    "module_usage",
    "parameter_count",
    "router_gates",
]

ROUTED_TASKS: tuple[TaskKind, ...] = ("class", "image")
"""The task families of the recurrent receivers: ``class@r`` (cross-entropy) and ``image@r`` (MSE)."""

GateMode = Literal["soft", "straight-through"]


def annealed_temperature(step: int | float, start: float, floor: float, anneal_steps: int) -> float:
    """``max(floor, start (floor / start)^(step / anneal_steps))``: exponential decay, at the floor
    from ``anneal_steps`` on."""
    if anneal_steps <= 0:
        return floor
    return max(floor, start * (floor / start) ** (float(step) / anneal_steps))


def router_gates(logits: torch.Tensor, tau: float, mode: GateMode, training: bool, hard_test: bool = True,
                 ) -> torch.Tensor:
    """Binary connection gates from ``[..., 2]`` (off, on) logits -> ``[...]`` in [0, 1].

    Training: a Gumbel-softmax sample ``softmax((logits + G) / tau)`` (``G`` i.i.d. Gumbel(0, 1),
    from torch's global generator), "Categorical Reparameterization with Gumbel-Softmax" (Jang, Gu,
    Poole, 2017); ``soft``: its "on" component; ``straight-through``: the one-hot argmax of the
    sample in the forward pass, the soft sample's gradient in the backward pass. Test
    (``training=False``): 1 where the "on" logit is the larger, else 0, without noise or gradient;
    ``hard_test=False`` gives the noise-free soft gate ``softmax(logits / tau)`` instead (a
    diagnostic: what hardening the routes costs).
    """
    if not training:
        if not hard_test:
            return torch.softmax(logits / tau, dim=-1)[..., 1]
        return (logits[..., 1] > logits[..., 0]).to(logits.dtype)
    gumbel = -torch.empty_like(logits).exponential_().log()
    soft = torch.softmax((logits + gumbel) / tau, dim=-1)[..., 1]
    if mode == "soft":
        return soft
    return (soft > 0.5).to(soft.dtype) - soft.detach() + soft


def connection_count(modules: int, depth: int) -> int:
    """``C = 2 M + (D - 1) M^2``: input -> layer 1, layer l -> layer l+1, layer D -> state."""
    return 2 * modules + (depth - 1) * modules * modules


def _split_gates(gates: torch.Tensor, modules: int, depth: int) -> tuple[
        torch.Tensor, list[torch.Tensor], torch.Tensor]:
    """``[..., C]`` -> input gates ``[..., M]``, ``D - 1`` matrices ``[..., M, M]`` (from i to j),
    output gates ``[..., M]``."""
    m = modules
    inner = [gates[..., m + k * m * m: m + (k + 1) * m * m].unflatten(-1, (m, m)) for k in range(depth - 1)]
    return gates[..., :m], inner, gates[..., -m:]


def module_usage(gates: torch.Tensor, modules: int, depth: int) -> torch.Tensor:
    """Which modules a hard route uses: ``[..., C]`` 0/1 gates -> ``[..., D, M]`` booleans.

    A module is used when it runs (an active incoming connection from the input or from a running
    module) and its output reaches the state through active connections and running modules.
    """
    g_in, inner, g_out = _split_gates(gates > 0.5, modules, depth)
    running = [g_in]
    for conn in inner:
        running.append((conn & running[-1].unsqueeze(-1)).any(dim=-2))
    reach = running[-1] & g_out
    used = [reach]
    for conn, run in zip(reversed(inner), reversed(running[:-1]), strict=True):
        reach = run & (conn & reach.unsqueeze(-2)).any(dim=-1)
        used.append(reach)
    return torch.stack(used[::-1], dim=-2)


def parameter_count(module: nn.Module) -> int:
    """Trainable parameters of ``module``."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


class ModuleLayer(nn.Module):
    """M sub-networks side by side, each ``GELU(x W_m + b_m)`` (a Linear + GELU of its own).

    Input ``[N, in]`` (the same input to every module) or ``[N, M, in]`` (one input per module);
    output ``[N, M, out]``. Initialised as ``nn.Linear``: uniform in +-1/sqrt(in).
    """

    def __init__(self, modules: int, in_features: int, out_features: int) -> None:
        super().__init__()
        bound = 1.0 / math.sqrt(in_features)
        self.weight = nn.Parameter(torch.empty(modules, in_features, out_features).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(modules, out_features).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            y = torch.einsum("ni,mio->nmo", x, self.weight)
        else:
            y = torch.einsum("nmi,mio->nmo", x, self.weight)
        return F.gelu(y + self.bias)


class RecurrentReceiver(Receiver):
    """Base of the recurrent receivers: input embeddings ``E_t``, one head per task, the step loop.

    Args:
        layer_symbols, num_classes, image_shape, coarse_groups, width, use_snr: as :class:`Receiver`
            (``width`` is the recurrent state's size d).
        image_weight: fixed weight of each ``image@r`` loss (per-pixel MSE, a few hundredths once
            trained) next to the ``class@r`` losses (cross-entropy, a few tenths): 10 puts them on
            a similar scale, so that the shared parts are not trained for the class alone.

    Tasks: ``class@r`` and ``image@r`` for r = 1..L, all main. The heads (``Linear`` to the class
    logits; ``Linear`` and a sigmoid to the image) are shared over the steps: the decoders of a
    recurrent model. Subclasses implement :meth:`_update`; the state of each task starts at zero and
    grows by the update of every step (``h_t = h_{t-1} + update_t``), so what earlier layers gave
    is kept without the network having to learn to copy it.
    """

    name = "recurrent"

    def __init__(self, layer_symbols: Sequence[int], num_classes: int, image_weight: float = 10.0,
                 **kwargs: Any) -> None:
        super().__init__(layer_symbols, num_classes, **kwargs)
        d = self.width
        self.heads = nn.ModuleDict({"class": nn.Linear(d, self.num_classes),
                                    "image": nn.Linear(d, math.prod(self.image_shape))})
        self.tasks = tuple(Task(f"{kind}@{r}", kind, r, weight=1.0 if kind == "class" else float(image_weight))
                           for r in range(1, self.num_layers + 1) for kind in ROUTED_TASKS)

    def _embeddings(self, width: int) -> nn.ModuleList:
        """One ``E_t`` per layer: ``2 k_t`` reals (+ the SNR) -> ``width`` (Linear + GELU)."""
        return nn.ModuleList(mlp([self._in_features(i), width], final_act=True) for i in range(self.num_layers))

    def _update(self, rx: Received, t: int, states: dict[str, torch.Tensor],
                out: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Step ``t`` (0-based): what each task's state gains from layer t (``h_t = h_{t-1} + update``)."""
        raise NotImplementedError

    def forward(self, rx: Received) -> dict[str, torch.Tensor]:
        r_max = min(rx.num_layers, self.num_layers)
        zero = rx.layers[0].real.new_zeros(rx.batch, self.width)
        states: dict[str, torch.Tensor] = {k: zero for k in ROUTED_TASKS}
        out: dict[str, torch.Tensor] = {}
        for t in range(r_max):
            update = self._update(rx, t, states, out)
            states = {k: states[k] + update[k] for k in ROUTED_TASKS}
            r = t + 1
            out[f"class@{r}"] = self.heads["class"](states["class"])
            image = torch.sigmoid(self.heads["image"](states["image"]))
            out[f"image@{r}"] = image.reshape(-1, *self.image_shape)
        out[SHARED] = torch.cat([states[k] for k in ROUTED_TASKS], dim=1)
        return out

    def _snr(self, rx: Received) -> torch.Tensor:
        return (rx.snr_db / SNR_SCALE_DB).unsqueeze(1).to(rx.layers[0].real.dtype)


class RoutedRecurrentReceiver(RecurrentReceiver):
    """Recurrent modular routing: a shared module pool wired per task, step and image by a policy.

    Args:
        layer_symbols, num_classes, image_shape, coarse_groups, width, use_snr, image_weight: as
            :class:`RecurrentReceiver`.
        modules: M, sub-networks per pool layer.
        depth: D, pool layers.
        policy_width: hidden width of each task's policy network.
        gates: ``soft`` (the Gumbel-softmax sample's "on" probability) or ``straight-through`` (its
            hard argmax forward, its soft gradient backward), in training; test is always hard.
        tau_start, tau_floor, anneal_steps: the Gumbel-softmax temperature schedule
            (:func:`annealed_temperature` of the number of training forward passes).
        init_on: initial "on" minus "off" logit of every connection (the policy's output bias):
            0 starts with random half-dense routes, > 0 with mostly dense ones.

    Outputs, beside ``class@r`` and ``image@r``: ``route@r``, the gates of step r, ``[B, T, C]``
    (tasks in :data:`ROUTED_TASKS` order; 0/1 in eval mode), and ``usage@r``, the modules the
    route uses, ``[B, T, D, M]`` (:func:`module_usage`; eval mode only).
    """

    name = "recurrent-routing"
    anneal_step: torch.Tensor

    def __init__(
        self,
        layer_symbols: Sequence[int],
        num_classes: int,
        modules: int = 4,
        depth: int = 2,
        policy_width: int = 32,
        gates: GateMode = "soft",
        tau_start: float = 2.0,
        tau_floor: float = 0.5,
        anneal_steps: int = 500,
        init_on: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(layer_symbols, num_classes, **kwargs)
        if modules < 1 or depth < 1:
            raise ValueError(f"need at least one module and one pool layer, got modules={modules}, depth={depth}")
        if gates not in ("soft", "straight-through"):
            raise ValueError(f"gates must be 'soft' or 'straight-through', not {gates!r}")
        if not 0 < tau_floor <= tau_start:
            raise ValueError(f"need 0 < tau_floor <= tau_start, got {tau_floor}, {tau_start}")
        self.modules_per_layer, self.depth = int(modules), int(depth)
        self.gate_mode: GateMode = gates
        self.tau_start, self.tau_floor, self.anneal_steps = float(tau_start), float(tau_floor), int(anneal_steps)
        d, m = self.width, self.modules_per_layer
        self.embed = self._embeddings(d)
        self.pool = nn.ModuleList(ModuleLayer(m, 2 * d if layer == 0 else d, d) for layer in range(self.depth))
        self.connections = connection_count(m, self.depth)
        policy_in = 2 * d + (1 if self.use_snr else 0) + self.num_layers
        self.policy = nn.ModuleDict({k: mlp([policy_in, int(policy_width), 2 * self.connections])
                                     for k in ROUTED_TASKS})
        for net in self.policy.values():
            last = cast(nn.Sequential, net)[-1]
            assert isinstance(last, nn.Linear)
            with torch.no_grad():
                last.bias.view(self.connections, 2).copy_(torch.tensor([0.0, float(init_on)]))
        self.register_buffer("anneal_step", torch.zeros((), dtype=torch.float32))
        self._tau = self.tau_start
        self.hard_test = True  # False: noise-free soft gates at test time (a diagnostic, see router_gates)

    @property
    def temperature(self) -> float:
        """The Gumbel-softmax temperature of the next training forward pass."""
        return annealed_temperature(float(self.anneal_step), self.tau_start, self.tau_floor, self.anneal_steps)

    def forward(self, rx: Received) -> dict[str, torch.Tensor]:
        self._tau = self.temperature
        out = super().forward(rx)
        if self.training:
            self.anneal_step.add_(1.0)
        return out

    def _update(self, rx: Received, t: int, states: dict[str, torch.Tensor],
                out: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        e = self.embed[t](self._layer_input(rx, t))
        step = F.one_hot(torch.full((rx.batch,), t, device=e.device), self.num_layers).to(e.dtype)
        side = [self._snr(rx)] if self.use_snr else []
        zs, routes = [], []
        for k in ROUTED_TASKS:
            z = torch.cat([e, states[k]], dim=1)
            logits = self.policy[k](torch.cat([z, *side, step], dim=1)).unflatten(1, (self.connections, 2))
            routes.append(router_gates(logits, self._tau, self.gate_mode, self.training, self.hard_test))
            zs.append(z)
        # both tasks through the pool at once: rows [task 0 batch, task 1 batch]
        updates = self._route(torch.cat(zs), torch.cat(routes)).split(rx.batch)
        r = t + 1
        out[f"route@{r}"] = torch.stack(routes, dim=1)
        if not self.training and self.hard_test:
            out[f"usage@{r}"] = module_usage(out[f"route@{r}"], self.modules_per_layer, self.depth)
        return dict(zip(ROUTED_TASKS, updates, strict=True))

    def _route(self, z: torch.Tensor, gates: torch.Tensor) -> torch.Tensor:
        """The pool wired by ``gates`` ``[N, C]`` on inputs ``z`` ``[N, 2d]`` -> states ``[N, d]``."""
        g_in, inner, g_out = _split_gates(gates, self.modules_per_layer, self.depth)
        outs = g_in.unsqueeze(-1) * self.pool[0](z)                 # [N, M, d]
        running = g_in                                               # [N, M]
        for layer, conn in enumerate(inner, start=1):
            # module j: the mean of the messages of the running modules i connected to it
            count = torch.einsum("nij,ni->nj", conn, running)
            mean = torch.einsum("nij,nid->njd", conn, outs) / count.clamp_min(1.0).unsqueeze(-1)
            running = count.clamp(max=1.0)
            outs = running.unsqueeze(-1) * self.pool[layer](mean)
        count = (g_out * running).sum(dim=1, keepdim=True)
        return (g_out.unsqueeze(-1) * outs).sum(dim=1) / count.clamp_min(1.0)

    def shared_parameters(self) -> list[nn.Parameter]:
        return list(self.embed.parameters()) + list(self.pool.parameters())

    def last_shared_parameters(self) -> list[nn.Parameter]:
        return list(self.pool[-1].parameters())

    def router_parameters(self) -> list[nn.Parameter]:
        """The policies' parameters (what the routers' gradients train)."""
        return list(self.policy.parameters())


class SharedRecurrentReceiver(RecurrentReceiver):
    """Fully shared baseline: one dense recurrent core and one state for both tasks.

    ``h_t = h_{t-1} + core([E_t(layer t), h_{t-1}])``, ``core`` = ``depth`` layers Linear + GELU;
    both heads read ``h_t``. The registered factory (``recurrent-shared``) takes the routing
    receiver's options and sets the width by :func:`matched_width` (``match=False``: as given).
    """

    name = "recurrent-shared"

    def __init__(self, layer_symbols: Sequence[int], num_classes: int, depth: int = 2, **kwargs: Any) -> None:
        super().__init__(layer_symbols, num_classes, **kwargs)
        d = self.width
        self.depth = int(depth)
        self.embed = self._embeddings(d)
        self.core = mlp([2 * d] + [d] * self.depth, final_act=True)

    def _update(self, rx: Received, t: int, states: dict[str, torch.Tensor],
                out: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        h = self.core(torch.cat([self.embed[t](self._layer_input(rx, t)), states["class"]], dim=1))
        return {k: h for k in ROUTED_TASKS}

    def forward(self, rx: Received) -> dict[str, torch.Tensor]:
        out = super().forward(rx)
        out[SHARED] = out[SHARED][:, : self.width]  # one state, not two copies
        return out

    def shared_parameters(self) -> list[nn.Parameter]:
        return list(self.embed.parameters()) + list(self.core.parameters())


class SeparateRecurrentReceiver(RecurrentReceiver):
    """Fully separate baseline: per task its own embeddings, dense recurrent core and state.

    ``h^k_t = h^k_{t-1} + core_k([E^k_t(layer t), h^k_{t-1}])``; the registered factory
    (``recurrent-separate``) sets the width as for :class:`SharedRecurrentReceiver`. Nothing is
    shared, so :meth:`shared_parameters` is empty (train it with ``equal`` weighting).
    """

    name = "recurrent-separate"

    def __init__(self, layer_symbols: Sequence[int], num_classes: int, depth: int = 2, **kwargs: Any) -> None:
        super().__init__(layer_symbols, num_classes, **kwargs)
        d = self.width
        self.depth = int(depth)
        self.embed = nn.ModuleDict({k: self._embeddings(d) for k in ROUTED_TASKS})
        self.core = nn.ModuleDict({k: mlp([2 * d] + [d] * self.depth, final_act=True) for k in ROUTED_TASKS})

    def _update(self, rx: Received, t: int, states: dict[str, torch.Tensor],
                out: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        x = self._layer_input(rx, t)
        return {k: self.core[k](torch.cat([self.embed[k][t](x), states[k]], dim=1))  # type: ignore[index]
                for k in ROUTED_TASKS}

    def shared_parameters(self) -> list[nn.Parameter]:
        return []

    def last_shared_parameters(self) -> list[nn.Parameter]:
        return []


_ROUTING_ONLY = ("modules", "policy_width", "gates", "tau_start", "tau_floor", "anneal_steps", "init_on")


def matched_width(
    baseline: type[RecurrentReceiver], layer_symbols: Sequence[int], num_classes: int, **routing: Any,
) -> tuple[int, int, int]:
    """The width of ``baseline`` whose parameter count is closest to the routing receiver's.

    Args:
        baseline: :class:`SharedRecurrentReceiver` or :class:`SeparateRecurrentReceiver`.
        layer_symbols, num_classes: as for every receiver.
        routing: the routing receiver's options (``width``, ``modules``, ``depth``, ...).

    Returns ``(width, baseline parameters, routing parameters)``.
    """
    target = parameter_count(RoutedRecurrentReceiver(layer_symbols, num_classes, **routing))
    common = {k: v for k, v in routing.items() if k not in _ROUTING_ONLY}

    def count(width: int) -> int:
        return parameter_count(baseline(layer_symbols, num_classes, **{**common, "width": width}))

    lo, hi = 1, 8 * int(routing.get("width", 128))
    while hi - lo > 1:  # the count grows with the width: bisect for the first width at or above the target
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if count(mid) < target else (lo, mid)
    best = min((lo, hi), key=lambda w: abs(count(w) - target))
    return best, count(best), target


def recurrent_routing(layer_symbols: Sequence[int], num_classes: int, **kwargs: Any) -> RoutedRecurrentReceiver:
    """Recurrent modular routing: a module pool wired per task, step and SNR by Gumbel routers (after Xu et al.)."""
    return RoutedRecurrentReceiver(layer_symbols, num_classes, **kwargs)


def _baseline(cls: type[RecurrentReceiver], layer_symbols: Sequence[int], num_classes: int,
              match: bool, kwargs: dict[str, Any]) -> RecurrentReceiver:
    if match:
        width, _, _ = matched_width(cls, layer_symbols, num_classes, **kwargs)
        kwargs = {**kwargs, "width": width}
    return cls(layer_symbols, num_classes, **{k: v for k, v in kwargs.items() if k not in _ROUTING_ONLY})


def recurrent_shared(layer_symbols: Sequence[int], num_classes: int, match: bool = True,
                     **kwargs: Any) -> RecurrentReceiver:
    """Fully shared recurrent receiver, parameters matched to recurrent-routing with the same options (baseline)."""
    return _baseline(SharedRecurrentReceiver, layer_symbols, num_classes, match, kwargs)


def recurrent_separate(layer_symbols: Sequence[int], num_classes: int, match: bool = True,
                       **kwargs: Any) -> RecurrentReceiver:
    """Fully separate recurrent receivers per task, parameters matched to recurrent-routing (baseline)."""
    return _baseline(SeparateRecurrentReceiver, layer_symbols, num_classes, match, kwargs)
