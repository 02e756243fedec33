"""A run's files: partial results for resuming, the results' metadata, and the lock on ``--out``.

* Each finished SNR point is written to ``OUT/partial/point-NNNN.json`` (atomically, see
  :func:`semcom.scenarios.results.atomic_write`) with the plan's fingerprint; a rerun of the same
  plan loads them (:func:`load_partials`) and skips those points; another plan's are refused.
* Each point's kept reconstructions travel in its partial file; :func:`save_reconstructions` writes
  those of all points into ``OUT/reconstructions.safetensors`` (the image grid's data).
* :func:`run_metadata` is everything ``results.json`` says besides the rows: versions, git commit,
  the scenario text and its sha256, seeds, checkpoints' descriptions, timing.
* :func:`out_lock` holds ``OUT/.semcom-run.lock`` (the pid) for the run, so that two runs never
  write into one folder.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import semcom
from semcom.errors import ScenarioError, SemcomError
from semcom.metrics import MAX_PSNR_DB
from semcom.scenarios.loader import scenario_sha256
from semcom.scenarios.plan import RunPlan
from semcom.scenarios.point import PointResult
from semcom.scenarios.reconstructions import RECONSTRUCTIONS_NAME, Reconstructions, write_reconstructions
from semcom.scenarios.results import atomic_write_text, git_info, jsonable, library_versions, nan_floats

__all__ = [
    "LOCK_NAME",
    "METRIC_NOTES",
    "PARTIAL_DIR",
    "load_partials",
    "out_lock",
    "partial_path",
    "run_metadata",
    "save_partial",
    "save_reconstructions",
]

PARTIAL_DIR = "partial"
LOCK_NAME = ".semcom-run.lock"

#: What every results file says about how the numbers were made.
METRIC_NOTES = {
    "psnr": f"10 log10(1/MSE) per image (pixels in [0, 1]), capped at {MAX_PSNR_DB:g} dB, then averaged",
    "ssim": "pytorch_msssim, Gaussian window 11, sigma 1.5, data range 1",
    "ms_ssim": "NaN for images of 160 px or less (five scales do not fit): MNIST and CIFAR-10",
    "accuracy": "top-1 over images and draws; NaN where the user has no classification task or the "
                "system gives no class scores",
    "outage_rate": "share of images and draws the receiver could not decode (it shows the dataset mean)",
    "std_ci95": "sample std over images x draws; ci95 = 1.96 std / sqrt(samples) (normal approximation)",
    "snr_db": "Es/N0 per complex symbol of the user; sweep_snr_db: SNR of the first sweeping user",
}


# -- partial results ----------------------------------------------------------------------------------


def partial_path(out_dir: Path, point: int) -> Path:
    """Where point ``point``'s partial result lives."""
    return out_dir / PARTIAL_DIR / f"point-{point:04d}.json"


def save_partial(out_dir: Path, fingerprint: str, result: PointResult) -> None:
    """Write one finished point (atomically), tagged with the plan's fingerprint."""
    doc = {"fingerprint": fingerprint, "point": result.point, "seconds": result.seconds,
           "systems": result.systems, "rows": result.rows}
    if result.images is not None:
        doc["images"] = result.images.to_json()
    atomic_write_text(partial_path(out_dir, result.point), json.dumps(jsonable(doc)) + "\n")


def load_partials(out_dir: Path, plan: RunPlan) -> dict[int, PointResult]:
    """The finished points of ``plan`` found in ``out_dir/partial`` (points outside the plan are ignored).

    Raises:
        SemcomError: an unreadable partial file.
        ScenarioError: partial results of another plan (scenario or settings changed).
    """
    done: dict[int, PointResult] = {}
    fingerprint = plan.fingerprint()
    for path in sorted((out_dir / PARTIAL_DIR).glob("point-*.json")):
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise SemcomError(f"{path}: unreadable partial result ({exc}); delete it or run with "
                              "--fresh") from None
        if doc.get("fingerprint") != fingerprint:
            raise ScenarioError(f"{out_dir} holds partial results of a different run (scenario or settings "
                                "changed); run with --fresh to discard them, or choose another --out")
        if doc["point"] in plan.points:
            rows = [nan_floats(r) for r in doc["rows"]]
            images = Reconstructions.from_json(doc["images"]) if doc.get("images") else None
            done[doc["point"]] = PointResult(doc["point"], rows, doc["systems"], doc["seconds"], images)
    return done


def save_reconstructions(out_dir: Path, results: list[PointResult], fingerprint: str) -> Path | None:
    """Write the kept reconstructions of all points (in the order of ``results``) into
    ``out_dir/reconstructions.safetensors``; None, and no file (an older one is removed), when no point
    kept any."""
    path = out_dir / RECONSTRUCTIONS_NAME
    parts = [r.images for r in results if r.images is not None]
    if not parts:
        path.unlink(missing_ok=True)
        return None
    return write_reconstructions(path, Reconstructions.merged(parts, fingerprint))


# -- the results' metadata ----------------------------------------------------------------------------


def run_metadata(plan: RunPlan, results: list[PointResult], rows: list[dict[str, Any]], *, resumed: list[int],
                 workers: int, started: datetime, elapsed: float, fingerprint: str) -> dict[str, Any]:
    """The fields of ``results.json`` other than the rows (provenance, settings, timing)."""
    sc = plan.scenario
    images = rows[0]["images"] if rows else plan.images
    return {
        "semcom": semcom.__version__,
        "versions": library_versions(),
        "git": git_info(),
        "scenario": {"name": sc.name, "description": sc.description,
                     "path": str(sc.source) if sc.source is not None else None,
                     "sha256": scenario_sha256(sc), "text": sc.text},
        "seed": sc.seed,
        "quick": plan.quick,
        "overrides": plan.overrides,
        "fingerprint": fingerprint,
        "dataset": {"name": sc.dataset.name, "split": sc.dataset.split, "images": images,
                    "root": plan.data_root},
        "channel": sc.channel.model_dump(mode="json"),
        "draws": plan.draws,
        "batch_size": sc.batch_size,
        "device": plan.device,
        "workers": workers,
        **({"codec_workers": plan.codec_workers} if plan.codec_workers > 1 else {}),
        "points": list(plan.points),
        "sweep": {"users": sc.sweeping_users(), "points_in_full_sweep": sc.num_points},
        "users": [{"name": u.name, "resolution": u.resolution, "tasks": list(u.tasks),
                   "snr_db": [plan.snr[u.name][p] for p in plan.points]} for u in sc.users],
        "systems": results[0].systems if results else [],
        "metrics": METRIC_NOTES,
        "timing": {"started_utc": started.isoformat(timespec="seconds"),
                   "finished_utc": datetime.now(UTC).isoformat(timespec="seconds"),
                   "elapsed_s": round(elapsed, 3),
                   "compute_s": round(sum(r.seconds for r in results), 3),
                   "resumed_points": resumed},
    }


# -- the lock on the output folder --------------------------------------------------------------------


@contextmanager
def out_lock(out_dir: Path | None) -> Iterator[None]:
    """Hold ``out_dir/.semcom-run.lock`` (the pid) for the run: a second run into the same folder is
    refused while the first is alive; a lock left by a process that is gone is taken over. Creates
    ``out_dir``; None: no folder, no lock.

    Raises:
        SemcomError: another live run holds the folder, or it cannot be written.
    """
    if out_dir is None:
        yield
        return
    lock = out_dir / LOCK_NAME
    for _ in range(2):
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                holder = int(lock.read_text().strip() or "0")
            except (OSError, ValueError):
                holder = 0
            if holder > 0 and _alive(holder):
                raise SemcomError(f"{out_dir} is in use by another semcom run (pid {holder}); wait for it to "
                                  f"finish, or give another --out") from None
            lock.unlink(missing_ok=True)  # left by a run that died
            continue
        except OSError as exc:  # read-only, missing parent on a special filesystem, full disk...
            raise SemcomError(f"{out_dir}: cannot write results there ({exc.strerror}); give a writable "
                              "--out") from None
        with os.fdopen(fd, "w") as fh:
            fh.write(f"{os.getpid()}\n")
        break
    else:  # pragma: no cover - another run took it between our checks
        raise SemcomError(f"{out_dir} is in use by another semcom run; give another --out")
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True
