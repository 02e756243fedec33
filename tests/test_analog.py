"""The linear analog code against theory: allocation, LMMSE error, layering, power; the anchored JSCC."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from semcom.analog import LinearAnalogCode, LinearCodeConfig, fit_transform, mmse_allocation, softcast_allocation
from semcom.analog.store import fit_linear_code, load_linear_code, save_linear_code
from semcom.analog.system import LinearAnalogSystem
from semcom.analog.transform import dct_matrix
from semcom.channels import build_channel
from semcom.data import ImageDataset
from semcom.errors import ModelConfigError
from semcom.jscc.anchored import AnchoredJscc
from semcom.jscc.checkpoint import load_checkpoint, save_checkpoint
from semcom.jscc.config import JsccConfig

SHAPE = (1, 8, 8)


def _gaussian_images(n: int, seed: int = 0) -> torch.Tensor:
    """Correlated Gaussian 'images' ``[n, 1, 8, 8]`` (not clipped: the LMMSE theory needs Gaussians)."""
    fixed = torch.Generator().manual_seed(12345)  # one source distribution; seed picks the draws
    mix = torch.randn(64, 64, generator=fixed, dtype=torch.float64) * torch.logspace(0, -2, 64, dtype=torch.float64)
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, 64, generator=g, dtype=torch.float64) @ mix.T
    return (0.5 + 0.1 * z).float().reshape(n, *SHAPE)


def _fitted(layer_symbols=(6, 5, 5), n: int = 20000, **options) -> tuple[LinearAnalogCode, torch.Tensor]:
    x = _gaussian_images(n)
    cfg = LinearCodeConfig(SHAPE, layer_symbols, **options)
    fitted = fit_transform([x], SHAPE, cfg.reals, cfg.transform)
    code = LinearAnalogCode(cfg)
    code.set_transform(fitted.mean, fitted.basis, fitted.lam)
    return code, x


@pytest.mark.parametrize("snr_db", [-5.0, 5.0, 25.0])
def test_mmse_allocation_meets_the_budget_and_the_kkt_conditions(snr_db: float) -> None:
    lam = torch.logspace(1, -3, 40, dtype=torch.float64)[torch.randperm(40, generator=torch.Generator().manual_seed(1))]
    s2 = 0.5 * 10 ** (-snr_db / 10)
    p = mmse_allocation(lam, s2, 20.0)
    assert float(p.sum()) == pytest.approx(20.0, rel=1e-9) and bool((p >= 0).all())
    # KKT: the marginal gain lam s2 / (p + s2)^2 is the same for every active coefficient and no
    # larger than that for an inactive one (lam / s2 at p = 0)
    active = p > 1e-12
    slope = lam * s2 / (p + s2) ** 2
    assert float(slope[active].max() - slope[active].min()) < 1e-9 * float(slope[active].max())
    if (~active).any():
        assert float(slope[~active].max()) <= float(slope[active].min()) * (1 + 1e-9)
    # and it beats the SoftCast rule and a flat allocation on the LMMSE error it minimises
    mse = lambda q: float((lam * s2 / (q + s2)).sum())  # noqa: E731
    assert mse(p) <= mse(softcast_allocation(lam, 20.0)) + 1e-12
    assert mse(p) <= mse(torch.full_like(lam, 0.5)) + 1e-12


def test_allocation_per_row_equals_one_at_a_time() -> None:
    lam = torch.logspace(0, -3, 16)
    s2 = torch.tensor([0.5, 0.05, 0.005])
    rows = mmse_allocation(lam, s2, 8.0)
    for i in range(3):
        assert torch.allclose(rows[i], mmse_allocation(lam, float(s2[i]), 8.0), atol=1e-6)


def test_softcast_gains_follow_lambda_to_the_minus_quarter() -> None:
    lam = torch.tensor([16.0, 1.0, 0.0625])
    p = softcast_allocation(lam, 3.0)
    g = (p / lam).sqrt()
    assert float(p.sum()) == pytest.approx(3.0)
    assert torch.allclose(g / g[0], (lam / lam[0]) ** -0.25, rtol=1e-5)


def test_transforms_are_orthonormal_and_ranked() -> None:
    d = dct_matrix(8)
    assert torch.allclose(d @ d.T, torch.eye(8, dtype=torch.float64), atol=1e-12)
    x = _gaussian_images(4000)
    for kind in ("klt", "dct"):
        f = fit_transform([x[:2000], x[2000:]], SHAPE, 20, kind)
        assert torch.allclose(f.basis.T @ f.basis, torch.eye(20, dtype=torch.float64), atol=1e-9)
        assert bool((f.lam[:-1] >= f.lam[1:]).all())
    colour = torch.rand(500, 1, 4, 4).expand(-1, 3, -1, -1) * torch.tensor([1.0, 0.8, 0.5]).view(1, 3, 1, 1)
    f = fit_transform([colour + 0.05 * torch.rand(500, 3, 4, 4)], (3, 4, 4), 48, "dct")
    assert torch.allclose(f.basis.T @ f.basis, torch.eye(48, dtype=torch.float64), atol=1e-9)
    assert float(f.lam[:16].sum()) > 0.95 * float(f.lam.sum())  # correlated planes: one colour carries it
    klt = fit_transform([x], SHAPE, 20, "klt")
    dct = fit_transform([x], SHAPE, 20, "dct")
    assert float(klt.lam.sum()) >= float(dct.lam.sum()) - 1e-9  # the KLT keeps the most energy


def test_lmmse_error_matches_the_closed_form() -> None:
    """Measured MSE per pixel = (sum_j lam_j s2 / (p_j + s2) + energy not sent) / n, over AWGN."""
    code, _ = _fitted((12,), n=40000, design_snr_db=5.0)
    x = _gaussian_images(20000, seed=7)
    with torch.no_grad():
        (_r, rec), = code(x, build_channel("awgn", seed=3), 5.0)
    measured = float((rec - x).square().mean())
    s2 = 0.5 * 10 ** (-5.0 / 10)
    p = code.gains().double().square() * code.lam.double()
    full = fit_transform([_gaussian_images(40000)], SHAPE, 64, "klt")
    dropped = float(full.lam[code.config.reals:].sum())
    theory = (float((code.lam.double() * s2 / (p + s2)).sum()) + dropped) / 64
    assert measured == pytest.approx(theory, rel=0.03)


def test_layers_decode_alone_and_meet_the_power_budget() -> None:
    code, x = _fitted((6, 5, 5))
    with torch.no_grad():
        sym = code.encode(x)
        power = [float(z.abs().square().mean()) for z in torch.split(sym, [6, 5, 5], dim=1)]
        assert power == pytest.approx([1.0, 1.0, 1.0], abs=0.03)  # average over the fitting images
        out = build_channel("awgn", seed=5)(sym, 10.0)
        full = code.receive(out)
        out.y = out.y[:, :6]  # only layer 1 received
        first = code.receive(out)
    assert len(first) == 1 and torch.equal(first[0][1], full[0][1])  # layer 1 alone decodes as within all
    err = [float((im - x).square().mean()) for _, im in full]
    assert err[0] > err[1] > err[2]  # every layer adds detail


def test_per_image_power_is_exact_and_the_pilot_recovers_the_gain() -> None:
    code, x = _fitted((6, 5, 5), power="per-image", design_snr_db=20.0)
    avg, _ = _fitted((6, 5, 5), design_snr_db=20.0)
    with torch.no_grad():
        sym = code.encode(x[:500])
        for z in torch.split(sym, [6, 5, 5], dim=1):
            assert torch.allclose(z.abs().square().mean(1), torch.ones(500), atol=1e-5)
        rec = code.receive(build_channel("awgn", seed=2)(sym, 40.0))[-1][1]
        ref = avg.with_options(power="per-image").receive(build_channel("awgn", seed=2)(sym, 40.0))[-1][1]
    assert torch.allclose(rec, ref)
    # at 40 dB the pilot's gain estimate is nearly exact: the error is that of the coefficients not sent
    not_sent = float(fit_transform([x], SHAPE, 64, "klt").lam[code.config.reals:].sum()) / 64
    assert float((rec - x[:500]).square().mean()) < 1.2 * not_sent + 1e-5


def test_fading_with_csi_is_equalised() -> None:
    code, x = _fitted((8,), design_snr_db=30.0)
    ch = build_channel("rayleigh", seed=4, block="image", csi="perfect")
    with torch.no_grad():
        rec = code(x[:2000], ch, 30.0)[-1][1]
        blind = code(x[:2000], build_channel("rayleigh", seed=4, block="image", csi="none"), 30.0)[-1][1]
    good = float((rec - x[:2000]).square().mean())
    assert good < 0.2 * float((blind - x[:2000]).square().mean())


def test_bad_configurations_say_what_is_wrong() -> None:
    with pytest.raises(ModelConfigError, match="allocation"):
        LinearCodeConfig(SHAPE, (4,), allocation="waterfill")
    with pytest.raises(ModelConfigError, match="more reals"):
        LinearCodeConfig(SHAPE, (40,))
    with pytest.raises(ModelConfigError, match="at least 2"):
        LinearCodeConfig(SHAPE, (1, 4), power="per-image")
    code, _ = _fitted((6,), power="per-image")
    with pytest.raises(ModelConfigError, match="fit it again"):
        code.with_options(power="average")


def test_checkpoint_round_trip_and_system(tmp_path: Path) -> None:
    ds = ImageDataset.from_numpy("toy", "train", (_gaussian_images(3000).clamp(0, 1) * 255).byte().numpy(),
                                 torch.zeros(3000, dtype=torch.long).numpy(), ["x"])
    code, card = fit_linear_code(ds, LinearCodeConfig(SHAPE, (6, 5)))
    assert card["dataset"]["images"] == 3000 and 0.5 < card["energy_kept"] <= 1.0
    path = save_linear_code(code, tmp_path / "toy.safetensors", card)
    loaded, card2 = load_linear_code(path)
    assert card2["sha256"] and torch.equal(loaded.basis, code.basis)
    system = LinearAnalogSystem(path)
    images = ds.images(slice(0, 8))
    tx = system.prepare(images, [10.0])
    outs = system.receive(tx, build_channel("awgn", seed=0), 10.0, 2)
    assert [o.layer for o in outs] == [1, 2] and outs[0].logits is None
    assert all(0.0 <= float(o.images.min()) and float(o.images.max()) <= 1.0 for o in outs)
    # designed at each receiver's SNR: encoded per user, and better at its own SNR than a 10 dB design
    adaptive = LinearAnalogSystem(loaded.with_options(design_snr_db=None))
    assert adaptive.prepare(images).symbols is None
    path.write_bytes(path.read_bytes()[:-8] + b"corrupt!")
    with pytest.raises(Exception, match="sha256"):
        load_linear_code(path)


def _anchored(layer_symbols=(6, 5, 5), **anchor) -> tuple[AnchoredJscc, LinearAnalogCode, torch.Tensor]:
    torch.manual_seed(0)
    code, x = _fitted(layer_symbols, n=5000, **anchor)
    cfg = JsccConfig(SHAPE, layer_symbols, num_classes=3, enc_width=8, dec_width=8, arch="anchored", anchor=anchor)
    model = AnchoredJscc(cfg)
    model.anchor_on(code)
    return model.eval(), code, x.clamp(0, 1)


@pytest.mark.parametrize("anchor", [{}, {"power": "per-image", "design_snr_db": 5.0}])
def test_anchored_jscc_starts_as_the_linear_code(anchor: dict) -> None:
    model, code, x = _anchored(**anchor)
    with torch.no_grad():
        assert torch.equal(model.encode(x), code.encode(x))
        ours = model(x, build_channel("rayleigh", seed=9, block="image"), 7.0)
        theirs = code(x, build_channel("rayleigh", seed=9, block="image"), 7.0)
    for o, (r, im) in zip(ours, theirs, strict=True):
        assert o.layer == r
        assert torch.allclose(o.images, im.clamp(0, 1), atol=1e-6)


def test_anchored_jscc_is_causal_learns_and_round_trips(tmp_path: Path) -> None:
    model, _code, x = _anchored()
    model.train()
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    ch = build_channel("awgn", seed=0)
    for _ in range(30):
        outs = model(x[:256], ch, 10.0)
        loss = sum(((o.images - x[:256]) ** 2).mean() for o in outs)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    assert float(model.heads[0].weight.detach().abs().sum()) > 0  # the transmitter refinement moved off zero
    with torch.no_grad():
        sym = model.encode(x[:64])
        out = build_channel("awgn", seed=1)(sym, 10.0)
        noisy = build_channel("awgn", seed=1)(sym, 10.0)
        noisy.y[:, 6:] += 5.0  # wreck layers 2 and 3
        a, b = model.receive(out), model.receive(noisy)
        assert torch.equal(a[0].images, b[0].images) and torch.equal(a[0].logits, b[0].logits)
        assert not torch.equal(a[2].images, b[2].images)
    path = save_checkpoint(model, tmp_path / "m.safetensors", {"name": "m"})
    again = load_checkpoint(path)
    assert isinstance(again, AnchoredJscc)
    with torch.no_grad():
        assert torch.equal(again.encode(x[:8]), model.encode(x[:8]))
    assert math.isclose(float(again.layer_power.sum()), float(model.layer_power.sum()))


def test_linear_system_in_a_scenario_and_fit_linear_cli(tmp_path: Path) -> None:
    """`semcom fit-linear` writes a code; a scenario sends it beside an SSCC system given one layer."""
    from typer.testing import CliRunner

    from semcom.cli.app import app
    from semcom.scenarios import run_scenario
    from semcom.scenarios.loader import parse_scenario

    res = CliRunner().invoke(app, ["fit-linear", "--dataset", "mnist-sample-train", "--out",
                                   str(tmp_path / "x.safetensors")])
    assert res.exit_code != 0  # no such dataset: a clear error, not a traceback
    from semcom.data import load_dataset

    sample = load_dataset("mnist-sample", "test")
    mnist, _ = fit_linear_code(sample.subset(2000), LinearCodeConfig((1, 28, 28), (44, 43, 43)))
    save_linear_code(mnist, tmp_path / "mnist-klt.safetensors", {"name": "mnist-klt"})
    text = """\
name: lin
dataset: {name: mnist-sample, images: 12}
systems:
  - {name: lin, type: linear, code: mnist-klt.safetensors}
  - {name: lin-rx, type: linear, code: mnist-klt.safetensors, design_snr_db: receiver, allocation: mmse}
  - {name: jpeg, type: sscc, codec: jpeg, mcs: 256QAM-3/4, layer_symbols: [44, 43, 43], one_layer: true}
channel: {type: rayleigh, block: image, csi: perfect}
users:
  - {name: low, snr_db: 0, resolution: 3}
  - {name: high, snr_db: 30, resolution: 3}
"""
    out = run_scenario(parse_scenario(text, tmp_path / "lin.yaml"))
    rows = {(r["system"], r["user"], r["layer"]): r for r in out.rows}
    assert rows[("lin", "high", 3)]["psnr_mean"] > rows[("lin", "high", 1)]["psnr_mean"]
    assert rows[("lin", "high", 3)]["psnr_mean"] > rows[("lin", "low", 3)]["psnr_mean"]
    assert rows[("lin", "high", 3)]["symbols"] == 130 and rows[("jpeg", "high", 1)]["symbols"] == 130
    assert ("jpeg", "high", 2) not in rows  # one layer: every user gets that layer
    assert rows[("lin", "low", 1)]["psnr_pooled"] <= rows[("lin", "low", 1)]["psnr_mean"] + 1e-9
    assert {r["kind"] for r in out.rows} == {"linear", "sscc"}
    details = next(s for s in out.metadata["systems"] if s["name"] == "lin")["details"]
    assert details["transform"] == "klt" and details["power_normalisation"] == "average"


def test_train_device_option() -> None:
    from semcom.jscc.train import resolve_device

    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") in ("cpu", "cuda")
    with pytest.raises(ValueError, match="device"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA"):
            resolve_device("cuda")


def test_train_anchored_model_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`train` fits the anchor on the training part, picks on validation, scores the test split."""
    import json

    from semcom.jscc import train as train_mod
    from semcom.jscc.train import TrainConfig, train

    pixels = (_gaussian_images(120).clamp(0, 1) * 255).to(torch.uint8)
    labels = torch.arange(120) % 3
    ds = ImageDataset("synthetic", "train", pixels, labels, ("a", "b", "c"), torch.arange(120))
    monkeypatch.setattr(train_mod, "_load_data", lambda cfg: (ds, ds.subset(40), {"name": "synthetic"}))
    cfg = TrainConfig(dataset="synthetic", arch="anchored", layer_symbols=[6, 5, 5], enc_width=0, dec_width=8,
                      epochs=2, batch_size=16, eval_count=20, validation=20, eval_snrs=[5.0, 15.0],
                      out=str(tmp_path / "run"), progress=False, device="auto", threads=1,
                      data_root="/home/someone/datasets", zoo_name="toy", zoo_dir=str(tmp_path / "zoo"))
    best = train(cfg, command="semcom train --data-root /home/someone/datasets --epochs 2")
    card = json.loads(best.with_suffix(".json").read_text())
    assert card["dataset"]["images"] == 100 and card["dataset"]["validation"]["images"] == 20
    assert card["validation"]["count"] == 20 and card["test"]["count"] == 40
    mean, pooled = card["test"]["psnr_db"], card["test"]["psnr_pooled_db"]
    assert all(p <= m + 1e-6 for rm, rp in zip(mean, pooled, strict=True) for m, p in zip(rm, rp, strict=True))
    assert card["architecture"]["anchor"]["transform"] == "klt"
    model = load_checkpoint(best)
    assert isinstance(model, AnchoredJscc) and len(model.trunk) == 0  # enc_width 0: the linear transmitter
    shipped = (tmp_path / "zoo" / "toy.json").read_text()
    assert "/home/someone" not in shipped and "--data-root DATA" in shipped  # no machine paths in the zoo
    assert "/home/someone" in best.with_suffix(".json").read_text()  # the run's own card keeps it


def test_bad_outputs_and_states_give_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--out that is a file, an unknown plot format, a truncated training state: a SemcomError each."""
    from semcom.errors import SemcomError
    from semcom.jscc import train as train_mod
    from semcom.jscc.train import TrainConfig, train
    from semcom.plots import plot_results
    from semcom.scenarios import run_scenario
    from semcom.scenarios.loader import parse_scenario

    text = ("name: t\ndataset: {name: mnist-sample, images: 2}\n"
            "systems: [{name: j, type: jscc, model: mnist-mr3-awgn}]\nusers: [{name: u, snr_db: 10, resolution: 1}]\n")
    taken = tmp_path / "taken.txt"
    taken.write_text("not a folder")
    with pytest.raises(SemcomError, match="must be a folder"):
        run_scenario(parse_scenario(text, tmp_path / "t.yaml"), taken)
    out = tmp_path / "res"
    run_scenario(parse_scenario(text, tmp_path / "t.yaml"), out)
    with pytest.raises(SemcomError, match="unknown plot format 'docx'"):
        plot_results(out, formats=["png", "docx"])
    pixels = (_gaussian_images(60).clamp(0, 1) * 255).to(torch.uint8)
    ds = ImageDataset("synthetic", "train", pixels, torch.zeros(60, dtype=torch.long), ("a",), torch.arange(60))
    monkeypatch.setattr(train_mod, "_load_data", lambda cfg: (ds, ds.subset(10), {"name": "synthetic"}))
    cfg = TrainConfig(dataset="synthetic", arch="anchored", layer_symbols=[6], enc_width=0, dec_width=8, epochs=1,
                      batch_size=16, eval_count=8, eval_snrs=[10.0], out=str(tmp_path / "run"), progress=False,
                      final_eval_count=0)
    train(cfg, command="t")
    state = tmp_path / "run" / "latest.train.pt"
    state.write_bytes(state.read_bytes()[:40])
    cfg.epochs = 2
    with pytest.raises(SemcomError, match=r"latest\.train\.pt: not a readable training state.*--restart"):
        train(cfg, command="t")


def test_failed_start_leaves_no_empty_run_folder(tmp_path: Path) -> None:
    from semcom.errors import CheckpointError
    from semcom.jscc.train import TrainConfig, train

    cfg = TrainConfig(dataset="mnist-sample", split="test", init=str(tmp_path / "missing.safetensors"),
                      out=str(tmp_path / "run"), progress=False, validation=100)
    with pytest.raises(CheckpointError, match=r"missing\.safetensors"):
        train(cfg, command="t")
    assert not (tmp_path / "run").exists()
