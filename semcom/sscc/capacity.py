"""The ideal digital bound: error-free bits at the Shannon capacity of the channel uses.

For ``k`` complex channel uses at SNR ``Es/N0`` (linear) with Gaussian inputs, an ideal code delivers

    bits = floor( sum_i log2(1 + |h_i|^2 SNR) ),

which is ``floor(k log2(1 + SNR))`` on AWGN (``h = 1``) and, per fading realisation, with one gain per
block (``h`` of shape ``[B, 1]``) or per symbol (``[B, k]``). It is the "capacity" SSCC baseline: an
upper bound no practical MCS reaches (finite block length, QAM, BP decoding).
"""

from __future__ import annotations

import math

import torch

__all__ = ["capacity_bits"]


def capacity_bits(
    k: int,
    snr_db: float | torch.Tensor,
    gains: torch.Tensor | None = None,
) -> int | torch.Tensor:
    r"""Error-free bits that ``k`` complex channel uses carry at capacity.

    .. math::
        b = \left\lfloor \sum_{i=1}^{k} \log_2\!\left(1 + |h_i|^2 \, 10^{\mathrm{SNR_{dB}}/10}\right)
        \right\rfloor

    Monotone non-decreasing in the SNR and in every ``|h_i|``.

    Args:
        k: complex channel uses per block (>= 0).
        snr_db: Es/N0 per complex symbol in dB: a float, or a tensor ``[B]`` (or ``[B, 1]``).
        gains: channel gains ``h`` (complex or real; ``|h|^2`` is used), ``None`` for AWGN. Shapes:
            ``[B]`` or ``[B, 1]`` (one gain per block, applied to all ``k`` uses) or ``[B, k]`` (one
            per symbol).

    Returns:
        ``int`` when ``snr_db`` is a float and ``gains`` is ``None``; otherwise an ``int64`` tensor
        ``[B]``.

    Example:
        >>> capacity_bits(512, 10.0)   # 512 x log2(11) = 1771.2
        1771
        >>> capacity_bits(4, 0.0, gains=torch.tensor([[1.0], [0.0]]))
        tensor([4, 0])
    """
    k = int(k)
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    if gains is None and not isinstance(snr_db, torch.Tensor):
        return math.floor(k * math.log2(1.0 + 10.0 ** (float(snr_db) / 10.0)) + 1e-9)
    snr = 10.0 ** (torch.as_tensor(snr_db, dtype=torch.float64) / 10.0)
    snr = snr.reshape(-1, 1)
    if gains is None:
        bits = k * torch.log2(1.0 + snr[:, 0])
        return torch.floor(bits + 1e-9).to(torch.int64)
    g = gains.detach().abs().to(dtype=torch.float64, device="cpu").square()
    if g.dim() == 1:
        g = g.reshape(-1, 1)
    if g.dim() != 2 or g.shape[1] not in (1, k):
        raise ValueError(f"gains must be [B], [B, 1] or [B, {k}], got {tuple(gains.shape)}")
    snr = snr.to(g.device)
    if snr.shape[0] not in (1, g.shape[0]):
        raise ValueError(f"snr_db has {snr.shape[0]} values for {g.shape[0]} gains")
    per_use = torch.log2(1.0 + g * snr)
    bits = per_use[:, 0] * k if g.shape[1] == 1 else per_use.sum(dim=1)
    return torch.floor(bits + 1e-9).to(torch.int64)
