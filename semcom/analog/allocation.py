"""Power allocation of a linear analog code over its coefficients.

Coefficient ``j`` (variance ``lam_j``) is sent as the real ``t_j = g_j c_j`` with power
``p_j = g_j^2 lam_j`` and received in Gaussian noise of variance ``s2`` per real. Its LMMSE error is
``lam_j s2 / (p_j + s2)``. Under the budget ``sum_j p_j = P``:

- MSE-optimal (:func:`mmse_allocation`): setting the derivative equal for all active coefficients
  gives ``p_j = max(0, sqrt(lam_j s2 / mu) - s2)``, ``mu`` fixed by the budget; weak coefficients are
  dropped at low SNR. This is the allocation of the analog linear scheme of "SoftCast: One-Size-Fits-All
  Wireless Video" (Jakubczak and Katabi, 2010) derived for an LMMSE receiver rather than its high-SNR limit.
- SoftCast (:func:`softcast_allocation`): the high-SNR limit ``g_j ∝ lam_j^(-1/4)``, i.e.
  ``p_j ∝ sqrt(lam_j)``; it does not depend on the SNR.
"""

from __future__ import annotations

import torch

__all__ = ["mmse_allocation", "softcast_allocation"]


def softcast_allocation(lam: torch.Tensor, budget: float) -> torch.Tensor:
    """Powers ``p [m]`` with ``p_j ∝ sqrt(lam_j)`` and ``sum p = budget``."""
    root = lam.clamp_min(0).sqrt()
    return root * (budget / root.sum().clamp_min(1e-30))


def mmse_allocation(lam: torch.Tensor, noise_per_real: float | torch.Tensor, budget: float) -> torch.Tensor:
    """Powers ``p`` minimising ``sum_j lam_j s2 / (p_j + s2)`` subject to ``sum p = budget``, ``p >= 0``.

    Args:
        lam: coefficient variances ``[m]`` (any order).
        noise_per_real: ``s2``, noise variance per real dimension: a float or ``[B]`` (one design per row).
        budget: total power ``P`` over the ``m`` reals.

    Returns:
        ``[m]`` (scalar ``s2``) or ``[B, m]``; each row sums to ``budget``.

    The active set is the ``a`` largest variances for the largest ``a`` whose water level keeps the
    ``a``-th power positive; then ``sqrt(1 / mu) = (P + a s2) / sum_{j<=a} sqrt(lam_j s2)`` in closed form.
    """
    lam64 = lam.double().clamp_min(0)
    s2 = torch.as_tensor(noise_per_real, dtype=torch.float64, device=lam.device)
    scalar = s2.dim() == 0
    s2 = s2.reshape(-1, 1)  # [B, 1]
    order = torch.argsort(lam64, descending=True)
    sl = lam64[order].unsqueeze(0)  # [1, m], descending
    cum = torch.cumsum(sl.sqrt(), dim=1) * s2.sqrt()  # sum_{j<=a} sqrt(lam_j s2), [B, m]
    a = torch.arange(1, sl.shape[1] + 1, dtype=torch.float64, device=lam.device).unsqueeze(0)
    inv_sqrt_mu = (budget + a * s2) / cum.clamp_min(1e-300)  # water level for active set size a
    # the a-th coefficient is active when its power at that level is positive
    ok = (sl * s2).sqrt() * inv_sqrt_mu - s2 > 0
    size = ok.long().cumprod(dim=1).sum(dim=1).clamp_min(1)  # largest prefix that stays active
    level = inv_sqrt_mu.gather(1, (size - 1).unsqueeze(1))
    p_sorted = ((sl * s2).sqrt() * level - s2).clamp_min(0)
    p_sorted = p_sorted * (budget / p_sorted.sum(dim=1, keepdim=True).clamp_min(1e-300))
    p = torch.empty_like(p_sorted)
    p[:, order] = p_sorted
    p = p.to(lam.dtype)
    return p[0] if scalar else p
