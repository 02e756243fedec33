"""What semcom prints in a terminal, and running a part of a scenario from the command line.

Covers: the results table (``semcom run``, ``semcom show``) and ``semcom models`` within 80 columns
with no cell cut; ``semcom models NAME`` as a readable card and ``--json`` as the raw record;
``--images`` and ``--snr`` (a part of the sweep draws the full run's channels, overrides are in
the fingerprint and in results.json, errors name the option); ``semcom validate``'s size and time
estimate; no path of a development machine in any help text, doc, scenario or card.
"""

from __future__ import annotations

import json
import math
import re
import shlex
from pathlib import Path

import pytest
from helpers import TINY_SETUP, TINY_USERS
from rich.console import Console
from typer.testing import CliRunner

from semcom.cli.app import app
from semcom.errors import ScenarioError
from semcom.scenarios import load_results, run_scenario
from semcom.scenarios.checks import estimate_seconds, format_duration
from semcom.scenarios.persistence import load_partials, save_partial
from semcom.scenarios.plan import make_plan
from semcom.scenarios.point import PointResult
from semcom.scenarios.report import results_table
from semcom.scenarios.results import write_results

ROOT = Path(__file__).resolve().parents[1]
WIDE = {"COLUMNS": "80", "LINES": "50", "NO_COLOR": "1"}
TINY = f"""\
name: tiny
{TINY_SETUP}{TINY_USERS}quick: {{images: 4, snr_points: 2, draws: 1}}
"""


@pytest.fixture
def tiny(tmp_path: Path, allow_code: None) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY, encoding="utf-8")
    return path


def _text(rows: list[dict]) -> str:
    return json.dumps(rows, default=str)


def _check_80(text: str) -> None:
    lines = text.splitlines()
    assert lines, "nothing printed"
    too_long = [line for line in lines if len(line.rstrip()) > 80]
    assert not too_long, f"lines over 80 columns: {too_long}"
    assert "…" not in text, f"a cell was cut:\n{text}"


# -- tables at 80 columns ----------------------------------------------------------------------------


def _rows(systems: list[str], users: list[str]) -> list[dict]:
    rows = []
    for system in systems:
        for user in users:
            for layer in (1, 2, 3):
                for point, snr in enumerate((-10.5, 0.0, 20.0)):
                    rows.append({"system": system, "kind": "jscc", "user": user, "layer": layer,
                                 "symbols": 1024 * layer, "point": point, "snr_db": snr, "psnr_mean": 38.531,
                                 "psnr_ci95": 0.12, "psnr_pooled": 36.63, "accuracy": 1.0,
                                 "accuracy_ci95": 0.012, "outage_rate": 1.0 if snr < 0 else 0.0})
    return rows


@pytest.mark.parametrize("users", [["rx"], ["far", "middle", "near-user"]])
def test_results_table_fits_80_columns(users: list[str]) -> None:
    systems = ["jscc", "hevc-intra+adaptive", "linear"]
    rows = _rows(systems, users)
    meta = {"scenario": {"name": "paper-cifar10-rayleigh"}, "dataset": {"name": "cifar10", "images": 10000},
            "draws": 3, "seed": 0, "quick": True, "overrides": {"images": 20, "snr_db": {"near": [0.0, 20.0]}}}
    console = Console(width=80, record=True, color_system=None)
    console.print(results_table(rows, meta))
    text = console.export_text()
    _check_80(text)
    for name in systems:
        assert re.search(rf"^{re.escape(name)} ", text, re.M), f"{name} not in full"
    for name in users:
        assert f" {name} " in text or f"user {name};" in text, f"{name} not in full"
    for cell in ("-10.5", "38.53", "36.63", "100.0", "1024", "3072"):
        assert cell in text
    assert "--images 20 --snr near=0,20" in " ".join(text.split())  # what the run changed is said


def test_show_and_models_fit_80_columns(tmp_path: Path) -> None:
    rows = _rows(["jscc", "jpeg-ldpc"], ["rx"])
    write_results(tmp_path, rows, {"scenario": {"name": "quickstart"}, "dataset": {"name": "mnist-sample",
                                                                                  "images": 20}})
    runner = CliRunner()
    shown = runner.invoke(app, ["show", str(tmp_path)], env=WIDE)
    assert shown.exit_code == 0, shown.output
    _check_80(shown.output)
    assert "jpeg-ldpc" in shown.output and "PSNR" in shown.output
    listed = runner.invoke(app, ["models"], env=WIDE)
    assert listed.exit_code == 0, listed.output
    _check_80(listed.output)
    from semcom.zoo import list_models

    for entry in list_models():
        line = next(line for line in listed.output.splitlines() if line.startswith(entry.name + " "))
        symbols = "/".join(map(str, entry.card["layer_symbols"]))
        assert f" {symbols} " in line and line.rstrip().endswith("ok")
        assert len(re.findall(r"\d+\.\d/\d+\.\d/\d+\.\d", line)) == (1 if len(entry.card["layer_symbols"]) == 3
                                                                       else 0)


def test_model_card_is_readable_and_json_is_the_record() -> None:
    from semcom.zoo import model_card

    runner = CliRunner()
    res = runner.invoke(app, ["models", "mnist-mr3-rayleigh"], env=WIDE)
    assert res.exit_code == 0, res.output
    _check_80(res.output)
    text = res.output
    for section in ("What it is", "Data", "Channel and SNRs", "Layers and symbols", "Test results",
                    "Training command", "Check"):
        assert re.search(rf"^{section}", text, re.M), f"no section {section}"
    card = model_card("mnist-mr3-rayleigh")
    assert "fine-tuned from mnist-mr3-awgn" in " ".join(text.split())
    assert card["sha256"] in text and "ok, the weights file matches the card" in text
    # every test number of the card, per layer and SNR
    for values in card["test"]["psnr_db"]:
        assert " ".join(f"{v:.2f}" for v in values) in " ".join(text.split())
    for values in card["test"]["accuracy"]:
        assert " ".join(f"{100 * v:.1f}" for v in values) in " ".join(text.split())
    # the training command, cut into pasteable lines, is the card's command word for word
    block = text.split("Training command")[1].split("\n\nCheck")[0].splitlines()[1:]
    assert all(line.endswith(" \\") for line in block[:-1])
    assert shlex.split(" ".join(line.removesuffix(" \\") for line in block)) == shlex.split(card["command"])
    raw = runner.invoke(app, ["models", "mnist-mr3-rayleigh", "--json"])
    assert raw.exit_code == 0 and json.loads(raw.output) == card


# -- --images and --snr ------------------------------------------------------------------------------


def test_snr_override_on_the_sweep_keeps_its_points_and_seeds(tiny: Path) -> None:
    from semcom.scenarios import load_scenario

    sc = load_scenario(tiny)
    plain = make_plan(sc)
    assert plain.overrides == {} and make_plan(sc).fingerprint() == plain.fingerprint()
    part = make_plan(sc, images=3, snr=[20, 0])
    assert part.scenario is sc and part.points == (0, 2) and part.images == 3
    assert part.overrides == {"images": 3, "snr_db": {"near": [20.0, 0.0]}}
    assert part.fingerprint() != make_plan(sc, quick=True).fingerprint() != plain.fingerprint()
    full = run_scenario(sc, images=3)
    sub = run_scenario(sc, images=3, snr=[0, 20])
    assert _text(sub.rows) == _text([r for r in full.rows if r["point"] in (0, 2)])
    assert sub.metadata["overrides"] == {"images": 3, "snr_db": {"near": [0.0, 20.0]}}
    assert full.metadata["overrides"] == {"images": 3}
    # --quick picks among the points given; an explicit --images wins over quick.images
    quick = make_plan(sc, quick=True, images=2, snr={"near": [0, 10, 20]})
    assert quick.points == (0, 2) and quick.images == 2 and quick.draws == 1
    assert make_plan(sc, quick=True).images == 4


def test_snr_override_off_the_sweep_makes_a_new_one(tiny: Path) -> None:
    from semcom.scenarios import load_scenario

    sc = load_scenario(tiny)
    plan = make_plan(sc, snr=[5, 15])
    assert plan.points == (0, 1) and plan.snr == {"near": [5.0, 15.0], "far": [3.0, 3.0]}
    assert plan.scenario.source == sc.source and plan.scenario.text == sc.text  # provenance: the file
    fixed = make_plan(sc, snr={"near": [7], "far": [1, 2]})
    assert fixed.snr == {"near": [7.0, 7.0], "far": [1.0, 2.0]} and fixed.scenario.sweeping_users() == ["far"]
    res = run_scenario(sc, images=2, snr=[5])
    assert {(r["user"], r["snr_db"]) for r in res.rows} == {("near", 5.0), ("far", 3.0)}
    assert res.metadata["users"][0]["snr_db"] == [5.0]
    for bad, message in (([0, 0], "0 dB is given twice"), ([500], "outside -50 to 100 dB"),
                         ({"nobody": [1]}, "no user 'nobody'"), ({"far": [1, 2, 3, 4]}, "same number of points")):
        with pytest.raises(ScenarioError, match=f"--snr: .*{message}"):
            make_plan(sc, snr=bad)  # type: ignore[arg-type]
    with pytest.raises(ScenarioError, match="--images"):
        make_plan(sc, images=0)


def test_overrides_never_resume_another_run(tiny: Path, tmp_path: Path) -> None:
    from semcom.scenarios import load_scenario

    sc = load_scenario(tiny)
    one, other = make_plan(sc, images=3, snr=[0, 10]), make_plan(sc, images=4, snr=[0, 10])
    save_partial(tmp_path, one.fingerprint(), PointResult(0, [], [], 0.1))
    assert list(load_partials(tmp_path, one)) == [0]
    with pytest.raises(ScenarioError, match="partial results of a different run"):
        load_partials(tmp_path, other)


def test_cli_run_and_validate_take_the_overrides(tiny: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "out"
    res = runner.invoke(app, ["run", str(tiny), "--images", "2", "--snr", "near=0,20", "--snr", "far=3",
                              "--out", str(out)], env=WIDE)
    assert res.exit_code == 0, res.output
    _check_80(res.output.split("wrote ")[0])
    rows, meta = load_results(out)
    assert meta["overrides"] == {"images": 2, "snr_db": {"near": [0.0, 20.0], "far": [3.0]}}
    assert meta["points"] == [0, 2] and {r["images"] for r in rows} == {2}
    res = runner.invoke(app, ["validate", str(tiny), "--images", "2", "--snr", "0:20:10"], env=WIDE)
    assert res.exit_code == 0, res.output
    assert "size     2 images x 3 points x 2 draws x 2 systems = 24 transmissions" in res.output
    assert re.search(r"time     about \d+ (s|min)", res.output) and "rough" in res.output
    for args, message in ((["--snr", "0,x"], "expected numbers"), (["--snr", "1", "--snr", "near=2"], "not both"),
                          (["--snr", "0:10:-1"], "greater than 0"), (["--images", "0"], "--images")):
        bad = runner.invoke(app, ["validate", str(tiny), *args], env=WIDE)
        assert bad.exit_code == 2 and message in " ".join(bad.output.replace("│", " ").split()), bad.output


def test_time_estimate_leaves_the_run_unchanged(tiny: Path) -> None:
    import torch

    from semcom.scenarios import load_scenario
    from semcom.scenarios.checks import check_plan

    sc = load_scenario(tiny)
    before = run_scenario(sc, images=3).rows
    plan = make_plan(sc, images=3)
    state, _ = check_plan(plan)
    generator, threads = torch.get_rng_state(), torch.get_num_threads()
    seconds = estimate_seconds(plan, state)
    assert math.isfinite(seconds) and seconds > 0
    assert torch.equal(torch.get_rng_state(), generator) and torch.get_num_threads() == threads
    assert _text(run_scenario(sc, images=3).rows) == _text(before)
    assert [format_duration(s) for s in (0.2, 40, 700, 4 * 3600, 5 * 86400)] == ["1 s", "40 s", "12 min",
                                                                                 "4.0 h", "5.0 days"]


# -- no development paths ----------------------------------------------------------------------------

MACHINE_PATH = re.compile(r"(/work/|/home/|/root/|/Users/|/tmp/|\.\./shared|[A-Za-z]:\\\\)")
COMMANDS = ["list", "models", "run", "validate", "show", "plot", "train", "fit-linear", "train-receiver", "bler"]


def test_help_texts_name_no_machine_path() -> None:
    runner = CliRunner()
    for command in ["", *COMMANDS]:
        res = runner.invoke(app, [*command.split(), "--help"], env=WIDE)
        assert res.exit_code == 0, res.output
        found = MACHINE_PATH.findall(res.output)
        assert not found, f"semcom {command} --help names {found}"
        assert "Example" in res.output or not command, f"semcom {command} --help has no example"


def _shipped_texts() -> list[Path]:
    docs = [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]
    scenarios = sorted((ROOT / "scenarios").glob("*.yaml")) + sorted((ROOT / "semcom" / "scenarios" /
                                                                      "builtin").glob("*.yaml"))
    cards = sorted((ROOT / "semcom" / "zoo" / "weights").glob("*.json")) + sorted(
        (ROOT / "semcom" / "receivers" / "weights").glob("*.json"))
    return docs + scenarios + cards


@pytest.mark.parametrize("path", _shipped_texts(), ids=lambda p: p.name)
def test_docs_scenarios_and_cards_name_no_machine_path(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    found = sorted(set(MACHINE_PATH.findall(text)))
    assert not found, f"{path.relative_to(ROOT)} names {found}"
    if path.suffix == ".json":
        card = json.loads(text)
        command = card.get("command") or ""
        assert "--data-root" not in command or "--data-root DATA" in command
