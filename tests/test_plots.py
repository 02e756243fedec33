"""Plots from a results table: files that open as images, JSCC solid / SSCC dashed, fixed-SNR users."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from semcom.cli.app import app
from semcom.plots import make_figures, plot_results
from semcom.scenarios.results import COLUMNS, write_results

META = {"scenario": {"name": "synthetic"}, "dataset": {"name": "mnist", "images": 10},
        "channel": {"type": "awgn"}, "sweep": {"users": ["near"]}, "draws": 1, "seed": 0}


def _rows(with_accuracy: bool = True) -> list[dict]:
    rows = []
    for system, kind in (("jscc", "jscc"), ("jpeg-ldpc", "sscc")):
        for user, layers in (("near", 2), ("far", 1)):
            for layer in range(1, layers + 1):
                for point, snr in enumerate((0.0, 10.0, 20.0)):
                    own = snr if user == "near" else 5.0
                    row = {c: math.nan for c in COLUMNS}
                    row.update(system=system, kind=kind, user=user, layer=layer, point=point, snr_db=own,
                               sweep_snr_db=snr, images=10, draws=1, samples=10, info={},
                               psnr_mean=15 + own / 2 + layer, psnr_ci95=0.5,
                               accuracy=(0.5 + own / 50) if with_accuracy else math.nan,
                               accuracy_ci95=0.05, outage_rate=0.0)
                    rows.append(row)
    return rows


def test_plot_files_open_as_images(tmp_path: Path) -> None:
    write_results(tmp_path, _rows(), META)
    written = plot_results(tmp_path)
    assert sorted(p.name for p in written) == ["accuracy_vs_snr.pdf", "accuracy_vs_snr.png",
                                               "psnr_vs_snr.pdf", "psnr_vs_snr.png"]
    for path in written:
        if path.suffix == ".png":
            with Image.open(path) as img:
                img.verify()
                assert img.format == "PNG"
            with Image.open(path) as img:
                assert img.size[0] > 400 and img.size[1] > 200
        else:
            assert path.read_bytes().startswith(b"%PDF")


def test_line_styles_and_labels() -> None:
    figs = make_figures(_rows(), META)
    assert set(figs) == {"psnr_vs_snr", "accuracy_vs_snr"}
    ax = figs["psnr_vs_snr"].axes[0]
    lines = {c.get_label(): c.lines[0] for c in ax.containers}  # one errorbar container per line
    styles = {label: line.get_linestyle() for label, line in lines.items()}
    assert styles["jscc · near · L1"] == "-"
    assert styles["jpeg-ldpc · near · L2"] == "--"
    assert styles["jscc · far · L1 (fixed 5 dB)"] == "-"  # drawn against the sweeping user's SNR
    assert len(styles) == 6  # one line per system, user and layer
    assert list(lines["jscc · far · L1 (fixed 5 dB)"].get_xdata()) == [0.0, 10.0, 20.0]
    assert "near's SNR" in ax.get_xlabel()
    acc = figs["accuracy_vs_snr"].axes[0]
    assert max(max(c.lines[0].get_ydata()) for c in acc.containers) == pytest.approx(90.0)  # percent


def test_no_accuracy_plot_without_accuracies(tmp_path: Path) -> None:
    assert set(make_figures(_rows(with_accuracy=False), META)) == {"psnr_vs_snr"}
    write_results(tmp_path, _rows(with_accuracy=False), META)
    runner = CliRunner()
    res = runner.invoke(app, ["plot", str(tmp_path), "--out", str(tmp_path / "figs"), "--format", "png"])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in (tmp_path / "figs").iterdir()) == ["psnr_vs_snr.png"]


def test_plot_without_results_is_an_error(tmp_path: Path) -> None:
    from semcom.errors import SemcomError

    with pytest.raises(SemcomError, match="no results here"):
        plot_results(tmp_path)
