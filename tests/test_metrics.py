"""Metrics against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from semcom.metrics import (
    MAX_PSNR_DB,
    accuracy,
    ber,
    bler,
    ms_ssim,
    pooled_psnr,
    psnr,
    ssim,
    summarize,
    t_interval95,
    top1_hits,
)


def test_psnr_per_image() -> None:
    ref = torch.zeros(2, 1, 4, 4)
    est = ref.clone()
    est[0] += 0.1  # MSE 0.01 -> 20 dB
    got = psnr(ref, est)
    assert got[0].item() == pytest.approx(20.0, abs=1e-4)
    assert got[1].item() == MAX_PSNR_DB  # identical image: capped, not inf
    # mean of per-image PSNR, not PSNR of the mean MSE
    est2 = ref.clone()
    est2[0] += 0.1
    est2[1] += 0.01
    assert psnr(ref, est2).mean().item() == pytest.approx((20 + 40) / 2, abs=1e-3)


def test_ssim_and_ms_ssim() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, 3, 32, 32, generator=g)
    assert torch.allclose(ssim(x, x), torch.ones(3), atol=1e-5)
    noisy = (x + 0.2 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    assert (ssim(x, noisy) < 0.9).all()
    assert torch.isnan(ms_ssim(x, noisy)).all()  # too small for five scales
    big = torch.rand(1, 1, 192, 192, generator=g)
    assert ms_ssim(big, big).item() == pytest.approx(1.0, abs=1e-4)


def test_accuracy_ber_bler() -> None:
    logits = torch.tensor([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])
    assert accuracy(logits, torch.tensor([1, 0, 0])) == pytest.approx(2 / 3)
    assert top1_hits(logits, torch.tensor([1, 0, 0])).tolist() == [True, True, False]
    with pytest.raises(ValueError, match="3 predictions for 2 labels"):
        top1_hits(logits, torch.tensor([1, 0]))
    bits = torch.tensor([[0, 1, 1, 0], [1, 1, 0, 0]])
    hat = torch.tensor([[0, 1, 1, 0], [1, 0, 0, 1]])
    assert ber(bits, hat) == pytest.approx(2 / 8)
    assert bler(bits, hat) == pytest.approx(1 / 2)


def test_summarize() -> None:
    s = summarize(torch.tensor([1.0, 2.0, 3.0, float("nan")]))
    assert s.mean == pytest.approx(2.0) and s.count == 3 and s.std == pytest.approx(1.0)
    assert s.ci95 == pytest.approx(1.96 / math.sqrt(3))
    assert summarize(torch.tensor([])).count == 0


def test_pooled_psnr_weights_the_worst_images() -> None:
    per_image = torch.tensor([20.0, 40.0])  # MSE 1e-2 and 1e-4
    assert float(pooled_psnr(per_image)) == pytest.approx(10 * math.log10(2 / (1e-2 + 1e-4)))
    assert float(pooled_psnr(per_image)) < float(per_image.mean())
    assert float(pooled_psnr(torch.tensor([25.0, 25.0]))) == pytest.approx(25.0)


def test_t_interval_over_draws() -> None:
    assert t_interval95([1.0, 3.0]) == pytest.approx(12.706 * math.sqrt(2) / math.sqrt(2))
    assert t_interval95([1.0, 2.0, 3.0]) == pytest.approx(4.303 * 1.0 / math.sqrt(3))
    assert t_interval95([0.0, 1.0] * 50) == pytest.approx(1.96 * float(torch.tensor([0.0, 1.0] * 50).std()) / 10)
    assert math.isnan(t_interval95([5.0]))
