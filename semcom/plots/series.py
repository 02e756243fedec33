"""What the curve figures share: a line's points, its look, merging identical lines, the SNR ticks.

A :class:`Series` is one line of a figure: the points of one or more (system, user, layer) of the
results table whose points coincide exactly (they are drawn once, with one legend entry that names
them all: two lines on top of each other would look like one with two entries). Colour says the
system (:func:`system_colours`), line style the layer (:data:`LAYER_LINESTYLES`); a hollow marker is a
point where some images were lost (``outage_rate > 0``: the receiver shows the dataset's mean image
for them, :data:`OUTAGE_NOTE`). Error bars are the table's 95% half-widths, clipped to the metric's
range (an accuracy interval stops at 0 and 100%).
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.container import ErrorbarContainer
from matplotlib.figure import Figure

__all__ = [
    "LAYER_LINESTYLES",
    "MARKERS",
    "MAX_TICKS",
    "MERGED_NOTE",
    "OUTAGE_NOTE",
    "Member",
    "Series",
    "caption",
    "draw_series",
    "finite",
    "make_series",
    "merge_identical",
    "set_snr_ticks",
    "snr_ticks",
    "system_colours",
    "title_of",
    "x_of",
]

#: Line style of layer r (``LAYER_LINESTYLES[(r - 1) % 6]``): layer 1 solid, 2 dashed, 3 dash-dotted, ...
LAYER_LINESTYLES: tuple[Any, ...] = ("-", "--", "-.", ":", (0, (5, 1, 1, 1, 1, 1)), (0, (1, 3)))
#: Markers, by layer (one user per axes) or by user (several users on one axes).
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")
#: At most this many SNR ticks; a finer grid shows every second (third, ...) grid point.
MAX_TICKS = 13
OUTAGE_NOTE = "Hollow markers: some images lost; the receiver shows the dataset's mean image for them."
MERGED_NOTE = "An entry naming several systems or layers: their points coincide exactly (drawn once)."


def finite(value: Any) -> bool:
    """Whether ``value`` is a finite number (NaN, None and text are not)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def x_of(rows: Sequence[dict[str, Any]]) -> tuple[list[float], float | None]:
    """x values of one line (rows sorted by point) and, for a user whose SNR is fixed while another
    user sweeps, that fixed SNR (its points are then drawn against the sweeping user's SNR)."""
    own = [float(r["snr_db"]) for r in rows]
    sweep = [r.get("sweep_snr_db") for r in rows]
    if len(set(own)) == 1 and len(rows) > 1 and all(finite(s) for s in sweep):
        return [float(s) for s in sweep if s is not None], own[0]
    return own, None


@dataclass(frozen=True)
class Member:
    """One (system, user, layer) of the table a line draws; ``name`` is what the legend calls the system."""

    name: str
    system: str
    user: str
    layer: int
    fixed_db: float | None = None

    def user_label(self) -> str:
        return self.user if self.fixed_db is None else f"{self.user} (fixed {self.fixed_db:g} dB)"


@dataclass(frozen=True)
class Series:
    """One drawn line: its points and the table lines it stands for (several when they coincide).

    Attributes:
        members: the (system, user, layer) drawn; the first gives the style.
        x, y: the points (SNR in dB; the metric, scaled).
        low, high: the error bar below and above each point (the 95% half-width, clipped to the range).
        lost: per point, whether some images were lost (``outage_rate > 0``).
    """

    members: tuple[Member, ...]
    x: tuple[float, ...]
    y: tuple[float, ...]
    low: tuple[float, ...]
    high: tuple[float, ...]
    lost: tuple[bool, ...]

    @property
    def first(self) -> Member:
        return self.members[0]

    def points(self) -> tuple[Any, ...]:
        return self.x, self.y, self.low, self.high, self.lost

    def label(self, *, user: bool = True, layer: bool = True, width: int = 44) -> str:
        """Legend text ``system · user · L<layer>`` (parts left out as asked), wrapped at ``width``
        characters. Coinciding members are listed part by part when they are every combination of
        their systems, users and layers (``hevc-broadcast, hevc-unicast · near · L1, L2``), else one
        after the other (``a · L1 = b · L2``)."""
        names = list(dict.fromkeys(m.name for m in self.members))
        users = list(dict.fromkeys(m.user_label() for m in self.members))
        layers = list(dict.fromkeys(f"L{m.layer}" for m in self.members))
        if len({(m.name, m.user_label(), m.layer) for m in self.members}) == len(names) * len(users) * len(layers):
            layers_text = ",\u00a0".join(layers)  # wrapped before or after the layers, not between
            parts = [", ".join(names)] + ([", ".join(users)] if user else []) + ([layers_text] if layer else [])
            text = " · ".join(parts)
        else:
            text = " = ".join(" · ".join([m.name] + ([m.user_label()] if user else []) +
                                         ([f"L{m.layer}"] if layer else [])) for m in self.members)
        return textwrap.fill(text, width, break_long_words=False, subsequent_indent="  ")

    @property
    def merged(self) -> bool:
        """Whether the line stands for several table lines."""
        return len(self.members) > 1


def make_series(rows: Sequence[dict[str, Any]], member: Member, column: str, ci_column: str, scale: float,
                bounds: tuple[float, float] | None) -> Series | None:
    """The line of ``rows`` (one system, user and layer) for ``column``; None when no value is finite."""
    line = sorted((r for r in rows if finite(r.get(column))), key=lambda r: r["point"])
    if not line:
        return None
    x, fixed = x_of(line)
    y = [float(r[column]) * scale for r in line]
    err = [float(r[ci_column]) * scale if finite(r.get(ci_column)) else 0.0 for r in line]
    low, high = list(err), list(err)
    if bounds is not None:
        low = [max(0.0, min(e, v - bounds[0])) for e, v in zip(err, y, strict=True)]
        high = [max(0.0, min(e, bounds[1] - v)) for e, v in zip(err, y, strict=True)]
    lost = [finite(r.get("outage_rate")) and float(r["outage_rate"]) > 0 for r in line]
    return Series((replace(member, fixed_db=fixed),), tuple(x), tuple(y), tuple(low), tuple(high), tuple(lost))


def merge_identical(series: Iterable[Series]) -> list[Series]:
    """The lines with those whose points coincide exactly merged into one (the first keeps its place)."""
    out: list[Series] = []
    for s in series:
        for i, kept in enumerate(out):
            if kept.points() == s.points():
                out[i] = replace(kept, members=kept.members + s.members)
                break
        else:
            out.append(s)
    return out


def system_colours(systems: Sequence[str]) -> dict[str, Any]:
    """One colour per system, in order: matplotlib's tab10 (tab20 for more than ten systems)."""
    palette = colormaps["tab10" if len(systems) <= 10 else "tab20"].colors  # type: ignore[attr-defined]
    return {s: palette[i % len(palette)] for i, s in enumerate(systems)}


def draw_series(ax: Axes, s: Series, *, colour: Any, linestyle: Any, marker: str, label: str,
                linewidth: float = 1.5, errorbars: bool = True) -> ErrorbarContainer:
    """Draw one line (with its error bars unless ``errorbars`` is False): filled markers, hollow where
    some images were lost."""
    kept = [i for i, lost in enumerate(s.lost) if not lost]
    container = ax.errorbar(s.x, s.y, yerr=[s.low, s.high] if errorbars else None, color=colour,
                            linestyle=linestyle, marker=marker, markevery=kept, markersize=5, capsize=3,
                            linewidth=linewidth, elinewidth=1.0, label=label)
    if any(s.lost):
        lost = [i for i, v in enumerate(s.lost) if v]
        ax.plot([s.x[i] for i in lost], [s.y[i] for i in lost], linestyle="none", marker=marker, markersize=5,
                markerfacecolor="white", markeredgecolor=colour, markeredgewidth=1.2, label="_lost",
                zorder=container.lines[0].get_zorder() + 0.1)
    return container


def snr_ticks(values: Iterable[float]) -> list[float]:
    """Ticks on the SNR grid: every distinct x, or every k-th of them when more than :data:`MAX_TICKS`."""
    grid = sorted({round(float(v), 6) for v in values})
    step = max(1, math.ceil(len(grid) / MAX_TICKS))
    return grid[::step]


def set_snr_ticks(ax: Axes, values: Iterable[float]) -> None:
    """Put the x ticks of ``ax`` (and the axes sharing its x) on the SNR grid, labelled ``%g``."""
    ticks = snr_ticks(values)
    if ticks:
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])


def title_of(meta: dict[str, Any]) -> str:
    """``scenario, dataset, channel`` from a results file's metadata."""
    scenario = (meta.get("scenario") or {}).get("name", "")
    dataset = (meta.get("dataset") or {}).get("name", "")
    channel = (meta.get("channel") or {}).get("type", "")
    return ", ".join(t for t in (scenario, dataset, channel) if t)


def caption(fig: Figure, lines: Sequence[str]) -> None:
    """Notes under the figure (saved with ``bbox_inches="tight"``, which takes them in)."""
    if lines:
        fig.text(0.01, 0.0, "\n".join(lines), ha="left", va="top", fontsize="small", color="0.25")
