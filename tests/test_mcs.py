"""MCS naming, the cached BLER tables and MCS selection."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import pytest

from semcom.sscc.bler import compute_bler_curve
from semcom.sscc.link import LdpcQamLink, transport_block_size
from semcom.sscc.mcs import (
    BLER_TABLE_DIR,
    MCS_TABLE,
    BlerCurve,
    Mcs,
    bler_at,
    get_mcs,
    load_bler_table,
    required_snr_db,
    select_mcs,
)

SHIPPED = [43, 44, 130, 170, 171, 512]




def test_names_and_parsing():
    assert Mcs(2, Fraction(1, 2)).name == "4QAM-1/2"
    assert get_mcs("16qam - 2/3") == Mcs(4, Fraction(2, 3))
    assert get_mcs("64QAM-3/4").spectral_efficiency == 4.5
    assert Mcs(6, 0.75) == get_mcs("64QAM-3/4")  # floats become exact fractions
    assert str(Mcs(2, Fraction(1, 3))) == "4QAM-1/3"
    for bad in ["QPSK-1/2", "8QAM-1/2", "4QAM-0/2", "4QAM-1/1"]:
        with pytest.raises(ValueError):
            get_mcs(bad)


def test_table_holds_the_literature_schemes_in_rate_order():
    names = [m.name for m in MCS_TABLE]
    for lit in ["4QAM-1/3", "4QAM-1/2", "4QAM-2/3", "16QAM-1/2", "16QAM-2/3", "64QAM-1/2", "64QAM-2/3",
                "64QAM-3/4"]:
        assert lit in names
    assert len(set(names)) == len(names)
    eff = [m.spectral_efficiency for m in MCS_TABLE]
    assert eff == sorted(eff)


def test_curve_interpolation_and_required_snr():
    c = BlerCurve("4QAM-1/2", 100, 64, snr_db=[0.0, 1.0, 2.0], blocks=[100, 100, 1000], errors=[100, 10, 0])
    assert c.bler == [1.0, 0.1, 0.0]
    assert c.bler_at(-5.0) == 1.0  # below the table: BLER 1
    assert c.bler_at(0.5) == pytest.approx(10**-0.5)  # log-linear between points
    assert c.bler_at(1.0) == pytest.approx(0.1)
    assert c.bler_at(2.0) == pytest.approx(0.5 / 1000)  # no error counted as half a block
    assert c.required_snr_db(0.1) == pytest.approx(1.0)
    assert c.required_snr_db(10**-0.5) == pytest.approx(0.5)
    assert c.required_snr_db(1e-6) == math.inf
    assert BlerCurve("4QAM-1/3", 43, 0).bler_at(30.0) == 1.0


def test_monte_carlo_wiggles_never_make_more_snr_look_worse():
    """A lucky point (5 errors at 1 dB, 10 at 2 dB) is read at the worse value above it."""
    c = BlerCurve("4QAM-1/2", 100, 64, snr_db=[0.0, 1.0, 2.0, 3.0], blocks=[100] * 3 + [1000],
                  errors=[100, 5, 10, 0])
    values = [c.bler_at(x / 10) for x in range(-10, 40)]
    assert all(a >= b for a, b in itertools.pairwise(values))
    assert c.bler_at(1.0) == pytest.approx(0.1)
    assert c.required_snr_db(0.05) > 2.0


@pytest.mark.parametrize("k", SHIPPED)
def test_shipped_tables_match_the_link(k):
    """Each cached table was made by the current link: same TB sizes, same decoder, its command kept."""
    table = load_bler_table(k, "awgn")
    assert (BLER_TABLE_DIR / f"awgn_k{k}.json").is_file()
    assert table.decoder == {"num_bp_iter": 20, "cn_update": "boxplus-phi"}
    link = LdpcQamLink("4QAM-1/2", k)
    assert (link.num_bp_iter, link.cn_update) == (20, table.decoder["cn_update"])
    assert "--num-symbols" in table.meta["command"] and str(k) in table.meta["command"]
    assert set(table.curves) == {m.name for m in MCS_TABLE}
    for mcs in MCS_TABLE:
        curve = table.curves[mcs.name]
        assert curve.info_bits == transport_block_size(mcs, k)
        if curve.info_bits:
            assert curve.bler[0] > 0.5 and curve.bler[-1] < 0.02  # the sweep covers the waterfall
            assert all(b > 0 for b in curve.blocks)
            # higher-order schemes need more SNR
    reqs = [table.curves[m.name].required_snr_db(0.1) for m in MCS_TABLE if table.curves[m.name].info_bits]
    assert reqs[0] < reqs[-1]


def test_table_agrees_with_a_fresh_simulation():
    """One point of the cached 4QAM-1/2 curve at 130 symbols, re-simulated with another seed."""
    curve = load_bler_table(130).curves["4QAM-1/2"]
    i = max(range(len(curve.snr_db)), key=lambda j: min(curve.bler[j], 1 - curve.bler[j]))
    snr, p = curve.snr_db[i], curve.bler[i]
    fresh = compute_bler_curve("4QAM-1/2", 130, snrs_db=[snr], max_blocks=300, min_errors=300,
                               batch_size=200, seed=123)
    q = fresh.bler[0]
    sd = math.sqrt(p * (1 - p) / curve.blocks[i] + q * (1 - q) / fresh.blocks[0])
    assert abs(p - q) < 4 * sd + 0.02, (snr, p, q)


def test_select_mcs_is_monotone_and_respects_the_target():
    k = 130
    assert select_mcs(-10.0, k) is None  # nothing works: outage
    last_bits = 0
    for snr in [x / 2 for x in range(-4, 61)]:
        mcs = select_mcs(snr, k, target_bler=0.1)
        if mcs is None:
            assert last_bits == 0
            continue
        assert bler_at(mcs, k, snr) < 0.1
        bits = transport_block_size(mcs, k)
        assert bits >= last_bits
        last_bits = bits
        # no scheme that carries more bits also meets the target
        for other in MCS_TABLE:
            if transport_block_size(other, k) > bits:
                assert bler_at(other, k, snr) >= 0.1
    assert select_mcs(40.0, k) == get_mcs("256QAM-3/4")
    assert select_mcs(40.0, k, mcs_table=MCS_TABLE[:3]) == get_mcs("4QAM-2/3")


def test_select_mcs_tighter_target_needs_more_snr():
    k = 512
    for mcs in MCS_TABLE:
        assert required_snr_db(mcs, k, 0.01) >= required_snr_db(mcs, k, 0.1)
    snr = required_snr_db("16QAM-1/2", k, 0.1) + 0.05
    loose = select_mcs(snr, k, target_bler=0.1)
    strict = select_mcs(snr, k, target_bler=0.01)
    assert loose is not None
    assert strict is None or transport_block_size(strict, k) <= transport_block_size(loose, k)


def test_schemes_that_cannot_fit_are_never_selected():
    assert transport_block_size("4QAM-1/3", 43) == 0
    assert load_bler_table(43).curves["4QAM-1/3"].snr_db == []
    for snr in [0.0, 5.0, 30.0]:
        assert select_mcs(snr, 43, mcs_table=[get_mcs("4QAM-1/3")]) is None


def test_missing_table_names_the_command():
    with pytest.raises(FileNotFoundError, match=r"semcom bler --num-symbols 77"):
        select_mcs(10.0, 77)
