"""PSNR vs SNR and accuracy vs SNR: one line per system, user and layer of a results table.

Colour says the system, line style the layer; the marker says the layer too, or the user when
several users share the axes. Up to :data:`PANEL_USERS` users share one axes; more get one panel
each (small multiples with shared axes), at most :data:`MAX_PANELS`, and the figure says how many
users it leaves out and how to choose them (``semcom plot DIR --users a,b``). Lines whose points
coincide exactly are drawn once, with one legend entry naming them all, so the legend has one
entry per visible line. A hollow marker is a point where some images were lost (the receiver shows
the dataset's mean image for them); error bars are the 95% half-widths, clipped to the metric's
range. The x axis is the user's own SNR with ticks on the SNR grid; a user whose SNR is fixed while
another sweeps is drawn against the sweeping user's SNR.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from semcom.errors import SemcomError
from semcom.plots.series import (
    LAYER_LINESTYLES,
    MARKERS,
    MERGED_NOTE,
    OUTAGE_NOTE,
    Member,
    Series,
    caption,
    draw_series,
    make_series,
    merge_identical,
    set_snr_ticks,
    system_colours,
    title_of,
)

__all__ = ["MAX_PANELS", "PANEL_USERS", "PLOTS", "Metric", "curve_figure", "select_users", "users_of"]

#: More users than this: one panel per user.
PANEL_USERS = 3
#: At most this many panels (users) in one figure.
MAX_PANELS = 16


@dataclass(frozen=True)
class Metric:
    """A metric of the results table as a curve figure draws it.

    Attributes:
        column, ci_column: the table's value and 95% half-width columns.
        label: the y-axis label; scale: factor from the table's unit to the axis's.
        bounds: the range the error bars are clipped to (None: no clipping).
    """

    column: str
    ci_column: str
    label: str
    scale: float = 1.0
    bounds: tuple[float, float] | None = None


#: The curve figures: name -> metric (mean per-image PSNR, see docs/conventions.md; top-1 accuracy).
PLOTS: dict[str, Metric] = {
    "psnr_vs_snr": Metric("psnr_mean", "psnr_ci95", "mean PSNR (dB)"),
    "accuracy_vs_snr": Metric("accuracy", "accuracy_ci95", "top-1 accuracy (%)", 100.0, (0.0, 100.0)),
}


def users_of(rows: Sequence[dict[str, Any]], meta: dict[str, Any] | None = None) -> list[str]:
    """The users of a table in scenario order (the metadata's, else the rows')."""
    in_rows = list(dict.fromkeys(str(r["user"]) for r in rows))
    listed = [str(u["name"]) for u in (meta or {}).get("users") or [] if str(u.get("name")) in in_rows]
    return listed + [u for u in in_rows if u not in listed]


def select_users(rows: Sequence[dict[str, Any]], meta: dict[str, Any] | None,
                 users: Sequence[str] | None) -> list[str]:
    """``users`` checked against the table (all of them when None), in the order given.

    Raises:
        SemcomError: a name that is not a user of the table.
    """
    known = users_of(rows, meta)
    if not users:
        return known
    unknown = [u for u in users if u not in known]
    if unknown:
        raise SemcomError(f"no user {', '.join(map(repr, unknown))} in these results; users: {', '.join(known)}")
    return list(dict.fromkeys(users))


def curve_figure(rows: Sequence[dict[str, Any]], meta: dict[str, Any] | None = None, name: str = "psnr_vs_snr",
                 users: Sequence[str] | None = None) -> Figure | None:
    """The figure ``name`` (a key of :data:`PLOTS`) of ``rows``; None when the metric has no finite value.

    ``users``: the users to draw (default: all; panels beyond :data:`PANEL_USERS`, at most
    :data:`MAX_PANELS`).
    """
    meta = meta or {}
    metric = PLOTS[name]
    chosen = select_users(rows, meta, users)
    systems = list(dict.fromkeys(str(r["system"]) for r in rows))
    colours = system_colours(systems)
    shown = chosen[:MAX_PANELS]
    per_user = {u: _user_series(rows, u, systems, metric) for u in shown}
    if not any(per_user.values()):
        return None
    panels = len(chosen) > PANEL_USERS
    show_layer = any(int(r["layer"]) > 1 for r in rows)
    notes = ["Error bars: 95% confidence half-widths" + (" (clipped to 0-100%)." if metric.bounds else ".")]
    draw = _panels if panels else _one_axes
    fig, drawn = draw(per_user, colours, metric, show_layer, meta, len(chosen))
    if any(any(s.lost) for s in drawn):
        notes.append(OUTAGE_NOTE)
    if any(s.merged for s in drawn):
        notes.append(MERGED_NOTE)
    sweepers = (meta.get("sweep") or {}).get("users") or []
    if any(s.first.fixed_db is not None for s in drawn) and sweepers:
        notes.append(f"Users with a fixed SNR are drawn against {sweepers[0]}'s SNR.")
    if len(chosen) > len(shown):
        notes.append(f"{len(chosen) - len(shown)} more users not shown; choose which with "
                     "`semcom plot DIR --users NAME,NAME,...`.")
    caption(fig, notes)
    return fig


def _user_series(rows: Sequence[dict[str, Any]], user: str, systems: list[str], metric: Metric) -> list[Series]:
    lines: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for r in rows:
        if r["user"] == user:
            lines.setdefault((str(r["system"]), int(r["layer"])), []).append(r)
    out = []
    for (system, layer), line in sorted(lines.items(), key=lambda kv: (systems.index(kv[0][0]), kv[0][1])):
        s = make_series(line, Member(system, system, user, layer), metric.column, metric.ci_column, metric.scale,
                        metric.bounds)
        if s is not None:
            out.append(s)
    return out


def _style(s: Series, marker_by_user: dict[str, int] | None) -> tuple[Any, str]:
    m = s.first
    linestyle = LAYER_LINESTYLES[(m.layer - 1) % len(LAYER_LINESTYLES)]
    index = marker_by_user[m.user] if marker_by_user is not None else m.layer - 1
    return linestyle, MARKERS[index % len(MARKERS)]


def _one_axes(per_user: dict[str, list[Series]], colours: dict[str, Any], metric: Metric, show_layer: bool,
              meta: dict[str, Any], total: int) -> tuple[Figure, list[Series]]:
    fig = Figure(figsize=(9.0, 5.0), layout="constrained")
    ax = fig.add_subplot()
    several = sum(1 for v in per_user.values() if v) > 1
    markers = {u: i for i, u in enumerate(per_user)} if several else None
    rank = {name: i for i, name in enumerate(colours)}
    users = list(per_user)
    series = merge_identical(sorted((s for v in per_user.values() for s in v),  # grouped by colour in the legend
                                    key=lambda s: (rank[s.first.system], users.index(s.first.user), s.first.layer)))
    for s in series:
        linestyle, marker = _style(s, markers)
        draw_series(ax, s, colour=colours[s.first.system], linestyle=linestyle, marker=marker,
                    label=s.label(user=several or s.first.fixed_db is not None, layer=show_layer))
    _finish_axes(ax, series, metric)
    ax.set_xlabel("SNR Es/N0 (dB)")
    ax.set_ylabel(metric.label)
    ax.set_title(title_of(meta))
    fig.legend(loc="outside right upper", fontsize="small", frameon=False)
    return fig, series


def _panels(per_user: dict[str, list[Series]], colours: dict[str, Any], metric: Metric, show_layer: bool,
            meta: dict[str, Any], total: int) -> tuple[Figure, list[Series]]:
    n = len(per_user)
    cols = math.ceil(math.sqrt(n))
    nrows = math.ceil(n / cols)
    fig = Figure(figsize=(2.2 + 3.2 * cols, 0.8 + 2.5 * nrows), layout="constrained")
    grid = fig.subplots(nrows, cols, sharex=True, sharey=True, squeeze=False)
    handles: dict[str, Any] = {}
    everything: list[Series] = []
    for ax, (user, series) in zip(grid.flat, per_user.items(), strict=False):
        merged = merge_identical(series)
        everything += merged
        for s in merged:
            linestyle, marker = _style(s, None)
            label = s.label(user=False, layer=show_layer)
            handles.setdefault(label, draw_series(ax, s, colour=colours[s.first.system], linestyle=linestyle,
                                                  marker=marker, label=label))
        fixed_db = next((s.first.fixed_db for s in merged if s.first.fixed_db is not None), None)
        ax.set_title(user if fixed_db is None else f"{user} (fixed {fixed_db:g} dB)", fontsize="medium")
        ax.grid(True, alpha=0.3)
    for ax in list(grid.flat)[n:]:
        ax.remove()
    _finish_axes(grid.flat[0], everything, metric)
    for ax in list(grid.flat)[:n]:
        ax.tick_params(labelbottom=True, labelsize="small")
    fig.supxlabel("SNR Es/N0 (dB)")
    fig.supylabel(metric.label)
    shown = f"{n} of {total} users" if total > n else f"{n} users"
    fig.suptitle(f"{title_of(meta)}: {shown}" if title_of(meta) else shown)
    fig.legend(list(handles.values()), list(handles), loc="outside right upper", fontsize="small", frameon=False)
    return fig, everything


def _finish_axes(ax: Axes, series: Sequence[Series], metric: Metric) -> None:
    set_snr_ticks(ax, (x for s in series for x in s.x))
    ax.grid(True, alpha=0.3)
    if metric.bounds is not None:
        lo = min((y - d for s in series for y, d in zip(s.y, s.low, strict=True)), default=metric.bounds[0])
        hi = max((y + d for s in series for y, d in zip(s.y, s.high, strict=True)), default=metric.bounds[1])
        pad = 0.04 * max(hi - lo, 1.0)
        ax.set_ylim(max(metric.bounds[0] - pad, lo - pad), min(metric.bounds[1] + pad, hi + pad))
