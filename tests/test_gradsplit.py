"""GradSplit receiver: masked gradients, unchanged forward values, relation estimation, FLOPs, checkpoints."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch.nn import functional as F

from semcom.data import load_dataset
from semcom.receivers import RECEIVERS, Received, Targets, load_receiver, save_receiver, train_receiver
from semcom.receivers.gradsplit import (
    GradSplitReceiver,
    SeparateTrunksReceiver,
    feature_groups,
    linear_macs,
    mask_gradient,
    relation_from_agreement,
)

SIZES = (3, 2)
KINDS = ("class", "coarse", "image")
GROUPS = (0, 1, 2, 0, 1)  # coarse concept of each of 5 classes


def _net(relation: object = "identity", width: int = 7, **kwargs: object) -> GradSplitReceiver:
    torch.manual_seed(0)
    return GradSplitReceiver(SIZES, num_classes=5, image_shape=(1, 2, 3), coarse_groups=GROUPS,
                             tasks=KINDS, width=width, depth=3, relation=relation, **kwargs)  # type: ignore[arg-type]


def _batch(n: int = 16, seed: int = 1) -> tuple[Received, Targets]:
    g = torch.Generator().manual_seed(seed)
    rx = Received([torch.randn(n, k, dtype=torch.cfloat, generator=g) for k in SIZES], torch.rand(n, generator=g) * 20)
    labels = torch.randint(0, 5, (n,), generator=g)
    return rx, Targets(labels=labels, images=torch.rand(n, 1, 2, 3, generator=g))


ASYMMETRIC = [[1, 1, 0], [0, 1, 0], [1, 1, 1]]


@pytest.mark.parametrize("relation", ["identity", ASYMMETRIC])
def test_each_group_gets_gradients_only_from_the_tasks_the_relation_allows(relation: object) -> None:
    net = _net(relation).train()
    hard = _net("all").train()
    hard.load_state_dict(net.state_dict() | {"relation": hard.relation})
    rx, targets = _batch()
    losses = net.losses(net(rx), targets)
    hard_losses = hard.losses(hard(rx), targets)
    r = net.relation
    groups = feature_groups(7, 3)
    assert [g.stop - g.start for g in groups] == [3, 2, 2]
    for s, task in enumerate(net.tasks):
        for layer in net.trunk:
            gw, gb = torch.autograd.grad(losses[task.name], [layer.weight, layer.bias], retain_graph=True)
            for g, rows in enumerate(groups):
                if r[g, s] == 0:   # blocked: exactly zero, rows of the weight and entries of the bias
                    assert torch.count_nonzero(gw[rows]) == 0 and torch.count_nonzero(gb[rows]) == 0
                else:
                    assert torch.count_nonzero(gw[rows]) == gw[rows].numel()
        # the last module's allowed rows get exactly what hard sharing gives them
        last = net.trunk[-1].weight
        want = torch.autograd.grad(hard_losses[task.name], hard.trunk[-1].weight, retain_graph=True)[0]
        got = torch.autograd.grad(losses[task.name], last, retain_graph=True)[0]
        for g, rows in enumerate(groups):
            if r[g, s] == 1:
                torch.testing.assert_close(got[rows], want[rows], rtol=0, atol=0)


def test_gradsplit_equals_one_detached_pass_per_task() -> None:
    """The reference: for each task s a plain pass whose blocked features are detached at every module."""
    net = _net(ASYMMETRIC).train()
    rx, targets = _batch()
    sum(net.losses(net(rx), targets).values()).backward()
    got = {n: p.grad.clone() for n, p in net.named_parameters()}
    net.zero_grad()
    masks = net.gradient_masks()
    for s, task in enumerate(net.tasks):
        h = net._input(rx)
        for layer in net.trunk:
            h = F.gelu(layer(h))
            h = torch.where(masks[s].bool(), h, h.detach())
        out = {task.name: net._answer(task.kind, h)}
        net.task_loss(task, out, targets).backward()  # type: ignore[union-attr]
    for n, p in net.named_parameters():
        torch.testing.assert_close(got[n], p.grad, rtol=1e-5, atol=1e-7, msg=n)


def test_forward_values_identical_with_and_without_masking() -> None:
    rx, _ = _batch(33)
    net = _net("identity").train()
    assert net.gradient_channels() == 3
    masked = net(rx)
    plain = net.predict(rx)                      # eval: one copy, no masks
    hard = _net("all").train()
    hard.load_state_dict(net.state_dict() | {"relation": hard.relation})
    assert hard.gradient_channels() == 1
    unmasked = hard(rx)
    for task in net.tasks:
        assert torch.equal(masked[task.name], plain[task.name])
        assert torch.equal(masked[task.name], unmasked[task.name])


def test_mask_gradient_zeroes_and_keeps_slices() -> None:
    x = torch.randn(4, 5, requires_grad=True)
    mask = torch.tensor([1.0, 0.0, 1.0, 0.0, 0.0])
    y = mask_gradient(x, mask)
    assert torch.equal(y, x)
    up = torch.randn(4, 5)
    (grad,) = torch.autograd.grad(y, x, up)
    assert torch.equal(grad[:, [0, 2]], up[:, [0, 2]]) and torch.count_nonzero(grad[:, [1, 3, 4]]) == 0


def test_relation_from_agreement_thresholds_and_keeps_diagonal() -> None:
    c = torch.tensor([[-0.5, 0.2, -0.1], [0.3, 0.9, 0.05], [-0.2, 0.4, 0.0]])
    assert relation_from_agreement(c).tolist() == [[1, 1, 0], [1, 1, 1], [0, 1, 1]]
    assert relation_from_agreement(c, threshold=0.1).tolist() == [[1, 1, 0], [1, 1, 0], [0, 1, 1]]


def test_agreement_is_measured_on_each_groups_own_features() -> None:
    """Task 1 agrees with task 0 on group 0's features and opposes it on group 1's: R is asymmetric."""
    net = GradSplitReceiver(SIZES, num_classes=5, image_shape=(1, 2, 3), tasks=("class", "image"), width=4,
                            relation="estimate")
    a, b = torch.randn(6, 2), torch.randn(6, 2)
    grads = torch.stack([torch.cat([a, b], 1), torch.cat([2 * a, -b], 1)])    # [T=2, B, w=4]
    net._record_agreement(grads)
    torch.testing.assert_close(net.agreement(), torch.tensor([[1.0, 1.0], [-1.0, 1.0]]))
    assert net.fix_relation().tolist() == [[1, 1], [0, 1]]


@pytest.mark.parametrize(("sign", "expected"), [(-1.0, [[1, 0], [0, 1]]), (1.0, [[1, 1], [1, 1]])])
def test_estimation_finds_a_known_conflict(sign: float, expected: list[list[int]]) -> None:
    """Toy: two tasks read the trunk through identical heads, one loss the negative (conflict) or a
    copy (agreement) of the other; the hooks must measure cosine -1 or +1 and set R accordingly."""
    torch.manual_seed(0)
    net = GradSplitReceiver(SIZES, num_classes=3, image_shape=(1, 2, 3), coarse_groups=(0, 1, 2),
                            tasks=("class", "coarse"), width=6, depth=2, relation="estimate", estimate_steps=4)
    net.heads["coarse"].load_state_dict(net.heads["class"].state_dict())
    net.train()
    for step in range(4):
        rx, _ = _batch(seed=step)
        out = net(rx)
        loss = out["class@2"].square().mean() + sign * out["coarse@2"].square().mean()
        loss.backward()
    assert net.estimating
    torch.testing.assert_close(net.agreement(), torch.tensor([[1.0, sign], [sign, 1.0]]))
    assert net.cosine_count.tolist() == [[8, 8], [8, 8]]        # 4 steps x 2 modules
    net(_batch()[0])                                             # the next training step fixes R
    assert not net.estimating and net.relation.tolist() == expected
    assert net.gradient_channels() == (2 if sign < 0 else 1)


def test_inference_flops_by_hand() -> None:
    kw = {"num_classes": 3, "image_shape": (1, 2, 2), "tasks": ("class", "image"), "width": 6, "depth": 2}
    net = GradSplitReceiver((2, 1), **kw)  # type: ignore[arg-type]
    # input 2 * (2 + 1) + 1 (SNR) = 7; trunk 7*6 + 6*6; heads class 6*6 + 6*3, image 6*6 + 6*4
    assert net.inference_flops() == {"trunk": 78, "heads": 54 + 60, "total": 192}
    sep = SeparateTrunksReceiver((2, 1), **kw)  # type: ignore[arg-type]
    assert sep.inference_flops() == {"trunk": 156, "heads": 114, "total": 270}
    assert linear_macs(net) == 192 and linear_macs(sep) == 270
    no_snr = GradSplitReceiver((2, 1), use_snr=False, **kw)  # type: ignore[arg-type]
    assert no_snr.inference_flops()["trunk"] == 6 * 6 + 36


def test_registered_variants_and_invalid_relations() -> None:
    kw = {"layer_symbols": SIZES, "num_classes": 5, "image_shape": (1, 2, 3), "width": 8}
    assert RECEIVERS.create("gradsplit", **kw).relation.tolist() == [[1, 0], [0, 1]]
    assert RECEIVERS.create("shared-trunk", **kw).relation.tolist() == [[1, 1], [1, 1]]
    assert RECEIVERS.create("gradsplit-estimated", **kw).estimating
    assert isinstance(RECEIVERS.create("separate-trunks", **kw), SeparateTrunksReceiver)
    for bad in ("diagonal", [[0, 1], [1, 1]], [[1, 0.5], [0, 1]], [[1]]):
        with pytest.raises(ValueError, match="relation"):
            GradSplitReceiver(SIZES, 5, relation=bad, width=8)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="tasks"):
        GradSplitReceiver(SIZES, 5, tasks=("class", "snr"))
    # a user with fewer layers than the trunk reads gets no answer
    assert RECEIVERS.create("gradsplit", **kw).predict(_batch()[0].upto(1)) == {}


@pytest.fixture(scope="module")
def sample() -> object:
    return load_dataset("mnist-sample", subset=64)


@pytest.mark.parametrize("weighting", ["equal", "uncertainty", "gradnorm", "pcgrad", "mgda-ub"])
@pytest.mark.parametrize("name", ["gradsplit", "separate-trunks"])
def test_every_weighting_trains_the_trunk_receivers(name: str, weighting: str, sample: object) -> None:
    run = train_receiver(name, "mnist-mr3-awgn", sample, weighting=weighting, batch_size=16, max_steps=2,
                         receiver_kwargs={"width": 9, "tasks": list(KINDS)})
    assert len(run.history) == 1 and all(torch.isfinite(torch.tensor(v)) for v in run.history[0].values())


def test_checkpoint_round_trip_keeps_the_estimated_relation(sample: object, tmp_path: Path) -> None:
    run = train_receiver("gradsplit-estimated", "mnist-mr3-awgn", sample, batch_size=16, max_steps=4,
                         receiver_kwargs={"width": 9, "tasks": list(KINDS), "estimate_steps": 2})
    net = run.receiver
    assert float(net.estimated) == 1.0 and float(net.steps) == 4 and float(net.cosine_count.sum()) > 0
    path = save_receiver(run, tmp_path / "gs.safetensors", command="test")
    loaded, card = load_receiver(path)
    assert card["receiver"]["name"] == "gradsplit-estimated"
    assert card["receiver"]["options"]["estimate_steps"] == 2
    assert isinstance(loaded, GradSplitReceiver) and not loaded.estimating
    for buf in ("relation", "cosine_sum", "cosine_count", "steps", "estimated"):
        assert torch.equal(getattr(loaded, buf), getattr(net, buf)), buf
    rx = Received([torch.randn(5, k, dtype=torch.cfloat) for k in (44, 43, 43)], torch.linspace(0, 20, 5))
    want, got = net.predict(rx), loaded.predict(rx)
    assert set(want) == set(got) == {"class@3", "coarse@3", "image@3", "shared"}
    for key in want:
        assert torch.equal(got[key], want[key]), key
