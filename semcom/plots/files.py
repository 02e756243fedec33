"""Every figure of a results folder, and writing them as files (what ``semcom plot`` does).

:func:`make_figures` returns the figures (notebooks display them); :func:`plot_results` writes
them beside the results, each atomically:

* ``psnr_vs_snr`` and ``accuracy_vs_snr`` (:mod:`semcom.plots.curves`), the latter when the table
  has accuracies;
* ``sscc_cliff`` (:mod:`semcom.plots.cliff`) when the scenario has several SSCC systems with a fixed
  MCS or the capacity bound;
* ``image_grid`` (:mod:`semcom.plots.grid`) when the folder holds the reconstructions ``semcom run``
  saved and they belong to this run (same fingerprint); one per user when several users are drawn
  (``image_grid_<user>``).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from semcom.errors import SemcomError, SemcomWarning
from semcom.plots.cliff import cliff_figure
from semcom.plots.curves import PANEL_USERS, PLOTS, curve_figure, select_users
from semcom.plots.grid import image_grid_figure
from semcom.plots.series import title_of
from semcom.scenarios.reconstructions import SAVED_USERS, Reconstructions, load_reconstructions
from semcom.scenarios.results import atomic_write, load_results

__all__ = ["grid_users", "make_figures", "plot_results"]


def grid_users(rows: Sequence[dict[str, Any]], meta: dict[str, Any] | None, recs: Reconstructions,
               users: Sequence[str] | None = None) -> list[str]:
    """Whose image grids to draw: the users asked for (at most :data:`SAVED_USERS`), else every user
    when there are at most :data:`~semcom.plots.curves.PANEL_USERS`, else the first; only users
    with saved reconstructions."""
    chosen = select_users(rows, meta, users)
    if not users and len(chosen) > PANEL_USERS:
        chosen = chosen[:1]
    saved = {e.user for e in recs.entries}
    return [u for u in chosen if u in saved][:SAVED_USERS]


def make_figures(rows: Sequence[dict[str, Any]], meta: dict[str, Any] | None = None, *,
                 users: Sequence[str] | None = None,
                 reconstructions: Reconstructions | None = None) -> dict[str, Figure]:
    """The figures of a results table (name -> Figure), drawn without pyplot.

    Args:
        rows, meta: the table and its metadata (:func:`semcom.scenarios.load_results`).
        users: the users to draw (default: all; see :mod:`semcom.plots.curves`); the first is the
            user of the cliff figure.
        reconstructions: the images ``semcom run`` saved, for the image grid (None: no grid).

    A figure with nothing to draw is left out (no accuracy without class scores, no cliff without
    fixed-MCS SSCC systems).
    """
    meta = meta or {}
    figures: dict[str, Figure] = {}
    for name in PLOTS:
        fig = curve_figure(rows, meta, name, users)
        if fig is not None:
            figures[name] = fig
    cliff = cliff_figure(rows, meta, users[0] if users else None)
    if cliff is not None:
        figures["sscc_cliff"] = cliff
    if reconstructions is not None:
        who = grid_users(rows, meta, reconstructions, users)
        sweeping = ((meta.get("sweep") or {}).get("users") or [None])[0]
        for user in who:
            name = "image_grid" if len(who) == 1 else f"image_grid_{re.sub(r'[^A-Za-z0-9_.-]+', '_', user)}"
            figures[name] = image_grid_figure(reconstructions, user, title=title_of(meta), sweeping=sweeping)
    return figures


def _save_figure(fig: Figure, fmt: str, tmp: Path) -> None:
    fig.savefig(tmp, format=fmt, dpi=150, bbox_inches="tight")


def plot_results(source: str | Path, out_dir: str | Path | None = None,
                 formats: Sequence[str] = ("png", "pdf"), users: Sequence[str] | None = None) -> list[Path]:
    """Draw the figures of a results folder (or its ``results.json``) into ``out_dir`` (default: beside it).

    Returns the files written (``NAME.FORMAT`` for each figure of :func:`make_figures`), each written
    atomically. Reconstructions left by another run (another fingerprint) are ignored, with a warning.

    Raises:
        SemcomError: no results there, an unknown format or user.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    known = FigureCanvasAgg(Figure()).get_supported_filetypes()
    bad = [f for f in formats if f not in known]
    if bad:
        raise SemcomError(f"unknown plot format {', '.join(map(repr, bad))}; one of: {', '.join(sorted(known))}")
    rows, meta = load_results(source)
    src = Path(source)
    folder = src if src.is_dir() else src.parent
    recs = load_reconstructions(folder)
    if recs is not None and recs.fingerprint != meta.get("fingerprint"):
        warnings.warn(f"{folder}: the saved reconstructions belong to another run; no image grid (run the "
                      "scenario again to make them)", SemcomWarning, stacklevel=2)
        recs = None
    target = Path(out_dir) if out_dir is not None else folder
    written = []
    for name, fig in make_figures(rows, meta, users=users, reconstructions=recs).items():
        for fmt in formats:
            path = target / f"{name}.{fmt}"
            atomic_write(path, partial(_save_figure, fig, fmt))
            written.append(path)
    return written
