"""What one process keeps between SNR points and runs: the dataset split and the systems of a plan.

Building a point's systems (loading checkpoints, fitting nothing) and loading a dataset split take
longer than evaluating a small point, so a process keeps the last of each: a :class:`RunCache` holds
one split (by dataset, split and root) and the :class:`PointState` of one plan (by fingerprint),
and replaces them when asked for others. Each process has its own, :func:`process_cache`: the
process running a serial sweep, and every spawned worker of a parallel one (which reuses it for
all the points it evaluates). Consecutive runs in one process (tests, a notebook) reuse the split.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from semcom.channels.base import Channel
from semcom.data import ImageDataset, load_dataset
from semcom.scenarios.factory import SystemContext, build_systems, describe_system
from semcom.scenarios.plan import RunPlan
from semcom.sscc.codecs.cache import run_cache_from_env
from semcom.sscc.rate_pool import RateMatchingPool
from semcom.systems import TransmissionSystem

__all__ = ["PointState", "RunCache", "process_cache"]


@dataclass
class PointState:
    """What evaluating a point of a plan needs, built once per process.

    Attributes:
        images: the images evaluated (the plan's subset of the split).
        systems: ``{label: system}``, built from the scenario.
        channel: the scenario's channel (every reception reseeds it).
        descriptions: each system's facts for the results file, in scenario order.
    """

    images: ImageDataset
    systems: dict[str, TransmissionSystem]
    channel: Channel
    descriptions: list[dict[str, Any]]


class RunCache:
    """The last dataset split and the last plan's :class:`PointState` of one process (one of each)."""

    def __init__(self) -> None:
        self._split_key: tuple[str, str, str | None] | None = None
        self._split: ImageDataset | None = None
        self._plan_key: str | None = None
        self._state: PointState | None = None
        self._pool: RateMatchingPool | None = None

    def split(self, name: str, split: str, root: str | None) -> ImageDataset:
        """A whole dataset split, loaded unless it is the one kept."""
        key = (name, split, root)
        if self._split is None or self._split_key != key:
            self._split = None  # let the old one go before loading the next
            self._split = load_dataset(name, split, root)
            self._split_key = key
        return self._split

    def state(self, plan: RunPlan) -> PointState:
        """The :class:`PointState` of ``plan``, built unless it is the one kept."""
        key = plan.fingerprint()
        if self._state is None or self._plan_key != key:
            sc = plan.scenario
            full = self.split(sc.dataset.name, sc.dataset.split, plan.data_root)
            self.release_pool()
            if plan.codec_workers > 1:
                self._pool = RateMatchingPool(plan.codec_workers)
            context = SystemContext(dataset=sc.dataset.name, image_shape=full.shape, num_classes=full.num_classes,
                                    mean_image=full.mean_image().to(plan.device), device=plan.device,
                                    base_dir=sc.base_dir(), encode_cache=run_cache_from_env(), rate_pool=self._pool)
            data = full.subset(plan.images) if plan.images is not None else full
            systems = build_systems(sc, context)
            channel = sc.channel.build(seed=sc.seed, device=plan.device)
            descriptions = [describe_system(spec, systems[spec.label], sc.base_dir()) for spec in sc.systems]
            self._state = None  # one plan at a time
            self._state = PointState(data, systems, channel, descriptions)
            self._plan_key = key
        return self._state

    def release_pool(self) -> None:
        """Stop the rate-matching processes of the kept plan, and forget the plan's systems (they used them)."""
        if self._pool is not None:
            self._pool.close()
            self._pool = None
            self._state = None
            self._plan_key = None


_PROCESS_CACHE: RunCache | None = None


def process_cache() -> RunCache:
    """This process's :class:`RunCache` (made on first use; a spawned worker starts with none)."""
    global _PROCESS_CACHE
    if _PROCESS_CACHE is None:
        _PROCESS_CACHE = RunCache()
    return _PROCESS_CACHE
