"""Source-free adaptation (semcom.receivers.adaptation, ``semcom adapt``): each mechanism on tiny inputs.

Toy encoder and synthetic images for the mechanisms; the zoo's ``mnist-mr3-awgn`` and a tiny MNIST
folder built from the offline sample for the command. These check mechanisms and plumbing, not accuracy.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import ToyEncoder, synthetic_digits, write_tiny_mnist
from torch import nn
from typer.testing import CliRunner

from semcom.errors import SemcomError
from semcom.receivers import PerLayerHeads, Received, ReceiverSystem, load_receiver, save_receiver, train_receiver
from semcom.receivers.adaptation import (
    AdaptConfig,
    adapt_receiver,
    dropout_active,
    ema_update,
    grad_reverse,
    mc_dropout_variance,
    pseudo_label_loss,
    target_receptions,
    variance_oracle,
    variance_split,
)

MODEL = "mnist-mr3-awgn"


@pytest.fixture(scope="module")
def toy() -> tuple[ToyEncoder, PerLayerHeads]:
    torch.manual_seed(0)
    encoder = ToyEncoder()
    run = train_receiver("per-layer-heads", encoder, synthetic_digits(96), epochs=2, batch_size=32,
                         receiver_kwargs={"width": 16})
    return encoder, run.receiver  # type: ignore[return-value]


def test_gradient_reversal_flips_the_sign_and_scales_by_lambda() -> None:
    x = torch.randn(4, 3, requires_grad=True)
    w = torch.randn(4, 3)
    y = grad_reverse(x, 0.3)
    assert torch.equal(y, x)  # identity forward
    (y * w).sum().backward()
    torch.testing.assert_close(x.grad, -0.3 * w, rtol=0, atol=0)
    x.grad = None
    (grad_reverse(x, 0.0) * w).sum().backward()
    assert torch.count_nonzero(x.grad) == 0


def test_ema_teacher_moves_toward_the_student_by_the_momentum() -> None:
    torch.manual_seed(1)
    teacher, student = nn.Linear(3, 2), nn.Linear(3, 2)
    before = [p.detach().clone() for p in teacher.parameters()]
    ema_update(teacher, student, 0.9)
    for t, t0, s in zip(teacher.parameters(), before, student.parameters(), strict=True):
        torch.testing.assert_close(t, 0.9 * t0 + 0.1 * s, rtol=0, atol=1e-7)
    ema_update(teacher, student, 0.0)  # momentum 0: the teacher becomes the student
    assert all(torch.equal(t, s) for t, s in zip(teacher.parameters(), student.parameters(), strict=True))
    with pytest.raises(ValueError, match="momentum"):
        ema_update(teacher, student, 1.5)


def test_adaptation_teacher_is_the_ema_of_the_student(toy: tuple[ToyEncoder, PerLayerHeads]) -> None:
    """After one step, teacher = m * source + (1 - m) * student (the teacher started as the source)."""
    encoder, source = toy
    original = {k: v.clone() for k, v in source.state_dict().items()}
    rec = target_receptions(encoder, synthetic_digits(64), "rayleigh", (0, 10), seed=3)
    res = adapt_receiver(source, rec, batch_size=32, max_steps=1, momentum=0.75, threshold=0.0, lr=1e-2)
    assert res.steps == 1
    teacher, student = dict(res.receiver.named_parameters()), dict(res.student.named_parameters())
    moved = 0
    for name, p0 in source.named_parameters():
        torch.testing.assert_close(teacher[name], 0.75 * p0 + 0.25 * student[name], rtol=0, atol=1e-6)
        moved += int(not torch.equal(student[name], p0))
    assert moved > 0  # the student did move, so the check above is not vacuous
    assert all(torch.equal(v, original[k]) for k, v in source.state_dict().items())  # the source is untouched


def test_variance_split_partitions_the_receptions_as_stated() -> None:
    variance = torch.tensor([0.5, 0.1, 0.9, 0.3, 0.3, 0.7, 0.2, 0.8, 0.0, 0.6, 0.4])
    low = variance_split(variance, 0.5, "low-variance")
    assert int(low.sum()) == round(0.5 * 11)
    assert variance[low].max() <= variance[~low].min()
    high = variance_split(variance, 0.3, "high-variance")
    assert int(high.sum()) == round(0.3 * 11) and variance[high].min() >= variance[~high].max()
    assert set(torch.nonzero(high).flatten().tolist()) == {2, 7, 5}
    ties = variance_split(torch.zeros(6), 0.5, "low-variance")  # ties: by index
    assert ties.tolist() == [True, True, True, False, False, False]
    with pytest.raises(ValueError, match="source_fraction"):
        variance_split(variance, 1.0)


def test_mc_dropout_is_added_and_removed(toy: tuple[ToyEncoder, PerLayerHeads]) -> None:
    encoder, source = toy
    rx = target_receptions(encoder, synthetic_digits(40), "awgn", 5.0, seed=0).received()
    clean = source.predict(rx)["class@3"]
    assert not any(isinstance(m, nn.Dropout) for m in source.modules())
    with dropout_active(source, 0.5):
        a, b = source.predict(rx)["class@3"], source.predict(rx)["class@3"]
    assert not torch.equal(a, b)  # stochastic inside
    torch.testing.assert_close(source.predict(rx)["class@3"], clean, rtol=0, atol=0)  # hooks gone
    variance = mc_dropout_variance(source, rx, passes=8, p=0.3)
    assert variance.shape == (40,) and bool((variance >= 0).all()) and float(variance.max()) > 0
    # a receiver with its own dropout keeps its rate: dropout_active switches those modules on
    own = nn.Sequential(nn.Linear(3, 3), nn.Dropout(0.5)).eval()
    with dropout_active(own, 0.1):
        assert own[1].training
    assert not own[1].training


def test_variance_oracle_reads_the_direction_off_the_gain() -> None:
    gen = torch.Generator().manual_seed(0)
    gain = torch.distributions.Exponential(1.0).sample((400,))
    distance = (10 * torch.log10(gain)).abs()
    noise = 0.1 * torch.rand(400, generator=gen)
    far_noisy = variance_oracle(distance + noise, gain)
    assert far_noisy is not None and far_noisy["source_like"] == "low-variance"
    assert far_noisy["auc_far_higher_variance"] > 0.95 and far_noisy["spearman_variance_distance"] > 0.9
    assert far_noisy["distance_db_low_half"] < far_noisy["distance_db_high_half"]
    near_noisy = variance_oracle(-distance + noise, gain)
    assert near_noisy is not None and near_noisy["source_like"] == "high-variance"
    assert near_noisy["auc_far_higher_variance"] < 0.05
    assert variance_oracle(torch.rand(50), torch.ones(50)) is None  # AWGN: no fading, no oracle


def test_pseudo_labels_come_from_the_confident_teacher_rows() -> None:
    teacher = {"class@1": torch.tensor([[10.0, 0.0], [0.0, 0.1], [0.0, 10.0]])}
    student = {"class@1": torch.tensor([[0.0, 1.0], [2.0, 0.0], [0.5, 0.0]], requires_grad=True)}
    loss, kept = pseudo_label_loss(student, teacher, ["class@1"], threshold=0.9)
    ce = nn.functional.cross_entropy(student["class@1"].detach(), torch.tensor([0, 1, 1]), reduction="none")
    torch.testing.assert_close(loss, (ce[0] + ce[2]) / 3)  # row 1 is unconfident: it counts zero
    assert kept == pytest.approx(2 / 3)


def test_labels_never_reach_the_adaptation(toy: tuple[ToyEncoder, PerLayerHeads]) -> None:
    """Receptions of the same images with shuffled labels give identical adapted weights."""
    encoder, source = toy
    images = synthetic_digits(64)
    permutation = torch.randperm(64, generator=torch.Generator().manual_seed(5))
    shuffled = synthetic_digits(64, labels=images.labels[permutation])
    assert not torch.equal(images.labels, shuffled.labels)
    runs = []
    for ds in (images, shuffled):
        rec = target_receptions(encoder, ds, "rayleigh", (-5, 5), seed=7)
        runs.append(adapt_receiver(source, rec, epochs=1, batch_size=16, threshold=0.0, seed=2))
    a, b = (r.receiver.state_dict() for r in runs)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert runs[0].steps == 4 and runs[0].history[0]["kept"] > 0  # it did train on pseudo-labels
    assert torch.equal(runs[0].source_similar, runs[1].source_similar)


def test_ablations_and_direction_choice(toy: tuple[ToyEncoder, PerLayerHeads]) -> None:
    encoder, source = toy
    fading = target_receptions(encoder, synthetic_digits(48), "rayleigh", (0, 10), seed=1)
    auto = adapt_receiver(source, fading, batch_size=16, max_steps=1)
    assert auto.oracle is not None and auto.source_like == auto.oracle["source_like"]
    assert auto.source_like_from == "oracle"
    forced = adapt_receiver(source, fading, batch_size=16, max_steps=1, source_like="high")
    assert forced.source_like == "high-variance" and forced.source_like_from == "config"
    assert int(forced.source_similar.sum()) == 24
    assert variance_split(forced.variance, 0.5, "high-variance").tolist() == forced.source_similar.tolist()
    plain = target_receptions(encoder, synthetic_digits(48), "awgn", (-10, -5), seed=1)
    awgn = adapt_receiver(source, plain, batch_size=16, max_steps=1)
    assert awgn.oracle is None and awgn.source_like_from == "default"
    random = adapt_receiver(source, fading, batch_size=16, max_steps=1, split="random")
    assert random.source_like_from == "random split" and int(random.source_similar.sum()) == 24
    with pytest.raises(ValueError):
        AdaptConfig(threshold=2.0)


@pytest.fixture(scope="module")
def source_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("adapt")
    root = write_tiny_mnist(tmp / "data")
    run = train_receiver("per-layer-heads", MODEL, "mnist", data_root=root, epochs=1, batch_size=32,
                         receiver_kwargs={"width": 16})
    return save_receiver(run, tmp / "rx.safetensors", command="semcom train-receiver test"), root


def test_cli_adapt_writes_a_loadable_checkpoint_with_a_card(source_checkpoint: tuple[Path, Path],
                                                            tmp_path: Path) -> None:
    src, root = source_checkpoint
    out = tmp_path / "adapted.safetensors"
    res = CliRunner().invoke(__import__("semcom.cli.app", fromlist=["app"]).app, [
        "adapt", str(src), "--data-root", str(root), "--channel", "rayleigh", "--snr", "-5,5", "--images", "48",
        "--start", "8", "--epochs", "1", "--batch-size", "16", "--eval-images", "16", "--out", str(out)])
    assert res.exit_code == 0, res.output
    receiver, card = load_receiver(out)
    assert receiver.name == "per-layer-heads" and card["receiver"]["options"] == {"width": 16}
    assert card["channel"]["channel"] == "rayleigh" and card["training_snr_db"] == [-5.0, 5.0]
    assert card["command"].startswith("semcom adapt") and card["dataset"]["images"] == 48
    ad = card["adaptation"]
    assert ad["target"]["labels_used"] is False and ad["target"]["channel"]["type"] == "rayleigh"
    assert ad["source_like"] in ("low-variance", "high-variance") and ad["source_like_from"] == "oracle"
    assert 0.0 <= ad["oracle"]["auc_far_higher_variance"] <= 1.0 and ad["steps"] == 3
    assert card["source"]["checkpoint"] == str(src) and card["source"]["channel"]["channel"] == "awgn"
    assert card["test"]["images"] == 16 and card["test"]["channel"] == "rayleigh"
    assert card["model"]["sha256"] == json.loads(src.with_suffix(".json").read_text())["model"]["sha256"]
    system = ReceiverSystem(MODEL, out)  # usable as a scenario's `type: receiver`
    rx = Received([torch.zeros(2, k, dtype=torch.cfloat) for k in system.layer_symbols], 0.0)
    assert receiver(rx)["class@3"].shape == (2, 10)


def test_cli_adapt_errors_are_one_line(source_checkpoint: tuple[Path, Path], tmp_path: Path) -> None:
    from semcom.cli.app import app, error_line

    src, root = source_checkpoint
    out = str(tmp_path / "x.safetensors")
    bad = [
        ([str(tmp_path / "missing.safetensors")], "not found"),
        ([str(src), "--snr", "5,-5"], "MIN <= MAX"),
        ([str(src), "--snr", "a,b"], "numbers"),
        ([str(src), "--source-like", "sideways"], "--source-like"),
        ([str(src), "--threshold", "1.5"], "--threshold"),
        ([str(src), "--block", "forever"], "invalid target channel"),
        ([str(src), "--images", "60", "--start", "10"], "only 64"),
    ]
    for args, needle in bad:
        res = CliRunner().invoke(app, ["adapt", *args, "--data-root", str(root), "--out", out])
        assert res.exit_code != 0, args
        assert isinstance(res.exception, SemcomError), (args, res.exception)
        line = error_line(res.exception)
        assert needle in line and "\n" not in line, (args, line)
    proc = subprocess.run([sys.executable, "-m", "semcom", "adapt", str(tmp_path / "missing.safetensors"),
                           "--out", out], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1 and proc.stderr.startswith("error:")


def test_adapt_options_are_the_adaptation_config_fields() -> None:
    """Each adaptation option of `semcom adapt` is one AdaptConfig field: same name, help and default."""
    import typer

    from semcom.cli.app import app
    from semcom.cli.options import build_config

    params = {p.name: p for p in typer.main.get_command(app).commands["adapt"].params}
    fields = AdaptConfig.model_fields
    assert set(fields) <= set(params)
    for name, field in fields.items():
        assert params[name].help == field.description, name
    assert build_config(AdaptConfig, {k: params[k].default for k in fields}, "defaults") == AdaptConfig()
