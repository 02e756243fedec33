"""Image and link metrics with the conventions of docs/conventions.md.

* Pixels are floats in [0, 1]. PSNR is computed per image, ``10 log10(1 / MSE)``, then averaged
  over images; :func:`summarize` also gives the spread and a 95% confidence interval.
* SSIM uses ``pytorch_msssim`` (Gaussian window 11, sigma 1.5, the standard constants). MS-SSIM
  needs five scales, i.e. images larger than 160 px on the short side; on smaller images (MNIST,
  CIFAR-10) it is undefined and :func:`ms_ssim` returns NaN rather than a made-up number.
* Accuracy is top-1 over the evaluated images (:func:`top1_hits` per image, :func:`accuracy` over a
  batch). BER counts bit errors, BLER block (row) errors.
* Spread: :func:`summarize` gives the normal-approximation 95% half-width over samples (images x
  draws); :func:`t_interval95` the Student-t half-width over a few independent draws' means.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch

__all__ = [
    "MAX_PSNR_DB",
    "Summary",
    "accuracy",
    "ber",
    "bler",
    "ms_ssim",
    "mse_per_image",
    "pooled_psnr",
    "psnr",
    "psnr_from_mse",
    "ssim",
    "summarize",
    "t_interval95",
    "top1_hits",
]

# A perfect reconstruction has infinite PSNR; cap it so means stay finite (said in results).
MAX_PSNR_DB = 100.0


def _check_pair(x: torch.Tensor, y: torch.Tensor) -> None:
    if x.shape != y.shape or x.dim() != 4:
        raise ValueError(f"expected two [B, C, H, W] batches of equal shape, got {tuple(x.shape)} and {tuple(y.shape)}")


def mse_per_image(reference: torch.Tensor, estimate: torch.Tensor) -> torch.Tensor:
    """Mean squared error per image: two ``[B, C, H, W]`` tensors -> ``[B]`` (float32)."""
    _check_pair(reference, estimate)
    return (reference.float() - estimate.float()).square().flatten(1).mean(dim=1)


def psnr_from_mse(mse: torch.Tensor) -> torch.Tensor:
    """``10 log10(1 / MSE)`` in dB for pixels in [0, 1], elementwise, capped at :data:`MAX_PSNR_DB`."""
    return (-10.0 * torch.log10(mse.clamp_min(10 ** (-MAX_PSNR_DB / 10)))).clamp_max(MAX_PSNR_DB)


def psnr(reference: torch.Tensor, estimate: torch.Tensor) -> torch.Tensor:
    """PSNR per image in dB, ``10 log10(1 / MSE)`` for pixels in [0, 1].

    Input: two ``[B, C, H, W]`` tensors. Output: ``[B]``, capped at :data:`MAX_PSNR_DB`.
    """
    return psnr_from_mse(mse_per_image(reference, estimate))


def pooled_psnr(per_image_psnr_db: torch.Tensor) -> torch.Tensor:
    """Pooled PSNR ``10 log10(1 / mean MSE)`` over a set, from its per-image PSNRs ``[N]`` in dB.

    The convention of published deep-JSCC code; it weights the worst images more than the mean of
    per-image PSNRs does, so it is lower or equal.
    """
    mse = torch.pow(10.0, -per_image_psnr_db.double() / 10.0)
    return -10.0 * torch.log10(mse.mean())


def ssim(reference: torch.Tensor, estimate: torch.Tensor) -> torch.Tensor:
    """Structural similarity per image (``pytorch_msssim.ssim``, data range 1). Output ``[B]``."""
    from pytorch_msssim import ssim as _ssim

    _check_pair(reference, estimate)
    return _ssim(reference.float(), estimate.float().clamp(0, 1), data_range=1.0, size_average=False)


def ms_ssim(reference: torch.Tensor, estimate: torch.Tensor) -> torch.Tensor:
    """Multi-scale SSIM per image; NaN for images of 160 px or less (five scales do not fit)."""
    _check_pair(reference, estimate)
    if min(reference.shape[-2:]) <= 160:
        return torch.full((reference.shape[0],), float("nan"))
    from pytorch_msssim import ms_ssim as _ms_ssim

    return _ms_ssim(reference.float(), estimate.float().clamp(0, 1), data_range=1.0, size_average=False)


def top1_hits(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per image, whether the top-scoring class of ``logits [B, K]`` is ``labels [B]``: ``[B]`` bool."""
    if logits.shape[0] != labels.shape[0]:
        raise ValueError(f"{logits.shape[0]} predictions for {labels.shape[0]} labels")
    return logits.argmax(dim=1) == labels


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Top-1 accuracy in [0, 1] of ``logits [B, K]`` against ``labels [B]`` (a float32 mean of the hits)."""
    return float(top1_hits(logits, labels).float().mean())


def ber(bits: torch.Tensor, bits_hat: torch.Tensor) -> float:
    """Bit error rate: fraction of positions where ``bits`` and ``bits_hat`` differ."""
    return float((bits.round() != bits_hat.round()).float().mean())


def bler(bits: torch.Tensor, bits_hat: torch.Tensor) -> float:
    """Block error rate: fraction of rows (blocks) with at least one bit error."""
    return float((bits.round() != bits_hat.round()).flatten(1).any(dim=1).float().mean())


@dataclass(frozen=True)
class Summary:
    """Mean, standard deviation, count and 95% confidence half-width of a sample."""

    mean: float
    std: float
    count: int
    ci95: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def summarize(values: torch.Tensor) -> Summary:
    """Mean with spread: sample std and the normal-approximation 95% half-width 1.96 s / sqrt(n)."""
    v = values.detach().double().flatten()
    v = v[~torch.isnan(v)]
    n = int(v.numel())
    if n == 0:
        return Summary(float("nan"), float("nan"), 0, float("nan"))
    std = float(v.std(unbiased=True)) if n > 1 else 0.0
    return Summary(float(v.mean()), std, n, 1.96 * std / math.sqrt(n) if n > 1 else float("nan"))


# two-sided 95% quantiles of Student's t, t_0.975(df), for df = 1..30 degrees of freedom
_T95 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
        2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
        2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


def t_interval95(values: Sequence[float]) -> float:
    """95% half-width ``t_0.975(n - 1) s / sqrt(n)`` of the mean of ``n`` independent values.

    For a few Monte Carlo draws (a draw's mean per value): the interval holds the spread between
    draws, which a half-width over all images x draws understates when the draws differ. NaN for
    fewer than two values; beyond 30 degrees of freedom the normal quantile 1.96.
    """
    n = len(values)
    if n < 2:
        return float("nan")
    t = _T95[n - 2] if n - 1 <= len(_T95) else 1.96
    return t * float(torch.tensor(list(values), dtype=torch.float64).std()) / math.sqrt(n)
