"""Semantic receivers: registry and plug-ins, shapes, training, pairs, calibration."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest
import torch
from helpers import TOY_SIZES as SIZES
from helpers import ToyEncoder, synthetic_digits

from semcom.receivers import (
    COARSE_CONCEPTS,
    RECEIVERS,
    SHARED,
    Received,
    Receiver,
    Targets,
    build_receiver,
    evaluate_receiver,
    expected_calibration_error,
    receive,
    train_receiver,
)
from semcom.registry import UnknownNameError

BUILTIN = ("per-layer-heads", "deep-supervision", "top-only", "all-at-top", "proxy-uncertainty",
           "proxy-softmax")




def test_registry_lists_builtins_and_rejects_unknown() -> None:
    assert set(BUILTIN) <= set(RECEIVERS.names())
    for e in RECEIVERS.entries():
        assert e.description
    with pytest.raises(UnknownNameError, match="per-layer-heads"):
        RECEIVERS.get("no-such-receiver")


def test_entry_point_plugin_is_discovered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pkg = tmp_path / "fake_rx_plugin"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(textwrap.dedent('''
        import torch
        from semcom.receivers import Receiver, Task

        class MeanReceiver(Receiver):
            """A plug-in receiver: a linear classifier on the mean of the received layers."""

            name = "fake-mean"

            def __init__(self, layer_symbols, num_classes, **kwargs):
                super().__init__(layer_symbols, num_classes, **kwargs)
                self.lin = torch.nn.Linear(2, num_classes)
                self.tasks = (Task("class@1", "class", 1),)

            def forward(self, rx):
                z = torch.cat(rx.layers, 1).mean(1)
                return {"class@1": self.lin(torch.stack([z.real, z.imag], 1))}

            def shared_parameters(self):
                return list(self.lin.parameters())
    '''))
    dist = tmp_path / "fake_rx_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-rx-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[semcom.receivers]\nfake-mean = fake_rx_plugin:MeanReceiver\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(RECEIVERS, "_entries", dict(RECEIVERS._entries))  # restored afterwards
    RECEIVERS.reload_plugins()
    assert "fake-mean" in RECEIVERS
    entry = next(e for e in RECEIVERS.entries() if e.name == "fake-mean")
    assert entry.origin == "fake_rx_plugin:MeanReceiver"
    assert entry.description.startswith("A plug-in receiver")
    rx = RECEIVERS.create("fake-mean", layer_symbols=SIZES, num_classes=10)
    assert isinstance(rx, Receiver)
    out = rx(Received([torch.ones(3, k, dtype=torch.cfloat) for k in SIZES], 5.0))
    assert out["class@1"].shape == (3, 10)
    sys.modules.pop("fake_rx_plugin", None)


@pytest.mark.parametrize("name", BUILTIN)
def test_receiver_outputs_follow_resolution(name: str) -> None:
    rx_model = build_receiver(name, ToyEncoder(), synthetic_digits(20), width=16)
    snr = torch.tensor([0.0, 5.0, 10.0, 20.0])
    full = Received([torch.randn(4, k, dtype=torch.cfloat) for k in SIZES], snr)
    out = rx_model(full)
    assert SHARED in out
    for t in rx_model.tasks:
        if t.kind != "aux":
            assert t.name in out, t.name
    # a user with layer 1 only gets no output that needs layers 2..L
    part = rx_model(full.upto(1))
    assert all(t.layer == 1 for t in rx_model.tasks if t.name in part)


def test_deep_supervision_schedules() -> None:
    ds = synthetic_digits(20)
    names = {n: {t.name for t in build_receiver(n, ToyEncoder(), ds, width=8).tasks}
             for n in ("deep-supervision", "top-only", "all-at-top")}
    assert names["deep-supervision"] == {"coarse@1", "class@2", "class@3"}
    assert names["top-only"] == {"class@3"}
    assert names["all-at-top"] == {"coarse@3", "class@3"}
    assert COARSE_CONCEPTS["mnist"].num_groups == 3 and COARSE_CONCEPTS["cifar10"].groups[0] == 1


@pytest.mark.parametrize("name", BUILTIN)
def test_each_receiver_loss_falls(name: str) -> None:
    run = train_receiver(name, ToyEncoder(), synthetic_digits(256), snr_db=(15.0, 20.0), epochs=6, batch_size=32,
                         lr=5e-3, receiver_kwargs={"width": 32}, seed=0)
    first, last = run.history[0], run.history[-1]
    main = [k for k in first if k.startswith(("class@", "coarse@"))]
    assert main
    assert sum(last[k] for k in main) < 0.8 * sum(first[k] for k in main), (first, last)


@pytest.mark.parametrize("weighting", ["uncertainty", "gradnorm", "pcgrad", "mgda-ub"])
def test_every_weighting_trains_a_receiver(weighting: str) -> None:
    run = train_receiver("per-layer-heads", ToyEncoder(), synthetic_digits(256), weighting=weighting,
                         snr_db=(15.0, 20.0), epochs=3, batch_size=64, lr=3e-3, receiver_kwargs={"width": 32})
    first, last = run.history[0], run.history[-1]
    assert last["class@3"] < first["class@3"]


def test_receiver_config_or_keywords_train_the_same() -> None:
    from semcom.receivers.training import ReceiverTrainConfig

    ds = synthetic_digits(128)
    options = {"weighting": "pcgrad", "channel": "rician", "k_factor": 2.0, "block": "layer", "snr_db": (5.0, 15.0),
               "epochs": 1, "batch_size": 32, "receiver_kwargs": {"width": 8}, "seed": 3}
    encoder = ToyEncoder()
    by_keywords = train_receiver("deep-supervision", encoder, ds, **options)
    config = ReceiverTrainConfig(**options)
    assert config.channel.k_factor == 2.0 and config.channel.block == "layer"
    by_config = train_receiver("deep-supervision", encoder, ds, config)
    assert by_keywords.history[0].keys() == by_config.history[0].keys()
    assert all(by_keywords.history[0][k] == by_config.history[0][k] for k in ("class@2", "class@3"))
    assert by_config.config["channel"] == "rician" and by_config.config["snr_db"] == [5.0, 15.0]
    assert ReceiverTrainConfig(channel="awgn", k_factor=1.0).channel.k_factor is None  # K is the rician's only
    assert ReceiverTrainConfig(snr_db="7").snr_db == (7.0, 7.0)
    with pytest.raises(ValueError, match="MIN <= MAX"):
        ReceiverTrainConfig(snr_db="20,0")
    with pytest.raises(ValueError, match="Extra inputs"):
        train_receiver("per-layer-heads", ToyEncoder(), ds, epoch=1)


def test_receiver_training_does_not_depend_on_when_sionna_is_imported(monkeypatch: pytest.MonkeyPatch) -> None:
    """Importing Sionna reseeds torch's global generator at random (its config does); the first channel
    of a process imports it, so a run that draws from the global generator must seed it afterwards."""
    from semcom.channels.spec import ChannelSpec

    real = ChannelSpec.build

    def build_like_a_first_import(self, seed=None, device="cpu"):  # type: ignore[no-untyped-def]
        torch.seed()
        return real(self, seed, device)

    monkeypatch.setattr(ChannelSpec, "build", build_like_a_first_import)
    encoder, ds = ToyEncoder(), synthetic_digits(128)
    runs = [train_receiver("proxy-uncertainty", encoder, ds, epochs=1, batch_size=64,
                           receiver_kwargs={"width": 16}).history[0] for _ in range(2)]
    assert runs[0]["hard-negative"] == runs[1]["hard-negative"] and runs[0]["class@3"] == runs[1]["class@3"]


def test_train_receiver_options_are_the_training_config_fields() -> None:
    """Each training option of `semcom train-receiver` is one ReceiverTrainConfig field: same name, the
    field's description as help, and defaults that give the default configuration."""
    import typer

    from semcom.cli.app import app
    from semcom.cli.options import build_config
    from semcom.receivers.training import ReceiverTrainConfig

    fields = ReceiverTrainConfig.flat_fields()
    params = {p.name: p for p in typer.main.get_command(app).commands["train-receiver"].params}
    command_only = {"receiver", "out", "model", "dataset", "width", "eval_images", "eval_snrs", "half"}
    options = {k: p for k, p in params.items() if k not in command_only}
    assert set(options) - set(fields) == {"snr"}  # the option --snr sets snr_db
    assert set(fields) - set(options) == {"snr_db", "receiver_kwargs", "weighting_kwargs", "max_steps"}
    for name, param in options.items():
        field = fields.get(name, ("snr_db",))
        model = ReceiverTrainConfig if len(field) == 1 else ReceiverTrainConfig.model_fields[field[0]].annotation
        assert param.help == model.model_fields[field[-1]].description, name
    values = {("snr_db" if k == "snr" else k): p.default for k, p in options.items()}
    assert build_config(ReceiverTrainConfig, values, "defaults") == ReceiverTrainConfig()


def test_hard_negative_twin_shares_the_channel_realisation() -> None:
    from semcom.channels import build_channel

    ch = build_channel("rayleigh", block="image", csi="perfect", seed=1)
    x = ToyEncoder().encode(torch.rand(6, 1, 28, 28))
    x2 = ToyEncoder().encode(torch.rand(6, 1, 28, 28))
    snr = torch.full((6,), 10.0)
    rx, eff, twin = receive(x, ch, snr, SIZES, partner_symbols=x)
    assert twin is not None
    for a, b in zip(rx.layers, twin, strict=True):
        torch.testing.assert_close(a, b)  # same symbols, same realisation: identical
    rx, eff, twin = receive(x, ch, snr, SIZES, partner_symbols=x2)
    assert twin is not None and not torch.allclose(rx.layers[0], twin[0])
    assert not torch.allclose(eff, snr)  # fading moves the effective SNR off the nominal one
    ch = build_channel("awgn", seed=1)
    _, eff, _ = receive(x, ch, snr, SIZES)
    torch.testing.assert_close(eff, snr)


def test_proxy_pairs_enter_training() -> None:
    run = train_receiver("proxy-uncertainty", ToyEncoder(), synthetic_digits(128), epochs=1, batch_size=64,
                         receiver_kwargs={"width": 16})
    assert "hard-negative" in run.history[0] and "attention-kl" in run.history[0]
    rx = run.receiver
    assert rx.wants_pairs
    x = Received([torch.randn(8, k, dtype=torch.cfloat) for k in SIZES], 10.0)
    a, b = rx.predict(x), rx.predict(x)  # test time: the attention mean, deterministic
    torch.testing.assert_close(a["class@3"], b["class@3"])
    torch.testing.assert_close(a["attention@3"].sum(1), torch.ones(8))
    partner = torch.tensor([1, 0, -1, -1, -1, -1, -1, -1])
    targets = Targets(labels=torch.zeros(8, dtype=torch.long), partner=partner)
    loss = rx.task_loss(rx.task("hard-negative"), a, targets)
    assert loss is not None and float(loss) >= 0


def test_evaluate_reports_per_layer_metrics() -> None:
    ds = synthetic_digits(200)
    run = train_receiver("proxy-softmax", ToyEncoder(), ds, epochs=1, batch_size=50,
                         receiver_kwargs={"width": 16})
    rows = evaluate_receiver(run, ds, snrs_db=[5.0], channel="rayleigh")
    assert [r["layer"] for r in rows] == [1, 2, 3]
    for r in rows:
        assert 0 <= r["accuracy"] <= 1 and 0 <= r["ece"] <= 1 and 0 <= r["coarse_accuracy"] <= 1
        assert r["psnr_db"] > 0 and r["snr_mae_db"] >= 0


def test_expected_calibration_error_known_values() -> None:
    # confidence 0.8 everywhere, 8 of 10 right (two predict the wrong class): calibrated
    p = torch.tensor([0.8, 0.2]).log()
    logits = p.repeat(10, 1)
    logits[8:] = p.flip(0)
    ece = expected_calibration_error(logits, torch.zeros(10, dtype=torch.long))
    assert ece == pytest.approx(0.0, abs=1e-6)
    logits = torch.tensor([[10.0, -10.0]]).repeat(10, 1)
    labels = torch.tensor([0] * 5 + [1] * 5)
    assert expected_calibration_error(logits, labels) == pytest.approx(0.5, abs=1e-6)  # sure, half right
    eight = torch.tensor([[0.8, 0.2]]).log().repeat(10, 1)
    assert expected_calibration_error(eight, torch.tensor([0] * 8 + [1] * 2)) == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("name", BUILTIN)
def test_every_weighting_runs_on_every_receiver(name: str) -> None:
    from semcom.receivers import WEIGHTINGS, make_weighting

    model = build_receiver(name, ToyEncoder(), synthetic_digits(20), width=8)
    gen = torch.Generator().manual_seed(0)
    rx = Received([torch.randn(8, k, dtype=torch.cfloat, generator=gen) for k in SIZES], 10.0)
    targets = Targets(labels=torch.arange(8), images=torch.rand(8, 1, 28, 28, generator=gen),
                      symbols=[torch.randn(8, k, dtype=torch.cfloat, generator=gen) for k in SIZES],
                      snr_db=torch.full((8,), 10.0), partner=torch.arange(8).roll(1))
    for strategy in WEIGHTINGS.names():
        model.zero_grad(set_to_none=True)
        out = model(rx)
        weights = make_weighting(strategy, model.tasks).backward(
            model.losses(out, targets), shared=model.shared_parameters(),
            last_shared=model.last_shared_parameters(), representation=out[SHARED])
        assert weights, strategy
        grads = [p.grad for p in model.shared_parameters() if p.grad is not None]
        assert grads and all(torch.isfinite(g).all() for g in grads), strategy
