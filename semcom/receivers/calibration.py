"""Calibration of a classifier's confidence: expected calibration error (ECE)."""

from __future__ import annotations

import torch

__all__ = ["expected_calibration_error"]


def expected_calibration_error(logits: torch.Tensor, labels: torch.Tensor, bins: int = 15) -> float:
    """ECE with equal-width confidence bins, "On Calibration of Modern Neural Networks" (Guo, Pleiss,
    Sun, Weinberger, 2017):

        ECE = sum_b (|B_b| / n) |acc(B_b) - conf(B_b)|,

    where the confidence is the top softmax probability and bin ``b`` holds the predictions with
    confidence in ``((b-1)/bins, b/bins]``. Input: ``logits [n, K]``, ``labels [n]``. Output: a
    float in [0, 1] (0: perfectly calibrated).
    """
    if logits.dim() != 2 or logits.shape[0] != labels.shape[0]:
        raise ValueError(f"expected logits [n, K] and labels [n], "
                         f"got {tuple(logits.shape)}, {tuple(labels.shape)}")
    if bins < 1:
        raise ValueError(f"bins must be positive, got {bins}")
    probs = torch.softmax(logits.detach().double(), dim=1)
    conf, pred = probs.max(dim=1)
    correct = (pred == labels).double()
    idx = torch.clamp(torch.ceil(conf * bins).long() - 1, 0, bins - 1)
    n = conf.numel()
    ece = torch.zeros((), dtype=torch.float64)
    for b in range(bins):
        sel = idx == b
        if sel.any():
            ece += sel.sum() / n * (correct[sel].mean() - conf[sel].mean()).abs()
    return float(ece)
