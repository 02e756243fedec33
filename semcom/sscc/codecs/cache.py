"""A run's memory of codec encodes: the same image at the same quality is encoded once.

Rate matching searches qualities per image and per bit budget. Across the SNR points of a sweep,
the users of a broadcast and the SSCC systems of one scenario, the same (image, quality) pairs come
back again and again; an encode is deterministic, so the payload can be kept and reused. The key
holds everything the payload depends on: the codec's class and settings (its ``repr``, which names
the header accounting), the image's exact values and shape, and the quality.

The cache is bounded by the bytes of the payloads it keeps (least recently used first out), so a
full CIFAR-10 run cannot grow it without limit. ``SEMCOM_CODEC_CACHE_MB`` sets the bound for the
caches a run makes (``0`` turns caching off, e.g. to time the encodes themselves).
"""

from __future__ import annotations

import hashlib
import os
from collections import OrderedDict
from collections.abc import Callable

import torch

__all__ = ["DEFAULT_MAX_MB", "EncodeCache", "image_digest", "run_cache_from_env"]

#: Default bound of a run's cache, in MB of payloads.
DEFAULT_MAX_MB = 256


def image_digest(image: torch.Tensor) -> bytes:
    """A digest of an image's exact values, dtype and shape (two images share it only if equal)."""
    data = image.detach().to("cpu").contiguous()
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{data.dtype}{tuple(data.shape)}".encode())
    h.update(data.numpy().tobytes())
    return h.digest()


class EncodeCache:
    """Payloads by (codec settings, image, quality), at most ``max_bytes`` of them (LRU).

    Attributes:
        hits, misses: lookups answered from memory, and encodes done.
    """

    def __init__(self, max_bytes: int = DEFAULT_MAX_MB << 20) -> None:
        if max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0, got {max_bytes}")
        self.max_bytes = int(max_bytes)
        self._payloads: OrderedDict[tuple[str, bytes, int], bytes] = OrderedDict()
        self._bytes = 0
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._payloads)

    @property
    def size_bytes(self) -> int:
        """Bytes of the payloads kept."""
        return self._bytes

    def encode(self, codec_key: str, image: torch.Tensor, quality: int,
               encode: Callable[[torch.Tensor, int], bytes]) -> bytes:
        """The payload of ``image`` at ``quality``: from memory, or ``encode(image, quality)`` kept."""
        key = (codec_key, image_digest(image), int(quality))
        payload = self._payloads.get(key)
        if payload is not None:
            self._payloads.move_to_end(key)
            self.hits += 1
            return payload
        self.misses += 1
        payload = encode(image, quality)
        if len(payload) <= self.max_bytes:
            self._payloads[key] = payload
            self._bytes += len(payload)
            while self._bytes > self.max_bytes:
                _, old = self._payloads.popitem(last=False)
                self._bytes -= len(old)
        return payload

    def clear(self) -> None:
        """Forget every payload (the counters stay)."""
        self._payloads.clear()
        self._bytes = 0


def run_cache_from_env() -> EncodeCache | None:
    """A new cache for a run, bounded by ``SEMCOM_CODEC_CACHE_MB`` (default 256); None when it is 0."""
    text = os.environ.get("SEMCOM_CODEC_CACHE_MB", "").strip()
    try:
        mb = float(text) if text else DEFAULT_MAX_MB
    except ValueError:
        mb = DEFAULT_MAX_MB
    return EncodeCache(int(mb * (1 << 20))) if mb > 0 else None
