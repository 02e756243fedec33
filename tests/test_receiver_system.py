"""Receiver checkpoints, the ``receiver`` scenario system and ``semcom train-receiver``.

All on the offline MNIST sample and the zoo's ``mnist-mr3-awgn`` encoder, with tiny receivers
(width 8-16, a few steps): these tests check plumbing and exactness, not accuracy.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from helpers import write_tiny_mnist
from typer.testing import CliRunner

from semcom.channels import build_channel
from semcom.cli.app import app
from semcom.data import load_dataset
from semcom.errors import ALLOW_UNVERIFIED_ENV, CheckpointError, ScenarioError
from semcom.jscc.system import JsccSystem
from semcom.receivers import (
    Received,
    ReceiverSystem,
    TrainedReceiver,
    load_receiver,
    save_receiver,
    train_receiver,
)
from semcom.receivers.checkpoint import shipped_receiver, weights_dir
from semcom.scenarios import load_scenario, parse_scenario, run_scenario
from semcom.scenarios.schema import ReceiverSystemSpec

MODEL = "mnist-mr3-awgn"


@pytest.fixture(scope="module")
def sample() -> object:
    return load_dataset("mnist-sample", subset=96)


@pytest.fixture(scope="module")
def trained(sample: object) -> TrainedReceiver:
    return train_receiver("per-layer-heads", MODEL, sample, epochs=1, batch_size=32, max_steps=3,
                          receiver_kwargs={"width": 16})


def _received(batch: int = 5, seed: int = 0) -> Received:
    g = torch.Generator().manual_seed(seed)
    layers = [torch.randn(batch, k, dtype=torch.cfloat, generator=g) for k in (44, 43, 43)]
    return Received(layers, torch.linspace(0, 20, batch))


def test_save_load_round_trip(trained: TrainedReceiver, tmp_path: Path) -> None:
    path = save_receiver(trained, tmp_path / "rx", command="semcom train-receiver test",
                         test={"rows": [{"snr_db": 10.0, "layer": 1, "accuracy": 0.5}]})
    assert path.suffix == ".safetensors" and path.with_suffix(".json").is_file()
    receiver, card = load_receiver(path)
    rx = _received()
    want, got = trained.receiver.predict(rx), receiver.predict(rx)
    assert set(want) == set(got)
    for key in want:
        torch.testing.assert_close(got[key], want[key], rtol=0, atol=0)
    assert card["receiver"]["name"] == "per-layer-heads" and card["receiver"]["options"] == {"width": 16}
    assert card["model"]["name"] == MODEL and len(card["model"]["sha256"]) == 64
    assert card["dataset"]["name"] == "mnist-sample" and card["weighting"] == "equal"
    assert card["command"] == "semcom train-receiver test" and card["test"]["rows"][0]["accuracy"] == 0.5
    assert card["channel"]["channel"] == "awgn" and card["training_snr_db"] == [0.0, 20.0]
    # float16 storage loads as float32 and stays close
    half, _ = load_receiver(save_receiver(trained, tmp_path / "half.safetensors", dtype=torch.float16))
    assert next(half.parameters()).dtype == torch.float32
    torch.testing.assert_close(half.predict(rx)["class@3"], want["class@3"], rtol=0.05, atol=0.05)


def test_corrupt_or_wrong_files_raise_checkpoint_error(trained: TrainedReceiver, tmp_path: Path) -> None:
    path = save_receiver(trained, tmp_path / "rx.safetensors")
    with pytest.raises(CheckpointError, match="not found"):
        load_receiver(tmp_path / "missing.safetensors")
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="sha256 does not match"):
        load_receiver(path)
    path.with_suffix(".json").unlink()  # no card: the file itself must be checked
    path.write_bytes(b"garbage, not safetensors")
    with pytest.raises(CheckpointError, match="cannot be verified"):
        load_receiver(path)
    with pytest.MonkeyPatch.context() as mp, pytest.raises(CheckpointError, match="not a readable safetensors file"):
        mp.setenv(ALLOW_UNVERIFIED_ENV, "1")
        load_receiver(path)
    from semcom.zoo import weights_path

    jscc = tmp_path / "jscc.safetensors"
    jscc.write_bytes(weights_path(MODEL).read_bytes())
    with pytest.MonkeyPatch.context() as mp, pytest.raises(CheckpointError, match="not a semcom receiver checkpoint"):
        mp.setenv(ALLOW_UNVERIFIED_ENV, "1")
        load_receiver(jscc)
    card = tmp_path / "bad.json"
    save_receiver(trained, tmp_path / "bad.safetensors")
    card.write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_receiver(tmp_path / "bad.safetensors")


def test_receiver_system_uses_the_jscc_realisation(trained: TrainedReceiver, sample: object,
                                                   tmp_path: Path) -> None:
    path = save_receiver(trained, tmp_path / "rx.safetensors")
    system = ReceiverSystem(MODEL, path)
    jscc = JsccSystem(MODEL)
    images = sample.images()[:6]  # type: ignore[attr-defined]
    outs = system.receive(system.prepare(images), build_channel("awgn", seed=3), 7.0, 3)
    ref = jscc.receive(jscc.prepare(images), build_channel("awgn", seed=3), 7.0, 3)
    assert [o.layer for o in outs] == [1, 2, 3] and system.kind == "jscc"
    # images are the JSCC decoders'; logits are the receiver's on the same channel output
    channel = build_channel("awgn", seed=3)
    x = jscc.prepare(images).symbols
    y = channel(x, 7.0, layer_sizes=[44, 43, 43])
    est = y.y * y.h.conj() / (y.h.abs().square() + y.no)
    want = trained.receiver.predict(Received(list(torch.split(est, [44, 43, 43], dim=1)), 7.0))
    for o, r in zip(outs, ref, strict=True):
        torch.testing.assert_close(o.images, r.images)
        torch.testing.assert_close(o.logits, want[f"class@{o.layer}"])
    assert set(system.checksums) == {"rx.safetensors", f"{MODEL}.safetensors"}
    assert system.describe()["receiver"]["name"] == "per-layer-heads"
    # a receiver trained on other JSCC weights, or for other layer sizes, is refused
    card = json.loads(path.with_suffix(".json").read_text())
    card["model"]["sha256"] = "0" * 64
    path.with_suffix(".json").write_text(json.dumps(card))
    with pytest.raises(CheckpointError, match="trained on JSCC weights"):
        ReceiverSystem(MODEL, trained.receiver, card=card)
    other = train_receiver("per-layer-heads", MODEL, sample, epochs=1, max_steps=1,
                           receiver_kwargs={"width": 8}).receiver
    other.layer_symbols = (44, 43)
    with pytest.raises(CheckpointError, match="reads layers of"):
        ReceiverSystem(MODEL, other)


SCENARIO = """\
name: rx-tiny
seed: 1
batch_size: 4
dataset: {name: mnist-sample, images: 6}
systems:
  - {name: jscc, type: jscc, model: mnist-mr3-awgn}
  - {name: heads, type: receiver, model: mnist-mr3-awgn, receiver: RX}
  - {type: sscc, codec: jpeg, mcs: capacity, symbols_from: heads}
users:
  - {name: far, snr_db: [2, 12], resolution: 2, tasks: [classification]}
  - {name: near, snr_db: 15, resolution: 3, tasks: [reconstruction, classification]}
"""


def test_scenario_with_a_receiver_system(trained: TrainedReceiver, tmp_path: Path) -> None:
    save_receiver(trained, tmp_path / "ckpt" / "rx.safetensors")
    file = tmp_path / "rx-tiny.yaml"
    file.write_text(SCENARIO.replace("RX", "ckpt/rx.safetensors"))
    sc = load_scenario(file)
    spec = sc.systems[1]
    assert isinstance(spec, ReceiverSystemSpec) and spec.receiver_is_path() and spec.label == "heads"
    assert ReceiverSystemSpec(type="receiver", model="m", receiver="a/rx.safetensors").label == "m+rx"
    result = run_scenario(sc, None, quiet=True)
    rows = [r for r in result.rows if r["system"] == "heads"]
    assert {(r["user"], r["layer"]) for r in rows} >= {("far", 1), ("far", 2), ("near", 3)}
    assert all(0.0 <= r["accuracy"] <= 1.0 for r in rows)
    near = [r for r in rows if r["user"] == "near"]
    assert all(r["psnr_mean"] > 5 for r in near)  # the JSCC decoders' images
    desc = next(d for d in result.metadata["systems"] if d["name"] == "heads")
    assert desc["kind"] == "jscc" and "rx.safetensors" in desc["checksums"]
    # a missing checkpoint is a one-line scenario error naming the system
    file.write_text(SCENARIO.replace("RX", "nowhere/rx.safetensors"))
    with pytest.raises(ScenarioError, match=r"systems\[1\]\.receiver: receiver checkpoint not found"):
        load_scenario(file)
    sc = parse_scenario(SCENARIO.replace("RX", "nowhere/rx.safetensors"))  # no file: checked when built
    with pytest.raises(ScenarioError, match=r"system 'heads'.*not found"):
        run_scenario(sc, None, quiet=True)
    with pytest.raises(ScenarioError, match="receiver"):
        parse_scenario(SCENARIO.replace("receiver: RX", "recv: x"))


def test_cli_train_receiver_writes_a_loadable_checkpoint(tmp_path: Path) -> None:
    root = write_tiny_mnist(tmp_path / "data")
    out = tmp_path / "rx" / "heads.safetensors"
    res = CliRunner().invoke(app, [
        "train-receiver", "deep-supervision", "--model", MODEL, "--dataset", "mnist", "--data-root", str(root),
        "--epochs", "1", "--batch-size", "32", "--width", "8", "--weighting", "pcgrad", "--snr", "0,10",
        "--eval-images", "16", "--eval-snrs", "10", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert str(out) in res.output
    receiver, card = load_receiver(out)
    assert receiver.name == "deep-supervision" and card["weighting"] == "pcgrad"
    assert card["training_snr_db"] == [0.0, 10.0] and card["dataset"]["images"] == 64
    assert card["command"].startswith("semcom train-receiver deep-supervision")
    assert card["test"]["images"] == 16 and any("accuracy" in r for r in card["test"]["rows"])
    bad = CliRunner().invoke(app, ["train-receiver", "no-such-receiver", "--dataset", "mnist",
                                   "--data-root", str(root), "--out", str(tmp_path / "x.safetensors")])
    assert bad.exit_code != 0


def test_shipped_receiver_names() -> None:
    with pytest.raises(CheckpointError, match="ships with semcom"):
        shipped_receiver("no-such-receiver")
    for path in sorted(weights_dir().glob("*.safetensors")):
        _, card = load_receiver(shipped_receiver(path.stem))
        assert path.stat().st_size < 1_000_000 and card["command"].startswith("semcom train-receiver")
        # still fits the zoo model it was trained on (same sha256): else retrain with card["command"]
        ReceiverSystem(card["model"]["name"], path)
    spec = load_scenario("receivers-mnist").systems[1]
    assert isinstance(spec, ReceiverSystemSpec) and not spec.receiver_is_path()
    assert shipped_receiver(spec.receiver).is_file()


@pytest.mark.parametrize("channel,csi", [("rayleigh", "perfect"), ("rayleigh", "none"), ("awgn", "perfect")])
def test_receivers_read_the_jscc_decoders_estimate(channel: str, csi: str) -> None:
    """One LMMSE estimate for the JSCC decoders and the receivers: the same bits."""
    from semcom.jscc.model import receiver_input, symbol_estimate
    from semcom.receivers.training import layer_estimates

    g = torch.Generator().manual_seed(1)
    x = torch.randn(4, 130, dtype=torch.cfloat, generator=g)
    out = build_channel(channel, block="symbol" if channel != "awgn" else "image", csi=csi, seed=2)(x, 3.0)
    x_hat, _ = receiver_input(out)
    assert torch.equal(symbol_estimate(out), x_hat)
    for got, want in zip(layer_estimates(out, [44, 43, 43]), torch.split(x_hat, [44, 43, 43], dim=1), strict=True):
        assert torch.equal(got, want)


def test_shipped_receivers_resolve_by_name_and_hash_each_file_once(monkeypatch: pytest.MonkeyPatch) -> None:
    import semcom.storage as storage
    from semcom.receivers import RECEIVERS
    from semcom.receivers.checkpoint import SHELF
    from semcom.receivers.registry import RECEIVERS as REGISTERED

    assert RECEIVERS is REGISTERED
    path = sorted(weights_dir().glob("*.safetensors"))[0]
    weights = storage.resolve_weights(path.stem, SHELF)
    assert weights.source == "shipped" and weights.path == path
    _, by_name = load_receiver(path.stem)
    hashes: list[str] = []
    real_hash = storage.sha256_file
    monkeypatch.setattr(storage, "sha256_file", lambda p: hashes.append(Path(p).name) or real_hash(p))
    system = ReceiverSystem(by_name["model"]["name"], path)
    assert sorted(hashes) == sorted([path.name, f"{by_name['model']['name']}.safetensors"])
    assert system.checksums[path.name] == by_name["sha256"]
