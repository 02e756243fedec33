"""Orthonormal transforms for the linear analog code, fitted on training images.

Both give a mean ``[n]``, a basis ``[n, m]`` with orthonormal columns and the variance ``lam [m]`` of
each kept coefficient on the fitting images, in decreasing order of variance, so that the first
coefficients carry the most energy and a prefix of them is the best (KLT) or a good (DCT) coarse image:

- ``"klt"``: the Karhunen-Loève transform of whole images, the eigenvectors of the pixel covariance
  (all colour channels together). The best linear transform for any prefix length.
- ``"dct"``: the orthonormal 2-D DCT-II of each colour plane after a colour decorrelation (the KLT of
  the 3 x 3 colour covariance, in the role of a luma/chroma split), coefficients ranked by their
  variance on the fitting images (SoftCast's transform, "SoftCast: One-Size-Fits-All Wireless Video",
  Jakubczak and Katabi, 2010, with one frame-wide chunk per coefficient). No large eigen-problem.

Images are vectors in ``C, H, W`` order (``images.flatten(1)``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import torch

__all__ = ["FittedTransform", "dct_matrix", "fit_transform"]

TRANSFORMS = ("klt", "dct")


@dataclass
class FittedTransform:
    """``mean [n]``, ``basis [n, m]`` (orthonormal columns), ``lam [m]`` (decreasing), float64;
    ``total_variance``: the summed pixel variance of the fitting images (what all ``n`` coefficients hold)."""

    kind: str
    mean: torch.Tensor
    basis: torch.Tensor
    lam: torch.Tensor
    images: int
    total_variance: float


def dct_matrix(size: int) -> torch.Tensor:
    """Orthonormal DCT-II matrix ``D [size, size]``: ``D @ x`` are the DCT coefficients of ``x``."""
    k = torch.arange(size, dtype=torch.float64).unsqueeze(1)
    i = torch.arange(size, dtype=torch.float64).unsqueeze(0)
    d = torch.cos(math.pi * (2 * i + 1) * k / (2 * size)) * math.sqrt(2.0 / size)
    d[0] /= math.sqrt(2.0)
    return d


def _dct_basis(shape: tuple[int, int, int], cov: torch.Tensor) -> torch.Tensor:
    """All ``n`` basis images as columns ``[n, n]``: a colour transform, then the 2-D DCT of each plane.

    The colour transform is the KLT of the ``C x C`` colour covariance (averaged over pixel
    positions), which decorrelates the planes as a luma/chroma split does; grey images keep theirs.
    """
    c, h, w = shape
    plane = torch.kron(dct_matrix(h), dct_matrix(w)).T  # [h w, h w], columns = basis images
    hw = h * w
    colour = torch.stack([torch.stack([cov[a * hw:(a + 1) * hw, b * hw:(b + 1) * hw].diagonal().mean()
                                       for b in range(c)]) for a in range(c)])
    _, mix = torch.linalg.eigh(colour)
    return torch.kron(mix, plane)


def fit_transform(
    batches: Iterable[torch.Tensor], image_shape: tuple[int, int, int], reals: int, kind: str = "klt"
) -> FittedTransform:
    """Fit a ``kind`` transform on image batches ``[B, C, H, W]`` in [0, 1]; keep ``reals`` coefficients.

    The mean and second moments are accumulated in float64 over all batches, so the result does not
    depend on the batch size.
    """
    if kind not in TRANSFORMS:
        raise ValueError(f"transform must be one of {TRANSFORMS}, not {kind!r}")
    n = math.prod(image_shape)
    if not 1 <= reals <= n:
        raise ValueError(f"cannot keep {reals} coefficients of {n}-dimensional images")
    total = torch.zeros(n, dtype=torch.float64)
    gram = torch.zeros(n, n, dtype=torch.float64)
    count = 0
    for x in batches:
        v = x.reshape(x.shape[0], -1).double()
        if v.shape[1] != n:
            raise ValueError(f"images of {v.shape[1]} values, expected {image_shape}")
        total += v.sum(0)
        gram += v.T @ v
        count += v.shape[0]
    if count < 2:
        raise ValueError("fitting a transform needs at least 2 images")
    mean = total / count
    cov = (gram - count * torch.outer(mean, mean)) / (count - 1)
    if kind == "klt":
        lam, vecs = torch.linalg.eigh(cov)
        lam, vecs = lam.flip(0), vecs.flip(1)
    else:
        vecs = _dct_basis(image_shape, cov)
        lam = ((cov @ vecs) * vecs).sum(0)  # diagonal of V^T cov V
        order = torch.argsort(lam, descending=True)
        lam, vecs = lam[order], vecs[:, order]
    return FittedTransform(kind, mean, vecs[:, :reals].contiguous(), lam[:reals].clamp_min(1e-12), count,
                           float(cov.trace()))
