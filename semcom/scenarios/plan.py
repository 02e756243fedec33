"""What a scenario run will do, fully resolved: the :class:`RunPlan`, its sweep points and its seeds.

:func:`make_plan` turns a validated scenario (and ``--quick``, the data root, the device) into a
plan; :meth:`RunPlan.fingerprint` identifies everything that shapes the numbers, so that partial
results are reused only by the same run; :func:`derive_seed` gives every random stream of the run
its own seed from the scenario seed and a path.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path

import semcom
from semcom.scenarios.schema import Scenario

__all__ = ["RunPlan", "derive_seed", "make_plan", "sweep_points"]


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
    """

    scenario: Scenario
    images: int | None
    draws: int
    points: tuple[int, ...]
    snr: dict[str, list[float]]
    quick: bool = False
    data_root: str | None = None
    device: str = "cpu"

    def fingerprint(self) -> str:
        """Hash of everything that shapes the numbers (partial results must match it to be reused)."""
        doc = {"scenario": self.scenario.model_dump(mode="json"), "images": self.images, "draws": self.draws,
               "points": list(self.points), "device": self.device, "semcom": semcom.__version__}
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


def make_plan(scenario: Scenario, *, quick: bool = False, data_root: str | Path | None = None,
              device: str = "cpu") -> RunPlan:
    """Resolve a scenario into a :class:`RunPlan` (``quick``: apply the scenario's ``quick`` limits)."""
    images, draws = scenario.dataset.images, scenario.draws
    points = list(range(scenario.num_points))
    if quick:
        q = scenario.quick
        images = q.images if images is None else min(images, q.images)
        draws = min(draws, q.draws)
        points = sweep_points(len(points), q.snr_points)
    root: Path | None = None
    if data_root is not None:
        root = Path(data_root)
    elif scenario.dataset.root is not None:  # relative to the scenario file
        root = scenario.base_dir() / Path(scenario.dataset.root).expanduser()
    return RunPlan(scenario, images, draws, tuple(points), scenario.snr_table(), quick,
                   None if root is None else str(root), device)
