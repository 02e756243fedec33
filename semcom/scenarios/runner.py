"""Run a scenario: broadcast every image to every user, point by point of the SNR sweep.

For each SNR point p and each system, each batch of images is encoded once,
``tx = system.prepare(images, [SNR of every user at p])`` (``mode: unicast``: once per user, with that
user's SNR only). Each user then gets its own channel realisation at its own SNR and decodes the
layers it asked for, ``system.receive(tx, channel, snr, resolution)``, once per Monte Carlo draw.
Metrics are collected per image and draw, and summarised per (system, user, layer, point).

Seeds: the channel of (system, user, point, draw, batch) is seeded with
``derive_seed(scenario seed, "channel", system, user, point, draw, batch)`` (a hash), and the global
torch generator likewise before every ``prepare`` and ``receive``; so the numbers depend on neither
the order in which points run nor the number of worker processes. ``point`` is the index in the full
sweep, so ``--quick`` draws the same channels at the points it keeps.

The rooms: :mod:`~semcom.scenarios.plan` (the resolved run, sweep points, seeds),
:mod:`~semcom.scenarios.point` (one SNR point through :mod:`semcom.evaluation`, the loop and
collectors every evaluation shares), :mod:`~semcom.scenarios.cache` (what a process keeps between
points), :mod:`~semcom.scenarios.executor` (serial or parallel, progress) and
:mod:`~semcom.scenarios.persistence` (partial results, metadata, the lock on ``--out``); this
module runs a scenario with them and re-exports their public names.

Resuming: with an output folder, each finished point is written to ``partial/point-NNNN.json``
(atomically) before the next starts; a rerun with the same scenario and settings skips those points,
and the final table is the same as that of an uninterrupted run. The folder is removed once
``results.csv`` and ``results.json`` are written.
"""

from __future__ import annotations

import shutil
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from semcom.errors import SemcomError, SemcomWarning
from semcom.scenarios.cache import process_cache
from semcom.scenarios.checks import check_plan
from semcom.scenarios.executor import run_parallel, run_serial
from semcom.scenarios.loader import load_scenario
from semcom.scenarios.persistence import (
    LOCK_NAME,
    METRIC_NOTES,
    PARTIAL_DIR,
    load_partials,
    out_lock,
    run_metadata,
    save_partial,
    save_reconstructions,
)
from semcom.scenarios.plan import RunPlan, SnrOverride, derive_seed, make_plan
from semcom.scenarios.point import PointResult, ScenarioSeeds, evaluate_point
from semcom.scenarios.ray_backend import run_ray
from semcom.scenarios.results import write_results
from semcom.scenarios.schema import Scenario

__all__ = [
    "LOCK_NAME",
    "METRIC_NOTES",
    "PARTIAL_DIR",
    "PointResult",
    "RunPlan",
    "RunResult",
    "ScenarioSeeds",
    "derive_seed",
    "evaluate_point",
    "make_plan",
    "run_scenario",
]


@dataclass
class RunResult:
    """What :func:`run_scenario` made.

    Attributes:
        rows: the table, one dict per (system, user, layer, point), columns as in
            :data:`semcom.scenarios.results.COLUMNS`.
        metadata: provenance (the JSON file's fields other than rows).
        out_dir: where files were written (None for an in-memory run).
        csv_path, json_path: the files written (None for an in-memory run).
    """

    rows: list[dict[str, Any]]
    metadata: dict[str, Any]
    out_dir: Path | None = None
    csv_path: Path | None = None
    json_path: Path | None = None


def run_scenario(
    scenario: Scenario | str | Path,
    out: str | Path | None = None,
    *,
    quick: bool = False,
    images: int | None = None,
    snr: SnrOverride | None = None,
    workers: int = 1,
    data_root: str | Path | None = None,
    device: str = "cpu",
    resume: bool = True,
    quiet: bool = True,
    threads: int | None = None,
    on_point: Callable[[PointResult], None] | None = None,
    backend: str = "local",
    address: str | None = None,
    codec_workers: int = 1,
) -> RunResult:
    """Run a scenario and write ``results.csv`` and ``results.json`` into ``out``.

    Args:
        scenario: a :class:`Scenario`, a scenario file, or a built-in scenario name.
        out: output folder (None: compute in memory, write nothing, no resuming).
        quick: shrink the run as the scenario's ``quick`` section says (a smoke test).
        images: evaluate this many images instead of the scenario's (``--images``).
        snr: SNR values instead of the scenario's: a list for every user that sweeps, or
            ``{user: values}`` (``--snr``; :func:`~semcom.scenarios.plan.make_plan` says how).
        workers: processes evaluating SNR points in parallel (spawned, one torch thread each); the
            numbers are the same for any value.
        data_root: data root, overriding the scenario's ``dataset.root``.
        device: torch device for systems and channels.
        resume: reuse finished points in ``out/partial`` (False: discard them and start again).
        quiet: no progress bar.
        threads: torch threads of this process while it runs (None: one, like each worker process, so
            that serial and parallel runs give identical numbers; more threads may change the last
            digits).
        on_point: called in this process after each point is finished (and saved).
        backend: ``"local"`` (this process, or ``workers`` spawned processes) or ``"ray"`` (``workers``
            Ray actors; the same numbers, see :mod:`semcom.scenarios.ray_backend`).
        address: with ``backend="ray"``, a running Ray cluster's address (None: a local Ray for this run).
        codec_workers: processes that rate-match the SSCC systems' images in a serial run
            (:mod:`semcom.sscc.rate_pool`: each image always in the same process, so its encode cache
            serves every point); the same numbers as 1. Not with ``workers > 1`` or Ray.

    Raises:
        ScenarioError: invalid scenario, or ``out`` holds partial results of a different run.
        SemcomError: other failures (data, checkpoints), with a one-line reason.
    """
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    if workers < 1:
        raise SemcomError(f"workers must be at least 1, got {workers}")
    if backend not in ("local", "ray"):
        raise SemcomError(f"backend must be 'local' or 'ray', not {backend!r}")
    if codec_workers < 1:
        raise SemcomError(f"codec workers must be at least 1, got {codec_workers}")
    if codec_workers > 1 and (workers > 1 or backend != "local"):
        raise SemcomError("--codec-workers spreads the images of one process's SNR points; use it without "
                          "--workers and --backend ray (one or the other, not both)")
    plan = make_plan(scenario, quick=quick, images=images, snr=snr, data_root=data_root, device=device,
                     codec_workers=codec_workers)
    try:
        return _check_and_run(scenario, plan, out, resume=resume, workers=workers, quiet=quiet, threads=threads,
                              on_point=on_point, backend=backend, address=address)
    finally:
        process_cache().release_pool()  # a run's rate-matching processes end with it


def _check_and_run(scenario: Scenario, plan: RunPlan, out: str | Path | None, *, resume: bool, workers: int,
                   quiet: bool, threads: int | None, on_point: Callable[[PointResult], None] | None, backend: str,
                   address: str | None) -> RunResult:
    _, notes = check_plan(plan)  # builds the systems: a failure now, not in a worker after an hour
    for note in notes:
        warnings.warn(note, SemcomWarning, stacklevel=3)
    fingerprint = plan.fingerprint()
    started, t0 = datetime.now(UTC), time.perf_counter()
    out_dir = Path(out) if out is not None else None
    if out_dir is not None and out_dir.exists() and not out_dir.is_dir():
        raise SemcomError(f"{out_dir}: --out must be a folder for the results, and this is a file; "
                          "give a folder name")
    with out_lock(out_dir):
        return _run_locked(scenario, plan, out_dir, fingerprint, started, t0, resume=resume, workers=workers,
                           quiet=quiet, threads=threads, on_point=on_point, backend=backend, address=address)


def _run_locked(scenario: Scenario, plan: RunPlan, out_dir: Path | None, fingerprint: str, started: datetime,
                t0: float, *, resume: bool, workers: int, quiet: bool, threads: int | None,
                on_point: Callable[[PointResult], None] | None, backend: str = "local",
                address: str | None = None) -> RunResult:
    done: dict[int, PointResult] = {}
    if out_dir is not None:
        if not resume:
            shutil.rmtree(out_dir / PARTIAL_DIR, ignore_errors=True)
        done = load_partials(out_dir, plan)
    resumed = sorted(done)
    todo = [p for p in plan.points if p not in done]

    def finish(result: PointResult) -> None:
        done[result.point] = result
        if out_dir is not None:
            save_partial(out_dir, fingerprint, result)
        if on_point is not None:
            on_point(result)

    if backend == "ray" and todo:
        run_ray(plan, todo, len(done), finish, quiet, workers, address)
    elif workers == 1 or len(todo) <= 1:
        run_serial(plan, todo, len(done), finish, quiet, threads)
    else:
        run_parallel(plan, todo, len(done), finish, quiet, workers)

    results = [done[p] for p in plan.points]
    rows = _ordered_rows(scenario, results)
    meta = run_metadata(plan, results, rows, resumed=resumed, workers=workers, started=started,
                        elapsed=time.perf_counter() - t0, fingerprint=fingerprint)
    csv_path = json_path = None
    if out_dir is not None:
        save_reconstructions(out_dir, results, fingerprint)  # before the table, whose presence says "done"
        csv_path, json_path = write_results(out_dir, rows, meta)
        shutil.rmtree(out_dir / PARTIAL_DIR, ignore_errors=True)
    return RunResult(rows, meta, out_dir, csv_path, json_path)


def _ordered_rows(scenario: Scenario, results: list[PointResult]) -> list[dict[str, Any]]:
    """Rows ordered by system, user (file order), layer, then SNR point."""
    sys_rank = {s.label: i for i, s in enumerate(scenario.systems)}
    user_rank = {u.name: i for i, u in enumerate(scenario.users)}
    rows = [row for res in results for row in res.rows]
    return sorted(rows, key=lambda r: (sys_rank[r["system"]], user_rank[r["user"]], r["layer"], r["point"]))
