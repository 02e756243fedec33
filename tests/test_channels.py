"""Channels against theory: noise variance, fading statistics, block lengths, BER closed forms."""

from __future__ import annotations

import math

import pytest
import torch

from semcom.channels import CHANNELS, AwgnChannel, RayleighChannel, RicianChannel, build_channel, noise_variance

N = 200_000


def _ones(b: int, n: int) -> torch.Tensor:
    return torch.ones(b, n, dtype=torch.complex64)


@pytest.mark.parametrize("snr_db", [-5.0, 0.0, 10.0, 20.0])
def test_awgn_noise_variance_per_complex_symbol(snr_db: float) -> None:
    out = AwgnChannel(seed=1)(torch.zeros(1, N, dtype=torch.complex64), snr_db)
    n0 = 10 ** (-snr_db / 10)
    # sample variance of N complex Gaussians: relative std about 1/sqrt(N); allow 5 sigma
    tol = 5 * n0 / math.sqrt(N)
    assert abs(out.y.abs().square().mean().item() - n0) < tol
    assert abs(out.y.real.var().item() - n0 / 2) < 2 * tol  # N0/2 per real part
    assert abs(out.y.imag.var().item() - n0 / 2) < 2 * tol
    assert abs(out.y.real.mean().item()) < 5 * math.sqrt(n0 / 2 / N)


def test_snr_per_row() -> None:
    snr = torch.tensor([0.0, 20.0])
    out = AwgnChannel(seed=0)(torch.zeros(2, N, dtype=torch.complex64), snr)
    var = out.y.abs().square().mean(dim=1)
    assert torch.allclose(var, noise_variance(snr), rtol=0.03)
    assert torch.allclose(out.no.flatten(), noise_variance(snr))


def test_rayleigh_gain_statistics() -> None:
    h = RayleighChannel(block="symbol", seed=2).gains(1, N, None).flatten()
    assert abs(h.abs().square().mean().item() - 1.0) < 0.02
    assert abs(h.mean().abs().item()) < 0.01
    # |h|^2 is exponential(1): P(|h|^2 < 1) = 1 - 1/e
    assert abs((h.abs().square() < 1).float().mean().item() - (1 - math.exp(-1))) < 0.01


@pytest.mark.parametrize("k", [0.0, 1.0, 10.0])
def test_rician_k_factor(k: float) -> None:
    h = RicianChannel(k_factor=k, block="symbol", seed=3).gains(1, N, None).flatten()
    assert abs(h.abs().square().mean().item() - 1.0) < 0.02
    los = h.mean()  # the line-of-sight component
    scattered = (h - los).abs().square().mean()
    assert abs(los.abs().square().item() - k / (k + 1)) < 0.02
    if k > 0:
        assert abs((los.abs().square() / scattered).item() - k) / k < 0.1


def test_block_lengths() -> None:
    x = _ones(64, 12)
    per_image = RayleighChannel(block="image", seed=0)(x, 10.0)
    assert per_image.h.shape == (64, 1)
    per_layer = RayleighChannel(block="layer", seed=0)(x, 10.0, layer_sizes=[4, 3, 5])
    h = per_layer.h
    assert h.shape == (64, 12)
    for lo, hi in [(0, 4), (4, 7), (7, 12)]:
        assert torch.all(h[:, lo:hi] == h[:, lo:lo + 1])
    assert not torch.all(h[:, 0] == h[:, 4])
    per_symbol = RayleighChannel(block="symbol", seed=0)(x, 10.0)
    assert per_symbol.h.shape == (64, 12)
    assert torch.unique(torch.view_as_real(per_symbol.h).reshape(-1, 2), dim=0).shape[0] == 64 * 12
    with pytest.raises(ValueError, match="layer_sizes"):
        RayleighChannel(block="layer")(x, 10.0, layer_sizes=[4, 4])


def test_seed_reproducible_and_distinct() -> None:
    x = _ones(4, 100)
    a = RicianChannel(k_factor=2, seed=7)(x, 5.0)
    b = RicianChannel(k_factor=2, seed=7)(x, 5.0)
    c = RicianChannel(k_factor=2, seed=8)(x, 5.0)
    assert torch.equal(a.y, b.y) and torch.equal(a.h, b.h)
    assert not torch.equal(a.y, c.y)


@pytest.mark.parametrize("name", ["awgn", "rayleigh", "rician"])
def test_gradients_flow(name: str) -> None:
    x = torch.randn(8, 16, dtype=torch.complex64, requires_grad=True)
    out = build_channel(name, seed=0, block="symbol")(x, 10.0)
    y, _ = out.receiver_view()
    y.abs().square().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def _qpsk(bits: torch.Tensor) -> torch.Tensor:
    b = bits.float().reshape(bits.shape[0], -1, 2)
    return torch.complex(1 - 2 * b[..., 0], 1 - 2 * b[..., 1]) / math.sqrt(2)


def _qpsk_bits(y: torch.Tensor) -> torch.Tensor:
    return torch.stack([(y.real < 0), (y.imag < 0)], dim=-1).reshape(y.shape[0], -1).float()


@pytest.mark.parametrize("snr_db", [0.0, 4.0, 8.0])
def test_uncoded_qpsk_ber_awgn(snr_db: float) -> None:
    bits = torch.randint(0, 2, (1, 2 * N), generator=torch.Generator().manual_seed(0))
    y = AwgnChannel(seed=4)(_qpsk(bits), snr_db).y
    ber = (_qpsk_bits(y) != bits).float().mean().item()
    snr = 10 ** (snr_db / 10)
    theory = 0.5 * math.erfc(math.sqrt(snr / 2))  # Q(sqrt(Es/N0)) per bit for Gray QPSK
    assert abs(ber - theory) < 5 * math.sqrt(theory / (2 * N)) + 1e-5


@pytest.mark.parametrize("snr_db", [0.0, 10.0, 20.0])
def test_uncoded_qpsk_ber_rayleigh_perfect_csi(snr_db: float) -> None:
    bits = torch.randint(0, 2, (1, 2 * N), generator=torch.Generator().manual_seed(1))
    out = RayleighChannel(block="symbol", seed=5)(_qpsk(bits), snr_db)
    x_hat, _ = out.equalized()
    ber = (_qpsk_bits(x_hat) != bits).float().mean().item()
    g = 10 ** (snr_db / 10) / 2  # per-bit SNR of QPSK
    theory = 0.5 * (1 - math.sqrt(g / (1 + g)))
    assert abs(ber - theory) / theory < 0.05


def test_no_csi_forbids_equalisation() -> None:
    out = RayleighChannel(csi="none", seed=0)(_ones(2, 4), 10.0)
    with pytest.raises(RuntimeError, match="CSI"):
        out.equalized()
    y, no = out.receiver_view()
    assert torch.equal(y, out.y) and no.shape == y.shape


def test_registry_and_bad_input() -> None:
    assert {"awgn", "rayleigh", "rician"} <= set(CHANNELS.names())
    with pytest.raises(KeyError, match="available: awgn"):
        build_channel("nakagami")
    with pytest.raises(ValueError, match="block"):
        AwgnChannel(block="frame")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="K factor"):
        RicianChannel(k_factor=-1)
    with pytest.raises(ValueError, match="complex"):
        AwgnChannel()(torch.ones(2, 3), 0.0)
    with pytest.raises(ValueError, match="one value per row"):
        AwgnChannel()(_ones(2, 3), torch.tensor([1.0, 2.0, 3.0]))
