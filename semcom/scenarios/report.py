"""Human-readable views of scenarios, plans and results (``semcom validate``, ``run`` and ``show``).

Everything here fits a terminal of 80 columns.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from typing import Any

from rich import box
from rich.table import Table

from semcom.scenarios.plan import RunPlan
from semcom.scenarios.schema import Scenario

__all__ = ["describe_overrides", "describe_points", "describe_scenario", "results_table", "wrap_lines"]


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
    return wrap_lines([
        f"{sc.name}: {sc.description}" if sc.description else sc.name,
        f"  dataset  {sc.dataset.name} ({sc.dataset.split}, {images} images), {sc.draws} channel draw(s) per "
        f"image, seed {sc.seed}",
        f"  systems  {', '.join(f'{s.label} ({s.type})' for s in sc.systems)}",
        f"  channel  {channel}",
        f"  users    {'; '.join(users)}",
        f"  sweep    {sc.num_points} SNR point(s)",
    ])


def wrap_lines(lines: Sequence[str], width: int = 80) -> str:
    """Lines as above (a label, then text from column 11) wrapped to ``width``, continuing under the text."""
    out = []
    for line in lines:
        indent = " " * 11 if line.startswith("  ") else "  "
        out.append(textwrap.fill(line, width, subsequent_indent=indent, break_on_hyphens=False,
                                 break_long_words=False))
    return "\n".join(out)


def describe_points(plan: RunPlan) -> str:
    """The SNR points a plan runs, in words: ``"2 of 6: rx at 0, 20 dB"``, one user that sweeps each."""
    sc = plan.scenario
    users = sc.sweeping_users() or [u.name for u in sc.users]
    shown = users[:3]
    values = [f"{u} at {', '.join(f'{plan.snr[u][p]:g}' for p in plan.points)} dB" for u in shown]
    more = f"; {len(users) - len(shown)} more user(s)" if len(users) > len(shown) else ""
    count = (f"{len(plan.points)} of {sc.num_points}" if len(plan.points) < sc.num_points
             else f"{len(plan.points)}")
    return f"{count}: {'; '.join(values)}{more}"


def describe_overrides(overrides: dict[str, Any]) -> str:
    """``--images 8 --snr rx=0,20``: the command-line overrides of a run, as they could be typed."""
    parts = []
    if "images" in overrides:
        parts.append(f"--images {overrides['images']}")
    for user, values in (overrides.get("snr_db") or {}).items():
        parts.append(f"--snr {user}={','.join(f'{v:g}' for v in values)}")
    return " ".join(parts) or "none"


def _num(value: Any, scale: float = 1.0, digits: int = 2) -> str:
    if not isinstance(value, int | float) or not math.isfinite(value):
        return "-"
    return f"{value * scale:.{digits}f}"


def results_table(rows: Sequence[dict[str, Any]], meta: dict[str, Any] | None = None) -> Table:
    """The results as a rich table: one line per system, user, layer and SNR point, within 80 columns.

    Columns: the layers decoded (L) and the channel uses they took (k), the user's SNR, mean
    per-image PSNR with its 95% half-width, pooled PSNR ``10 log10(1 / mean MSE)``, accuracy with its
    half-width, outage rate. A system's name is written on its first line only (with several users,
    on a line of its own, and each user's name indented on the user's first line), and a blank line
    separates systems; names too long for their column wrap, never cut. SSIM and MS-SSIM are in the
    CSV and JSON files.
    """
    meta = meta or {}
    scenario = (meta.get("scenario") or {}).get("name", "results")
    dataset = meta.get("dataset") or {}
    overrides = meta.get("overrides") or {}
    caption = (f"{dataset.get('name', '?')}: {dataset.get('images', '?')} images x {meta.get('draws', '?')} "
               f"draws, seed {meta.get('seed', '?')}" + (", --quick" if meta.get("quick") else "")
               + (f", {describe_overrides(overrides)}" if overrides else "")
               + ". SNR and PSNR in dB, L layers decoded, k channel uses; ± is the 95% confidence half-width")
    users = len({r["user"] for r in rows}) > 1  # one user: its name is in the caption, not in every row
    if not users and rows:
        caption = f"user {rows[0]['user']}; {caption}"
    table = Table(title=scenario, caption=caption, caption_justify="left", box=box.SIMPLE_HEAD, show_edge=False,
                  pad_edge=False, padding=(0, 1, 0, 0))
    # Several users: the first column names the system on a line of its own, then each user indented.
    table.add_column("system / user" if users else "system", overflow="fold")
    for col in ("L", "k", "SNR", "PSNR", "±", "pooled", "acc %", "±", "out %"):
        table.add_column(col, justify="right", no_wrap=True)
    for i, r in enumerate(rows):
        new_system = i == 0 or rows[i - 1]["system"] != r["system"]
        new_user = new_system or rows[i - 1]["user"] != r["user"]
        last = i == len(rows) - 1 or rows[i + 1]["system"] != r["system"]
        if users and new_system:
            table.add_row(str(r["system"]))
        name = (f"  {r['user']}" if new_user else "") if users else (str(r["system"]) if new_system else "")
        table.add_row(name, str(r["layer"]), str(r.get("symbols", "-")), f"{r['snr_db']:g}",
                      _num(r.get("psnr_mean")), _num(r.get("psnr_ci95")), _num(r.get("psnr_pooled")),
                      _num(r.get("accuracy"), 100.0, 1), _num(r.get("accuracy_ci95"), 100.0, 1),
                      _num(r.get("outage_rate"), 100.0, 1), end_section=last and i < len(rows) - 1)
    return table
