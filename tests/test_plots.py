"""Figures: each kind written by `semcom plot` and read back, and each figure's data checked.

Curves: colour by system, line style by layer, one legend entry per visible line (identical lines
merged), users as panels beyond three (capped, with a note), hollow outage markers explained,
accuracy intervals inside [0, 100], ticks on the SNR grid, fixed-SNR users against the sweep. The
SSCC cliff per MCS with the capacity bound. The image grid from the reconstructions `semcom run`
saves (rows = systems x layers under the images sent, columns = SNRs), and that file is the same,
byte for byte, after an interrupted and resumed run.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from helpers import TINY_SETUP
from matplotlib.colors import to_rgba
from matplotlib.container import ErrorbarContainer
from matplotlib.figure import Figure
from PIL import Image
from typer.testing import CliRunner

from semcom.cli.app import app
from semcom.errors import SemcomError
from semcom.evaluation import LayerCollector
from semcom.plots import MAX_PANELS, cliff_figure, curve_figure, image_grid_figure, make_figures, plot_results
from semcom.plots.series import Member, Series, snr_ticks
from semcom.scenarios import run_scenario
from semcom.scenarios.reconstructions import RECONSTRUCTIONS_NAME, load_reconstructions
from semcom.scenarios.results import COLUMNS, write_results
from semcom.scenarios.runner import PARTIAL_DIR, PointResult
from semcom.systems import LayerOutput

# The image-grid tests run the runner's test system (tests/test_runner_support.py), named by module path.
pytestmark = pytest.mark.usefixtures("allow_code")

META: dict[str, Any] = {"scenario": {"name": "synthetic"}, "dataset": {"name": "mnist", "images": 10},
                        "channel": {"type": "awgn"}, "sweep": {"users": ["near"]}, "draws": 1, "seed": 0}
SNRS = (0.0, 4.0, 8.0, 12.0, 16.0, 20.0)


def _row(system: str, kind: str, user: str, layer: int, point: int, own: float, sweep: float, **values: Any) -> dict:
    row = {c: math.nan for c in COLUMNS}
    row.update(system=system, kind=kind, user=user, layer=layer, point=point, snr_db=own, sweep_snr_db=sweep,
               images=10, draws=1, samples=10, info={}, psnr_mean=15 + own / 2 + layer, psnr_ci95=0.5,
               accuracy=0.5 + own / 50, accuracy_ci95=0.05, outage_rate=0.0)
    row.update(values)
    return row


def _rows(with_accuracy: bool = True) -> list[dict]:
    """jscc (near: 2 layers, far: 1) and jpeg-ldpc (same), far fixed at 5 dB while near sweeps."""
    rows = []
    for system, kind in (("jscc", "jscc"), ("jpeg-ldpc", "sscc")):
        for user, layers in (("near", 2), ("far", 1)):
            for layer in range(1, layers + 1):
                for point, snr in enumerate(SNRS):
                    own = snr if user == "near" else 5.0
                    extra = {} if kind == "jscc" else {"psnr_mean": 10 + own + layer}
                    if not with_accuracy:
                        extra["accuracy"] = math.nan
                    rows.append(_row(system, kind, user, layer, point, own, snr, **extra))
    return rows


def _series(fig: Figure) -> list[ErrorbarContainer]:
    """The drawn lines (one errorbar container each) of every axes."""
    return [c for ax in fig.axes for c in ax.containers if isinstance(c, ErrorbarContainer)]


def _legend(fig: Figure) -> list[str]:
    return [t.get_text() for legend in fig.legends for t in legend.get_texts()]


def _notes(fig: Figure) -> str:
    return "\n".join(t.get_text() for t in fig.texts)


def _png(path: Path) -> tuple[int, int]:
    """Size of a PNG after checking it is one and is not blank."""
    with Image.open(path) as img:
        img.verify()
        assert img.format == "PNG"
    with Image.open(path) as img:
        pixels = np.asarray(img.convert("L"))
        assert pixels.std() > 5  # something is drawn
        return img.size


# -- curves ---------------------------------------------------------------------------------------------


def test_plot_files_open_as_images(tmp_path: Path) -> None:
    write_results(tmp_path, _rows(), META)
    written = plot_results(tmp_path)
    assert sorted(p.name for p in written) == ["accuracy_vs_snr.pdf", "accuracy_vs_snr.png",
                                               "psnr_vs_snr.pdf", "psnr_vs_snr.png"]
    for path in written:
        if path.suffix == ".png":
            width, height = _png(path)
            assert width > 800 and 400 < height < 1400
        else:
            assert path.read_bytes().startswith(b"%PDF")


def test_colour_by_system_style_by_layer_one_entry_per_line() -> None:
    fig = curve_figure(_rows(), META, "psnr_vs_snr")
    assert fig is not None
    lines = {c.get_label(): c.lines[0] for c in _series(fig)}
    assert _legend(fig) == list(lines)  # one legend entry per drawn line, nothing else
    assert list(lines) == ["jscc · near · L1", "jscc · near · L2", "jscc · far (fixed 5 dB) · L1",
                           "jpeg-ldpc · near · L1", "jpeg-ldpc · near · L2", "jpeg-ldpc · far (fixed 5 dB) · L1"]
    colour = {label: to_rgba(line.get_color()) for label, line in lines.items()}
    assert colour["jscc · near · L1"] == colour["jscc · near · L2"] == colour["jscc · far (fixed 5 dB) · L1"]
    assert colour["jscc · near · L1"] != colour["jpeg-ldpc · near · L1"]
    style = {label: line.get_linestyle() for label, line in lines.items()}
    assert style["jscc · near · L1"] == style["jpeg-ldpc · near · L1"] == "-"
    assert style["jscc · near · L2"] == style["jpeg-ldpc · near · L2"] == "--"
    marker = {label: line.get_marker() for label, line in lines.items()}
    assert marker["jscc · near · L1"] != marker["jscc · far (fixed 5 dB) · L1"]  # users differ by marker
    # the fixed-SNR user is drawn against the sweeping user's SNR, and the figure says so
    assert list(lines["jscc · far (fixed 5 dB) · L1"].get_xdata()) == list(SNRS)
    assert "against near's SNR" in _notes(fig)
    # ticks on the SNR grid
    assert list(fig.axes[0].get_xticks()) == list(SNRS)
    assert fig.axes[0].get_ylabel() == "mean PSNR (dB)"


def test_identical_lines_are_merged_into_one_entry() -> None:
    rows = _rows()
    twin = [dict(r, system="jpeg-ldpc-2") for r in rows if r["system"] == "jpeg-ldpc"]
    fig = curve_figure(rows + twin, META, "psnr_vs_snr")
    assert fig is not None
    labels = [c.get_label() for c in _series(fig)]
    assert len(labels) == 6  # 9 table lines, 6 visible
    assert "jpeg-ldpc, jpeg-ldpc-2 · near · L2" in labels
    assert _legend(fig) == labels
    assert "their points coincide exactly" in _notes(fig)
    a, b = Member("a", "a", "u", 1), Member("b", "b", "u", 2)
    line = Series((a,), (0.0,), (1.0,), (0.0,), (0.0,), (False,))
    assert Series((a, b), *line.points()).label() == "a · u · L1 = b · u · L2"  # not every combination
    assert Series((a, Member("a", "a", "u", 2)), *line.points()).label(user=False) == "a · L1,\u00a0L2"


def test_outage_points_are_hollow_and_explained() -> None:
    rows = _rows()
    for r in rows:
        if r["system"] == "jpeg-ldpc" and r["snr_db"] < 10:
            r["outage_rate"] = 1.0 if r["snr_db"] < 4 else 0.3
    fig = curve_figure(rows, META, "psnr_vs_snr")
    assert fig is not None
    ax = fig.axes[0]
    hollow = [line for line in ax.lines if line.get_label() == "_lost"]
    assert hollow and all(line.get_markerfacecolor() == "white" for line in hollow)
    near_l1 = next(c for c in _series(fig) if c.get_label() == "jpeg-ldpc · near · L1")
    lost_x = next(list(line.get_xdata()) for line in hollow
                  if line.get_markeredgecolor() == near_l1.lines[0].get_color())
    assert lost_x == [0.0, 4.0, 8.0]
    assert near_l1.lines[0].get_markevery() == [3, 4, 5]  # filled markers only where nothing was lost
    assert "Hollow markers: some images lost; the receiver shows the dataset's mean image" in _notes(fig)
    clean = curve_figure(_rows(), META, "psnr_vs_snr")
    assert clean is not None and "Hollow" not in _notes(clean)


def test_accuracy_intervals_stay_inside_0_100() -> None:
    rows = _rows()
    for r in rows:
        r["accuracy"], r["accuracy_ci95"] = (0.99, 0.05) if r["snr_db"] > 10 else (0.02, 0.05)
    fig = curve_figure(rows, META, "accuracy_vs_snr")
    assert fig is not None
    tops, bottoms = [], []
    for c in _series(fig):
        for segment in c.lines[2][0].get_segments():  # the vertical error bars
            bottoms.append(min(segment[:, 1]))
            tops.append(max(segment[:, 1]))
    assert max(tops) == pytest.approx(100.0) and min(bottoms) == pytest.approx(0.0)
    assert "clipped to 0-100%" in _notes(fig)
    assert fig.axes[0].get_ylabel() == "top-1 accuracy (%)"


def test_ticks_stay_on_the_grid_when_it_is_fine() -> None:
    assert snr_ticks([0.0, 2.5, 5.0, 2.5]) == [0.0, 2.5, 5.0]
    assert snr_ticks(float(v) for v in range(41)) == [float(v) for v in range(0, 41, 4)]  # at most 13, on the grid


def test_no_accuracy_plot_without_accuracies(tmp_path: Path) -> None:
    assert set(make_figures(_rows(with_accuracy=False), META)) == {"psnr_vs_snr"}
    write_results(tmp_path, _rows(with_accuracy=False), META)
    res = CliRunner().invoke(app, ["plot", str(tmp_path), "--out", str(tmp_path / "figs"), "--format", "png"])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in (tmp_path / "figs").iterdir()) == ["psnr_vs_snr.png"]


def _many_users(count: int) -> tuple[list[dict], dict]:
    rows = []
    for u in range(count):
        for system in ("jscc", "linear"):
            for point, snr in enumerate(SNRS):
                rows.append(_row(system, "jscc", f"u{u:02d}", 1, point, snr + u, snr,
                                 psnr_mean=10 + snr + u + (system == "jscc")))
    meta = dict(META, users=[{"name": f"u{u:02d}"} for u in range(count)], sweep={"users": ["u00"]})
    return rows, meta


def test_many_users_become_capped_panels(tmp_path: Path) -> None:
    rows, meta = _many_users(20)
    fig = curve_figure(rows, meta, "psnr_vs_snr")
    assert fig is not None
    panels = [ax for ax in fig.axes if ax.containers]
    assert len(panels) == MAX_PANELS == 16
    assert [ax.get_title() for ax in panels[:2]] == ["u00", "u01"]
    assert all(ax.get_shared_y_axes().joined(ax, panels[0]) for ax in panels)
    assert all(ax.get_shared_x_axes().joined(ax, panels[0]) for ax in panels)
    assert _legend(fig) == ["jscc", "linear"]  # one entry per visible style, not one per panel
    assert "4 more users not shown" in _notes(fig) and "--users" in _notes(fig)

    write_results(tmp_path, rows, meta)
    for chosen_users in ([], ["--users", "u03,u01,u02,u00"]):
        res = CliRunner().invoke(app, ["plot", str(tmp_path), "--format", "png", *chosen_users])
        assert res.exit_code == 0, res.output
        width, height = _png(tmp_path / "psnr_vs_snr.png")
        assert width < 2500 and height < 2000  # 20 users: 16 panels, not a 5,000-pixel column
    chosen = curve_figure(rows, meta, "psnr_vs_snr", users=["u03", "u01", "u02", "u00"])
    assert chosen is not None
    assert [ax.get_title() for ax in chosen.axes if ax.containers] == ["u03", "u01", "u02", "u00"]
    assert "not shown" not in _notes(chosen)
    few = curve_figure(rows, meta, "psnr_vs_snr", users=["u00", "u05"])  # three or fewer: one axes
    assert few is not None and len(few.axes) == 1 and len(_series(few)) == 4
    with pytest.raises(SemcomError, match="no user 'nobody' in these results; users: u00, u01"):
        curve_figure(rows, meta, "psnr_vs_snr", users=["nobody"])


# -- the SSCC cliff -------------------------------------------------------------------------------------

MCS = ("4QAM-1/3", "4QAM-1/2", "16QAM-1/2", "64QAM-2/3", "capacity")


def _cliff() -> tuple[list[dict], dict]:
    """A run like sscc-cliff: each MCS decodes from its threshold on; the two lowest never do."""
    threshold = {"4QAM-1/3": 99, "4QAM-1/2": 99, "16QAM-1/2": 6, "64QAM-2/3": 14, "capacity": 0}
    quality = {"16QAM-1/2": 22.0, "64QAM-2/3": 27.0}
    rows = []
    for mcs in MCS:
        for point, snr in enumerate(SNRS):
            ok = snr >= threshold[mcs]
            psnr = (18 + snr * 0.8 if mcs == "capacity" else quality[mcs]) if ok else 12.2
            rows.append(_row(mcs, "sscc", "rx", 1, point, snr, snr, psnr_mean=psnr, accuracy=math.nan,
                             outage_rate=0.0 if ok else 1.0))
    systems = [{"name": m, "kind": "sscc", "layer_symbols": [261],
                "spec": {"name": m, "type": "sscc", "codec": "jpeg", "mcs": m}} for m in MCS]
    meta = dict(META, scenario={"name": "sscc-cliff"}, systems=systems, users=[{"name": "rx"}],
                sweep={"users": ["rx"]})
    return rows, meta


def test_sscc_cliff_per_mcs_with_the_capacity_bound(tmp_path: Path) -> None:
    rows, meta = _cliff()
    write_results(tmp_path, rows, meta)
    res = CliRunner().invoke(app, ["plot", str(tmp_path), "--format", "png"])
    assert res.exit_code == 0, res.output
    assert "sscc_cliff.png" in res.output
    width, height = _png(tmp_path / "sscc_cliff.png")
    assert width > 800 and height > 500

    fig = cliff_figure(rows, meta)
    assert fig is not None
    labels = [c.get_label() for c in _series(fig)]
    assert labels == ["4QAM-1/3, 4QAM-1/2", "16QAM-1/2", "64QAM-2/3", "capacity"]  # never decoded: one line
    assert _legend(fig) == labels
    capacity = next(c for c in _series(fig) if c.get_label() == "capacity").lines[0]
    assert to_rgba(capacity.get_color()) == to_rgba("black") and capacity.get_linewidth() > 2
    assert "k = 261 channel uses" in fig.axes[0].get_title()
    assert list(fig.axes[0].get_xticks()) == list(SNRS)
    assert "capacity: error-free" in _notes(fig) and "Hollow markers" in _notes(fig)
    # no cliff figure without several fixed-MCS systems
    assert cliff_figure(_rows(), META) is None


# -- reconstructions and the image grid -----------------------------------------------------------------

TINY = f"""\
name: tiny
{TINY_SETUP}channel:
  type: awgn
users:
  - name: near
    snr_db: {{start: 0, stop: 20, step: 10}}
    resolution: 2
  - name: far
    snr_db: 3
    resolution: 1
"""


def test_collector_keeps_the_first_images_of_draw_0_and_no_number_changes() -> None:
    gen = torch.Generator().manual_seed(0)
    plain, keeping = LayerCollector(similarity=False), LayerCollector(similarity=False, keep_images=3)
    sent: list[torch.Tensor] = []
    for batch in range(2):  # two batches of two images, two draws each
        images = torch.rand(2, 1, 4, 4, generator=gen)
        labels = torch.tensor([0, 1])
        for draw in range(2):
            out = LayerOutput(1, (images + 0.1 * draw).clamp(0, 1), torch.randn(2, 3, generator=gen),
                              torch.tensor([batch == 1, False]))
            for c in (plain, keeping):
                c.add(images, labels, out, draw)
            if draw == 0:
                sent.append(out.images)
    assert str(plain.row()) == str(keeping.row())
    assert torch.equal(keeping.kept_images(), torch.cat(sent)[:3])
    assert keeping.kept_outages().tolist() == [0.0, 0.0, 1.0]
    assert plain.kept_images().numel() == 0


def test_run_saves_reconstructions_and_plot_draws_the_grid(tmp_path: Path) -> None:
    scenario = tmp_path / "tiny.yaml"
    scenario.write_text(TINY, encoding="utf-8")
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["run", str(scenario), "--out", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    recs = load_reconstructions(out)
    assert recs is not None
    assert recs.originals.shape == (4, 1, 28, 28) and recs.originals.dtype == np.uint8
    assert recs.indices == (0, 1, 2, 3) and recs.labels == (0, 1, 2, 3)
    # 3 points x 2 systems x (near: 2 layers + far: 1)
    assert len(recs.entries) == 3 * 2 * 3
    lost = recs.find("cliff", "near", 1, 0)
    assert lost is not None and all(lost.lost)  # 0 dB is below this system's 5 dB threshold
    assert np.ptp(lost.pixels.reshape(4, -1), axis=0).max() == 0  # all four are the same (mean) image
    fine = recs.find("lin", "near", 2, 2)
    assert fine is not None and not any(fine.lost) and fine.pixels.shape == (4, 1, 28, 28)
    assert np.abs(fine.pixels.astype(int) - recs.originals.astype(int)).mean() < 40

    # two users: one grid each; rows = images sent + systems x layers, columns = SNR points
    names = sorted(p.name for p in out.glob("image_grid*.png"))
    assert names == ["image_grid_far.png", "image_grid_near.png"]
    assert _png(out / "image_grid_near.png")[0] > 400
    near = image_grid_figure(recs, "near")
    assert len(near.axes) == (1 + 4) * 3
    assert [ax.get_title() for ax in near.axes[:3]] == ["0 dB", "10 dB", "20 dB"]
    assert [ax.get_label() for ax in near.axes[3::3]] == ["lin|1|0", "lin|2|0", "cliff|1|0", "cliff|2|0"]
    assert sum(len(ax.patches) for ax in near.axes) == sum(sum(e.lost) for e in recs.entries if e.user == "near")
    far = image_grid_figure(recs, "far", sweeping="near")
    assert len(far.axes) == (1 + 2) * 3
    assert [ax.get_title() for ax in far.axes[:3]] == ["0 dB", "10 dB", "20 dB"]  # near's SNR
    assert "Columns: near's SNR" in _notes(far) and "fixed SNR of 3 dB" in _notes(far)
    assert "Red frame: image lost" in _notes(far)
    one = plot_results(out, tmp_path / "figs", ["png"], users=["far"])
    assert (tmp_path / "figs" / "image_grid.png") in one
    with pytest.raises(SemcomError, match="no reconstructions of user 'nobody'"):
        image_grid_figure(recs, "nobody")


def test_resumed_run_writes_the_same_image_file(tmp_path: Path) -> None:
    scenario = tmp_path / "tiny.yaml"
    scenario.write_text(TINY, encoding="utf-8")
    run_scenario(scenario, tmp_path / "whole")

    def stop(result: PointResult) -> None:
        raise KeyboardInterrupt

    out = tmp_path / "cut"
    with pytest.raises(KeyboardInterrupt):
        run_scenario(scenario, out, on_point=stop)
    assert (out / PARTIAL_DIR / "point-0000.json").is_file() and not (out / RECONSTRUCTIONS_NAME).exists()
    run_scenario(scenario, out)
    whole = (tmp_path / "whole" / RECONSTRUCTIONS_NAME).read_bytes()
    assert (out / RECONSTRUCTIONS_NAME).read_bytes() == whole


def test_stale_reconstructions_are_ignored(tmp_path: Path) -> None:
    scenario = tmp_path / "tiny.yaml"
    scenario.write_text(TINY, encoding="utf-8")
    out = tmp_path / "out"
    run_scenario(scenario, out)
    rows, meta = _rows(), dict(META, fingerprint="another run")
    write_results(out, rows, meta)  # a later run's table over the same folder
    with pytest.warns(UserWarning, match="belong to another run"):
        written = plot_results(out, formats=["png"])
    assert not any(p.name.startswith("image_grid") for p in written)
