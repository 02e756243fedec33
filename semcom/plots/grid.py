"""The image grid: what each receiver rebuilt from a few test images, SNR by SNR.

Rows are the systems and their layers (layer r: decoded from layers 1..r), under a first row with
the images sent; columns are SNR points of one user (at most :data:`MAX_COLUMNS`: first, last and
evenly between); each cell shows the first images of the dataset side by side as that receiver
rebuilt them in channel draw 0 (from ``OUT/reconstructions.safetensors``, which ``semcom run``
writes, see :mod:`semcom.scenarios.reconstructions`). A red frame marks an image the link lost:
the receiver shows the dataset's mean image for it.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from semcom.errors import SemcomError
from semcom.plots.series import caption
from semcom.scenarios.reconstructions import Reconstructions

__all__ = ["GAP", "MAX_COLUMNS", "MAX_ROWS", "image_grid_figure", "spread"]

#: At most this many SNR columns.
MAX_COLUMNS = 7
#: At most this many (system, layer) rows.
MAX_ROWS = 24
#: White pixels between the images of a cell.
GAP = 2


def spread(items: list[int], keep: int) -> list[int]:
    """``keep`` of ``items``: the first, the last and evenly between (all when there are few)."""
    if len(items) <= keep:
        return list(items)
    if keep == 1:
        return [items[len(items) // 2]]
    return [items[i] for i in sorted({round(j * (len(items) - 1) / (keep - 1)) for j in range(keep)})]


def _strip(pixels: np.ndarray) -> np.ndarray:
    """``[n, C, H, W]`` uint8 side by side: ``[H, n W + (n - 1) GAP]`` (grey) or ``[..., 3]`` (colour)."""
    n, c, h, w = pixels.shape
    out = np.full((h, n * w + (n - 1) * GAP, c), 255, dtype=np.uint8)
    for i in range(n):
        out[:, i * (w + GAP):i * (w + GAP) + w] = pixels[i].transpose(1, 2, 0)
    return out[..., 0] if c == 1 else out


def image_grid_figure(recs: Reconstructions, user: str | None = None, *, title: str = "",
                      columns: int = MAX_COLUMNS, sweeping: str | None = None) -> Figure:
    """The grid of ``user``'s reconstructions (default: the first user that has some).

    ``title`` heads the figure; ``sweeping`` names the user whose SNR the columns follow when
    ``user``'s own SNR is fixed.

    Raises:
        SemcomError: no reconstructions of ``user``.
    """
    users = list(dict.fromkeys(e.user for e in recs.entries))
    user = user if user is not None else (users[0] if users else None)
    entries = [e for e in recs.entries if e.user == user and e.pixels.ndim == 4]
    if not entries:
        raise SemcomError(f"no reconstructions of user {user!r} were saved (users with some: "
                          f"{', '.join(users) or 'none'})")
    keys = list(dict.fromkeys((e.system, e.layer) for e in entries))
    rows, hidden_rows = keys[:MAX_ROWS], len(keys) - MAX_ROWS
    all_points = sorted({e.point for e in entries})
    points = spread(all_points, columns)
    by_key = {(e.system, e.layer, e.point): e for e in entries}
    own = {e.point: e.snr_db for e in entries}
    sweep = {e.point: e.sweep_snr_db for e in entries}
    fixed = len(set(own.values())) == 1 and len(points) > 1 and all(np.isfinite(sweep[p]) for p in points)
    header = {p: f"{(sweep if fixed else own)[p]:g} dB" for p in points}

    n, _, h, w = recs.originals.shape
    strip_w = n * w + (n - 1) * GAP
    # cells sized to their strips (no empty bands), margins in inches: title and column heads above
    cell_w = 0.35 * n + 0.2
    cell_h = cell_w * h / strip_w
    wspace, hspace, top, bottom = 0.06, 0.14, 0.75, 0.15
    width = cell_w * (len(points) + wspace * (len(points) - 1))
    height = top + bottom + cell_h * (len(rows) + 1 + hspace * len(rows))
    fig = Figure(figsize=(width, height))
    axes = fig.subplots(len(rows) + 1, len(points), squeeze=False)
    fig.subplots_adjust(left=0.0, right=1.0, top=1 - top / height, bottom=bottom / height, wspace=wspace,
                        hspace=hspace)
    grey = recs.originals.shape[1] == 1
    show = {"cmap": "gray", "vmin": 0, "vmax": 255} if grey else {}
    layered = any(layer > 1 for _, layer in keys)
    labels = ["sent", *(f"{system} · L{layer}" if layered else system for system, layer in rows)]
    for i, label in enumerate(labels):
        for j, p in enumerate(points):
            ax = axes[i][j]
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if i == 0:
                ax.set_title(header[p], fontsize="small")
                ax.imshow(_strip(recs.originals), interpolation="nearest", **show)
                ax.set_label(f"sent|{p}")
            else:
                system, layer = rows[i - 1]
                entry = by_key.get((system, layer, p))
                ax.set_label(f"{system}|{layer}|{p}")
                if entry is None:
                    ax.text(0.5, 0.5, "-", ha="center", va="center", transform=ax.transAxes)
                    continue
                ax.imshow(_strip(entry.pixels), interpolation="nearest", **show)
                for k, lost in enumerate(entry.lost):
                    if lost:
                        ax.add_patch(Rectangle((k * (w + GAP) - 0.5, -0.5), w, h, fill=False, edgecolor="red",
                                               linewidth=1.5))
            if j == 0:
                ax.text(-0.04, 0.5, label, transform=ax.transAxes, ha="right", va="center", fontsize="small")
    what = f"{sweeping or 'the sweeping user'}'s SNR" if fixed else f"{user}'s SNR"
    fig.suptitle(f"{title}: what user {user} rebuilt" if title else f"What user {user} rebuilt", fontsize="medium",
                 y=1 - 0.1 / height, va="top")
    rows_are = "system · layer (decoded from layers 1..r)" if layered else "system"
    notes = [f"Columns: {what}; rows: {rows_are}. The first {n} images of the dataset, channel draw 0.",
             "Red frame: image lost; the receiver shows the dataset's mean image for it."]
    if fixed:
        notes.append(f"User {user} has a fixed SNR of {next(iter(own.values())):g} dB.")
    if len(points) < len(all_points):
        notes.append(f"{len(points)} of {len(all_points)} SNR points shown.")
    if hidden_rows > 0:
        notes.append(f"{hidden_rows} more system layers not shown.")
    caption(fig, notes)
    return fig

