"""The fast 5G LDPC decoder against Sionna's: noiseless codewords, the same noisy LLRs, BLER, shapes.

The full verification (every MCS of the tables, whole BLER curves) is ``bench/bench_ldpc_verify.py``;
these tests keep to a few schemes and small block counts.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from semcom.channels import build_channel
from semcom.cli.app import app
from semcom.sscc.bler import compute_bler_curve
from semcom.sscc.ldpc_decoder import FastLdpc5GDecoder
from semcom.sscc.link import LdpcQamLink

# (MCS, symbols per block): base graphs 1 and 2, short and long blocks, 2 to 8 bits per symbol, and a
# TB of two code blocks (64QAM-3/4 at 2048 symbols: TBS > 8424, above one base-graph-1 block)
NOISELESS = [("4QAM-1/3", 130), ("4QAM-1/2", 60), ("16QAM-2/3", 130), ("64QAM-3/4", 512),
             ("256QAM-3/4", 171), ("64QAM-3/4", 2048)]


def _payload(link: LdpcQamLink, batch: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 2, (batch, link.info_bits), generator=torch.Generator().manual_seed(seed)).float()


def _noisy_llr(link: LdpcQamLink, bits: torch.Tensor, snr_db: float, seed: int = 1) -> torch.Tensor:
    return link.llr(build_channel("awgn", seed=seed)(link.transmit(bits), snr_db))


@pytest.mark.parametrize(("mcs", "k"), NOISELESS)
@pytest.mark.parametrize("cn_update", ["boxplus-phi", "minsum"])
def test_noiseless_codewords_decode_bit_exactly(mcs: str, k: int, cn_update: str) -> None:
    link = LdpcQamLink(mcs, k, cn_update=cn_update, decoder="fast")  # type: ignore[arg-type]
    bits = _payload(link, 6)
    coded = link.encode(bits)
    for scale in (20.0, 3.0, 1e4):  # clipped, moderate and huge logits of the right sign
        bits_hat, ok = link.decode(scale * (2 * coded - 1))
        assert bool(ok.all()) and torch.equal(bits_hat, bits)
    if k == 2048:
        assert link.num_code_blocks == 2


def test_the_inner_decoder_matches_sionnas_on_codewords_with_and_without_early_stop() -> None:
    link = LdpcQamLink("16QAM-1/2", 130)
    inner = link._decoder._decoder  # Sionna's LDPC5GDecoder inside the TB decoder
    n = inner.encoder.n
    llr = 20.0 * (2 * torch.zeros(4, n) - 1)  # the all-zero codeword
    for early_stop in (True, False):
        fast = FastLdpc5GDecoder(inner, early_stop=early_stop)
        assert torch.equal(fast(llr), inner(llr))
    assert fast.num_edges == int(inner.pcm.nnz) and fast.num_cells >= fast.num_edges


@pytest.mark.parametrize(("mcs", "k", "snr_db"), [("4QAM-1/2", 130, 1.5), ("16QAM-2/3", 130, 9.0),
                                                  ("64QAM-3/4", 171, 15.0)])
def test_same_noisy_llrs_give_the_same_decisions(mcs: str, k: int, snr_db: float) -> None:
    """In the waterfall: the same payload decisions and CRC flags as Sionna on (almost) every block."""
    ref = LdpcQamLink(mcs, k)
    bits = _payload(ref, 100)
    llr = _noisy_llr(ref, bits, snr_db)
    ref_bits, ref_ok = ref.decode(llr)
    assert 0.02 < 1 - ref_ok.float().mean() < 0.98, "the SNR should sit in the waterfall"
    fast = LdpcQamLink(mcs, k, decoder="fast")
    inner = fast._blocks[1]._decoder  # cached and shared between links: restore what is changed
    try:
        for early_stop in (False, True):
            inner.early_stop = early_stop
            fast_bits, fast_ok = fast.decode(llr)
            assert (fast_ok == ref_ok).float().mean() >= 0.97
            assert (fast_bits == ref_bits).all(dim=1).float().mean() >= 0.97
    finally:
        inner.early_stop = True


def _interval(errors: int, blocks: int, z: float = 3.0) -> tuple[float, float]:
    """Wilson score interval of a BLER at ``z`` standard deviations."""
    p, n = errors / blocks, blocks
    mid = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, mid - half - 1e-9), min(1.0, mid + half + 1e-9)  # closed at 0 and 1 despite rounding


@pytest.mark.parametrize(("mcs", "k", "snrs"), [("4QAM-1/3", 130, [-1.0, 0.0]), ("16QAM-1/2", 130, [6.0, 7.0])])
def test_bler_within_the_monte_carlo_interval_of_sionnas(mcs: str, k: int, snrs: list[float]) -> None:
    kw = {"snrs_db": snrs, "max_blocks": 100, "min_errors": 100, "batch_size": 100, "seed": 3}
    ref = compute_bler_curve(mcs, k, **kw)  # type: ignore[arg-type]
    fast = compute_bler_curve(mcs, k, decoder="fast", **kw)  # type: ignore[arg-type]
    assert fast.blocks == ref.blocks
    for e_ref, e_fast, n in zip(ref.errors, fast.errors, ref.blocks, strict=True):
        lo, hi = _interval(e_ref, n)
        assert lo <= e_fast / n <= hi


def test_shapes_and_batches() -> None:
    link = LdpcQamLink("4QAM-1/2", 130, decoder="fast")
    dec: FastLdpc5GDecoder = link._blocks[1]._decoder
    bits = _payload(link, 12)
    llr_tb = _noisy_llr(link, bits, 2.0)
    # the inner decoder works on code-block LLRs [..., n]
    inner_llr = torch.randn(3, 4, dec.n) * 4
    out = dec(inner_llr)
    assert out.shape == (3, 4, dec.k) and out.dtype == torch.float32
    assert torch.equal(out.reshape(12, dec.k), dec(inner_llr.reshape(12, dec.n)))
    assert dec(torch.zeros(0, dec.n)).shape == (0, dec.k)
    # a block's decision does not depend on the rest of its batch
    bits_hat, ok = link.decode(llr_tb)
    assert bits_hat.shape == (12, link.info_bits) and ok.shape == (12,) and ok.dtype == torch.bool
    for i in (0, 5, 11):
        one_bits, one_ok = link.decode(llr_tb[i:i + 1])
        assert torch.equal(one_bits[0], bits_hat[i]) and bool(one_ok[0]) == bool(ok[i])
    with pytest.raises(ValueError, match="last dimension"):
        dec(torch.zeros(2, dec.n + 1))


def test_bad_options_are_refused() -> None:
    with pytest.raises(ValueError, match="decoder must be one of"):
        LdpcQamLink("4QAM-1/2", 130, decoder="turbo")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="fast decoder runs"):
        LdpcQamLink("4QAM-1/2", 130, cn_update="boxplus", decoder="fast")
    inner = LdpcQamLink("4QAM-1/2", 130)._decoder._decoder
    with pytest.raises(ValueError, match="cn_update"):
        FastLdpc5GDecoder(inner, cn_update="boxplus")  # type: ignore[arg-type]


def test_default_link_is_sionnas_and_repr_names_the_fast_one() -> None:
    ref, fast = LdpcQamLink("4QAM-1/2", 130), LdpcQamLink("4QAM-1/2", 130, decoder="fast")
    assert ref.decoder == "sionna" and "decoder=" not in repr(ref)
    assert "decoder=fast" in repr(fast)
    assert not isinstance(ref._decoder._decoder, FastLdpc5GDecoder)
    assert isinstance(fast._decoder._decoder, FastLdpc5GDecoder)
    assert fast._encoder is ref._encoder  # one encoder, shared


def test_bler_command_runs_the_fast_decoder(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["bler", "--num-symbols", "43", "--mcs", "4QAM-1/2", "--max-blocks", "20",
                                   "--batch-size", "20", "--min-errors", "5", "--step-db", "2",
                                   "--stop-bler", "0.2", "--decoder", "fast", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    table = json.loads((tmp_path / "awgn_k43.json").read_text())
    assert table["decoder"]["decoder"] == "fast"
    bad = CliRunner().invoke(app, ["bler", "--num-symbols", "43", "--decoder", "turbo", "--out", str(tmp_path)])
    assert bad.exit_code != 0 and "--decoder" in str(bad.exception)
