"""Evaluating a plan's SNR points on Ray: a laptop's cores, or a cluster (``semcom run --backend ray``).

The work units are the local runner's: one SNR point each, :func:`semcom.scenarios.point.evaluate_point`
with the same per-point seeds, so a Ray run writes the same table as a serial one. Each Ray worker is
an actor that keeps its process's :class:`~semcom.scenarios.cache.RunCache` (the dataset split and
the built systems) across the points it evaluates, computes with one torch thread, and returns each
:class:`~semcom.scenarios.point.PointResult` to this process, which saves it (resume and the ``--out``
lock work as in a local run).

Ray is an optional dependency (``pip install 'semcom[ray]'``). The user's opt-ins
(``SEMCOM_ALLOW_CODE``, ``SEMCOM_ALLOW_UNVERIFIED``, ...) and ``PYTHONPATH`` travel to the workers.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from semcom.errors import SemcomError
from semcom.scenarios.plan import RunPlan
from semcom.scenarios.point import PointResult

__all__ = ["run_ray"]


class _PointWorker:
    """A Ray actor: evaluates points of one plan, keeping what it built between them."""

    def __init__(self) -> None:
        from semcom.scenarios.executor import init_worker

        init_worker()

    def evaluate(self, plan: RunPlan, point: int) -> PointResult:
        from semcom.scenarios.point import evaluate_point

        return evaluate_point(plan, point)


def _worker_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k.startswith("SEMCOM_") or k == "PYTHONPATH"}


def run_ray(plan: RunPlan, todo: list[int], done: int, finish: Callable[[PointResult], None], quiet: bool,
            workers: int, address: str | None = None) -> None:
    """Evaluate the points ``todo`` on ``workers`` Ray actors, each result to ``finish`` here.

    Args:
        address: a running Ray cluster (``ray start --head`` prints it; ``auto`` finds a local one);
            None starts a local Ray with ``workers`` CPUs for this run and stops it afterwards.
    """
    try:
        import ray
        from ray.util import ActorPool
    except ImportError:
        raise SemcomError("--backend ray needs Ray: pip install 'semcom[ray]' (or pip install ray)") from None
    from semcom.scenarios.executor import progress_bar

    started_here = not ray.is_initialized()
    if started_here:
        options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                   "runtime_env": {"env_vars": _worker_env()}}
        if address is None:
            options["num_cpus"] = workers
        try:
            ray.init(address=address, **options)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise SemcomError(f"cannot start or reach Ray at {address or 'a new local instance'}: {exc}") from None
    try:
        actor = ray.remote(num_cpus=1)(_PointWorker)
        pool = ActorPool([actor.remote() for _ in range(max(1, min(workers, len(todo))))])
        label = f"{plan.scenario.name}: SNR points (Ray, {workers} workers)"
        with progress_bar(quiet, len(plan.points), label) as bar:
            if bar is not None:
                bar.advance(bar.task_ids[0], done)
            for result in pool.map_unordered(lambda a, p: a.evaluate.remote(plan, p), todo):
                finish(result)
                if bar is not None:
                    bar.advance(bar.task_ids[0])
    except ray.exceptions.RayTaskError as exc:
        cause = exc.as_instanceof_cause()
        if isinstance(cause, SemcomError):
            raise SemcomError(str(cause).splitlines()[-1]) from None
        raise
    finally:
        if started_here:
            ray.shutdown()
