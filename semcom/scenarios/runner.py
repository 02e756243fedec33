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

Resuming: with an output folder, each finished point is written to ``partial/point-NNNN.json``
(atomically) before the next starts; a rerun with the same scenario and settings skips those points,
and the final table is the same as that of an uninterrupted run. The folder is removed once
``results.csv`` and ``results.json`` are written.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import multiprocessing
import os
import shutil
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

import semcom
from semcom.errors import ScenarioError, SemcomError
from semcom.metrics import MAX_PSNR_DB, ms_ssim, pooled_psnr, psnr, ssim, summarize
from semcom.scenarios.factory import SystemContext, build_systems, describe_system
from semcom.scenarios.loader import load_scenario, scenario_sha256
from semcom.scenarios.results import (
    atomic_write_text,
    git_info,
    jsonable,
    library_versions,
    nan_floats,
    write_results,
)
from semcom.scenarios.schema import Scenario, UserSpec
from semcom.systems import LayerOutput, TransmissionSystem

__all__ = [
    "PointResult",
    "RunPlan",
    "RunResult",
    "derive_seed",
    "evaluate_point",
    "make_plan",
    "run_scenario",
]

PARTIAL_DIR = "partial"

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


def _spread(count: int, keep: int) -> list[int]:
    """``keep`` indices of ``range(count)``: first, last and evenly between."""
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
        points = _spread(len(points), q.snr_points)
    root: Path | None = None
    if data_root is not None:
        root = Path(data_root)
    elif scenario.dataset.root is not None:  # relative to the scenario file
        root = scenario.base_dir() / Path(scenario.dataset.root).expanduser()
    return RunPlan(scenario, images, draws, tuple(points), scenario.snr_table(), quick,
                   None if root is None else str(root), device)


# -- one SNR point ------------------------------------------------------------------------------------


@dataclass
class _State:
    """What evaluating a point needs, built once per process."""

    images: Any  # ImageDataset
    systems: dict[str, TransmissionSystem]
    channel: torch.nn.Module
    descriptions: list[dict[str, Any]]


_STATES: dict[str, _State] = {}  # per process, by plan fingerprint
_SPLITS: dict[tuple[str, str, str | None], Any] = {}  # the last split loaded in this process


def _load_split(name: str, split: str, root: str | None) -> Any:
    """A whole dataset split, kept in memory for the next run of this process (one split at most)."""
    key = (name, split, root)
    if key not in _SPLITS:
        from semcom.data import load_dataset

        data = load_dataset(name, split, root)
        _SPLITS.clear()
        _SPLITS[key] = data
    return _SPLITS[key]


def _state(plan: RunPlan) -> _State:
    key = plan.fingerprint()
    if key not in _STATES:
        sc = plan.scenario
        full = _load_split(sc.dataset.name, sc.dataset.split, plan.data_root)
        context = SystemContext(dataset=sc.dataset.name, image_shape=full.shape, num_classes=full.num_classes,
                                mean_image=full.mean_image().to(plan.device), device=plan.device,
                                base_dir=sc.base_dir())
        data = full.subset(plan.images) if plan.images is not None else full
        systems = build_systems(sc, context)
        channel = sc.channel.build(seed=sc.seed, device=plan.device)
        descriptions = [describe_system(spec, systems[spec.label], sc.base_dir()) for spec in sc.systems]
        _STATES.clear()  # one plan per process at a time
        _STATES[key] = _State(data, systems, channel, descriptions)
    return _STATES[key]


@dataclass
class _Collector:
    """Per-image values of one (system, user, layer) over batches and draws."""

    psnr: list[torch.Tensor] = field(default_factory=list)
    ssim: list[torch.Tensor] = field(default_factory=list)
    ms_ssim: list[torch.Tensor] = field(default_factory=list)
    correct: list[torch.Tensor] = field(default_factory=list)
    outage: list[torch.Tensor] = field(default_factory=list)
    info: list[tuple[int, dict[str, Any]]] = field(default_factory=list)

    def add(self, images: torch.Tensor, labels: torch.Tensor, out: LayerOutput, user: UserSpec) -> None:
        batch = images.shape[0]
        if "reconstruction" in user.tasks:
            rec = out.images.to(images.device)
            self.psnr.append(psnr(images, rec).cpu())
            self.ssim.append(ssim(images, rec).cpu())
            self.ms_ssim.append(ms_ssim(images, rec).cpu())
        if "classification" in user.tasks and out.logits is not None:
            self.correct.append((out.logits.argmax(dim=1).to(labels.device) == labels).float().cpu())
        outage = out.outage if out.outage is not None else torch.zeros(batch, dtype=torch.bool)
        self.outage.append(outage.float().cpu())
        if out.info:
            self.info.append((batch, out.info))

    def stats(self) -> dict[str, Any]:
        """The row's metric columns: mean, std and 95% half-width of each metric, and the info."""
        psnr_, ssim_, ms_ssim_, acc, out = (summarize(torch.cat(v) if v else torch.empty(0)) for v in (
            self.psnr, self.ssim, self.ms_ssim, self.correct, self.outage))
        pooled = float(pooled_psnr(torch.cat(self.psnr))) if self.psnr else math.nan
        return {"psnr_mean": psnr_.mean, "psnr_std": psnr_.std, "psnr_ci95": psnr_.ci95, "psnr_pooled": pooled,
                "ssim_mean": ssim_.mean, "ssim_std": ssim_.std, "ssim_ci95": ssim_.ci95,
                "ms_ssim_mean": ms_ssim_.mean, "ms_ssim_std": ms_ssim_.std, "ms_ssim_ci95": ms_ssim_.ci95,
                "accuracy": acc.mean, "accuracy_std": acc.std, "accuracy_ci95": acc.ci95,
                "outage_rate": out.mean, "outage_ci95": out.ci95, "info": _merge_info(self.info)}


def _info_value(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return float(value.float().mean()) if value.numel() else math.nan
    if isinstance(value, bool | int | float):
        return float(value)
    if isinstance(value, list | tuple):  # e.g. one MCS per layer
        return " ".join("-" if v is None else str(v) for v in value)
    return str(value)


def _merge_info(items: list[tuple[int, dict[str, Any]]]) -> dict[str, Any]:
    """Numbers: mean weighted by batch size; anything else: the distinct values, sorted."""
    numbers: dict[str, list[tuple[int, float]]] = {}
    words: dict[str, set[str]] = {}
    for weight, info in items:
        for key, raw in info.items():
            value = _info_value(raw)
            if isinstance(value, float):
                numbers.setdefault(key, []).append((weight, value))
            else:
                words.setdefault(key, set()).add(value)
    out: dict[str, Any] = {k: sum(w * v for w, v in vs) / sum(w for w, _ in vs) for k, vs in numbers.items()}
    out.update({k: ",".join(sorted(v)) for k, v in words.items()})
    return dict(sorted(out.items()))


@dataclass
class PointResult:
    """The rows of one SNR point, the systems' descriptions and the seconds it took."""

    point: int
    rows: list[dict[str, Any]]
    systems: list[dict[str, Any]]
    seconds: float


@contextmanager
def _seeded(seed: int) -> Iterator[None]:
    """Run with the global torch generators at ``seed``, then restore them."""
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def evaluate_point(plan: RunPlan, point: int, tick: Callable[[], None] | None = None) -> PointResult:
    """Evaluate every system for every user at SNR point ``point`` (an index into the full sweep).

    ``tick`` is called after each (system, batch).
    """
    start = time.perf_counter()
    state = _state(plan)
    sc = plan.scenario
    snrs = {u.name: plan.snr[u.name][point] for u in sc.users}
    rows: list[dict[str, Any]] = []
    with torch.no_grad():
        for spec in sc.systems:
            label = spec.label
            system = state.systems[label]
            # a system with fewer layers than a user asks for serves it with all the layers it has
            depth = {u.name: min(u.resolution, system.num_layers) for u in sc.users}
            collect = {(u.name, r): _Collector() for u in sc.users for r in range(1, depth[u.name] + 1)}
            for b, (images, labels) in enumerate(state.images.batches(sc.batch_size)):
                images, labels = images.to(plan.device), labels.to(plan.device)
                tx = None
                if spec.mode == "broadcast":
                    with _seeded(derive_seed(sc.seed, "prepare", label, point, b)):
                        tx = system.prepare(images, [snrs[u.name] for u in sc.users])
                for user in sc.users:
                    snr = snrs[user.name]
                    if spec.mode == "unicast":
                        with _seeded(derive_seed(sc.seed, "prepare", label, user.name, point, b)):
                            tx = system.prepare(images, [snr])
                    for draw in range(plan.draws):
                        state.channel.seed(derive_seed(sc.seed, "channel", label, user.name, point, draw, b))
                        with _seeded(derive_seed(sc.seed, "receive", label, user.name, point, draw, b)):
                            outs = system.receive(tx, state.channel, snr, depth[user.name])
                        if [o.layer for o in outs] != list(range(1, depth[user.name] + 1)):
                            raise SemcomError(f"system '{label}' returned layers {[o.layer for o in outs]} "
                                              f"for resolution {depth[user.name]} (expected "
                                              f"1..{depth[user.name]})")
                        for out in outs:
                            collect[(user.name, out.layer)].add(images, labels, out, user)
                if tick is not None:
                    tick()
            for user in sc.users:
                for r in range(1, depth[user.name] + 1):
                    rows.append({"system": label, "kind": str(system.kind), "user": user.name, "layer": r,
                                 "symbols": int(sum(system.layer_symbols[:r])),
                                 "point": point, "snr_db": snrs[user.name],
                                 "sweep_snr_db": plan.sweep_snr(point),
                                 "images": len(state.images), "draws": plan.draws,
                                 "samples": len(state.images) * plan.draws,
                                 **collect[(user.name, r)].stats()})
    return PointResult(point, rows, state.descriptions, time.perf_counter() - start)


@contextmanager
def _torch_threads(threads: int | None) -> Iterator[None]:
    """Run with ``threads`` torch threads (None: unchanged), then restore the setting."""
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _init_worker() -> None:
    torch.set_num_threads(1)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set in this process
        pass


# -- partial results ----------------------------------------------------------------------------------


def _partial_path(out_dir: Path, point: int) -> Path:
    return out_dir / PARTIAL_DIR / f"point-{point:04d}.json"


def _save_partial(out_dir: Path, fingerprint: str, result: PointResult) -> None:
    doc = {"fingerprint": fingerprint, "point": result.point, "seconds": result.seconds,
           "systems": result.systems, "rows": result.rows}
    atomic_write_text(_partial_path(out_dir, result.point), json.dumps(jsonable(doc)) + "\n")


def _load_partials(out_dir: Path, plan: RunPlan) -> dict[int, PointResult]:
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
            done[doc["point"]] = PointResult(doc["point"], rows, doc["systems"], doc["seconds"])
    return done


# -- the run ------------------------------------------------------------------------------------------


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


def _progress(quiet: bool, total: int, label: str) -> Any:
    if quiet:
        return nullcontext(None)
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), TimeRemainingColumn(), console=Console(stderr=True))
    progress.add_task(label, total=total)
    return progress


def _run_serial(plan: RunPlan, todo: list[int], done: int, finish: Callable[[PointResult], None], quiet: bool,
                threads: int | None) -> None:
    """Evaluate ``todo`` in this process; the bar advances per system and batch."""
    name, total = plan.scenario.name, len(plan.points)
    # One thread unless asked otherwise, from the first tensor on (the mean image is a sum too): worker
    # processes use one, and another thread count can change the last digits of sums, so --workers N
    # would not reproduce a serial run.
    with _torch_threads(1 if threads is None else threads):
        steps = 1
        if todo:
            state = _state(plan)
            steps = len(plan.scenario.systems) * max(1, math.ceil(len(state.images) / plan.scenario.batch_size))
        with _progress(quiet, total * steps, name) as bar:
            tick = None
            if bar is not None:
                bar.advance(bar.task_ids[0], done * steps)
                tick = functools.partial(bar.advance, bar.task_ids[0])
            for p in todo:
                if bar is not None:
                    where = f"{plan.points.index(p) + 1}/{total}"
                    bar.update(bar.task_ids[0], description=f"{name}: SNR point {where}")
                finish(evaluate_point(plan, p, tick))


def _run_parallel(plan: RunPlan, todo: list[int], done: int, finish: Callable[[PointResult], None],
                  quiet: bool, workers: int) -> None:
    """Evaluate ``todo`` in spawned worker processes, one SNR point per task."""
    ctx = multiprocessing.get_context("spawn")
    label = f"{plan.scenario.name}: SNR points ({workers} workers)"
    with _progress(quiet, len(plan.points), label) as bar, \
            ProcessPoolExecutor(max_workers=min(workers, len(todo)), mp_context=ctx,
                                initializer=_init_worker) as pool:
        if bar is not None:
            bar.advance(bar.task_ids[0], done)
        pending = {pool.submit(evaluate_point, plan, p) for p in todo}
        try:
            while pending:
                finished, pending = wait(pending, return_when=FIRST_EXCEPTION)
                for fut in finished:
                    finish(fut.result())
                    if bar is not None:
                        bar.advance(bar.task_ids[0])
        except BaseException:
            for fut in pending:
                fut.cancel()
            raise


def run_scenario(
    scenario: Scenario | str | Path,
    out: str | Path | None = None,
    *,
    quick: bool = False,
    workers: int = 1,
    data_root: str | Path | None = None,
    device: str = "cpu",
    resume: bool = True,
    quiet: bool = True,
    threads: int | None = None,
    on_point: Callable[[PointResult], None] | None = None,
) -> RunResult:
    """Run a scenario and write ``results.csv`` and ``results.json`` into ``out``.

    Args:
        scenario: a :class:`Scenario`, a scenario file, or a built-in scenario name.
        out: output folder (None: compute in memory, write nothing, no resuming).
        quick: shrink the run as the scenario's ``quick`` section says (a smoke test).
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

    Raises:
        ScenarioError: invalid scenario, or ``out`` holds partial results of a different run.
        SemcomError: other failures (data, checkpoints), with a one-line reason.
    """
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    if workers < 1:
        raise SemcomError(f"workers must be at least 1, got {workers}")
    plan = make_plan(scenario, quick=quick, data_root=data_root, device=device)
    fingerprint = plan.fingerprint()
    started, t0 = datetime.now(UTC), time.perf_counter()
    out_dir = Path(out) if out is not None else None
    if out_dir is not None and out_dir.exists() and not out_dir.is_dir():
        raise SemcomError(f"{out_dir}: --out must be a folder for the results, and this is a file; "
                          "give a folder name")
    with _out_lock(out_dir):
        return _run_locked(scenario, plan, out_dir, fingerprint, started, t0, resume=resume, workers=workers,
                           quiet=quiet, threads=threads, on_point=on_point)


LOCK_NAME = ".semcom-run.lock"


@contextmanager
def _out_lock(out_dir: Path | None) -> Iterator[None]:
    """Hold ``out_dir/.semcom-run.lock`` (the pid) for the run: a second run into the same folder is
    refused while the first is alive; a lock left by a process that is gone is taken over."""
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


def _run_locked(scenario: Scenario, plan: RunPlan, out_dir: Path | None, fingerprint: str, started: datetime,
                t0: float, *, resume: bool, workers: int, quiet: bool, threads: int | None,
                on_point: Callable[[PointResult], None] | None) -> RunResult:
    done: dict[int, PointResult] = {}
    if out_dir is not None:
        if not resume:
            shutil.rmtree(out_dir / PARTIAL_DIR, ignore_errors=True)
        done = _load_partials(out_dir, plan)
    resumed = sorted(done)
    todo = [p for p in plan.points if p not in done]

    def finish(result: PointResult) -> None:
        done[result.point] = result
        if out_dir is not None:
            _save_partial(out_dir, fingerprint, result)
        if on_point is not None:
            on_point(result)

    if workers == 1 or len(todo) <= 1:
        _run_serial(plan, todo, len(done), finish, quiet, threads)
    else:
        _run_parallel(plan, todo, len(done), finish, quiet, workers)

    results = [done[p] for p in plan.points]
    rows = _ordered_rows(scenario, results)
    meta = _metadata(plan, results, rows, resumed=resumed, workers=workers, started=started,
                     elapsed=time.perf_counter() - t0, fingerprint=fingerprint)
    csv_path = json_path = None
    if out_dir is not None:
        csv_path, json_path = write_results(out_dir, rows, meta)
        shutil.rmtree(out_dir / PARTIAL_DIR, ignore_errors=True)
    return RunResult(rows, meta, out_dir, csv_path, json_path)


def _ordered_rows(scenario: Scenario, results: list[PointResult]) -> list[dict[str, Any]]:
    """Rows ordered by system, user (file order), layer, then SNR point."""
    sys_rank = {s.label: i for i, s in enumerate(scenario.systems)}
    user_rank = {u.name: i for i, u in enumerate(scenario.users)}
    rows = [row for res in results for row in res.rows]
    return sorted(rows, key=lambda r: (sys_rank[r["system"]], user_rank[r["user"]], r["layer"], r["point"]))


def _metadata(plan: RunPlan, results: list[PointResult], rows: list[dict[str, Any]], *, resumed: list[int],
              workers: int, started: datetime, elapsed: float, fingerprint: str) -> dict[str, Any]:
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
        "fingerprint": fingerprint,
        "dataset": {"name": sc.dataset.name, "split": sc.dataset.split, "images": images,
                    "root": plan.data_root},
        "channel": sc.channel.model_dump(mode="json"),
        "draws": plan.draws,
        "batch_size": sc.batch_size,
        "device": plan.device,
        "workers": workers,
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
