"""Evaluating a plan's SNR points: in this process, or in spawned worker processes; with progress.

Either way each point is :func:`semcom.scenarios.point.evaluate_point` and its result goes to
``finish`` in this process, which saves it; the numbers are the same for any number of workers,
because every random stream is seeded from its path (:class:`~semcom.scenarios.point.ScenarioSeeds`)
and every process computes with one torch thread unless told otherwise.
"""

from __future__ import annotations

import functools
import math
import multiprocessing
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from contextlib import contextmanager, nullcontext
from typing import Any

import torch

from semcom.processes import exit_with_parent
from semcom.scenarios.cache import process_cache
from semcom.scenarios.plan import RunPlan
from semcom.scenarios.point import PointResult, evaluate_point

__all__ = ["exit_with_parent", "init_worker", "progress_bar", "run_parallel", "run_serial"]


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


def init_worker() -> None:
    """A spawned worker: one torch thread (as a serial run), its own :class:`RunCache` for its points,
    and an exit when the run that started it dies."""
    exit_with_parent()
    torch.set_num_threads(1)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set in this process
        pass
    process_cache()


def progress_bar(quiet: bool, total: int, label: str) -> Any:
    """A rich progress bar on stderr with one task of ``total`` steps (``quiet``: none)."""
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


def run_serial(plan: RunPlan, todo: list[int], done: int, finish: Callable[[PointResult], None], quiet: bool,
               threads: int | None) -> None:
    """Evaluate the points ``todo`` in this process (``done`` others were resumed); the bar advances
    per system, batch, user and draw."""
    name, total = plan.scenario.name, len(plan.points)
    # One thread unless asked otherwise, from the first tensor on (the mean image is a sum too): worker
    # processes use one, and another thread count can change the last digits of sums, so --workers N
    # would not reproduce a serial run.
    with _torch_threads(1 if threads is None else threads):
        steps = 1
        if todo:
            state = process_cache().state(plan)
            batches = max(1, math.ceil(len(state.images) / plan.scenario.batch_size))
            steps = len(plan.scenario.systems) * batches * len(plan.scenario.users) * plan.draws
        with progress_bar(quiet, total * steps, name) as bar:
            tick = None
            if bar is not None:
                bar.advance(bar.task_ids[0], done * steps)
                tick = functools.partial(bar.advance, bar.task_ids[0])
            for p in todo:
                if bar is not None:
                    where = f"{plan.points.index(p) + 1}/{total}"
                    bar.update(bar.task_ids[0], description=f"{name}: SNR point {where}")
                finish(evaluate_point(plan, p, tick))


def run_parallel(plan: RunPlan, todo: list[int], done: int, finish: Callable[[PointResult], None],
                 quiet: bool, workers: int) -> None:
    """Evaluate the points ``todo`` in up to ``workers`` spawned processes, one SNR point per task."""
    ctx = multiprocessing.get_context("spawn")
    label = f"{plan.scenario.name}: SNR points ({workers} workers)"
    with progress_bar(quiet, len(plan.points), label) as bar, \
            ProcessPoolExecutor(max_workers=min(workers, len(todo)), mp_context=ctx,
                                initializer=init_worker) as pool:
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
