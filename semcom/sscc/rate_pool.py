"""Rate matching spread over processes, each image always in the same one.

Rate matching (the codec's best quality per image and bit budget, :mod:`semcom.sscc.source`) is most
of the compute of an SSCC sweep with a slow codec, and each image is coded independently. A
:class:`RateMatchingPool` sends the images of a batch to ``workers`` spawned processes. Which process
codes an image is fixed by the image's contents (its digest), so one process sees that image at every
SNR point, channel draw, budget and SSCC system of the run, and its encode cache
(:class:`~semcom.sscc.codecs.cache.EncodeCache`, bounded by ``SEMCOM_CODEC_CACHE_MB``) serves it as
well as a serial run's cache would. The payloads are the serial ones byte for byte (encodes are
deterministic), so a run's numbers do not depend on the number of workers.

Splitting SNR points over processes instead (``semcom run --workers``) gives each process only some
of the points, and its cache misses the encodes the other processes made; for codec-bound sweeps the
pool uses the cores better.
"""

from __future__ import annotations

import copy
import multiprocessing
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor

import torch

from semcom.processes import exit_with_parent
from semcom.sscc.codecs import ImageCodec
from semcom.sscc.codecs.cache import EncodeCache, image_digest, run_cache_from_env
from semcom.sscc.source import Layering, source_code_image

__all__ = ["RateMatchingPool"]

# this worker process's encode caches, by codec settings (one per codec of the run)
_WORKER_CACHES: dict[str, EncodeCache | None] = {}


def _init_worker() -> None:
    exit_with_parent()
    torch.set_num_threads(1)


def _code_images(codec: ImageCodec, images: torch.Tensor, budgets: list[list[int | None]], layering: Layering,
                 start: torch.Tensor) -> list[list[bytes | None]]:
    """In a worker: :func:`source_code_image` for each image, with this process's cache for ``codec``."""
    key = codec.cache_key()
    if key not in _WORKER_CACHES:
        _WORKER_CACHES[key] = run_cache_from_env()
    codec.encode_cache = _WORKER_CACHES[key]
    return [source_code_image(codec, image, b, layering, start) for image, b in zip(images, budgets, strict=True)]


class RateMatchingPool:
    """``workers`` processes that rate-match images; see the module docstring.

    Args:
        workers: processes (each with one torch thread), at least 2.
    """

    def __init__(self, workers: int) -> None:
        if workers < 2:
            raise ValueError(f"a rate-matching pool needs at least 2 workers, got {workers}")
        context = multiprocessing.get_context("spawn")
        # one single-process executor per worker: an image's process is chosen here, not by the pool
        self._executors = [ProcessPoolExecutor(1, mp_context=context, initializer=_init_worker)
                           for _ in range(workers)]

    @property
    def workers(self) -> int:
        """The number of processes."""
        return len(self._executors)

    def worker_of(self, image: torch.Tensor) -> int:
        """The process that codes ``image`` (by its digest: the same for equal images, in any batch)."""
        return image_digest(image)[0] % len(self._executors)

    def code(self, codec: ImageCodec, images: torch.Tensor, budgets: Sequence[Sequence[int | None]],
             layering: Layering, start: torch.Tensor) -> list[list[bytes | None]]:
        """:func:`~semcom.sscc.source.source_code_image` for every image of ``images`` ``[B, C, H, W]``,
        ``budgets[i]`` being image ``i``'s bits per layer; returns the payloads ``[B][layer]`` in order."""
        groups: dict[int, list[int]] = {}
        for i, image in enumerate(images):
            groups.setdefault(self.worker_of(image), []).append(i)
        shipped = _without_cache(codec)
        futures: dict[int, Future[list[list[bytes | None]]]] = {
            w: self._executors[w].submit(_code_images, shipped, images[idx].contiguous(),
                                         [list(budgets[i]) for i in idx], layering, start)
            for w, idx in groups.items()}
        out: list[list[bytes | None]] = [[] for _ in range(len(images))]
        for w, idx in groups.items():
            for i, payloads in zip(idx, futures[w].result(), strict=True):
                out[i] = payloads
        return out

    def close(self) -> None:
        """Stop the processes (their caches go with them)."""
        for executor in self._executors:
            executor.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> RateMatchingPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _without_cache(codec: ImageCodec) -> ImageCodec:
    """``codec`` as it travels to a worker: its settings, not this process's cache."""
    shipped = copy.copy(codec)
    shipped.encode_cache = None
    return shipped
