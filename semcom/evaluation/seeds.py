"""Where the random streams of an evaluation restart: the channel's own generator and torch's global one.

An evaluation sends batch b to link (user) u at SNR point p, Monte Carlo draw d. A
:class:`SeedSchedule` says, for each of these receptions, the seed to restart the channel's
generator with and the seed of torch's global generator around ``system.prepare`` and
``system.receive`` (the global one matters to systems that draw from it, e.g. random
interleavers); ``None`` leaves a stream where it is. Two schedules are in use:

* the scenario runner's (:class:`semcom.scenarios.point.ScenarioSeeds`): every reception gets seeds
  hashed from its path, so no number depends on what ran before;
* :class:`StreamPerSnr`, that of training and receiver evaluation: one channel stream per SNR,
  started once and continued over batches and draws.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

import torch

__all__ = ["NO_SEEDS", "NoSeeds", "SeedSchedule", "StreamPerSnr", "seeded"]


class SeedSchedule(Protocol):
    """Seeds of the random streams, per reception (see the module docstring)."""

    def prepare(self, point: int, link: str | None, batch: int) -> int | None:
        """Global torch seed around ``system.prepare`` of ``batch`` (``link`` None: a broadcast encoding)."""
        ...

    def channel(self, point: int, link: str, draw: int, batch: int) -> int | None:
        """Seed to restart the channel's generator with before this reception (None: continue)."""
        ...

    def receive(self, point: int, link: str, draw: int, batch: int) -> int | None:
        """Global torch seed around ``system.receive`` of this reception (None: leave it alone)."""
        ...


@dataclass(frozen=True)
class NoSeeds:
    """Restart nothing: the channel's stream and torch's global one run on from where they are."""

    def prepare(self, point: int, link: str | None, batch: int) -> int | None:
        return None

    def channel(self, point: int, link: str, draw: int, batch: int) -> int | None:
        return None

    def receive(self, point: int, link: str, draw: int, batch: int) -> int | None:
        return None


NO_SEEDS = NoSeeds()


@dataclass(frozen=True)
class StreamPerSnr(NoSeeds):
    """One channel stream per SNR: restarted at ``seed + step * point`` before the first reception
    (batch 0, draw 0) at SNR point ``point``, then continued over batches and draws; torch's global
    generator is left alone. ``step=0`` gives every SNR the same stream.

    Meant for one link per SNR point; with several, each link's first reception restarts the stream.
    """

    seed: int = 1234
    step: int = 1

    def channel(self, point: int, link: str, draw: int, batch: int) -> int | None:
        return self.seed + self.step * point if draw == 0 and batch == 0 else None


@contextmanager
def seeded(seed: int | None) -> Iterator[None]:
    """Run with torch's global generators (CPU, and CUDA where initialised) at ``seed``, then restore
    them; ``None``: run as is."""
    if seed is None:
        yield
        return
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield
