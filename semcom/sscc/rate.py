"""Rate matching: the best codec quality whose payload fits a bit budget.

The SSCC baseline gives the codec exactly the bits the link carries for one image on the channel
uses the JSCC gets (``bits = k_total x bits_per_symbol x code_rate``) and picks the highest quality
whose payload fits. A payload of ``len(payload)`` bytes costs ``8 * len(payload)`` bits; what the
payload contains (payload-only or whole-file accounting) is the codec's
:attr:`~semcom.sscc.codecs.ImageCodec.accounting`.

Search: payload size grows with quality "enough" but not strictly. JPEG is monotone in practice;
WebP, HEVC and AV1 have local dips, and HEVC's sizes are noisy at the low-quality end (pillow-heif's
quality maps two by two onto x265's 51 QPs). :func:`fit_to_budget` tries the top quality, takes the
first fitting one among the lowest ``1 + lookahead``, bisects keeping ``fits(lo)`` and
``not fits(hi)``, then probes ``lookahead`` qualities above the boundary; if one of them fits (a
dip), the search moves up and bisects again from there. The result is the highest quality seen that
fits, with about ``log2(range) + 2 + lookahead`` encodes per image, none repeated. If none of the
lowest ``1 + lookahead`` qualities fits, the image is an outage: the receiver shows the dataset's
mean image (the cliff).

The search can miss the exhaustive optimum on a dip far from the boundary, or declare an outage
where a noisy low quality would have fitted; how often it does is in ``docs/codecs.md``.

Side information: by default the quality is taken as known to the receiver (as the codec's
payload accounting assumes for the shape). A link that signals a per-image quality needs
``ceil(log2(#qualities))`` bits more: pass ``side_bits=quality_index_bits(codec)`` and they are
taken from the budget and added to the bits used.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import torch

from semcom.sscc.codecs import CodecDecodeError, ImageCodec

__all__ = [
    "Budget",
    "CodecRoundTrip",
    "FitResult",
    "RoundTripResult",
    "fit_batch",
    "fit_to_budget",
    "quality_index_bits",
]

Budget = int | Sequence[int] | torch.Tensor
"""Bits per image: one number for the whole batch, or one per image (``[B]``)."""


@dataclass(frozen=True)
class FitResult:
    """Outcome of rate matching for one image.

    Attributes:
        quality: the chosen quality, or ``None`` when nothing fits (outage).
        payload: the payload at that quality, or ``None`` on outage.
        bits: bits used: ``8 * len(payload) + side_bits``; 0 on outage.
    """

    quality: int | None
    payload: bytes | None
    bits: int

    @property
    def outage(self) -> bool:
        """True when no quality fits the budget."""
        return self.quality is None


def quality_index_bits(codec: ImageCodec) -> int:
    """Bits needed to signal one quality of ``codec`` to the receiver: ``ceil(log2(#qualities))``."""
    lo, hi = codec.quality_range
    return max(0, math.ceil(math.log2(hi - lo + 1)))


def fit_to_budget(codec: ImageCodec, image: torch.Tensor, budget_bits: int, *, lookahead: int = 2,
                  side_bits: int = 0) -> FitResult:
    """Highest quality whose payload fits ``budget_bits``.

    Args:
        codec: the image codec.
        image: float tensor ``[C, H, W]`` in [0, 1].
        budget_bits: bits available for this image (payload plus ``side_bits``).
        lookahead: qualities probed above the bisection boundary, to step over local dips in the
            size-quality curve (0 = plain bisection).
        side_bits: bits taken from the budget for side information (see :func:`quality_index_bits`).

    Returns:
        :class:`FitResult`; ``quality is None`` (outage) when even the lowest quality does not fit.
    """
    if lookahead < 0:
        raise ValueError("lookahead must be >= 0")
    available = int(budget_bits) - int(side_bits)
    lo, hi = codec.quality_range
    payloads: dict[int, bytes] = {}

    def fits(q: int) -> bool:
        if q not in payloads:
            payloads[q] = codec.encode(image, q)
        return 8 * len(payloads[q]) <= available

    def result(q: int | None) -> FitResult:
        if q is None:
            return FitResult(None, None, 0)
        return FitResult(q, payloads[q], 8 * len(payloads[q]) + int(side_bits))

    if available <= 0:
        return result(None)
    if fits(hi):
        return result(hi)
    # best: highest quality known to fit; ceiling: lowest quality above it known not to fit.
    best = next((q for q in range(lo, min(lo + lookahead, hi - 1) + 1) if fits(q)), None)
    if best is None:
        return result(None)
    ceiling = hi
    while True:
        while ceiling - best > 1:
            mid = (best + ceiling) // 2
            if fits(mid):
                best = mid
            else:
                ceiling = mid
        probes = [q for q in range(ceiling + 1, min(ceiling + lookahead, hi - 1) + 1) if fits(q)]
        if not probes:
            return result(best)
        best = max(probes)
        ceiling = min((q for q in payloads if q > best and not fits(q)), default=hi)


def _budgets(budget_bits: Budget, n: int) -> list[int]:
    if isinstance(budget_bits, torch.Tensor):
        values = [int(b) for b in budget_bits.reshape(-1).tolist()]
    elif isinstance(budget_bits, Sequence):
        values = [int(b) for b in budget_bits]
    else:  # one number (int, numpy integer, float) for every image
        values = [int(cast(float, budget_bits))] * n
    if len(values) == 1:
        values = values * n
    if len(values) != n:
        raise ValueError(f"got {len(values)} budgets for {n} images")
    return values


def fit_batch(codec: ImageCodec, images: torch.Tensor, budget_bits: Budget,
              *, lookahead: int = 2, side_bits: int = 0) -> list[FitResult]:
    """:func:`fit_to_budget` for each image of a batch.

    Args:
        codec: the image codec.
        images: float tensor ``[B, C, H, W]`` in [0, 1].
        budget_bits: one budget for all images, or one per image (``[B]``; e.g. per fading realisation).
        lookahead, side_bits: as in :func:`fit_to_budget`.

    Returns:
        ``B`` results, in order.
    """
    if images.dim() != 4:
        raise ValueError(f"images must be [B, C, H, W], got shape {tuple(images.shape)}")
    budgets = _budgets(budget_bits, images.shape[0])
    return [fit_to_budget(codec, img, b, lookahead=lookahead, side_bits=side_bits)
            for img, b in zip(images, budgets, strict=True)]


@dataclass(frozen=True)
class RoundTripResult:
    """Reconstructions of a batch sent through a codec at a budget.

    Attributes:
        images: float32 ``[B, C, H, W]``: decoded images, the mean image where ``outage``.
        bits: int64 ``[B]``: bits used per image (0 on outage).
        outage: bool ``[B]``: nothing fitted the budget, or the payload could not be decoded.
        quality: int64 ``[B]``: chosen quality, -1 on outage.
        fits: the per-image :class:`FitResult`.
    """

    images: torch.Tensor
    bits: torch.Tensor
    outage: torch.Tensor
    quality: torch.Tensor
    fits: list[FitResult]


class CodecRoundTrip:
    """Encode a batch at a bit budget and decode it again (error-free link).

    The transmitter picks, per image, the highest quality that fits (:func:`fit_to_budget`); the
    receiver decodes what was sent, and shows ``mean_image`` for images where nothing fits or the
    payload does not decode. :meth:`transmit` and :meth:`receive` are separate so that a digital
    link can damage the payloads in between.

    Args:
        codec: the image codec.
        mean_image: float tensor ``[C, H, W]``: what the receiver shows on an outage (the
            dataset's mean image).
        lookahead, side_bits: as in :func:`fit_to_budget`.

    Example:
        >>> import torch
        >>> from semcom.sscc.codecs import build_codec
        >>> rt = CodecRoundTrip(build_codec("webp"), mean_image=torch.full((3, 32, 32), 0.5))
        >>> out = rt(torch.rand(4, 3, 32, 32), budget_bits=4096)
        >>> out.images.shape, out.bits.shape, out.outage.dtype
        (torch.Size([4, 3, 32, 32]), torch.Size([4]), torch.bool)
    """

    def __init__(self, codec: ImageCodec, mean_image: torch.Tensor, *, lookahead: int = 2,
                 side_bits: int = 0) -> None:
        if mean_image.dim() != 3:
            raise ValueError(f"mean_image must be [C, H, W], got shape {tuple(mean_image.shape)}")
        self.codec = codec
        self.mean_image = mean_image.detach().to("cpu", torch.float32)
        self.lookahead = lookahead
        self.side_bits = side_bits

    def transmit(self, images: torch.Tensor, budget_bits: Budget) -> list[FitResult]:
        """Rate-match each image of ``images [B, C, H, W]`` to its budget."""
        self._check(images)
        return fit_batch(self.codec, images, budget_bits, lookahead=self.lookahead, side_bits=self.side_bits)

    def receive(
        self, payloads: Sequence[bytes | None], qualities: Sequence[int | None]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Decode payloads (``None`` = nothing sent or lost) with the agreed qualities.

        Returns:
            ``(images [B, C, H, W], failed [B] bool)``, the mean image where ``failed``.
        """
        if len(payloads) != len(qualities):
            raise ValueError("one quality per payload is needed")
        shape = tuple(self.mean_image.shape)
        out = self.mean_image.expand(len(payloads), *shape).clone()
        failed = torch.ones(len(payloads), dtype=torch.bool)
        for i, (payload, quality) in enumerate(zip(payloads, qualities, strict=True)):
            if payload is None or quality is None:
                continue
            try:
                out[i] = self.codec.decode(payload, shape, quality)
            except CodecDecodeError:
                continue
            failed[i] = False
        return out, failed

    def __call__(self, images: torch.Tensor, budget_bits: Budget) -> RoundTripResult:
        """Transmit and receive ``images [B, C, H, W]`` at ``budget_bits`` (one or ``[B]``)."""
        fits = self.transmit(images, budget_bits)
        recon, failed = self.receive([f.payload for f in fits], [f.quality for f in fits])
        return RoundTripResult(
            images=recon,
            bits=torch.tensor([f.bits for f in fits], dtype=torch.int64),
            outage=failed,
            quality=torch.tensor([-1 if f.quality is None else f.quality for f in fits], dtype=torch.int64),
            fits=fits,
        )

    def _check(self, images: torch.Tensor) -> None:
        if images.dim() != 4 or tuple(images.shape[1:]) != tuple(self.mean_image.shape):
            raise ValueError(f"images must be [B, {', '.join(map(str, self.mean_image.shape))}], "
                             f"got {tuple(images.shape)}")
