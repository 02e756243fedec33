"""Multi-resolution JSCC: shapes, power, layer causality, learning, checkpoints, JsccSystem."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import pytest
import torch

from semcom.channels import build_channel
from semcom.errors import ALLOW_UNVERIFIED_ENV, CheckpointError
from semcom.jscc import (
    JsccConfig,
    MultiResJscc,
    load_checkpoint,
    save_checkpoint,
    split_symbols,
    symbols_for_ratio,
)
from semcom.jscc.system import JsccSystem
from semcom.jscc.train import TrainConfig, evaluate, train
from semcom.systems import LayerOutput, TransmissionSystem


def _tiny(
    arch: str = "conv",
    shape: tuple[int, int, int] = (1, 8, 8),
    sizes: tuple[int, ...] = (10, 7, 6),
    snr_info: bool = True,
) -> MultiResJscc:
    """A tiny model; ``"conv-skip"``: conv with the linear shortcut; ``"conv-pilot"``: that plus the
    gain pilot and the clamped output."""
    torch.manual_seed(0)
    skip = arch in ("conv-skip", "conv-pilot")
    pilot = arch == "conv-pilot"
    cfg = JsccConfig(
        shape,
        sizes,
        num_classes=3,
        enc_width=8,
        dec_width=8,
        snr_info=snr_info,
        arch="conv" if skip else arch,
        linear_skip=skip,
        gain_pilot=pilot,
        output="clamp" if pilot else "sigmoid",
    )
    return MultiResJscc(cfg).eval()


def test_bandwidth_bookkeeping() -> None:
    assert symbols_for_ratio((3, 32, 32), "1/6") == 512
    assert symbols_for_ratio((1, 28, 28), "1/6") == 130  # 784 / 6 = 130.67, rounded down
    assert split_symbols(130, 3) == (44, 43, 43)
    assert split_symbols(512, 1) == (512,)
    cfg = JsccConfig((3, 32, 32), (192, 160, 160))
    assert cfg.layer_channels == (6, 5, 5)
    assert cfg.bandwidth_ratios()[-1] == pytest.approx(1 / 6)


@pytest.mark.parametrize("arch", ["conv", "mlp", "conv-skip", "conv-pilot"])
def test_shapes_and_per_layer_power(arch: str) -> None:
    model = _tiny(arch)
    x = model.encode(torch.rand(5, 1, 8, 8))
    assert x.shape == (5, 23) and x.dtype == torch.complex64
    for layer in model.split_layers(x):
        power = layer.abs().square().mean(dim=1)  # per image
        torch.testing.assert_close(power, torch.ones(5), rtol=1e-5, atol=1e-5)
    outs = model.decode(x, torch.full((5,), 10.0))
    assert [o.layer for o in outs] == [1, 2, 3]
    for o in outs:
        assert o.images.shape == (5, 1, 8, 8) and o.logits is not None and o.logits.shape == (5, 3)
        assert float(o.images.detach().min()) >= 0 and float(o.images.detach().max()) <= 1


def test_depth_options_add_blocks_and_keep_older_configs_loadable() -> None:
    base = JsccConfig((1, 8, 8), (10, 7, 6), num_classes=3, enc_width=8, dec_width=8)
    deeper = JsccConfig(
        (1, 8, 8), (10, 7, 6), num_classes=3, enc_width=8, dec_width=8, enc_blocks=2, dec_blocks=2, hires_blocks=1
    )
    n_base = sum(p.numel() for p in MultiResJscc(base).parameters())
    n_deep = sum(p.numel() for p in MultiResJscc(deeper).parameters())
    assert n_deep > n_base
    torch.manual_seed(0)
    model = MultiResJscc(deeper).eval()
    x = model.encode(torch.rand(3, 1, 8, 8))
    outs = model.decode(x, torch.full((3,), 5.0))
    assert [tuple(o.images.shape) for o in outs] == [(3, 1, 8, 8)] * 3
    # cards written before the depth options existed rebuild the same architecture (same keys)
    new_keys = ("enc_blocks", "dec_blocks", "hires_blocks", "linear_skip", "gain_pilot", "output")
    old = {k: v for k, v in base.to_dict().items() if k not in new_keys}
    again = JsccConfig.from_dict(old)
    assert again == base
    assert MultiResJscc(again).state_dict().keys() == MultiResJscc(base).state_dict().keys()
    with pytest.raises(ValueError, match="must be >= 0"):
        JsccConfig((1, 8, 8), (10,), dec_blocks=-1)


def test_linear_skip_adds_a_linear_path_on_both_sides() -> None:
    plain = _tiny("conv")
    skip = _tiny("conv-skip")
    extra = {k for k in skip.state_dict() if k not in plain.state_dict()}
    # one 1x1 conv from 4x4 pixel blocks in the encoder, one 3x3 conv per decoder
    assert extra == {"skip.1.weight", "skip.1.bias"} | {
        f"decoders.{i}.skip.0.{p}" for i in range(3) for p in ("weight", "bias")
    }
    # with the nonlinear stacks silenced, the encoder is affine in the pixels (before power
    # normalisation): the shortcut alone carries the image
    with torch.no_grad():
        for p in skip.trunk.parameters():
            p.zero_()
        a, b = torch.rand(2, 1, 1, 8, 8)
        feats = [skip.trunk(x) + skip.skip(x) for x in (a, b, 0.5 * (a + b))]
        torch.testing.assert_close(feats[2], 0.5 * (feats[0] + feats[1]), rtol=1e-5, atol=1e-6)


def test_gain_pilot_lets_the_receiver_undo_the_power_normalisation() -> None:
    model = _tiny("conv-pilot")
    images = torch.rand(4, 1, 8, 8)
    x = model.encode(images)
    feats = model.trunk(images) + model.skip(images)
    sent_maps = model._layer_maps(x, torch.full((4, 3), 10.0))
    for i, (head, k, layer) in enumerate(zip(model.heads, model.layer_symbols, model.split_layers(x), strict=True)):
        c = float(model.pilot_log_amp[i].detach().exp())
        # the pilot is c times the per-image gain s: real, positive, the same s as the data symbols
        raw = head(feats).flatten(1)[:, : 2 * (k - 1)]
        s = layer[:, -1].real / c
        torch.testing.assert_close(layer[:, -1].imag, torch.zeros(4))
        torch.testing.assert_close(torch.view_as_real(layer[:, :-1]).flatten(1), raw * s[:, None], rtol=1e-4, atol=1e-5)
        # noiseless: the decoder sees the raw (un-normalised) features, whatever the image's gain
        torch.testing.assert_close(sent_maps[i][:, :-1].flatten(1)[:, : 2 * (k - 1)], raw, rtol=1e-4, atol=1e-5)
    # a common complex gain on a layer (no CSI: y = h x) is undone by the same pilot
    h = torch.polar(torch.tensor(0.3), torch.tensor(0.7))
    faded = x.clone()
    faded[:, :10] = faded[:, :10] * h
    faded_maps = model._layer_maps(faded, torch.full((4, 3), 10.0))
    torch.testing.assert_close(faded_maps[0], sent_maps[0], rtol=1e-4, atol=1e-5)
    # a vanished pilot (deep fade under LMMSE) is floored: finite output, no division by zero
    dead = x.clone()
    dead[:, :10] = 0
    assert all(torch.isfinite(o.images).all() for o in model.decode(dead, torch.full((4, 3), 10.0)))
    with pytest.raises(ValueError, match="at least 2 symbols"):
        JsccConfig((1, 8, 8), (10, 1), gain_pilot=True)


def test_clamped_output_clips_forward_and_passes_the_gradient() -> None:
    from semcom.jscc.model import _clip01

    pre = torch.tensor([-0.5, 0.25, 1.5], requires_grad=True)
    out = _clip01(pre)
    torch.testing.assert_close(out, torch.tensor([0.0, 0.25, 1.0]))
    out.sum().backward()
    torch.testing.assert_close(pre.grad, torch.ones(3))  # out-of-range outputs still learn
    with pytest.raises(ValueError, match="output must be"):
        JsccConfig((1, 8, 8), (10,), output="tanh")
    # the CLI reports architecture errors as one line: they are SemcomErrors as well as ValueErrors
    from semcom.errors import SemcomError

    with pytest.raises(SemcomError, match="cannot split"):
        split_symbols(5, 6)


@pytest.mark.parametrize("arch", ["conv", "mlp", "conv-skip", "conv-pilot"])
def test_decoder_i_uses_only_layers_1_to_i(arch: str) -> None:
    model = _tiny(arch)
    x = model.encode(torch.rand(4, 1, 8, 8))
    snr = torch.full((4, 3), 7.0)
    before = model.decode(x, snr)
    changed = x.clone()
    changed[:, 10 + 7 :] = torch.randn(4, 6, dtype=torch.complex64) * 5  # layer 3 only
    snr2 = snr.clone()
    snr2[:, 2] = -3.0  # and layer 3's SNR side information
    after = model.decode(changed, snr2)
    for r in (0, 1):
        torch.testing.assert_close(before[r].images, after[r].images)
        torch.testing.assert_close(before[r].logits, after[r].logits)
    assert not torch.allclose(before[2].images, after[2].images)
    # a receiver holding only layers 1..2 gets D_1 and D_2
    assert [o.layer for o in model.decode(x[:, :17], snr[:, :2])] == [1, 2]


def test_tiny_model_learns() -> None:
    torch.manual_seed(1)
    model = _tiny("conv").train()
    ch = build_channel("awgn", seed=0)
    images = torch.rand(16, 1, 8, 8)
    labels = torch.randint(0, 3, (16,))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)

    def loss_fn() -> torch.Tensor:
        outs = model(images, ch, 20.0)
        return sum(
            (o.images - images).square().mean() + 0.1 * torch.nn.functional.cross_entropy(o.logits, labels)
            for o in outs
        )  # type: ignore[return-value]

    ch.seed(5)
    with torch.no_grad():
        first = float(loss_fn())
    for _ in range(40):
        opt.zero_grad()
        loss_fn().backward()
        opt.step()
    ch.seed(5)
    with torch.no_grad():
        last = float(loss_fn())
    assert last < 0.8 * first


def test_gradients_flow_through_channel() -> None:
    model = _tiny("mlp")
    model.train()
    outs = model(torch.rand(3, 1, 8, 8), build_channel("rayleigh", seed=1), torch.tensor([0.0, 5.0, 10.0]))
    outs[-1].images.mean().backward()
    assert model.trunk[1].weight.grad is not None and model.trunk[1].weight.grad.abs().sum() > 0


def test_save_load_round_trip(tmp_path: Path) -> None:
    model = _tiny("conv")
    path = save_checkpoint(model, tmp_path / "m.safetensors", {"name": "tiny"})
    loaded = load_checkpoint(path)
    assert loaded.config == model.config
    x = torch.rand(3, 1, 8, 8)
    a, b = model.encode(x), loaded.encode(x)
    torch.testing.assert_close(a, b)
    for o1, o2 in zip(model.decode(a, 5.0), loaded.decode(b, 5.0), strict=True):
        torch.testing.assert_close(o1.images, o2.images)
    card = json.loads((tmp_path / "m.json").read_text())
    assert card["sha256"] and card["architecture"]["layer_symbols"] == [10, 7, 6]


def test_corrupt_and_mismatched_checkpoints(tmp_path: Path) -> None:
    model = _tiny("conv")
    path = save_checkpoint(model, tmp_path / "m.safetensors")
    # flipped bytes: checksum mismatch against the card
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(bytes(data))
    (tmp_path / "bad.json").write_text((tmp_path / "m.json").read_text())
    with pytest.raises(CheckpointError, match="sha256"):
        load_checkpoint(bad)
    # truncated file without a card: not readable
    trunc = tmp_path / "trunc.safetensors"
    trunc.write_bytes(path.read_bytes()[:50])
    with pytest.raises(CheckpointError):
        load_checkpoint(trunc)
    # a pickle is never opened as a checkpoint
    pkl = tmp_path / "evil.safetensors"
    torch.save({"a": torch.ones(1)}, pkl)
    with pytest.raises(CheckpointError):
        load_checkpoint(pkl)
    # other architecture than expected
    with pytest.raises(CheckpointError, match="architecture"):
        load_checkpoint(path, expect=JsccConfig((1, 8, 8), (10, 7, 5), num_classes=3, enc_width=8, dec_width=8))
    # weights that do not fit the architecture in the metadata
    from safetensors.torch import save_file

    state = {k: v.contiguous() for k, v in model.state_dict().items() if not k.startswith("decoders.2")}
    odd = tmp_path / "odd.safetensors"
    save_file(state, str(odd), metadata={"format": "semcom-jscc/1", "semcom_config": model.config.to_json()})
    with pytest.raises(CheckpointError, match="cannot be verified"):  # no card beside it
        load_checkpoint(odd)
    with pytest.MonkeyPatch.context() as mp, pytest.raises(CheckpointError, match="do not fit"):
        mp.setenv(ALLOW_UNVERIFIED_ENV, "1")
        load_checkpoint(odd)
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "missing.safetensors")


def test_jscc_system_layer_outputs(tmp_path: Path) -> None:
    model = _tiny("conv")
    path = save_checkpoint(model, tmp_path / "tiny.safetensors")
    system = JsccSystem(path)
    assert isinstance(system, TransmissionSystem)
    assert system.kind == "jscc" and system.num_layers == 3 and list(system.layer_symbols) == [10, 7, 6]
    images = torch.rand(4, 1, 8, 8)
    tx = system.prepare(images, [0.0, 10.0])
    for ch_name in ("awgn", "rayleigh"):
        outs = system.receive(tx, build_channel(ch_name, seed=0), 10.0, resolution=2)
        assert [o.layer for o in outs] == [1, 2]
        for o in outs:
            assert isinstance(o, LayerOutput)
            assert o.images.shape == (4, 1, 8, 8) and o.logits is not None and o.logits.shape == (4, 3)
            assert float(o.images.min()) >= 0 and float(o.images.max()) <= 1
            assert o.outage is not None and not bool(o.outage.any())
        assert outs[1].info["symbols"] == 17
    with pytest.raises(ValueError):
        system.receive(tx, build_channel("awgn"), 10.0, resolution=4)


def test_train_resume_and_card(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from semcom.data import ImageDataset
    from semcom.jscc import train as train_mod

    g = torch.Generator().manual_seed(0)
    pixels = (torch.rand(96, 1, 8, 8, generator=g) * 255).to(torch.uint8)
    labels = torch.randint(0, 3, (96,), generator=g)
    ds = ImageDataset("synthetic", "train", pixels, labels, ("a", "b", "c"), torch.arange(96))
    monkeypatch.setattr(train_mod, "_load_data", lambda cfg: (ds, ds, {"name": "synthetic"}))
    cfg = TrainConfig(
        dataset="synthetic",
        layers=2,
        layer_symbols=[8, 8],
        enc_width=8,
        dec_width=8,
        epochs=1,
        batch_size=32,
        eval_count=32,
        eval_snrs=[10.0],
        out=str(tmp_path / "run"),
        progress=False,
        zoo_name="tiny",
        zoo_dir=str(tmp_path / "zoo"),
        warmup_steps=1,
    )
    train(cfg, command="test")
    card = json.loads((tmp_path / "zoo" / "tiny.json").read_text())
    assert card["epochs"] == 1 and card["storage_dtype"] == "float16"
    assert len(card["test"]["psnr_db"]) == 2 and card["library_versions"]["torch"]
    cfg.epochs = 2  # resume: continues at epoch 2
    train(cfg, command="test")
    card = json.loads((tmp_path / "run" / "latest.json").read_text())
    assert card["epochs"] == 2 and (tmp_path / "run" / "FINISHED").is_file()
    model = load_checkpoint(tmp_path / "zoo" / "tiny.safetensors")
    metrics = evaluate(model, ds.subset(16), build_channel("awgn"), [5.0])
    assert metrics["count"] == 16 and len(metrics["accuracy"]) == 2


def test_train_on_images_given_in_python_reports_every_epoch(tmp_path: Path) -> None:
    """``train(images=..., on_epoch=...)``: a notebook's own split, and the numbers for its loss curves."""
    from semcom.data import ImageDataset
    from semcom.jscc.train import EpochReport, TrainingImages

    g = torch.Generator().manual_seed(1)
    pixels = (torch.rand(120, 1, 8, 8, generator=g) * 255).to(torch.uint8)
    ds = ImageDataset("synthetic", "train", pixels, torch.randint(0, 3, (120,), generator=g), ("a", "b", "c"),
                      torch.arange(120))
    reports: list[EpochReport] = []
    cfg = TrainConfig(dataset="synthetic", layers=2, layer_symbols=[8, 8], enc_width=8, dec_width=8, epochs=3,
                      batch_size=16, validation=20, eval_count=20, eval_snrs=[10.0], out=str(tmp_path / "run"),
                      progress=False, warmup_steps=1)
    best = train(cfg, images=TrainingImages(ds.subset(100), ds.subset(keep=torch.arange(120) >= 100), "synthetic"),
                 on_epoch=reports.append)
    assert [r.epoch for r in reports] == [1, 2, 3]
    assert all(len(r.step_mse) == 80 // 16 and all(len(step) == 2 for step in r.step_mse) for r in reports)
    assert reports[0].best and sum(r.best for r in reports) >= 1
    assert max(r.score for r in reports if r.best) == max(r.score for r in reports)
    assert reports[-1].steps == 3 * (80 // 16)
    card = json.loads(best.with_suffix(".json").read_text())
    assert card["dataset"]["validation"]["images"] == 20 and card["dataset"]["note"] == "synthetic"
    assert card["test"]["count"] == 20  # scored on the given test images


def test_successive_mode_freezes_earlier_layers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from semcom.data import ImageDataset
    from semcom.jscc import train as train_mod

    g = torch.Generator().manual_seed(0)
    pixels = (torch.rand(64, 1, 8, 8, generator=g) * 255).to(torch.uint8)
    ds = ImageDataset(
        "synthetic", "train", pixels, torch.zeros(64, dtype=torch.int64), ("a", "b", "c"), torch.arange(64)
    )
    monkeypatch.setattr(train_mod, "_load_data", lambda cfg: (ds, ds, {"name": "synthetic"}))
    from semcom.jscc import run_state

    snapshots: dict[float, dict[str, torch.Tensor]] = {}
    real_save = run_state.save_checkpoint

    def spy(model, path, card=None, dtype=torch.float32):  # type: ignore[no-untyped-def]
        snapshots[card["epochs"]] = {k: v.clone() for k, v in model.state_dict().items()}
        return real_save(model, path, card, dtype)

    monkeypatch.setattr(run_state, "save_checkpoint", spy)
    cfg = TrainConfig(
        dataset="synthetic",
        layer_symbols=[8, 8],
        enc_width=8,
        dec_width=8,
        epochs=1,
        batch_size=32,
        eval_count=16,
        eval_snrs=[10.0],
        out=str(tmp_path / "s"),
        progress=False,
        mode="successive",
        final_eval_count=0,
        warmup_steps=1,
    )
    train(cfg, command="t")  # stage 1 = epoch 1, stage 2 = epoch 2
    stage1, stage2 = snapshots[1], snapshots[2]
    for key in stage1:
        if key.startswith(("trunk.", "heads.0.", "decoders.0.")):
            torch.testing.assert_close(stage1[key], stage2[key])
    assert any(not torch.equal(stage1[k], stage2[k]) for k in stage1 if k.startswith("decoders.1."))


def _fine_tune(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, arch: str, seed: int, **options: object) -> tuple:
    """Fine-tune a tiny model on 64 synthetic images with ``options``; returns (before, after)."""
    from semcom.data import ImageDataset
    from semcom.jscc import train as train_mod

    g = torch.Generator().manual_seed(seed)
    pixels = (torch.rand(64, 1, 8, 8, generator=g) * 255).to(torch.uint8)
    ds = ImageDataset("synthetic", "train", pixels, torch.arange(64) % 3, ("a", "b", "c"), torch.arange(64))
    monkeypatch.setattr(train_mod, "_load_data", lambda cfg: (ds, ds, {"name": "synthetic"}))
    start = tmp_path / "start.safetensors"
    save_checkpoint(_tiny(arch, sizes=(8, 8)), start)
    base = {"epochs": 2, "batch_size": 16, "eval_count": 16, "eval_snrs": [10.0], "out": str(tmp_path / "run")}
    cfg = TrainConfig(
        dataset="synthetic",
        init=str(start),
        progress=False,
        final_eval_count=0,
        warmup_steps=1,
        **{**base, **options},  # type: ignore[arg-type]
    )
    return load_checkpoint(start), load_checkpoint(train(cfg, command="t"))


def test_freeze_encoder_keeps_the_transmitted_symbols(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before, after = _fine_tune(tmp_path, monkeypatch, "conv", 1, freeze_encoder=True)
    images = torch.rand(4, 1, 8, 8)
    assert torch.equal(before.encode(images), after.encode(images))
    changed = [k for k, v in before.state_dict().items() if not torch.equal(v, after.state_dict()[k])]
    assert changed and all(k.startswith("decoders.") for k in changed)


def test_heads_only_changes_the_class_logits_and_nothing_else(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before, after = _fine_tune(tmp_path, monkeypatch, "conv-skip", 2, heads_only=True, epochs=3, lr=3e-3, eval_count=64)
    changed = {k for k, v in before.state_dict().items() if not torch.equal(v, after.state_dict()[k])}
    assert changed and all(".head." in k for k in changed)
    images = torch.rand(4, 1, 8, 8)
    x = before.encode(images)
    assert torch.equal(x, after.encode(images))
    for b, a in zip(before.decode(x, 10.0), after.decode(x, 10.0), strict=True):
        assert torch.equal(b.images, a.images) and not torch.equal(b.logits, a.logits)
    card = json.loads((tmp_path / "run" / "best.json").read_text())
    assert card["train_config"]["heads_only"] is True
    # the card states the architecture that was trained (the checkpoint's), not the option defaults
    assert card["train_config"]["linear_skip"] is True and TrainConfig().architecture.linear_skip is False
    assert card["train_config"]["enc_width"] == 8 and card["train_config"]["layer_symbols"] == [8, 8]
    assert card["init_from"]["sha256"] == hashlib.sha256((tmp_path / "start.safetensors").read_bytes()).hexdigest()
    with pytest.raises(ValueError, match="ce_weight must be > 0"):
        TrainConfig(heads_only=True, ce_weight=0)


def test_time_budget_stops_resumably(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from semcom.data import ImageDataset
    from semcom.jscc import train as train_mod

    pixels = (torch.rand(32, 1, 8, 8) * 255).to(torch.uint8)
    ds = ImageDataset("synthetic", "train", pixels, torch.zeros(32, dtype=torch.int64), ("a",), torch.arange(32))
    monkeypatch.setattr(train_mod, "_load_data", lambda cfg: (ds, ds, {"name": "synthetic"}))
    cfg = TrainConfig(
        dataset="synthetic",
        layer_symbols=[8],
        enc_width=8,
        dec_width=8,
        epochs=1,
        batch_size=16,
        eval_count=16,
        eval_snrs=[10.0],
        out=str(tmp_path / "t"),
        progress=False,
        max_minutes=1e-9,
    )
    train(cfg, command="t")  # the budget is gone before the first step: nothing to save
    assert not (tmp_path / "t" / "FINISHED").exists()
    cfg.max_minutes = None
    train(cfg, command="t")
    assert (tmp_path / "t" / "FINISHED").exists()


def test_train_cmd_yaml_config_and_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import typer
    from typer.testing import CliRunner

    from semcom.cli.train import train_cmd
    from semcom.data import ImageDataset
    from semcom.jscc import train as train_mod

    g = torch.Generator().manual_seed(0)
    pixels = (torch.rand(32, 1, 8, 8, generator=g) * 255).to(torch.uint8)
    ds = ImageDataset("synthetic", "train", pixels, torch.zeros(32, dtype=torch.int64), ("a", "b"), torch.arange(32))
    monkeypatch.setattr(train_mod, "_load_data", lambda cfg: (ds, ds, {"name": "synthetic"}))
    (tmp_path / "cfg.yaml").write_text(
        "dataset: synthetic\nlayer_symbols: [6, 6]\nenc_width: 8\ndec_width: 8\nepochs: 3\nbatch_size: 16\n"
        f"eval_count: 8\neval_snrs: [5.0]\nout: {tmp_path / 'run'}\nwarmup_steps: 1\n"
    )
    app = typer.Typer()
    app.command()(train_cmd)
    app.command("noop")(lambda: None)  # two commands: typer then expects the command name
    args = ["train-cmd", "--config", str(tmp_path / "cfg.yaml"), "--epochs", "1", "--no-progress"]
    result = CliRunner().invoke(app, [*args, "--gain-pilot", "--output", "clamp", "--warmup-steps", "100"])
    assert result.exit_code == 0, result.output
    card = json.loads((tmp_path / "run" / "best.json").read_text())
    assert card["epochs"] == 1 and card["layer_symbols"] == [6, 6]  # CLI option overrides the YAML
    assert card["train_config"]["warmup_steps"] == 100  # even when it gives the default value
    assert card["architecture"]["gain_pilot"] is True and card["architecture"]["output"] == "clamp"
    assert load_checkpoint(tmp_path / "run" / "best.safetensors").pilot_log_amp is not None
    bad = CliRunner().invoke(app, ["train-cmd", "--mode", "sideways"])
    assert bad.exit_code != 0


def test_total_epochs_follows_the_fine_tuning_chain() -> None:
    from semcom.jscc.checkpoint import total_epochs

    assert total_epochs({"epochs": 12}) == 12
    assert total_epochs({"epochs": 30, "init_from": {"epochs": 12}}) == 42
    # a third stage: its parent's card already counted the parent's own parent
    assert total_epochs({"epochs": 8, "init_from": {"epochs": 30, "total_epochs": 42}}) == 50
    assert total_epochs({}) is None


def test_epochs_label_says_what_the_runs_trained() -> None:
    from semcom.jscc.checkpoint import epochs_label

    assert epochs_label({"epochs": 12}) == "12"
    assert epochs_label({"epochs": 6, "init_from": {"epochs": 12}}) == "18 (12+6)"
    heads = {"epochs": 4, "init_from": {"epochs": 15, "total_epochs": 15}, "train_config": {"heads_only": True}}
    assert epochs_label(heads) == "15 (+4 heads only)"
    assert epochs_label({}) == "-"
    # a chain: 15 epochs, a heads refit, 13 more epochs, another heads refit (older records: command only)
    v3 = {"epochs": 15}
    v3_heads = {"epochs": 4, "command": "semcom train --heads-only", "init_from": v3}
    v4 = {"epochs": 13, "heads_only": False, "init_from": v3_heads}
    card = {"epochs": 8, "train_config": {"heads_only": True}, "init_from": v4}
    assert epochs_label(card) == "28 (15+13; +12 heads only)"
    assert epochs_label({"epochs": 4, "init_from": {"epochs": 3, "total_epochs": 20}}) == "24 (17+3+4)"


def test_psnr_loss_is_the_gradient_of_mean_psnr() -> None:
    from semcom.jscc.epoch import reconstruction_loss
    from semcom.metrics import psnr

    torch.manual_seed(3)
    images = torch.rand(6, 1, 4, 4)
    # very different errors per image, as at 0 dB and 20 dB in one batch
    decoded = (images + torch.randn(6, 1, 4, 4) * torch.logspace(-3, -0.5, 6).view(6, 1, 1, 1)).requires_grad_()
    (g_loss,) = torch.autograd.grad(reconstruction_loss(decoded, images, "psnr"), decoded)
    (g_psnr,) = torch.autograd.grad(psnr(images, decoded).mean(), decoded)
    mse = (decoded - images).square().flatten(1).mean(1).mean().detach()
    torch.testing.assert_close(g_loss, -g_psnr * mse * math.log(10) / 10, rtol=1e-4, atol=1e-9)
    # plain MSE is not (it weights the worst image most)
    (g_mse,) = torch.autograd.grad(reconstruction_loss(decoded, images, "mse"), decoded)
    assert not torch.allclose(g_mse, -g_psnr * mse * math.log(10) / 10, rtol=1e-2)
    with pytest.raises(ValueError, match="'mse' or 'psnr'"):
        TrainConfig(loss="l1")


def test_fine_tuned_cards_carry_the_whole_recipe(tmp_path: Path) -> None:
    from semcom.jscc.card import init_info

    grand = {"path": "runs/a/best.safetensors", "name": "a", "epochs": 12, "command": "semcom train --out runs/a"}
    parent = {"name": "b", "epochs": 6, "command": "semcom train --init runs/a/best.safetensors", "init_from": grand}
    (tmp_path / "b.json").write_text(json.dumps(parent))
    info = init_info(str(tmp_path / "b.safetensors"))
    assert info is not None
    assert info["command"] == parent["command"] and info["init_from"] == grand and info["total_epochs"] == 18


def _synthetic(n: int = 64, seed: int = 0) -> object:
    from semcom.data import ImageDataset

    g = torch.Generator().manual_seed(seed)
    pixels = (torch.rand(n, 1, 8, 8, generator=g) * 255).to(torch.uint8)
    return ImageDataset("synthetic", "train", pixels, torch.arange(n) % 3, ("a", "b", "c"), torch.arange(n))


def test_resumed_run_repeats_the_uninterrupted_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from semcom.jscc import train as train_mod
    from semcom.jscc.epoch import EpochTrainer

    ds = _synthetic()
    monkeypatch.setattr(train_mod, "_load_data", lambda cfg: (ds, ds, {"name": "synthetic"}))
    options = {"dataset": "synthetic", "layer_symbols": [8, 8], "enc_width": 8, "dec_width": 8, "epochs": 3,
               "batch_size": 16, "eval_count": 16, "eval_snrs": [10.0], "progress": False, "warmup_steps": 2,
               "augment_flip": True, "channel": "rayleigh"}
    train(TrainConfig(**options, out=str(tmp_path / "whole")), command="t")
    real = EpochTrainer.run_epoch

    def interrupted(self, dataset, state, budget):  # type: ignore[no-untyped-def]
        if state.epoch == 2:
            raise KeyboardInterrupt
        return real(self, dataset, state, budget)

    monkeypatch.setattr(EpochTrainer, "run_epoch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train(TrainConfig(**options, out=str(tmp_path / "cut")), command="t")
    monkeypatch.setattr(EpochTrainer, "run_epoch", real)
    train(TrainConfig(**options, out=str(tmp_path / "cut")), command="t")
    for name in ("latest", "best"):
        whole = load_checkpoint(tmp_path / "whole" / f"{name}.safetensors").state_dict()
        cut = load_checkpoint(tmp_path / "cut" / f"{name}.safetensors").state_dict()
        assert all(torch.equal(whole[k], cut[k]) for k in whole)
        cards = [json.loads((tmp_path / run / f"{name}.json").read_text()) for run in ("whole", "cut")]
        assert cards[0]["validation"] == cards[1]["validation"] and cards[0]["steps"] == cards[1]["steps"]
    assert json.loads((tmp_path / "cut" / "best.json").read_text())["test"]["psnr_db"] == \
        json.loads((tmp_path / "whole" / "best.json").read_text())["test"]["psnr_db"]


def _train_command() -> object:
    import typer

    from semcom.cli.app import app

    return typer.main.get_command(app).commands["train"]  # type: ignore[attr-defined]


def _field(cls: type, path: tuple[str, ...]) -> object:
    model = cls
    for part in path[:-1]:
        model = model.model_fields[part].annotation
    return model.model_fields[path[-1]]


def test_train_options_are_the_training_config_fields() -> None:
    """Each option of `semcom train` is one TrainConfig field: same name, the field's description as
    help, and defaults that give the default configuration."""
    from semcom.cli.options import build_config

    fields = TrainConfig.flat_fields()
    options = {p.name: p for p in _train_command().params if p.name not in ("config", "finish")}
    assert set(fields) - set(options) == {"split", "lr_min_factor"}  # YAML only
    assert set(options) <= set(fields)
    for name, param in options.items():
        assert param.help == _field(TrainConfig, fields[name]).description, name
    defaults = build_config(TrainConfig, {k: p.default for k, p in options.items()}, "defaults")
    assert defaults.to_flat() == TrainConfig().to_flat()


def _parsed_command(command: str, monkeypatch: pytest.MonkeyPatch) -> TrainConfig:
    import shlex

    from typer.testing import CliRunner

    from semcom.cli.app import app
    from semcom.jscc import train as train_mod

    seen: list[TrainConfig] = []
    monkeypatch.setattr(train_mod, "train", lambda cfg, command=None: seen.append(cfg) or Path("best"))
    result = CliRunner().invoke(app, shlex.split(command)[1:])
    assert result.exit_code == 0, result.output
    return seen[0]


@pytest.mark.parametrize("name", ["mnist-mr3-awgn", "cifar10-mr3-awgn", "cifar10-djscc-awgn", "cifar10-mr3-rayleigh"])
def test_zoo_commands_parse_to_the_options_their_cards_recorded(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from semcom.zoo import weights_dir

    card = json.loads((weights_dir() / f"{name}.json").read_text())
    parsed = _parsed_command(card["command"], monkeypatch).to_flat()
    recorded = TrainConfig.from_dict(card["train_config"]).to_flat()  # a flat record from before ChannelSpec
    if "--layer-symbols" not in card["command"]:  # the card records the sizes the ratio gave
        recorded["layer_symbols"] = None
    assert parsed == recorded


def test_flat_records_and_checkpoint_metadata_read_back_unchanged() -> None:
    from safetensors import safe_open

    from semcom.zoo import weights_dir

    for path in sorted(weights_dir().glob("*.safetensors")):
        with safe_open(str(path), "pt") as f:
            meta = f.metadata()["semcom_config"]
        assert JsccConfig.from_dict(json.loads(meta)).to_json() == meta  # byte for byte
        card = json.loads(path.with_suffix(".json").read_text())
        arch = card["architecture"]
        assert json.loads(json.dumps(JsccConfig.from_dict(arch).to_dict())) == arch
        cfg = TrainConfig.from_dict(card["train_config"])
        assert set(cfg.to_flat()) >= set(card["train_config"])  # the same flat names
        assert cfg.channel.type == card["channel"]["name"] and cfg.channel.k_factor is None  # K only for rician
    assert TrainConfig(channel="rician").channel.k_factor == 1.0
    assert TrainConfig(channel="rician", k_factor=3).channel.k_factor == 3.0
    with pytest.raises(ValueError, match="unknown JSCC config fields"):
        JsccConfig.from_dict({"image_shape": [1, 8, 8], "layer_symbols": [4], "depth": 3})
    with pytest.raises(ValueError, match="enc_width"):
        TrainConfig(enc_width="wide")
    with pytest.raises(ValueError, match="Extra inputs"):
        TrainConfig(epoch=3)


def test_cards_say_which_copy_of_the_data_only_when_told(monkeypatch: pytest.MonkeyPatch) -> None:
    """A CIFAR-10 card names the official binary layout; a sentence about the copy comes from --data-note."""
    from semcom.data import ImageDataset
    from semcom.jscc import train as train_mod

    pixels = torch.zeros(4, 3, 32, 32, dtype=torch.uint8)
    ds = ImageDataset("cifar10", "train", pixels, torch.zeros(4, dtype=torch.int64), ("a",), torch.arange(4))
    monkeypatch.setattr(train_mod, "load_dataset", lambda *args, **kwargs: ds)
    _, _, info = train_mod._load_data(TrainConfig(dataset="cifar10"))
    assert info["note"] == "CIFAR-10, official binary files under the data root."
    note = "The copy used is a JPEG re-encoding."
    cfg = TrainConfig(dataset="cifar10", data_note=note)
    _, _, info = train_mod._load_data(cfg)
    assert info["note"].endswith(note) and cfg.to_flat()["data_note"] == note
