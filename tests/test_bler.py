"""The BLER simulator and its command line, ``semcom bler``."""

from __future__ import annotations

import json
import math
from pathlib import Path

from typer.testing import CliRunner

from semcom.cli.app import app
from semcom.sscc.bler import compute_bler_curve
from semcom.sscc.mcs import load_bler_table


def test_curves_are_reproducible_and_empty_when_nothing_fits():
    a = compute_bler_curve("64QAM-3/4", 20, snrs_db=[12.0], max_blocks=100, batch_size=100, seed=4)
    b = compute_bler_curve("64QAM-3/4", 20, snrs_db=[12.0], max_blocks=100, batch_size=100, seed=4)
    assert a == b and a.info_bits == 72
    empty = compute_bler_curve("4QAM-1/3", 43)
    assert empty.info_bits == 0 and empty.snr_db == []


def test_bler_help_lists_the_options():
    res = CliRunner().invoke(app, ["bler", "--help"])
    assert res.exit_code == 0, res.output
    for option in ["--num-symbols", "--channel", "--mcs", "--max-blocks", "--min-errors", "--batch-size",
                   "--step-db", "--stop-bler", "--num-bp-iter", "--cn-update", "--seed", "--jobs", "--threads",
                   "--out"]:
        assert option in res.output


def test_bler_writes_a_table_with_its_command(tmp_path: Path) -> None:
    """A tiny run: two block lengths, one MCS that fits only the longer one, a few blocks per point."""
    res = CliRunner().invoke(app, ["bler", "--num-symbols", "20,43", "--mcs", "4QAM-1/2", "--max-blocks", "20",
                                   "--batch-size", "20", "--min-errors", "5", "--step-db", "2",
                                   "--stop-bler", "0.2", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert [line.split(":")[0] for line in lines if not line.startswith(" ")] == ["awgn k=20", "awgn k=43"]
    assert "4QAM-1/2  TBS=    0  SNR@BLER0.1=   inf dB  points=0" in lines[1]  # nothing fits 20 symbols
    assert "4QAM-1/2  TBS=   24  SNR@BLER0.1=" in lines[3]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["awgn_k20.json", "awgn_k43.json"]

    data = json.loads((tmp_path / "awgn_k43.json").read_text())
    assert set(data) == {"channel", "num_symbols", "decoder", "meta", "curves"}
    assert (data["channel"], data["num_symbols"]) == ("awgn", 43)
    assert data["decoder"] == {"num_bp_iter": 20, "cn_update": "boxplus-phi"}
    assert data["meta"]["command"].startswith("semcom bler --num-symbols 20,43")
    assert data["meta"]["settings"] == {"max_blocks": 20, "min_errors": 5, "batch_size": 20, "step_db": 2.0,
                                        "stop_bler": 0.2, "seed": 0}
    curve = data["curves"]["4QAM-1/2"]
    assert set(curve) == {"mcs", "num_symbols", "info_bits", "snr_db", "blocks", "errors", "bler"}
    assert curve["info_bits"] == 24 and curve["errors"][0] > 0 and all(b <= 20 for b in curve["blocks"])
    assert curve["bler"] == [e / b for e, b in zip(curve["errors"], curve["blocks"], strict=True)]
    assert curve["bler"][-1] < 0.2
    table = load_bler_table(43, "awgn", tmp_path)
    assert table.curves["4QAM-1/2"].required_snr_db(0.5) < math.inf
    # the same curve as the library makes with the same settings
    assert table.curves["4QAM-1/2"] == compute_bler_curve("4QAM-1/2", 43, max_blocks=20, batch_size=20,
                                                          min_errors=5, step_db=2.0, stop_bler=0.2)


def test_bler_refuses_bad_lists(tmp_path: Path) -> None:
    for args in (["--num-symbols", "20,x"], ["--num-symbols", "0"], ["--num-symbols", "20", "--mcs", "QPSK-1/2"]):
        res = CliRunner().invoke(app, ["bler", *args, "--out", str(tmp_path)])
        assert res.exit_code != 0
    assert not list(tmp_path.iterdir())
