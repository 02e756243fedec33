"""The controllable (slimmable) receiver: FLOPs counter, search, distillation loss, training, control.

Mechanism checks on tiny receivers and synthetic receptions; the checkpoint, scenario and CLI checks
use the offline MNIST sample and the zoo's ``mnist-mr3-awgn`` encoder with a few training steps
(plumbing and exactness, not accuracy).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch
from torch.nn import functional as F
from typer.testing import CliRunner

from semcom.channels import build_channel
from semcom.cli.app import app
from semcom.data import load_dataset
from semcom.errors import CheckpointError, ScenarioError
from semcom.jscc.system import JsccSystem
from semcom.receivers import RECEIVERS, Received, ReceiverSystem, TrainedReceiver, load_receiver, save_receiver
from semcom.receivers.base import Targets
from semcom.receivers.slimmable import SlimLinear, SlimmableReceiver, WidthConfig, search_configuration
from semcom.receivers.slimmable_training import evaluate_control, open_slimmable, train_slimmable
from semcom.scenarios import load_scenario, run_scenario

MODEL = "mnist-mr3-awgn"


def _tiny(**kwargs: object) -> SlimmableReceiver:
    """Layers of 3 and 2 symbols (11 input features with the SNR), 3 classes, 2x2 images."""
    options = {"width": 8, "decoder_width": 4, "ratios": (0.5, 1.0), **kwargs}
    return SlimmableReceiver((3, 2), num_classes=3, image_shape=(1, 2, 2), **options)  # type: ignore[arg-type]


def _received(sizes: tuple[int, ...], batch: int = 6, seed: int = 0) -> Received:
    g = torch.Generator().manual_seed(seed)
    return Received([torch.randn(batch, k, dtype=torch.cfloat, generator=g) for k in sizes],
                    torch.linspace(0, 20, batch))


def test_flops_match_a_hand_count_and_the_layers_that_run(monkeypatch: pytest.MonkeyPatch) -> None:
    rx = _tiny()
    config = WidthConfig.of(0.5, {"class": 0.5, "image": 1.0})
    # trunk 11 -> 4 -> 4; class decoder 4 -> 2 -> 3; image decoder 4 -> 4 -> 4; a layer a -> b costs 2ab
    hand = 2 * (11 * 4 + 4 * 4) + 2 * (4 * 2 + 2 * 3) + 2 * (4 * 4 + 4 * 4)
    assert hand == 212 and rx.flops(config) == hand
    assert rx.flops(rx.largest) == 2 * (11 * 8 + 8 * 8) + 2 * (8 * 4 + 4 * 3) + 2 * (8 * 4 + 4 * 4)
    # the counter agrees with the weight slices the forward pass multiplies by
    ran: list[int] = []
    linear = F.linear

    def counting(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        ran.append(2 * weight.shape[0] * weight.shape[1])
        return linear(x, weight, bias)

    monkeypatch.setattr(F, "linear", counting)
    for cfg in rx.configurations():
        ran.clear()
        rx.run(_received((3, 2), batch=1), cfg)
        assert sum(ran) == rx.flops(cfg), cfg
    assert len(rx.configurations()) == 8


def test_slim_linear_is_a_slice_of_the_full_layer() -> None:
    layer = SlimLinear(6, 5)
    x = torch.randn(4, 6)
    assert torch.equal(layer(x[:, :3], 2), (x[:, :3] @ layer.weight[:2, :3].T + layer.bias[:2]))
    assert torch.equal(layer(x), torch.nn.functional.linear(x, layer.weight, layer.bias))
    with pytest.raises(ValueError, match="exceeds"):
        layer(x, 6)


def test_search_never_exceeds_the_budget() -> None:
    rx = SlimmableReceiver((44, 43, 43), num_classes=10, width=32)
    low, high = rx.flops(rx.smallest), rx.flops(rx.largest)
    rng = random.Random(0)
    for _ in range(300):
        budget = rng.uniform(low, 1.2 * high) / 1e6
        prefer = {"class": rng.choice([0, 0.5, 1, 2, 5]), "image": rng.choice([0.1, 1, 3])}
        config = search_configuration(rx, budget, prefer)
        assert rx.flops(config) <= budget * 1e6
    assert search_configuration(rx, None, {}) == rx.largest
    assert search_configuration(rx, low / 1e6) == rx.smallest
    with pytest.raises(ValueError, match="below this receiver's smallest configuration"):
        search_configuration(rx, 0.99 * low / 1e6)
    with pytest.raises(ValueError, match="no task 'snr'"):
        search_configuration(rx, None, {"snr": 1})
    with pytest.raises(ValueError, match="positive"):
        search_configuration(rx, None, {"class": 0, "image": 0})


def test_preferences_shift_width_to_the_preferred_task() -> None:
    rx = SlimmableReceiver((44, 43, 43), num_classes=10, width=64)
    budget = (rx.mflops(rx.smallest) + rx.mflops(rx.largest)) / 2
    to_class = search_configuration(rx, budget, {"class": 4, "image": 1})
    to_image = search_configuration(rx, budget, {"class": 1, "image": 4})
    assert to_class.decoder("class") > to_class.decoder("image")
    assert to_image.decoder("image") > to_image.decoder("class")
    assert to_class.decoder("class") > to_image.decoder("class")
    assert to_image.decoder("image") > to_class.decoder("image")
    # unlimited: the preferred decoder is full, the other w / w_max of it (down to the grid)
    assert search_configuration(rx, None, {"class": 2, "image": 1}) == WidthConfig.of(1.0, {"class": 1.0,
                                                                                             "image": 0.5})


def test_distillation_loss_is_zero_for_the_largest_trunk_and_positive_below() -> None:
    torch.manual_seed(0)
    rx = _tiny(ratios=(0.25, 0.5, 1.0))
    batch = _received((3, 2))
    assert float(rx.distillation_loss(batch, rx.largest).detach()) == 0.0
    assert float(rx.distillation_loss(batch, WidthConfig.of(1.0, {"class": 0.25, "image": 0.25})).detach()) == 0.0
    assert float(rx.distillation_loss(batch, rx.smallest).detach()) > 0.0
    # the teacher gets no gradient from it: only the student's (narrow) slices do
    rx.zero_grad()
    rx.distillation_loss(batch, WidthConfig.of(0.5, {"class": 1.0, "image": 1.0})).backward()
    grad = rx.trunk[1].weight.grad
    assert grad is not None and float(grad[4:].abs().sum()) == 0.0 and float(grad[:4].abs().sum()) > 0.0


def test_training_forward_applies_the_sandwich_rule() -> None:
    torch.manual_seed(1)
    rx = _tiny(random_configs=2).train()
    batch = _received((3, 2))
    out = rx(batch)
    assert {"class@2", "image@2", "distill", "class@2~1", "class@2~3", "image@2~3"} <= set(out)
    targets = Targets(labels=torch.arange(6) % 3, images=torch.rand(6, 1, 2, 2))
    losses = rx.losses(out, targets)
    assert set(losses) == {"class@2", "image@2", "distill"}
    one = F.cross_entropy(out["class@2"], targets.labels)
    assert float(losses["class@2"].detach()) > float(one.detach())  # summed over the four configurations
    assert float(losses["distill"].detach()) > 0
    without = _tiny(kd_weight=0.0).train()
    assert "distill" not in without(batch) and all(t.name != "distill" for t in without.tasks)
    eval_out = rx.eval()(batch)
    assert set(eval_out) == {"class@2", "image@2", "shared"}
    assert rx(Received(batch.layers[:1], batch.snr_db)) == {}  # needs all layers


@pytest.fixture(scope="module")
def trained() -> TrainedReceiver:
    sample = load_dataset("mnist-sample", subset=64)
    return train_slimmable(MODEL, sample, epochs=1, batch_size=32, max_steps=2,
                           receiver_kwargs={"width": 16, "ratios": [0.25, 0.5, 1.0]})


def test_checkpoint_round_trip_keeps_the_slimmable_options(trained: TrainedReceiver, tmp_path: Path) -> None:
    path = save_receiver(trained, tmp_path / "slim.safetensors", command="test")
    receiver, card = load_receiver(path)
    assert isinstance(receiver, SlimmableReceiver) and receiver.ratios == (0.25, 0.5, 1.0)
    assert card["receiver"]["options"]["kd_weight"] == 1.0 and "slimmable" in RECEIVERS
    rx = _received((44, 43, 43))
    for config in (receiver.largest, receiver.smallest, WidthConfig.of(0.5, {"class": 1.0, "image": 0.25})):
        want, _ = trained.receiver.eval().run(rx, config)
        got, _ = receiver.run(rx, config)
        assert all(torch.equal(want[k], got[k]) for k in want)
    opened = open_slimmable(path)
    result = evaluate_control(opened, 0.02, {"class": 2, "image": 1}, load_dataset("mnist-sample", subset=16),
                              snrs_db=[10.0])
    assert result["mflops"] <= 0.02 and result["configuration"]["class"] >= result["configuration"]["image"]
    assert len(result["rows"]) == 1 and {"accuracy", "psnr_db"} <= set(result["rows"][0])


SCENARIO = """\
name: slim-tiny
seed: 1
batch_size: 4
dataset: {name: mnist-sample, images: 6}
systems:
  - name: slim
    type: receiver
    model: mnist-mr3-awgn
    receiver: RX
CONTROL
users:
  - {name: near, snr_db: 15, resolution: 3, tasks: [reconstruction, classification]}
"""


def _scenario(tmp_path: Path, receiver: str, control: str) -> Path:
    file = tmp_path / "slim.yaml"
    file.write_text(SCENARIO.replace("RX", receiver).replace("CONTROL", control))
    return file


def test_scenario_control_is_validated_and_applied(trained: TrainedReceiver, tmp_path: Path) -> None:
    save_receiver(trained, tmp_path / "slim.safetensors")
    control = "    control: {mflops: 0.02, prefer: {class: 1, image: 3}}"
    sc = load_scenario(_scenario(tmp_path, "slim.safetensors", control))
    result = run_scenario(sc, None, quiet=True)
    desc = next(d for d in result.metadata["systems"] if d["name"] == "slim")
    chosen = desc["details"]["receiver"]["control"]
    want = search_configuration(trained.receiver, 0.02, {"class": 1, "image": 3})  # type: ignore[arg-type]
    assert chosen["configuration"] == want.as_dict() and chosen["mflops"] <= 0.02
    assert desc["spec"]["control"] == {"mflops": 0.02, "prefer": {"class": 1.0, "image": 3.0}, "priority": "decoders"}
    rows = [r for r in result.rows if r["system"] == "slim" and r["layer"] == 3]
    assert rows and 0.0 <= rows[0]["accuracy"] <= 1.0
    # the receiver's own images (its main image task), not the JSCC decoders'
    system = ReceiverSystem(MODEL, trained.receiver, control={"mflops": 0.02, "prefer": {"image": 3}})
    jscc = JsccSystem(MODEL)
    images = load_dataset("mnist-sample", subset=4).images()
    outs = system.receive(system.prepare(images), build_channel("awgn", seed=3), 7.0, 3)
    ref = jscc.receive(jscc.prepare(images), build_channel("awgn", seed=3), 7.0, 3)
    channel = build_channel("awgn", seed=3)
    y = channel(jscc.prepare(images).symbols, 7.0, layer_sizes=[44, 43, 43])
    est = y.y * y.h.conj() / (y.h.abs().square() + y.no)
    want, _ = trained.receiver.run(Received(list(torch.split(est, [44, 43, 43], dim=1)), 7.0),
                                   trained.receiver.active)  # type: ignore[operator]
    torch.testing.assert_close(outs[0].images, ref[0].images)  # no receiver output below all layers
    assert outs[0].logits is None and outs[1].logits is None
    torch.testing.assert_close(outs[2].images, want["image@3"])
    torch.testing.assert_close(outs[2].logits, want["class@3"])
    # errors in the file name its line and field
    for bad, message in (("    control: {mflops: -1}", r"slim\.yaml:10: systems\[0\]\.control\.mflops"),
                         ("    control: {budget: 1}", r"slim\.yaml:10: systems\[0\]\.control.*unknown field 'budget'"),
                         ("    control: {prefer: {class: -2}}", r"slim\.yaml:10: systems\[0\]\.control\.prefer"),
                         ("    control: {prefer: {class: 0}}", r"slim\.yaml:10: .*at least one task weight")):
        with pytest.raises(ScenarioError, match=message):
            load_scenario(_scenario(tmp_path, "slim.safetensors", bad))
    # what only the checkpoint can tell: when the system is built, naming the system
    for control, message in (("    control: {mflops: 0.0001}", "below this receiver's smallest configuration"),
                             ("    control: {prefer: {snr: 1}}", "no task 'snr'")):
        with pytest.raises(ScenarioError, match=f"system 'slim': control: .*{message}"):
            run_scenario(load_scenario(_scenario(tmp_path, "slim.safetensors", control)), None, quiet=True)


def test_control_is_refused_for_a_receiver_that_is_not_slimmable(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match=r"system 'slim': control: receiver .*not slimmable"):
        run_scenario(load_scenario(_scenario(tmp_path, "mnist-mr3-awgn-per-layer-heads",
                                             "    control: {mflops: 1}")), None, quiet=True)
    with pytest.raises(CheckpointError, match="not slimmable"):
        open_slimmable("mnist-mr3-awgn-per-layer-heads")


def test_cli_slim_prints_the_configuration_its_flops_and_scores(trained: TrainedReceiver, tmp_path: Path) -> None:
    path = save_receiver(trained, tmp_path / "slim.safetensors")
    res = CliRunner().invoke(app, ["slim", str(path), "--mflops", "0.02", "--prefer", "class=2,image=1",
                                   "--dataset", "mnist-sample", "--images", "16", "--snr", "5,15"])
    assert res.exit_code == 0, res.output
    want = search_configuration(trained.receiver, 0.02, {"class": 2, "image": 1})  # type: ignore[arg-type]
    assert f"configuration: {want}" in res.output
    assert "MFLOPs per image (budget 0.02" in res.output
    assert "5 dB awgn: accuracy" in res.output and "15 dB awgn: accuracy" in res.output
    flops = res.output.split("compute: ")[1].split(" ")[0]
    assert float(flops) <= 0.02
    only = CliRunner().invoke(app, ["slim", str(path), "--images", "0"])
    assert only.exit_code == 0 and "accuracy" not in only.output and "no limit" in only.output
    for args, message in ((["--prefer", "class"], "KIND=WEIGHT"), (["--mflops", "1e-6"], "below")):
        bad = CliRunner().invoke(app, ["slim", str(path), "--images", "0", *args])
        assert bad.exit_code != 0 and message in bad.output + str(bad.exception)
    card = json.loads(path.with_suffix(".json").read_text())
    assert card["receiver"]["name"] == "slimmable"
