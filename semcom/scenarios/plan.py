"""What a scenario run will do, fully resolved: the :class:`RunPlan`, its sweep points and its seeds.

:func:`make_plan` turns a validated scenario (and ``--quick``, the command line's ``--images`` and
``--snr`` overrides, the data root, the device) into a plan; :meth:`RunPlan.fingerprint` identifies
everything that shapes the numbers, so that partial results are reused only by the same run;
:func:`derive_seed` gives every random stream of the run its own seed from the scenario seed and a
path.

Overrides run a part of a ready scenario without editing a copy. ``images`` replaces the number of
images. ``snr`` replaces SNR lists: a list of values replaces the list of every user that sweeps
(every user when none sweeps), and ``{user: values}`` replaces the named users' own. When each new
SNR point is a point of the scenario's sweep (every user's SNR equal there), the run keeps those
points of the sweep, as ``--quick`` does, so it draws the same channels as the full run; otherwise
the values make a new sweep, points 0..P'-1 (the scenario is copied with the new ``snr_db``
lists, so every rule of the schema holds for it).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import semcom
from semcom.errors import ScenarioError
from semcom.scenarios.schema import SNR_MAX_DB, SNR_MIN_DB, Scenario, UserSpec, format_path

__all__ = ["RunPlan", "SnrOverride", "derive_seed", "make_plan", "sweep_points"]

#: ``--snr``: values for every user that sweeps, or values per user name.
SnrOverride = Sequence[float] | Mapping[str, Sequence[float]]


def derive_seed(seed: int, *parts: str | int) -> int:
    """A 63-bit seed from the scenario seed and a path such as ``("channel", system, user, 3, 0, 2)``.

    A hash, so seeds of different paths are unrelated and none depends on what ran before.
    """
    digest = hashlib.sha256(json.dumps([int(seed), *parts]).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


@dataclass(frozen=True)
class RunPlan:
    """What to run, fully resolved; picklable, so worker processes get it as is.

    Attributes:
        scenario: the validated scenario.
        images: images to evaluate (None: the whole split).
        draws: Monte Carlo channel draws per image.
        points: indices into the full sweep to run.
        snr: ``{user: [SNR at every point of the full sweep]}``.
        quick: whether ``--quick`` shrank the run.
        data_root: data root override (None: the scenario's, else the default).
        device: torch device.
        overrides: what the command line changed, as recorded in ``results.json``:
            ``{"images": N, "snr_db": {user: [dB, ...]}}`` (empty: none).
        codec_workers: processes that rate-match the SSCC systems' images
            (:class:`~semcom.sscc.rate_pool.RateMatchingPool`; 1: none). It changes no number, so it is not
            part of the fingerprint.
    """

    scenario: Scenario
    images: int | None
    draws: int
    points: tuple[int, ...]
    snr: dict[str, list[float]]
    quick: bool = False
    data_root: str | None = None
    device: str = "cpu"
    overrides: dict[str, Any] = field(default_factory=dict)
    codec_workers: int = 1

    def fingerprint(self) -> str:
        """Hash of everything that shapes the numbers (partial results must match it to be reused)."""
        doc = {"scenario": self.scenario.model_dump(mode="json"), "images": self.images, "draws": self.draws,
               "points": list(self.points), "device": self.device, "semcom": semcom.__version__}
        if self.overrides:  # absent without overrides: the fingerprints of plain runs stay as they were
            doc["overrides"] = self.overrides
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode("utf-8")).hexdigest()

    def sweep_snr(self, point: int) -> float:
        """SNR of the first sweeping user at ``point`` (NaN when no user sweeps)."""
        sweeping = self.scenario.sweeping_users()
        return self.snr[sweeping[0]][point] if sweeping else math.nan


def sweep_points(count: int, keep: int) -> list[int]:
    """``keep`` indices of ``range(count)``: first, last and evenly between (all when ``count <= keep``)."""
    if count <= keep:
        return list(range(count))
    if keep == 1:
        return [count // 2]
    return sorted({round(i * (count - 1) / (keep - 1)) for i in range(keep)})


def make_plan(scenario: Scenario, *, quick: bool = False, images: int | None = None,
              snr: SnrOverride | None = None, data_root: str | Path | None = None,
              device: str = "cpu", codec_workers: int = 1) -> RunPlan:
    """Resolve a scenario into a :class:`RunPlan`.

    Args:
        scenario: the validated scenario.
        quick: apply the scenario's ``quick`` limits (an explicit ``images`` wins over them).
        images: evaluate this many images instead of the scenario's ``dataset.images``.
        snr: SNR lists instead of the scenario's (see the module docstring).
        data_root: data root, overriding the scenario's ``dataset.root``.
        device: torch device.
        codec_workers: processes that rate-match SSCC images (1: none; see :class:`RunPlan`).

    Raises:
        ScenarioError: an override the scenario cannot take (message names ``--images`` or ``--snr``).
    """
    overrides: dict[str, Any] = {}
    if images is not None:
        if isinstance(images, bool) or not isinstance(images, int) or images < 1:
            raise ScenarioError(f"--images: expected a positive number of images, got {images!r}")
        overrides["images"] = images
    points = list(range(scenario.num_points))
    table = scenario.snr_table()
    if snr is not None:
        wanted = _snr_wanted(scenario, snr)
        overrides["snr_db"] = wanted
        scenario, table, points = _apply_snr(scenario, wanted)
    draws = scenario.draws
    count = scenario.dataset.images if images is None else images
    if quick:
        q = scenario.quick
        if images is None:
            count = q.images if count is None else min(count, q.images)
        draws = min(draws, q.draws)
        points = [points[i] for i in sweep_points(len(points), q.snr_points)]
    root: Path | None = None
    if data_root is not None:
        root = Path(data_root)
    elif scenario.dataset.root is not None:  # relative to the scenario file
        root = scenario.base_dir() / Path(scenario.dataset.root).expanduser()
    return RunPlan(scenario, count, draws, tuple(points), table, quick,
                   None if root is None else str(root), device, overrides, codec_workers)


def _snr_wanted(scenario: Scenario, snr: SnrOverride) -> dict[str, list[float]]:
    """``{user: new SNR values}`` from an ``--snr`` override, checked value by value."""
    names = [u.name for u in scenario.users]
    if isinstance(snr, Mapping):
        unknown = [n for n in snr if n not in names]
        if unknown:
            raise ScenarioError(f"--snr: no user '{unknown[0]}' in scenario {scenario.name}; users: "
                                f"{', '.join(names)}")
        wanted = {str(n): [float(v) for v in values] for n, values in snr.items()}
    else:
        values = [float(v) for v in snr]
        wanted = {n: values for n in scenario.sweeping_users() or names}
    for user, values in wanted.items():
        if not values:
            raise ScenarioError(f"--snr: no SNR given for user '{user}'")
        bad = [v for v in values if not (math.isfinite(v) and SNR_MIN_DB <= v <= SNR_MAX_DB)]
        if bad:
            raise ScenarioError(f"--snr: {bad[0]:g} dB is outside {SNR_MIN_DB:g} to {SNR_MAX_DB:g} dB")
        twice = sorted({v for v in values if values.count(v) > 1})
        if twice:
            raise ScenarioError(f"--snr: {twice[0]:g} dB is given twice for user '{user}'")
    return {n: wanted[n] for n in names if n in wanted}  # in the scenario's order


def _apply_snr(scenario: Scenario, wanted: dict[str, list[float]]) -> tuple[Scenario, dict[str, list[float]],
                                                                          list[int]]:
    """``(scenario, SNR table, points)`` of a run with the users' SNRs replaced by ``wanted``."""
    values = {u.name: wanted.get(u.name, u.snr_values()) for u in scenario.users}
    sweeps = {n: len(v) for n, v in values.items() if len(v) > 1}
    if len(set(sweeps.values())) > 1:
        listed = ", ".join(f"{n} {k}" for n, k in sweeps.items())
        raise ScenarioError(f"--snr: users that sweep must have the same number of points; they would have "
                            f"{listed} (give every sweeping user as many values, or one value to fix it)")
    count = max(len(v) for v in values.values())
    table = {n: v * count if len(v) == 1 else list(v) for n, v in values.items()}
    full = scenario.snr_table()
    on_sweep = [next((j for j in range(scenario.num_points)
                      if all(abs(full[n][j] - table[n][i]) <= 1e-9 for n in table)), None) for i in range(count)]
    if None not in on_sweep and len(set(on_sweep)) == count:
        return scenario, full, sorted(j for j in on_sweep if j is not None)
    users = []
    for u in scenario.users:
        new = wanted.get(u.name)
        if new is None:
            users.append(u)
            continue
        users.append(UserSpec.model_validate({**u.model_dump(), "snr_db": new[0] if len(new) == 1 else new}))
    copy = scenario.model_copy(update={"users": users})  # keeps where the scenario came from
    problems = copy.problems()
    if problems:
        path, msg = problems[0]
        raise ScenarioError(f"--snr: {format_path(path)}: {msg}")
    return copy, copy.snr_table(), list(range(count))
