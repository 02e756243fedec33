"""The scenario runner end to end, on the offline MNIST sample with a small linear JSCC plug-in.

Covers: the files a run writes (CSV, JSON with provenance, PNG/PDF plots) through the CLI; resuming
an interrupted sweep gives the same table; ``--workers 2`` gives the same numbers as ``--workers 1``;
seeds independent of order, of ``--quick`` and of broadcast vs unicast encoding; Monte Carlo draws;
outages; the errors a user can make.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import pytest
import torch
from helpers import LINEAR_FACTORY as FACTORY
from helpers import TINY_SETUP, TINY_USERS
from PIL import Image
from typer.testing import CliRunner

from semcom.cli.app import app
from semcom.errors import ScenarioError, SemcomError
from semcom.scenarios import load_results, load_scenario, parse_scenario, run_scenario
from semcom.scenarios.results import COLUMNS, CSV_NAME, JSON_NAME
from semcom.scenarios.runner import PARTIAL_DIR, PointResult, derive_seed, evaluate_point, make_plan

# Their scenario files name a test factory by module path, which needs the user's opt-in.
pytestmark = pytest.mark.usefixtures("allow_code")


TINY = f"""\
name: tiny
description: two systems, two users, three SNR points
{TINY_SETUP}channel:
  type: awgn
{TINY_USERS}quick:
  images: 5
  snr_points: 2
  draws: 2
"""
ROWS_PER_POINT = 2 * (2 + 1)  # systems x (layers of near + layers of far)




@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY, encoding="utf-8")
    return path


def _csv(out: Path) -> str:
    return (out / CSV_NAME).read_text(encoding="utf-8")


def _text(rows: list[dict]) -> str:
    """Rows as text, so that NaN equals NaN in comparisons."""
    return json.dumps(rows, default=str)


def _by_key(rows: list[dict]) -> list[dict]:
    return sorted(rows, key=lambda r: (r["system"], r["user"], r["layer"], r["point"]))


def test_cli_run_writes_csv_json_plots(tiny: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    runner = CliRunner()
    res = runner.invoke(app, ["run", str(tiny), "--out", str(out), "--quiet", "--threads", "1"])
    assert res.exit_code == 0, res.output
    header, *lines = _csv(out).splitlines()
    assert header.split(",") == COLUMNS
    assert len(lines) == 3 * ROWS_PER_POINT
    rows, meta = load_results(out)
    assert [(r["system"], r["user"], r["layer"], r["point"]) for r in rows[:4]] == [
        ("lin", "near", 1, 0), ("lin", "near", 1, 1), ("lin", "near", 1, 2), ("lin", "near", 2, 0)]
    for r in rows:
        assert r["images"] == 5 and r["draws"] == 2 and r["samples"] == 10
        assert math.isfinite(r["psnr_mean"]) and math.isfinite(r["psnr_ci95"]) and r["psnr_std"] >= 0
        assert math.isnan(r["ms_ssim_mean"])  # 28 x 28 is too small for five scales
        assert math.isnan(r["accuracy"]) == (r["user"] == "far")  # far has no classification task
    assert {r["kind"] for r in rows} == {"jscc", "sscc"}
    # provenance
    text = tiny.read_text(encoding="utf-8")
    assert meta["scenario"]["text"] == text
    assert meta["scenario"]["sha256"] == hashlib.sha256(text.encode()).hexdigest()
    assert meta["seed"] == 7 and meta["points"] == [0, 1, 2] and meta["quick"] is False
    assert {"python", "torch", "semcom"} <= set(meta["versions"])
    assert meta["systems"][0]["checksums"]["linear-basis"]
    assert meta["systems"][1]["layer_symbols"] == [6, 6]
    assert meta["timing"]["elapsed_s"] > 0 and meta["timing"]["resumed_points"] == []
    assert "ms_ssim" in meta["metrics"]
    def no_constants(name: str) -> None:
        raise AssertionError(f"results.json holds {name}, which strict JSON does not allow")

    json.loads((out / JSON_NAME).read_text(encoding="utf-8"), parse_constant=no_constants)
    assert not (out / PARTIAL_DIR).exists()
    for name in ("psnr_vs_snr", "accuracy_vs_snr"):
        with Image.open(out / f"{name}.png") as img:
            img.verify()
            assert img.format == "PNG" and img.size[0] > 400
        assert (out / f"{name}.pdf").read_bytes().startswith(b"%PDF")
    shown = runner.invoke(app, ["show", str(out)])
    assert shown.exit_code == 0 and "cliff" in shown.output and "PSNR" in shown.output


@pytest.mark.slow
def test_workers_give_the_same_numbers(tiny: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    before = torch.get_num_threads()
    torch.set_num_threads(2)  # the caller's setting must not leak into a serial run's sums
    try:
        for workers in ("1", "2"):
            res = runner.invoke(app, ["run", str(tiny), "--out", str(tmp_path / workers), "--quiet",
                                      "--workers", workers])
            assert res.exit_code == 0, res.output
    finally:
        torch.set_num_threads(before)
    assert _csv(tmp_path / "1") == _csv(tmp_path / "2")
    assert load_results(tmp_path / "2")[1]["workers"] == 2


def test_resume_after_interruption_gives_the_same_table(tiny: Path, tmp_path: Path) -> None:
    whole = run_scenario(tiny, tmp_path / "whole")
    seen: list[int] = []

    def stop_after_first(result: PointResult) -> None:
        seen.append(result.point)
        raise KeyboardInterrupt

    out = tmp_path / "cut"
    with pytest.raises(KeyboardInterrupt):
        run_scenario(tiny, out, on_point=stop_after_first)
    assert seen == [0]
    assert sorted(p.name for p in (out / PARTIAL_DIR).iterdir()) == ["point-0000.json"]
    assert not (out / CSV_NAME).exists()

    again: list[int] = []
    resumed = run_scenario(tiny, out, on_point=lambda r: again.append(r.point))
    assert again == [1, 2]  # the finished point was not run again
    assert _csv(out) == _csv(tmp_path / "whole")
    assert _text(resumed.rows) == _text(whole.rows)
    assert resumed.metadata["timing"]["resumed_points"] == [0]


def test_partial_results_of_another_run_are_refused(tiny: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"

    def stop(result: PointResult) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_scenario(tiny, out, on_point=stop)
    changed = parse_scenario(TINY.replace("seed: 7", "seed: 8"), tiny)
    with pytest.raises(ScenarioError, match=r"partial results of a different run.*--fresh"):
        run_scenario(changed, out)
    done = run_scenario(changed, out, resume=False)
    assert done.metadata["timing"]["resumed_points"] == [] and done.metadata["seed"] == 8


def test_quick_and_order_and_unicast_keep_the_seeds(tiny: Path) -> None:
    sc = load_scenario(tiny)
    full = run_scenario(sc)  # in memory
    assert full.out_dir is None and full.csv_path is None
    quick = run_scenario(sc, quick=True)
    assert quick.metadata["points"] == [0, 2] and quick.metadata["quick"] is True
    assert _text(quick.rows) == _text([r for r in full.rows if r["point"] in (0, 2)])

    plan = make_plan(sc)
    backwards = [row for p in (2, 1, 0) for row in evaluate_point(plan, p).rows]
    assert _text(_by_key(backwards)) == _text(_by_key(full.rows))

    # The linear encoder ignores the SNRs, and the channel seeds do not depend on how often it
    # encoded: unicast (one encoding per user) gives the broadcast's numbers.
    lin = "    options: {layer_symbols: [6, 6, 6]}"
    unicast = parse_scenario(TINY.replace(lin, "    mode: unicast\n" + lin), tiny)
    assert _text(run_scenario(unicast).rows) == _text(full.rows)


def test_metrics_follow_the_physics(tmp_path: Path) -> None:
    """Linear JSCC over AWGN: PSNR grows with SNR and with layers; outages exactly below 5 dB."""
    text = TINY.replace("snr_db: {start: 0, stop: 20, step: 10}", "snr_db: [0, 60]").replace(
        "  - name: far\n    snr_db: 3\n    resolution: 1\n", "")
    res = run_scenario(parse_scenario(text, tmp_path / "t.yaml"))
    psnr = {(r["system"], r["layer"], r["snr_db"]): r["psnr_mean"] for r in res.rows}
    assert psnr[("lin", 2, 60.0)] > psnr[("lin", 2, 0.0)]
    assert psnr[("lin", 2, 60.0)] > psnr[("lin", 1, 60.0)]
    outage = {(r["system"], r["snr_db"]): r["outage_rate"] for r in res.rows if r["layer"] == 1}
    assert outage == {("lin", 0.0): 0.0, ("lin", 60.0): 0.0, ("cliff", 0.0): 1.0, ("cliff", 60.0): 0.0}
    cliff_low = next(r for r in res.rows if r["system"] == "cliff" and r["snr_db"] == 0.0)
    assert cliff_low["psnr_std"] > 0  # every image shows the mean image, with its own PSNR
    assert cliff_low["info"] == {"decoder": "D1", "symbols": 6.0}


def test_a_process_keeps_one_split_and_one_plan(tiny: Path) -> None:
    from semcom.scenarios.cache import RunCache

    cache = RunCache()
    plan = make_plan(load_scenario(tiny))
    state = cache.state(plan)
    assert cache.state(plan) is state  # the next point reuses the systems
    quick = make_plan(load_scenario(tiny), quick=True)
    other = cache.state(quick)
    assert other is not state and cache.state(quick) is other
    assert cache.split("mnist-sample", "test", None) is cache.split("mnist-sample", "test", None)
    assert _text(evaluate_point(quick, 2, cache=cache).rows) == _text(evaluate_point(quick, 2).rows)


def test_seeds_are_hashes_of_their_path() -> None:
    a = derive_seed(0, "channel", "lin", "near", 1, 0, 0)
    assert a == derive_seed(0, "channel", "lin", "near", 1, 0, 0)
    others = {derive_seed(0, "channel", "lin", "near", 1, 0, 1),
              derive_seed(0, "channel", "lin", "far", 1, 0, 0),
              derive_seed(1, "channel", "lin", "near", 1, 0, 0),
              derive_seed(0, "channel", "lin", "near", 2, 0, 0)}
    assert a not in others and len(others) == 4
    assert 0 <= a < 2**63


def test_user_errors_are_clear(tiny: Path, tmp_path: Path) -> None:
    too_many = parse_scenario(TINY.replace("    resolution: 2\n", "    resolution: 4\n"), tiny)
    with pytest.raises(ScenarioError, match=r"tiny\.yaml:23: users\[0\]\.resolution: user 'near' asks for 4 "
                                            r"layers but the most any system here has is 3"):
        run_scenario(too_many)
    # a system with fewer layers serves a user with all it has: 'cliff' (2 layers) for a 3-layer user
    deeper = run_scenario(parse_scenario(TINY.replace("    resolution: 2\n", "    resolution: 3\n"), tiny),
                          quick=True)
    layers = {(r["system"], r["user"]): r["layer"] for r in deeper.rows}
    assert layers[("lin", "near")] == 3 and layers[("cliff", "near")] == 2
    # validation already imports the factories (the user allowed code): the file's line, before any run
    with pytest.raises(ScenarioError, match=r"tiny\.yaml:12: systems\[0\]\.factory: .*cannot import no_such_module"):
        parse_scenario(TINY.replace(FACTORY, "no_such_module:build"), tiny)
    with pytest.raises(ScenarioError, match=r"tiny\.yaml:12: .*is a property, not a function"):
        parse_scenario(TINY.replace(FACTORY, "test_runner_support:LinearJscc.num_layers"), tiny)
    bad_option = parse_scenario(TINY.replace("kind: sscc", "colour: red"), tiny)
    with pytest.raises(ScenarioError, match=r"system 'cliff': .*unexpected keyword argument 'colour'"):
        run_scenario(bad_option)
    junk = TINY.replace(FACTORY, "builtins:str", 1).replace("{layer_symbols: [6, 6, 6]}", "{}")
    with pytest.raises(ScenarioError, match="system 'lin': the factory returned a str, not a Transmission"):
        run_scenario(parse_scenario(junk, tiny))
    runner = CliRunner()
    res = runner.invoke(app, ["show", str(tmp_path / "nothing")])
    assert res.exit_code == 1 and "no results here" in str(res.exception)


def test_module_factories_need_the_users_opt_in(tiny: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A scenario file cannot make semcom import a module unless the user says so (docs/security.md)."""
    import sys

    from semcom.errors import ALLOW_CODE_ENV
    from semcom.registry import Entry
    from semcom.scenarios.factory import SYSTEMS

    monkeypatch.delenv(ALLOW_CODE_ENV)
    sys.modules.pop("test_runner_support", None)
    with pytest.raises(ScenarioError, match=r"tiny\.yaml:12: systems\[0\]\.factory: .*module path: loading it "
                                            r"would run that module's code.*--allow-code"):
        load_scenario(tiny)
    assert "test_runner_support" not in sys.modules  # refused before any import
    res = CliRunner().invoke(app, ["validate", str(tiny)])
    assert res.exit_code == 1 and "--allow-code" in str(res.exception)
    # an installed plug-in (an entry point; here registered directly) needs no opt-in
    from test_runner_support import build_linear_system

    monkeypatch.setitem(SYSTEMS._entries, "tiny-linear", Entry("tiny-linear", "test plug-in", build_linear_system,
                                                               "tests"))
    named = TINY.replace(f'"{FACTORY}"', "tiny-linear")
    assert run_scenario(parse_scenario(named, tiny), quick=True).rows
    with pytest.raises(ScenarioError, match=r"unknown system factory 'no-such-plugin'; installed: .*tiny-linear"):
        parse_scenario(named.replace("tiny-linear", "no-such-plugin"), tiny)


def test_zoo_jscc_end_to_end(tmp_path: Path) -> None:
    """The real pretrained JSCC through the runner (skipped while its weights are not in the zoo)."""
    from semcom.zoo import weights_path

    if not weights_path("mnist-mr3-awgn").is_file():
        pytest.skip("zoo model mnist-mr3-awgn has no weights in this checkout")
    text = """\
name: zoo
dataset: {name: mnist-sample, images: 10}
systems: [{name: jscc, type: jscc, model: mnist-mr3-awgn}]
users:
  - {name: low, snr_db: 0, resolution: 1, tasks: [reconstruction, classification]}
  - {name: high, snr_db: 20, resolution: 3, tasks: [reconstruction, classification]}
"""
    res = run_scenario(parse_scenario(text, tmp_path / "zoo.yaml"), tmp_path / "out")
    psnr = {(r["user"], r["layer"]): r["psnr_mean"] for r in res.rows}
    assert psnr[("high", 3)] > psnr[("low", 1)] > 10.0
    assert res.metadata["systems"][0]["checksums"]  # sha256 of the zoo weights
    assert all(r["outage_rate"] == 0.0 for r in res.rows)


def test_sscc_end_to_end(tmp_path: Path) -> None:
    """The real SSCC system through the runner: the cliff (all outages) and the capacity bound."""
    pytest.importorskip("semcom.sscc.system")
    text = """\
name: sscc
dataset: {name: mnist-sample, images: 4}
systems:
  - {name: cap, type: sscc, codec: jpeg, mcs: capacity, layer_symbols: [300, 300]}
  - {name: ldpc, type: sscc, codec: jpeg, mcs: 16QAM-1/2, layer_symbols: [300, 300]}
users:
  - {name: low, snr_db: -5, resolution: 1}
  - {name: high, snr_db: 30, resolution: 2}
"""
    res = run_scenario(parse_scenario(text, tmp_path / "sscc.yaml"))
    rows = {(r["system"], r["user"], r["layer"]): r for r in res.rows}
    assert rows[("ldpc", "low", 1)]["outage_rate"] == 1.0 and rows[("cap", "low", 1)]["outage_rate"] == 1.0
    assert all(rows[(s, "high", r)]["outage_rate"] == 0.0 for s in ("cap", "ldpc") for r in (1, 2))
    assert rows[("ldpc", "high", 2)]["psnr_mean"] > rows[("ldpc", "high", 1)]["psnr_mean"]
    assert rows[("cap", "high", 1)]["psnr_mean"] > rows[("ldpc", "high", 1)]["psnr_mean"]  # the ideal bound
    assert {r["kind"] for r in res.rows} == {"sscc"}
    assert "payload" in json.dumps(res.metadata["systems"][1]["details"])  # header accounting is said


def test_result_files_follow_the_umask(tmp_path) -> None:
    import os
    import stat

    from semcom.scenarios.results import atomic_write_text

    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "r.json", "{}")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "r.json").stat().st_mode) == 0o644


def test_one_run_per_out_folder(tiny: Path, tmp_path: Path) -> None:
    """A second run into a folder a live run holds is refused with its pid; a dead run's lock is taken."""
    import os
    import subprocess
    import sys

    from semcom.scenarios.runner import LOCK_NAME

    out = tmp_path / "out"
    out.mkdir()
    parent = os.getppid()  # alive for the whole test
    (out / LOCK_NAME).write_text(f"{parent}\n")
    with pytest.raises(SemcomError, match=rf"in use by another semcom run \(pid {parent}\)"):
        run_scenario(parse_scenario(TINY, tiny), out, quick=True)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (out / LOCK_NAME).write_text(gone.stdout)
    res = run_scenario(parse_scenario(TINY, tiny), out, quick=True)
    assert res.rows and not (out / LOCK_NAME).exists()  # taken over, then released


def test_unwritable_out_is_one_clear_error(tiny: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(SemcomError, match=r"a-file/out: cannot write results there .*give a writable --out"):
        run_scenario(parse_scenario(TINY, tiny), blocker / "out", quick=True)
