"""Plots of a results table: PSNR vs SNR and accuracy vs SNR (PNG and PDF).

One line per (system, user, layer); JSCC solid, SSCC dashed, the linear analog code dash-dotted (from
each system's ``kind``), error bars the 95% confidence half-widths of the table. The x axis is the
user's own SNR; in a sweep where some users keep a fixed SNR, those users are drawn against the
sweeping user's SNR (the legend says "fixed"). Figures are drawn on matplotlib's Agg canvas without
pyplot, so nothing here changes the backend of the calling program (a notebook keeps its own).

>>> from semcom.plots import plot_results
>>> plot_results("results/quickstart")   # doctest: +SKIP
[PosixPath('results/quickstart/psnr_vs_snr.png'), ...]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from semcom.scenarios.results import atomic_write, load_results

__all__ = ["LINESTYLES", "PLOTS", "make_figures", "plot_results"]

#: plot name -> (column, its CI column, y-axis label, scale)
PLOTS: dict[str, tuple[str, str, str, float]] = {
    "psnr_vs_snr": ("psnr_mean", "psnr_ci95", "PSNR (dB)", 1.0),
    "accuracy_vs_snr": ("accuracy", "accuracy_ci95", "top-1 accuracy (%)", 100.0),
}
#: line style per system kind; other kinds are dotted.
LINESTYLES = {"jscc": "-", "sscc": "--", "linear": "-."}
_MARKERS = "osD^vPX*<>"


def _save_figure(fig: Figure, fmt: str, tmp: Path) -> None:
    fig.savefig(tmp, format=fmt, dpi=150, bbox_inches="tight")


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def _x_of(rows: Sequence[dict[str, Any]]) -> tuple[list[float], bool]:
    """x values of one line and whether the user's SNR is fixed while another user sweeps."""
    own = [float(r["snr_db"]) for r in rows]
    sweep = [r.get("sweep_snr_db") for r in rows]
    if len(set(own)) == 1 and len(rows) > 1 and all(_finite(s) for s in sweep):
        return [float(s) for s in sweep if s is not None], True
    return own, False


def make_figures(rows: Sequence[dict[str, Any]], meta: dict[str, Any] | None = None) -> dict[str, Figure]:
    """The figures for ``rows`` (plot name -> Figure); a plot with no finite value is left out."""
    meta = meta or {}
    systems = list(dict.fromkeys(r["system"] for r in rows))
    combos = list(dict.fromkeys((r["user"], r["layer"]) for r in rows))
    colors = [f"C{i % 10}" for i in range(len(combos))]
    lines: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
    for r in rows:
        lines.setdefault((r["system"], r["user"], r["layer"]), []).append(r)
    scenario = (meta.get("scenario") or {}).get("name", "")
    channel = (meta.get("channel") or {}).get("type", "")
    dataset = (meta.get("dataset") or {}).get("name", "")
    sweepers = (meta.get("sweep") or {}).get("users") or []
    title = ", ".join(t for t in (scenario, dataset, channel) if t)

    figures: dict[str, Figure] = {}
    for name, (column, ci_column, ylabel, scale) in PLOTS.items():
        if not any(_finite(r.get(column)) for r in rows):
            continue
        fig = Figure(figsize=(9.0, 5.0))
        ax = fig.add_subplot()
        for (system, user, layer), line in lines.items():
            line = [r for r in line if _finite(r.get(column))]
            if not line:
                continue
            line.sort(key=lambda r: r["point"])
            x, fixed = _x_of(line)
            y = [r[column] * scale for r in line]
            err = [r[ci_column] * scale if _finite(r.get(ci_column)) else 0.0 for r in line]
            kind = str(line[0].get("kind", ""))
            label = f"{system} · {user} · L{layer}"
            if fixed:
                label += f" (fixed {float(line[0]['snr_db']):g} dB)"
            marker = _MARKERS[systems.index(system) % len(_MARKERS)]
            ax.errorbar(x, y, yerr=err, label=label, color=colors[combos.index((user, layer))],
                        linestyle=LINESTYLES.get(kind, ":"), marker=marker, markersize=5, capsize=3,
                        linewidth=1.5)
        xlabel = "SNR Es/N0 (dB)"
        if any(_x_of(sorted(v, key=lambda r: r["point"]))[1] for v in lines.values()) and sweepers:
            xlabel += f"; fixed-SNR users against {sweepers[0]}'s SNR"
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", frameon=False)
        fig.tight_layout()
        figures[name] = fig
    return figures


def plot_results(source: str | Path, out_dir: str | Path | None = None,
                 formats: Sequence[str] = ("png", "pdf")) -> list[Path]:
    """Draw the plots of a results folder (or ``results.json``) into ``out_dir`` (default: beside it).

    Returns the files written (``psnr_vs_snr.png``, ``.pdf``, ``accuracy_vs_snr...`` when the table
    has accuracies), each written atomically.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from semcom.errors import SemcomError

    known = FigureCanvasAgg(Figure()).get_supported_filetypes()
    bad = [f for f in formats if f not in known]
    if bad:
        raise SemcomError(f"unknown plot format {', '.join(map(repr, bad))}; one of: {', '.join(sorted(known))}")
    rows, meta = load_results(source)
    src = Path(source)
    target = Path(out_dir) if out_dir is not None else (src if src.is_dir() else src.parent)
    written = []
    for name, fig in make_figures(rows, meta).items():
        for fmt in formats:
            path = target / f"{name}.{fmt}"
            atomic_write(path, partial(_save_figure, fig, fmt))
            written.append(path)
    return written
