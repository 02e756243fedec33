"""Figures of a results table: curves vs SNR, the SSCC cliff, the image grid (PNG, PDF, or in a notebook).

* :mod:`semcom.plots.curves`: PSNR vs SNR and accuracy vs SNR, colour by system, line style by
  layer, users as panels when there are more than three;
* :mod:`semcom.plots.cliff`: an SSCC system at each fixed MCS against the capacity bound;
* :mod:`semcom.plots.grid`: what each system and layer rebuilt from a few test images, SNR by SNR;
* :mod:`semcom.plots.series`: what the curve figures share (lines, merging, ticks, notes);
* :mod:`semcom.plots.files`: all figures of a results folder, written as files (``semcom plot``).

Every function returns a :class:`matplotlib.figure.Figure` drawn without pyplot, so nothing here
changes the backend of the calling program; a notebook displays the figure it gets.

>>> from semcom.plots import make_figures, plot_results
>>> plot_results("results/quickstart")                                  # doctest: +SKIP
[PosixPath('results/quickstart/psnr_vs_snr.png'), ...]
>>> from semcom.scenarios import load_results
>>> make_figures(*load_results("results/quickstart"))["psnr_vs_snr"]    # doctest: +SKIP
"""

from __future__ import annotations

from semcom.plots.cliff import cliff_figure
from semcom.plots.curves import MAX_PANELS, PANEL_USERS, PLOTS, Metric, curve_figure
from semcom.plots.files import make_figures, plot_results
from semcom.plots.grid import image_grid_figure
from semcom.plots.series import LAYER_LINESTYLES

__all__ = [
    "LAYER_LINESTYLES",
    "MAX_PANELS",
    "PANEL_USERS",
    "PLOTS",
    "Metric",
    "cliff_figure",
    "curve_figure",
    "image_grid_figure",
    "make_figures",
    "plot_results",
]
