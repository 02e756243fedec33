"""Human-readable views of scenarios and results (for ``semcom validate`` and ``semcom show``)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from rich.table import Table

from semcom.scenarios.schema import Scenario

__all__ = ["describe_scenario", "results_table"]


def describe_scenario(scenario: Scenario) -> str:
    """A few lines saying what a scenario will run."""
    sc = scenario
    snr = sc.snr_table()
    users = []
    for u in sc.users:
        values = snr[u.name]
        where = f"{values[0]:g} dB" if len(set(values)) == 1 else f"{values[0]:g}..{values[-1]:g} dB"
        users.append(f"{u.name} ({where}, {u.resolution} layer{'s' if u.resolution > 1 else ''}, "
                     f"{'+'.join(u.tasks)})")
    ch = sc.channel
    channel = ch.describe()
    if ch.type != "awgn":
        channel += f", one gain per {ch.block}, CSI {ch.csi}"
    images = "all" if sc.dataset.images is None else str(sc.dataset.images)
    return "\n".join([
        f"{sc.name}: {sc.description}" if sc.description else sc.name,
        f"  dataset  {sc.dataset.name} ({sc.dataset.split}, {images} images), {sc.draws} channel draw(s) per "
        f"image, seed {sc.seed}",
        f"  systems  {', '.join(f'{s.label} ({s.type})' for s in sc.systems)}",
        f"  channel  {channel}",
        f"  users    {'; '.join(users)}",
        f"  sweep    {sc.num_points} SNR point(s)",
    ])


def _num(value: Any, scale: float = 1.0, digits: int = 2) -> str:
    if not isinstance(value, int | float) or not math.isfinite(value):
        return "-"
    return f"{value * scale:.{digits}f}"


def results_table(rows: Sequence[dict[str, Any]], meta: dict[str, Any] | None = None) -> Table:
    """The results as a rich table: one line per system, user, layer and SNR point.

    Columns: the layers decoded (L) and the channel uses they took (k), mean per-image PSNR with its
    95% half-width, pooled PSNR ``10 log10(1 / mean MSE)``, accuracy with its half-width, outage rate.
    SSIM and MS-SSIM are in the CSV and JSON files.
    """
    meta = meta or {}
    scenario = (meta.get("scenario") or {}).get("name", "results")
    dataset = meta.get("dataset") or {}
    caption = (f"{dataset.get('name', '?')}: {dataset.get('images', '?')} images x {meta.get('draws', '?')} "
               f"draws, seed {meta.get('seed', '?')}" + (", --quick" if meta.get("quick") else "")
               + "; ± is the 95% confidence half-width")
    table = Table(title=scenario, caption=caption)
    users = len({r["user"] for r in rows}) > 1  # one user: its name is in the caption, not in every row
    if not users and rows:
        table.caption = f"user {rows[0]['user']}; {table.caption or ''}"
    for col in ("system", *(("user",) if users else ()), "L", "k", "SNR dB", "PSNR dB", "±", "pooled", "acc %",
                "±", "out %"):
        table.add_column(col, justify="left" if col in ("system", "user") else "right")
    for r in rows:
        table.add_row(str(r["system"]), *((str(r["user"]),) if users else ()), str(r["layer"]),
                      str(r.get("symbols", "-")), f"{r['snr_db']:g}", _num(r.get("psnr_mean")),
                      _num(r.get("psnr_ci95")), _num(r.get("psnr_pooled")), _num(r.get("accuracy"), 100.0, 1),
                      _num(r.get("accuracy_ci95"), 100.0, 1), _num(r.get("outage_rate"), 100.0, 1))
    return table
