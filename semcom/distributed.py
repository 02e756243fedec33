"""Training on several processes: the process group that ``torchrun`` describes, and what ranks share.

``torchrun --nproc_per_node N -m semcom train ...`` starts N copies of a command and tells each, in its
environment, who it is: ``RANK`` (0..N-1 over all machines), ``WORLD_SIZE`` (N over all machines),
``LOCAL_RANK`` (its index on its machine) and ``MASTER_ADDR``/``MASTER_PORT`` (where rank 0 listens).
:func:`process_group` joins them: the ``gloo`` backend on CPU, ``nccl`` on CUDA GPUs (each process
on GPU ``LOCAL_RANK``). Without ``WORLD_SIZE`` in the environment there is no group: one process,
rank 0 of 1, and nothing is communicated (a plain run is the same run as before this module existed).

Rules the training code keeps: every rank takes the same random draws for the whole batch and keeps
its own slice of it (:meth:`ProcessGroup.shard`); gradients are averaged by
:class:`torch.nn.parallel.DistributedDataParallel`; rank 0 alone evaluates and writes files, and
the other ranks wait for it at :meth:`ProcessGroup.barrier`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

__all__ = ["SINGLE", "ProcessGroup", "launched", "main_process", "process_group"]

# how long ranks wait for each other (rank 0 scores the test split while the others wait at a barrier)
_TIMEOUT = timedelta(hours=2)


def launched() -> bool:
    """Whether this process was started by ``torchrun`` (or anything else that sets ``WORLD_SIZE``)."""
    return "WORLD_SIZE" in os.environ


def main_process() -> bool:
    """Whether this process is rank 0 of a ``torchrun`` launch, or runs alone (``RANK`` unset)."""
    return int(os.environ.get("RANK", "0")) == 0


@dataclass(frozen=True)
class ProcessGroup:
    """This process's place among the training processes.

    ``backend`` is ``None`` for a single process that joined no group (``world_size`` 1).
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def main(self) -> bool:
        """Whether this process is rank 0, the one that evaluates, logs and writes files."""
        return self.rank == 0

    @property
    def joined(self) -> bool:
        """Whether there is a process group to talk to (even one of a single process)."""
        return self.backend is not None

    def describe(self) -> dict[str, int | str | None]:
        """What a card records: ``{"world_size": N, "backend": "gloo" | "nccl" | None}``."""
        return {"world_size": self.world_size, "backend": self.backend}

    def shard(self, batch: int) -> tuple[int, int]:
        """Rows ``[lo, hi)`` of a global batch of ``batch`` rows that this rank trains on.

        Rank r gets ``batch / N`` consecutive rows from row ``r * batch / N``: equal shares, so the mean of
        the ranks' mean losses (what averaging their gradients takes the gradient of) is the mean over
        the whole batch.
        """
        if batch % self.world_size:
            raise ValueError(f"a batch of {batch} does not split evenly over {self.world_size} processes")
        share = batch // self.world_size
        return self.rank * share, (self.rank + 1) * share

    def barrier(self) -> None:
        """Wait until every rank gets here (nothing to wait for without a group)."""
        if self.joined:
            dist.barrier()

    def mean(self, value: torch.Tensor) -> torch.Tensor:
        """The mean of ``value`` over the ranks (same shape; ``value`` itself without a group)."""
        if not self.joined:
            return value
        total = value.detach().clone()
        dist.all_reduce(total)
        return total / self.world_size

    def average_gradients(self, params: Iterable[torch.Tensor]) -> None:
        """Replace each gradient by its mean over the ranks (what DistributedDataParallel does), in one
        all-reduce; for training loops that call ``backward`` themselves (task weightings)."""
        grads = [p.grad for p in params if p.grad is not None]
        if not self.joined or not grads:
            return
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        flat /= self.world_size
        for g, part in zip(grads, torch.split(flat, [g.numel() for g in grads]), strict=True):
            g.copy_(part.view_as(g))

    def same_as_main(self, tensors: Iterable[torch.Tensor]) -> None:
        """Overwrite ``tensors`` (e.g. a model's parameters) with rank 0's, so that all ranks start alike."""
        if self.joined:
            with torch.no_grad():
                for t in tensors:
                    dist.broadcast(t.data, src=0)

    def from_main(self, values: list[float]) -> list[float]:
        """Rank 0's ``values`` on every rank (what it decided, e.g. that the time budget is spent)."""
        if not self.joined:
            return values
        box = [values]
        dist.broadcast_object_list(box, src=0)
        return list(box[0])


SINGLE = ProcessGroup()


@contextmanager
def process_group(device: str) -> Iterator[tuple[ProcessGroup, str]]:
    """Join the group ``torchrun`` describes for training on ``device``; leave it at the end.

    Yields the group and the device this rank trains on: ``cuda:LOCAL_RANK`` for a CUDA ``device``
    (backend ``nccl``), else ``device`` (backend ``gloo``). Without ``WORLD_SIZE`` it yields
    :data:`SINGLE` and ``device`` and does nothing else. A group that already exists (a caller set it
    up) is used as it is and left open.
    """
    if not launched():
        yield SINGLE, device
        return
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = device.startswith("cuda")
    if cuda:
        device = f"cuda:{local_rank}"
        torch.cuda.set_device(local_rank)
    owner = not dist.is_initialized()
    if owner:
        dist.init_process_group("nccl" if cuda else "gloo", timeout=_TIMEOUT)
    group = ProcessGroup(dist.get_rank(), dist.get_world_size(), local_rank, dist.get_backend())
    try:
        yield group, device
    finally:
        if owner:
            dist.destroy_process_group()
