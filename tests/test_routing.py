"""Recurrent modular routing: hard test-time routes, temperature annealing, straight-through
gradients, matched baselines, SNR-dependent routes, checkpoints."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import torch
from helpers import TOY_SIZES as SIZES
from helpers import ToyEncoder, synthetic_digits
from torch import nn

from semcom.receivers import RECEIVERS, Received, Targets, load_receiver, save_receiver, train_receiver
from semcom.receivers.routing import (
    ROUTED_TASKS,
    RoutedRecurrentReceiver,
    annealed_temperature,
    connection_count,
    module_usage,
    parameter_count,
    router_gates,
)


def _received(batch: int = 6, snr: float | torch.Tensor = 10.0, seed: int = 0) -> Received:
    gen = torch.Generator().manual_seed(seed)
    return Received([torch.randn(batch, k, dtype=torch.cfloat, generator=gen) for k in SIZES], snr)


def _routing(**kwargs: object) -> RoutedRecurrentReceiver:
    torch.manual_seed(0)
    options: dict[str, object] = {"width": 16, "modules": 3, **kwargs}
    rx = RECEIVERS.create("recurrent-routing", layer_symbols=SIZES, num_classes=10, **options)
    assert isinstance(rx, RoutedRecurrentReceiver)
    return rx


def test_routes_are_hard_and_deterministic_at_test_time() -> None:
    model = _routing(gates="soft")
    rx = _received()
    model.train()
    soft = model(rx)["route@2"]
    assert ((soft > 0.01) & (soft < 0.99)).any()  # training: soft gates
    a, b = model.predict(rx), model.predict(rx)
    for r in (1, 2, 3):
        route = a[f"route@{r}"]
        assert route.shape == (6, len(ROUTED_TASKS), connection_count(3, 2))
        assert set(route.unique().tolist()) <= {0.0, 1.0}
        torch.testing.assert_close(route, b[f"route@{r}"], rtol=0, atol=0)
        torch.testing.assert_close(a[f"class@{r}"], b[f"class@{r}"], rtol=0, atol=0)
        torch.testing.assert_close(a[f"image@{r}"], b[f"image@{r}"], rtol=0, atol=0)
    model.hard_test = False  # the diagnostic: noise-free soft gates at test time
    soft_test = model.predict(rx)["route@1"]  # step 1: the same logits as the hard route's (h_0 = 0)
    assert ((soft_test > 0.01) & (soft_test < 0.99)).any() and "usage@1" not in model.predict(rx)
    torch.testing.assert_close((soft_test > 0.5).float(), a["route@1"], rtol=0, atol=0)
    # straight-through training: hard 0/1 gates in the forward pass, drawn afresh each call
    model = _routing(gates="straight-through")
    model.train()
    first, second = model(rx)["route@1"], model(rx)["route@1"]
    assert set(first.unique().tolist()) <= {0.0, 1.0}
    assert not torch.equal(first, second)


def test_temperature_anneals_to_its_floor_and_stays() -> None:
    model = _routing(tau_start=4.0, tau_floor=0.5, anneal_steps=10)
    rx = _received(2)
    assert model.temperature == 4.0
    seen = []
    model.train()
    for _ in range(14):
        seen.append(model.temperature)
        model(rx)
    assert all(a > b for a, b in itertools.pairwise(seen[:11]))  # strictly falling to step 10
    assert seen[10:] == [0.5] * 4 and model.temperature == 0.5
    assert annealed_temperature(5, 4.0, 0.5, 10) == pytest.approx(4.0 * (0.5 / 4.0) ** 0.5)
    model.eval()
    model(rx)  # test-time passes do not advance the schedule
    assert float(model.anneal_step) == 14


def test_straight_through_gradients_reach_the_router_logits() -> None:
    model = _routing(gates="straight-through")
    rx = _received(8)
    targets = Targets(labels=torch.arange(8) % 10, images=torch.rand(8, 1, 28, 28))
    model.train()
    out = model(rx)
    assert set(out["route@3"].unique().tolist()) <= {0.0, 1.0}  # the forward pass is hard
    sum(model.losses(out, targets).values()).backward()  # type: ignore[union-attr]
    for k in ROUTED_TASKS:
        logits_layer = model.policy[k][-1]
        assert isinstance(logits_layer, nn.Linear)
        grad = logits_layer.weight.grad
        assert grad is not None and float(grad.abs().sum()) > 0, k
    # the hard test-time decision (argmax) passes no gradient: the gradient above is the router's
    model.zero_grad(set_to_none=True)
    model.eval()
    out = model(rx)
    sum(model.losses(out, targets).values()).backward()  # type: ignore[union-attr]
    assert all(p.grad is None or float(p.grad.abs().sum()) == 0 for p in model.router_parameters())


def test_router_gates_straight_through_has_the_soft_gradient() -> None:
    logits = torch.randn(64, 2, requires_grad=True)
    torch.manual_seed(1)
    hard = router_gates(logits, 0.7, "straight-through", training=True)
    (hard * torch.arange(64.0)).sum().backward()
    g_hard = logits.grad.clone()  # type: ignore[union-attr]
    logits.grad = None
    torch.manual_seed(1)  # the same Gumbel noise
    soft = router_gates(logits, 0.7, "soft", training=True)
    (soft * torch.arange(64.0)).sum().backward()
    torch.testing.assert_close(g_hard, logits.grad)
    torch.testing.assert_close(hard, (soft > 0.5).float())


@pytest.mark.parametrize(("width", "modules", "depth"), [(16, 3, 2), (48, 4, 2), (32, 4, 3)])
def test_baseline_parameter_counts_match_the_routing_receiver(width: int, modules: int, depth: int) -> None:
    """Shared and separate recurrent receivers choose their width to match routing's count within 3 %
    (one unit of width moves the count by up to 2.6 % at the smallest size here)."""
    options = {"width": width, "modules": modules, "depth": depth}
    counts = {name: parameter_count(RECEIVERS.create(name, layer_symbols=(44, 43, 43), num_classes=10, **options))
              for name in ("recurrent-routing", "recurrent-shared", "recurrent-separate")}
    target = counts["recurrent-routing"]
    for name in ("recurrent-shared", "recurrent-separate"):
        assert abs(counts[name] - target) <= 0.03 * target, counts
    unmatched = RECEIVERS.create("recurrent-shared", layer_symbols=(44, 43, 43), num_classes=10, match=False,
                                 **options)
    assert unmatched.width == width and parameter_count(unmatched) < 0.8 * target  # matching did something


def test_a_route_can_depend_on_the_snr() -> None:
    """Toy policy: connection 0 (input -> module 0) is on iff the told SNR is high; all others on."""
    model = _routing()
    net = model.policy["class"]
    first, last = net[0], net[-1]
    assert isinstance(first, nn.Linear) and isinstance(last, nn.Linear)
    snr_column = 2 * model.width  # policy input: [e_t, h, snr / 20, onehot(step)]
    with torch.no_grad():
        for p in net.parameters():
            p.zero_()
        first.weight[0, snr_column] = 1.0             # hidden unit 0 = GELU(snr / 20)
        last.bias.view(-1, 2)[:, 1] = 2.0             # every connection on ...
        last.weight.view(-1, 2, first.out_features)[0, 1, 0] = 10.0
        last.bias.view(-1, 2)[0, 1] = -4.0            # ... but input -> module 0 needs GELU(snr/20) > 0.4
    rx = _received(4, torch.tensor([0.0, 0.0, 20.0, 20.0]))
    out = model.predict(rx)
    route = out["route@1"][:, 0]                      # the class task's gates at step 1
    assert route[:2, 0].tolist() == [0.0, 0.0] and route[2:, 0].tolist() == [1.0, 1.0]
    torch.testing.assert_close(route[:, 1:], torch.ones(4, route.shape[1] - 1))
    usage = out["usage@1"][:, 0]                      # [B, D, M]
    assert not usage[:2, 0, 0].any() and usage[2:, 0, 0].all()


def test_module_usage_follows_active_paths() -> None:
    # M = 2, D = 2: input -> module 0 only; module 0 -> module 1 of layer 2; both outputs on
    gates = torch.tensor([1, 0,  0, 1, 0, 0,  1, 1], dtype=torch.float32)
    used = module_usage(gates, modules=2, depth=2)
    assert used.tolist() == [[True, False], [False, True]]
    # the same without the output of module 1: nothing reaches the state
    gates[-1] = 0
    assert not module_usage(gates, modules=2, depth=2).any()
    # a route with every gate off gives zero states
    model = _routing()
    state = model._route(torch.randn(5, 2 * model.width), torch.zeros(5, model.connections))
    assert not state.any()


def test_outputs_follow_resolution_and_training_lowers_the_losses() -> None:
    run = train_receiver("recurrent-routing", ToyEncoder(), synthetic_digits(160), snr_db=(15.0, 20.0), epochs=6,
                         batch_size=32, lr=5e-3, receiver_kwargs={"width": 24, "modules": 3, "anneal_steps": 30})
    first, last = run.history[0], run.history[-1]
    assert last["class@3"] < 0.8 * first["class@3"] and last["image@3"] < first["image@3"]
    model = run.receiver
    assert model.temperature == model.tau_floor
    part = model.predict(_received(3).upto(1))
    assert {"class@1", "image@1", "route@1"} <= set(part) and "class@2" not in part


@pytest.mark.parametrize("name", ["recurrent-routing", "recurrent-shared", "recurrent-separate"])
def test_checkpoint_round_trip(name: str, tmp_path: Path) -> None:
    run = train_receiver(name, ToyEncoder(), synthetic_digits(64), epochs=1, batch_size=16, max_steps=3,
                         receiver_kwargs={"width": 12, "modules": 3, "anneal_steps": 100})
    path = save_receiver(run, tmp_path / "rx.safetensors", command="test")
    loaded, card = load_receiver(path)
    assert card["receiver"]["name"] == name and type(loaded) is type(run.receiver)
    assert parameter_count(loaded) == parameter_count(run.receiver)
    rx = _received(5)
    a, b = run.receiver.predict(rx), loaded.predict(rx)
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)
    if isinstance(loaded, RoutedRecurrentReceiver):
        assert float(loaded.anneal_step) == 3 and loaded.temperature == run.receiver.temperature  # type: ignore[attr-defined]
