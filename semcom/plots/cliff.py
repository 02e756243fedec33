"""The SSCC cliff: PSNR vs SNR of a codec over 5G LDPC + QAM at each fixed MCS, with the capacity bound.

Drawn from a results table whose scenario has several SSCC systems with a fixed ``mcs`` (or ``mcs:
capacity``, the ideal: error-free ``k log2(1 + SNR)`` bits), such as the ready scenario
``sscc-cliff``. At each MCS the picture is the same: below the SNR where its blocks decode, every
image is lost and the receiver shows the dataset's mean image; just above it the PSNR jumps to the
quality the MCS's bits allow, and stays there however good the channel gets. The capacity line is
the upper envelope no MCS crosses. One panel per (codec, channel uses); lines coloured from low to
high rate, the capacity bound black, the ``adaptive`` system (best MCS per SNR) grey when present.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from matplotlib import colormaps
from matplotlib.figure import Figure

from semcom.plots.curves import select_users
from semcom.plots.series import (
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
    title_of,
)

__all__ = ["cliff_figure", "cliff_systems"]


def cliff_systems(meta: dict[str, Any]) -> list[dict[str, Any]]:
    """The SSCC systems of a results file with a fixed MCS or ``capacity`` (its ``systems`` entries),
    plus any ``adaptive`` one; empty unless there are at least two fixed ones."""
    sscc = [s for s in meta.get("systems") or [] if s.get("kind") == "sscc" and (s.get("spec") or {}).get("mcs")]
    fixed = [s for s in sscc if s["spec"]["mcs"] != "adaptive"]
    return sscc if len(fixed) >= 2 else []


def cliff_figure(rows: Sequence[dict[str, Any]], meta: dict[str, Any] | None = None,
                 user: str | None = None) -> Figure | None:
    """PSNR vs SNR per MCS and the capacity bound, for ``user`` (default: the first) at each system's
    top layer; None when the results have fewer than two SSCC systems with a fixed MCS or capacity."""
    meta = meta or {}
    systems = cliff_systems(meta)
    if not systems:
        return None
    user = select_users(rows, meta, [user] if user else None)[0]
    groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for system in systems:
        symbols = int(sum(system.get("layer_symbols") or [0]))
        groups.setdefault((str(system["spec"].get("codec", "?")), symbols), []).append(system)

    fig = Figure(figsize=(1.5 + 6.0 * len(groups), 4.8), layout="constrained")
    axes = fig.subplots(1, len(groups), sharey=True, squeeze=False)[0]
    handles: dict[str, Any] = {}
    lost = merged = False
    for ax, ((codec, symbols), members) in zip(axes, groups.items(), strict=True):
        series = merge_identical(_series(rows, members, user))
        colours = _colours([m["spec"]["mcs"] for m in members])
        mcs_of = {str(m["name"]): str(m["spec"]["mcs"]) for m in members}
        for s in series:
            mcs = mcs_of[s.first.system]
            style: dict[str, Any] = {"colour": colours[mcs], "linestyle": "-", "marker": MARKERS[0],
                                     "errorbars": False}
            if mcs == "capacity":
                style.update(linewidth=2.5)
            elif mcs == "adaptive":
                style.update(linestyle="--", linewidth=2.0)
            label = s.label(user=False, layer=False)
            handles.setdefault(label, draw_series(ax, s, label=label, **style))
            lost = lost or any(s.lost)
            merged = merged or s.merged
        _mean_image_level(ax, rows, members, user)
        set_snr_ticks(ax, (x for s in series for x in s.x))
        ax.grid(True, alpha=0.3)
        ax.set_title(f"{codec} + 5G LDPC + QAM, k = {symbols} channel uses", fontsize="medium")
        ax.set_xlabel("SNR Es/N0 (dB)")
    axes[0].set_ylabel("mean PSNR (dB)")
    fig.suptitle(f"SSCC cliff per MCS: {title_of(meta)}, user {user}")
    fig.legend(list(handles.values()), list(handles), loc="outside right upper", fontsize="small", frameon=False,
               title="MCS")
    notes = ["capacity: error-free floor(k log2(1 + SNR)) bits, the bound no MCS crosses; "
             "adaptive: the highest-rate MCS whose BLER is below the target."
             if any(system["spec"]["mcs"] == "adaptive" for system in systems) else
             "capacity: error-free floor(k log2(1 + SNR)) bits, the bound no MCS crosses.",
             "No error bars here, to keep the cliffs readable: psnr_vs_snr has them."]
    if lost:
        notes.append(OUTAGE_NOTE)
    if merged:
        notes.append(MERGED_NOTE)
    caption(fig, notes)
    return fig


def _series(rows: Sequence[dict[str, Any]], members: list[dict[str, Any]], user: str) -> list[Series]:
    mcs_names = [m["spec"]["mcs"] for m in members]
    out = []
    for m in members:
        mine = [r for r in rows if r["system"] == m["name"] and r["user"] == user]
        if not mine:
            continue
        top = max(int(r["layer"]) for r in mine)
        mcs = m["spec"]["mcs"]
        name = mcs if mcs_names.count(mcs) == 1 else str(m["name"])  # two systems at one MCS: their names
        s = make_series([r for r in mine if int(r["layer"]) == top], Member(name, str(m["name"]), user, top),
                        "psnr_mean", "psnr_ci95", 1.0, None)
        if s is not None:
            out.append(s)
    return out


def _colours(mcs_names: list[str]) -> dict[str, Any]:
    """Fixed MCSs from dark (low rate, the order given) to light; capacity black; adaptive grey."""
    fixed = [m for m in dict.fromkeys(mcs_names) if m not in ("capacity", "adaptive")]
    cmap = colormaps["viridis"]
    out: dict[str, Any] = {m: cmap(0.9 * i / max(1, len(fixed) - 1)) for i, m in enumerate(fixed)}
    out.update(capacity="black", adaptive="0.5")
    return out


def _mean_image_level(ax: Any, rows: Sequence[dict[str, Any]], members: list[dict[str, Any]], user: str) -> None:
    """A dotted line at the PSNR of the mean image, where some point lost every image."""
    names = {m["name"] for m in members}
    level = [float(r["psnr_mean"]) for r in rows if r["system"] in names and r["user"] == user
             and r.get("outage_rate") == 1.0 and isinstance(r.get("psnr_mean"), float)]
    if level:
        y = sum(level) / len(level)
        ax.axhline(y, color="0.55", linestyle=":", linewidth=1.0, zorder=0)
        ax.annotate("every image lost: the mean image", xy=(1.0, y), xycoords=("axes fraction", "data"),
                    xytext=(-4, -4), textcoords="offset points", ha="right", va="top", fontsize="x-small",
                    color="0.4")
