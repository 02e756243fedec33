"""Task-weighting strategies against toy problems whose answer is known."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from semcom.receivers import WEIGHTINGS, Task, make_weighting, min_norm_weights, pcgrad_project
from semcom.receivers.weighting import GradNorm


def _tasks(*names: str, kind: str = "snr") -> list[Task]:
    return [Task(n, kind, 1) for n in names]  # type: ignore[arg-type]


def test_registry_lists_all_strategies() -> None:
    assert {"equal", "uncertainty", "gradnorm", "pcgrad", "mgda-ub"} <= set(WEIGHTINGS.names())


def test_pcgrad_removes_the_conflicting_component() -> None:
    g = torch.tensor([[1.0, 0.0], [-1.0, 1.0]])  # g1 . g2 = -1 < 0: conflict
    out = pcgrad_project(g, torch.Generator().manual_seed(0))
    # g1 projected on the normal plane of g2: g1 - (g1.g2)/|g2|^2 g2 = (0.5, 0.5)
    torch.testing.assert_close(out[0], torch.tensor([0.5, 0.5]))
    torch.testing.assert_close(out[1], torch.tensor([0.0, 1.0]))
    assert abs(float(out[0] @ g[1])) < 1e-6 and abs(float(out[1] @ g[0])) < 1e-6


def test_pcgrad_leaves_agreeing_gradients_alone() -> None:
    g = torch.tensor([[1.0, 0.2], [0.5, 1.0]])
    torch.testing.assert_close(pcgrad_project(g), g)


def test_pcgrad_weighting_sets_projected_sum_on_shared_parameters() -> None:
    w = nn.Parameter(torch.zeros(2))
    target1, target2 = torch.tensor([1.0, 0.0]), torch.tensor([-1.0, 1.0])
    # L_i = -g_i . w  => grad L_i = -g_i; conflict as above (signs flip together)
    losses = {"a": -(target1 * w).sum(), "b": -(target2 * w).sum()}
    make_weighting("pcgrad", _tasks("a", "b")).backward(losses, shared=[w])
    torch.testing.assert_close(w.grad, -torch.tensor([0.5, 0.5]) - torch.tensor([0.0, 1.0]))


def test_min_norm_two_known_gradients() -> None:
    alpha = min_norm_weights(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    torch.testing.assert_close(alpha, torch.tensor([0.5, 0.5]))
    # one gradient inside the other's direction: the shorter wins outright
    inside = torch.tensor([[1.0, 0.0], [2.0, 0.0]])
    torch.testing.assert_close(min_norm_weights(inside), torch.tensor([1.0, 0.0]))
    # closed form: alpha_1 = (g2 - g1) . g2 / |g1 - g2|^2 = 1 / 5
    g = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    a = min_norm_weights(g)
    torch.testing.assert_close(a, torch.tensor([0.2, 0.8]))   # point (0.4, 0.8) is orthogonal to g1-g2


def test_min_norm_frank_wolfe_matches_brute_force() -> None:
    gen = torch.Generator().manual_seed(3)
    g = torch.randn(3, 5, generator=gen)
    a = min_norm_weights(g, iters=2000, tol=1e-10)
    assert torch.all(a >= -1e-9) and abs(float(a.sum()) - 1.0) < 1e-6
    best = min(
        float(((torch.tensor([x, y, 1 - x - y]) @ g) ** 2).sum())
        for x in torch.linspace(0, 1, 101).tolist() for y in torch.linspace(0, 1, 101).tolist() if x + y <= 1
    )
    assert float(((a @ g) ** 2).sum()) <= best + 1e-3
    torch.testing.assert_close(min_norm_weights(torch.eye(3)), torch.full((3,), 1 / 3), atol=1e-4, rtol=0)


def test_mgda_ub_uses_representation_gradients() -> None:
    z = torch.zeros(2, requires_grad=True)
    w = nn.Parameter(torch.ones(1))
    rep = z + w  # shared representation
    losses = {"a": (rep * torch.tensor([1.0, 0.0])).sum(), "b": (rep * torch.tensor([0.0, 1.0])).sum()}
    mgda = make_weighting("mgda-ub", _tasks("a", "b"), normalize="none")
    weights = mgda.backward(losses, representation=rep)
    assert weights == pytest.approx({"a": 1.0, "b": 1.0})  # 0.5 each, times the 2 tasks
    torch.testing.assert_close(w.grad, torch.tensor([2.0]))


def test_uncertainty_weights_converge_to_inverse_noise_level() -> None:
    torch.manual_seed(0)
    noise_var = torch.tensor([0.25, 4.0])
    mu = nn.Parameter(torch.zeros(2))
    weighting = make_weighting("uncertainty", _tasks("a", "b"))
    opt = torch.optim.Adam([mu, *weighting.parameters()], lr=0.05)
    for _ in range(800):
        y = 1.0 + noise_var.sqrt() * torch.randn(512, 2)  # targets with known noise around 1
        mse = (y - mu).square().mean(dim=0)
        opt.zero_grad()
        weighting.backward({"a": mse[0], "b": mse[1]})
        opt.step()
    precision = torch.exp(-weighting.log_var.detach())  # learned 1 / sigma_i^2
    torch.testing.assert_close(precision, 1.0 / noise_var, rtol=0.15, atol=0.0)


def test_gradnorm_balances_gradient_norms_and_rates() -> None:
    torch.manual_seed(0)
    shared = nn.Linear(4, 8)
    heads = nn.ModuleList([nn.Linear(8, 1), nn.Linear(8, 1)])
    scale = (1.0, 100.0)  # task b's loss is 100 times larger: equal weights let it dominate
    weighting = make_weighting("gradnorm", _tasks("a", "b"), alpha=0.0, lr=0.05)
    assert isinstance(weighting, GradNorm)
    opt = torch.optim.SGD([*shared.parameters(), *heads.parameters()], lr=1e-4)
    x = torch.randn(256, 4)
    targets = [x @ torch.randn(4, 1), x @ torch.randn(4, 1)]

    def losses() -> dict[str, torch.Tensor]:
        h = torch.tanh(shared(x))
        return {n: s * (head(h) - t).square().mean()
                for n, s, head, t in zip("ab", scale, heads, targets, strict=True)}

    before = weighting.gradient_norms(losses(), list(shared.parameters()))
    for _ in range(300):
        opt.zero_grad()
        weighting.backward(losses(), last_shared=list(shared.parameters()))
        opt.step()
    after = weighting.gradient_norms(losses(), list(shared.parameters()))
    assert before["b"] / before["a"] > 20
    assert 0.7 < after["b"] / after["a"] < 1.4           # gradient norms equalised (alpha = 0)
    assert float(weighting.w.sum()) == pytest.approx(2.0)  # renormalised to the number of tasks
    assert float(weighting.w[0] / weighting.w[1]) > 20


def test_equal_and_regularisers() -> None:
    w = nn.Parameter(torch.tensor(1.0))
    tasks = [Task("a", "snr", 1), Task("kl", "aux", 1)]
    for name in WEIGHTINGS.names():
        w.grad = None
        losses = {"a": 3 * w, "kl": 2 * w}
        make_weighting(name, tasks).backward(losses, shared=[w], last_shared=[w], representation=None)
        assert w.grad is not None and float(w.grad) > 0, name
