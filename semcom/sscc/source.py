"""Source coding of one image into the layers of an SSCC system: rate matching layer by layer.

Each layer gets a bit budget; the codec's best quality that fits it is chosen
(:func:`~semcom.sscc.rate.fit_to_budget`) and the layer's payload is one quality byte followed by the
codec payload. With ``refinement`` layering, layer ``i > 1`` codes the residual against what layers
``1..i-1`` rebuild, ``0.5 + RESIDUAL_GAIN (x - x_hat)``; with ``simulcast`` every layer codes the whole
image. A layer with no budget, or whose budget nothing fits, is not sent; under refinement the layers
after it are not sent either (they would refine a picture the receiver does not have).

Every image is coded independently of the others, which is what lets :mod:`semcom.sscc.rate_pool`
spread a batch over processes with the same payloads.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch

from semcom.sscc.codecs import ImageCodec
from semcom.sscc.rate import fit_to_budget

__all__ = ["RESIDUAL_GAIN", "Layering", "apply_residual", "residual_image", "source_code_image"]

RESIDUAL_GAIN = 2.0  # residuals of a decent first layer stay within +-0.25: use the codec's range

Layering = Literal["refinement", "simulcast"]


def residual_image(image: torch.Tensor, previous: torch.Tensor) -> torch.Tensor:
    """What a refinement layer codes: ``clip(0.5 + RESIDUAL_GAIN (image - previous), 0, 1)``."""
    return (0.5 + RESIDUAL_GAIN * (image - previous)).clamp(0, 1)


def apply_residual(previous: torch.Tensor, decoded: torch.Tensor) -> torch.Tensor:
    """The picture after a refinement layer: ``clip(previous + (decoded - 0.5) / RESIDUAL_GAIN, 0, 1)``."""
    return (previous + (decoded - 0.5) / RESIDUAL_GAIN).clamp(0, 1)


def source_code_image(codec: ImageCodec, image: torch.Tensor, budgets: Sequence[int | None],
                      layering: Layering, start: torch.Tensor) -> list[bytes | None]:
    """Payloads of one image, one per layer (None: not sent).

    Args:
        codec: the image codec.
        image: ``[C, H, W]`` in [0, 1].
        budgets: bits per layer for this image's payload (None or <= 0: the layer is not sent).
        layering: ``"refinement"`` or ``"simulcast"``.
        start: ``[C, H, W]``: the picture refinement starts from (the dataset's mean image).
    """
    payloads: list[bytes | None] = []
    current = start
    broken = False
    for layer, bits in enumerate(budgets):
        if bits is None or bits <= 0 or (layering == "refinement" and broken):
            payloads.append(None)
            broken = True
            continue
        source = image if layering == "simulcast" or layer == 0 else residual_image(image, current)
        fit = fit_to_budget(codec, source, bits)
        if fit.outage or fit.payload is None or fit.quality is None:
            payloads.append(None)
            broken = True
            continue
        payloads.append(bytes([fit.quality]) + fit.payload)
        if layering == "refinement":
            decoded = codec.decode(fit.payload, tuple(image.shape), fit.quality)
            current = decoded if layer == 0 else apply_residual(current, decoded)
    return payloads
