"""The SSCC digital link (5G LDPC + QAM over semcom channels) and the capacity bound, against theory."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
import torch
from scipy.optimize import brentq
from scipy.stats import norm

from semcom.channels import build_channel
from semcom.channels.base import ChannelOutput
from semcom.sscc.bler import compute_bler_curve
from semcom.sscc.capacity import capacity_bits
from semcom.sscc.link import LdpcQamLink, transport_block_size
from semcom.sscc.mcs import MCS_TABLE, Mcs

# TS 38.214 Table 5.1.3.2-1: the TB sizes up to 3824 bits
TBS_TABLE = [
    24, 32, 40, 48, 56, 64, 72, 80, 88, 96, 104, 112, 120, 128, 136, 144, 152, 160, 168, 176, 184, 192,
    208, 224, 240, 256, 272, 288, 304, 320, 336, 352, 368, 384, 408, 432, 456, 480, 504, 528, 552, 576,
    608, 640, 672, 704, 736, 768, 808, 848, 888, 928, 984, 1032, 1064, 1128, 1160, 1192, 1224, 1256,
    1288, 1320, 1352, 1416, 1480, 1544, 1608, 1672, 1736, 1800, 1864, 1928, 2024, 2088, 2152, 2216,
    2280, 2408, 2472, 2536, 2600, 2664, 2728, 2792, 2856, 2976, 3104, 3240, 3368, 3496, 3624, 3752, 3824,
]




def _bits(batch: int, k: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 2, (batch, k), generator=torch.Generator().manual_seed(seed)).float()


# --------------------------------------------------------------------------- bit budget


@pytest.mark.parametrize("k", [43, 44, 60, 130, 170, 512])
def test_tb_size_is_the_largest_5g_size_that_fits_the_budget(k):
    """TBS + CRC16 <= floor(k m R), TBS in the 5G table, and the next table size would not fit."""
    for mcs in MCS_TABLE:
        budget = math.floor(k * mcs.modulation_order * mcs.code_rate)
        tbs = transport_block_size(mcs, k)
        if tbs == 0:
            assert budget < 24 + 16
            continue
        assert tbs in TBS_TABLE
        assert tbs + 16 <= budget
        bigger = [t for t in TBS_TABLE if t > tbs]
        assert not bigger or bigger[0] + 16 > budget


def test_budget_numbers_for_the_paper_settings():
    """CIFAR-10 at rho=1/6 (512 symbols), 4QAM-1/2: 512 coded-bit budget -> 480 payload bits + CRC16."""
    link = LdpcQamLink("4QAM-1/2", 512)
    assert (link.info_bits, link.crc_bits, link.num_coded_bits) == (480, 16, 1024)
    assert link.code_rate <= 0.5
    assert link.length_field_bits == 6 and link.payload_bytes == 59  # (480 - 6) // 8


def test_large_tb_is_segmented_with_cb_crcs():
    link = LdpcQamLink("64QAM-3/4", 2000)
    assert link.num_code_blocks == 2
    assert link.crc_bits == 24 + 2 * 24
    assert link.info_bits + link.crc_bits <= 2000 * 6 * 3 / 4


def test_block_too_small_is_an_outage_not_a_crash():
    assert transport_block_size("4QAM-1/3", 43) == 0  # floor(43 * 2 / 3) = 28 < 24 + 16
    assert transport_block_size("4QAM-1/2", 0) == 0
    with pytest.raises(ValueError, match="outage"):
        LdpcQamLink("4QAM-1/3", 43)
    assert transport_block_size("4QAM-1/3", 60) == 24


def test_codecs_are_cached_and_sionna_notes_silenced(capsys):
    a, b = LdpcQamLink("16QAM-2/3", 130), LdpcQamLink("16QAM-2/3", 130)
    assert a._blocks[1] is b._blocks[1]
    assert LdpcQamLink("16QAM-2/3", 130, cn_update="minsum")._blocks[1] is not a._blocks[1]
    LdpcQamLink("64QAM-1/2", 77)
    assert capsys.readouterr().out == ""
    assert list(a.children()) == []  # shared blocks are not submodules of a link


# --------------------------------------------------------------------------- the coded chain


@pytest.mark.parametrize("name", ["4QAM-1/3", "4QAM-1/2", "16QAM-2/3", "64QAM-3/4", "256QAM-3/4"])
def test_high_snr_returns_the_exact_bits(name):
    link = LdpcQamLink(name, 130)
    bits = _bits(16, link.info_bits)
    x = link.transmit(bits)
    assert x.shape == (16, 130) and x.dtype == torch.complex64
    assert abs(float(x.abs().square().mean()) - 1.0) < 0.15  # unit average power
    bits_hat, ok = link(bits, build_channel("awgn", seed=0), snr_db=40.0)
    assert bits_hat.shape == bits.shape and bits_hat.dtype == torch.float32
    assert ok.shape == (16,) and ok.dtype == torch.bool
    assert bool(ok.all()) and torch.equal(bits_hat, bits)


def test_segmented_tb_decodes_exactly():
    link = LdpcQamLink("64QAM-3/4", 2000)
    bits = _bits(2, link.info_bits)
    bits_hat, ok = link(bits, build_channel("awgn", seed=0), 40.0)
    assert bool(ok.all()) and torch.equal(bits_hat, bits)


@pytest.mark.parametrize("block", ["image", "symbol"])
def test_fading_with_perfect_csi_is_equalised(block):
    """Rayleigh with perfect CSI: y / h and N0/|h|^2 per symbol; at 35 dB nearly every block decodes."""
    link = LdpcQamLink("16QAM-1/2", 130)
    bits = _bits(64, link.info_bits)
    bits_hat, ok = link(bits, build_channel("rayleigh", block=block, seed=3), 35.0)
    assert float(ok.float().mean()) >= 0.95
    assert torch.equal(bits_hat[ok], bits[ok])


def _q(x: float) -> float:
    return float(norm.sf(x))


@pytest.mark.parametrize(("m", "snr_db"), [(2, 4.0), (4, 10.0), (6, 16.0)])
def test_uncoded_ber_matches_gray_qam_theory(m, snr_db):
    """Uncoded path (mapper -> AWGN -> APP demapper -> sign): BER of Gray square QAM, Es = 1.

    With M = 2^m points and g = Es/N0 the exact per-bit error rate is, for 4QAM, Q(sqrt(g)); for
    16QAM, (3 Q(a) + 2 Q(3a) - Q(5a)) / 4 with a = sqrt(g/5); for 64QAM the nearest-neighbour
    approximation (4/m)(1 - 1/sqrt(M)) Q(sqrt(3 g / (M - 1))) (within a few % at BER ~ 1e-2).
    """
    g = 10 ** (snr_db / 10)
    if m == 2:
        theory = _q(math.sqrt(g))
    elif m == 4:
        a = math.sqrt(g / 5)
        theory = (3 * _q(a) + 2 * _q(3 * a) - _q(5 * a)) / 4
    else:
        big_m = 2**m
        theory = 4 / m * (1 - 1 / math.sqrt(big_m)) * _q(math.sqrt(3 * g / (big_m - 1)))
    link = LdpcQamLink(Mcs(m, Fraction(1, 2)), 512)
    coded = _bits(200 // m, link.num_coded_bits, seed=m)
    out = build_channel("awgn", seed=m)(link.modulate(coded), snr_db)
    llr = link.llr(out)
    assert llr.shape == coded.shape
    ber = float(((llr > 0).float() != coded).float().mean())  # LLR = ln P(1)/P(0): positive means 1
    n = coded.numel()
    tol = 4 * math.sqrt(theory / n) + (0.05 * theory if m == 6 else 0.0)
    assert abs(ber - theory) < tol, (ber, theory)


def _bi_awgn(snr_db: float) -> tuple[float, float]:
    """Capacity C (bits) and dispersion V (bits^2) of the binary-input AWGN channel y = sqrt(g) x + z."""
    z, w = np.polynomial.hermite_e.hermegauss(150)
    w = w / w.sum()
    g = 10 ** (snr_db / 10)
    f = np.logaddexp(0.0, -2 * g - 2 * np.sqrt(g) * z) / np.log(2)
    return 1 - float(w @ f), float(w @ f**2 - (w @ f) ** 2)


def _normal_approximation_snr_db(k: int, n: int, eps: float) -> float:
    """SNR at which log2 M = n C - sqrt(n V) Q^-1(eps) + log2(n)/2 equals k (Polyanskiy et al. 2010)."""

    def gap(s: float) -> float:
        c, v = _bi_awgn(s)
        return n * c - math.sqrt(n * v) * norm.isf(eps) + 0.5 * math.log2(n) - k

    return brentq(gap, -10.0, 20.0)


def test_bi_awgn_reference_has_the_shannon_limit_of_rate_half():
    """Rate 1/2 on the BI-AWGN needs Eb/N0 = 0.187 dB, i.e. Es/N0 = 0.187 dB for QPSK at rate 1/2."""
    assert abs(_bi_awgn(0.187)[0] - 0.5) < 1e-3


def test_4qam_rate_half_waterfall_within_1db_of_the_finite_length_bound():
    """BLER of 4QAM-1/2, 512 symbols, AWGN, crosses 0.1 between the normal approximation and +1 dB.

    Reference. Gray QPSK with Es = 1 is two BPSK channels per complex use, each of amplitude 1/sqrt(2)
    in noise N0/2: a binary-input AWGN channel with SNR g = Es/N0 per real use. The link sends
    n = 2 x 512 = 1024 coded bits; its LDPC code has dimension TBS + CRC = 480 + 16 = 496 bits (the
    CRC is part of what the code must deliver). The normal approximation of Polyanskiy, Poor and Verdu
    (IEEE Trans. IT 2010), log2 M = n C(g) - sqrt(n V(g)) Q^-1(eps) + log2(n) / 2 with the BI-AWGN
    capacity C and dispersion V, gives the SNR at which the best (n, k=496) binary code reaches
    BLER eps = 0.1: 0.35 dB (the asymptotic limit at rate 496/1024 is -0.02 dB; the finite-length
    penalty is ~0.4 dB). No code can beat it, so the measured BLER there must exceed 0.1; 5G LDPC with
    20 BP iterations (sum-product, "boxplus-phi") should be below 0.1 one dB above it (measured
    SNR at BLER 0.1: ~1.2 dB, i.e. 0.85 dB from the bound).
    """
    link = LdpcQamLink("4QAM-1/2", 512)
    assert (link.info_bits + link.crc_bits, link.num_coded_bits) == (496, 1024)
    ref = _normal_approximation_snr_db(496, 1024, 0.1)
    assert 0.2 < ref < 0.5
    # at the bound the BLER is ~0.8: one batch is enough; one dB above it, 300 blocks (expect ~15 errors)
    curve = compute_bler_curve("4QAM-1/2", 512, snrs_db=[ref, ref + 1.0], max_blocks=300, min_errors=100,
                               batch_size=150, seed=7)
    at_bound, one_db_above = curve.bler
    assert at_bound > 0.1, curve
    assert one_db_above < 0.1, curve


def test_decode_failure_is_ok_false_never_an_exception():
    link = LdpcQamLink("16QAM-2/3", 130)
    bits = _bits(32, link.info_bits)
    bits_hat, ok = link(bits, build_channel("awgn", seed=1), snr_db=-10.0)
    assert bits_hat.shape == bits.shape and not bool(ok.any())
    # no information at all (h = 0 with perfect CSI, or all-zero LLRs): still a clean failure
    x = link.transmit(bits)
    dead = ChannelOutput(y=torch.zeros_like(x), h=torch.zeros(32, 1, dtype=torch.complex64),
                         no=torch.ones(32, 1))
    bits_hat, ok = link.receive(dead)
    assert bits_hat.shape == bits.shape and not bool(ok.any())
    _, ok = link.decode(torch.zeros(32, link.num_coded_bits))
    assert not bool(ok.any())


def test_crc_catches_errors_at_very_low_snr():
    """Near and below the waterfall: every block that passes the CRC is correct (CRC16 misses 2^-16)."""
    link = LdpcQamLink("4QAM-1/2", 130)
    bits = _bits(400, link.info_bits, seed=5)
    snr = torch.linspace(-2.0, 3.0, 400)  # one SNR per block: from hopeless to mostly decodable
    bits_hat, ok = link(bits, build_channel("awgn", seed=5), snr)
    wrong = (bits_hat != bits).any(dim=1)
    assert int(wrong.sum()) > 100  # plenty of decoding errors ...
    assert int((wrong & ok).sum()) == 0  # ... and the CRC flagged every one of them
    assert bool(ok[-100:].float().mean() > 0.8) and not bool(ok[:50].any())


def test_per_row_snr():
    link = LdpcQamLink("4QAM-2/3", 130)
    bits = _bits(8, link.info_bits)
    _, ok = link(bits, build_channel("awgn", seed=2), torch.tensor([30.0, -10.0] * 4))
    assert ok.tolist() == [True, False] * 4


# --------------------------------------------------------------------------- bytes


def test_payloads_pack_unpack_and_cost():
    link = LdpcQamLink("16QAM-1/2", 130)  # 240 info bits: 5-bit length field, 29 bytes
    assert (link.info_bits, link.length_field_bits, link.payload_bytes) == (240, 5, 29)
    payloads = [b"", b"\x00", b"hello", bytes(range(29))]
    bits = link.pack_payloads(payloads)
    assert bits.shape == (4, 240)
    assert bits[2, :5].tolist() == [0, 0, 1, 0, 1]  # length 5, MSB first
    assert link.unpack_payloads(bits, torch.ones(4, dtype=torch.bool)) == payloads
    assert link.unpack_payloads(bits, torch.tensor([True, False, True, False])) == [b"", None, b"hello", None]
    with pytest.raises(ValueError, match="at most 29"):
        link.pack_payloads([bytes(30)])


def test_send_payloads_over_the_channel():
    link = LdpcQamLink("4QAM-1/2", 512)
    payloads = [bytes([i]) * (i * 7 % 60) for i in range(6)]
    assert link.send_payloads(payloads, build_channel("awgn", seed=0), 12.0) == payloads
    assert link.send_payloads(payloads, build_channel("awgn", seed=0), -8.0) == [None] * 6


def test_invalid_length_field_is_an_outage():
    link = LdpcQamLink("16QAM-1/2", 130)
    bits = torch.zeros(1, link.info_bits)
    bits[0, :5] = 1.0  # claims 31 bytes > 29
    assert link.unpack_payloads(bits, torch.ones(1, dtype=torch.bool)) == [None]


# --------------------------------------------------------------------------- capacity bound


def test_capacity_matches_shannon_on_awgn():
    assert capacity_bits(512, 10.0) == math.floor(512 * math.log2(11.0))
    assert capacity_bits(130, 0.0) == 130  # log2(1 + 1) = 1 bit per use
    assert capacity_bits(0, 20.0) == 0
    snrs = torch.tensor([0.0, 10.0])
    assert capacity_bits(130, snrs).tolist() == [130, math.floor(130 * math.log2(11.0))]


def test_capacity_is_monotone_in_snr():
    snrs = torch.linspace(-20, 40, 601)
    bits = capacity_bits(170, snrs)
    assert bool((bits[1:] >= bits[:-1]).all()) and int(bits[0]) >= 0
    scalar = [capacity_bits(170, float(s)) for s in snrs[::20]]
    assert scalar == sorted(scalar) and scalar == bits[::20].tolist()


def test_capacity_per_fading_realisation():
    k = 64
    h = torch.tensor([1.0 + 0j, 0.5j, 0.0])
    per_block = capacity_bits(k, 10.0, gains=h)
    expect = [math.floor(k * math.log2(1 + abs(g) ** 2 * 10.0)) for g in h.tolist()]
    assert per_block.tolist() == expect
    assert capacity_bits(k, 10.0, gains=h.reshape(3, 1)).tolist() == expect
    assert capacity_bits(k, 10.0, gains=h.reshape(3, 1).expand(3, k)).tolist() == expect
    # fast fading, h ~ CN(0,1) per symbol: Jensen, E log(1 + |h|^2 g) < log(1 + g)
    ray = build_channel("rayleigh", block="symbol", seed=0)(torch.ones(200, k, dtype=torch.complex64), 10.0)
    fading = capacity_bits(k, 10.0, gains=ray.h)
    assert fading.shape == (200,) and float(fading.float().mean()) < capacity_bits(k, 10.0)
    with pytest.raises(ValueError):
        capacity_bits(k, 10.0, gains=torch.ones(3, 5))
