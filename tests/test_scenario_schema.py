"""Scenario files: validation messages (file, line, field, what is allowed), sweeps, built-ins, schema."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from semcom.cli.app import app
from semcom.errors import ScenarioError
from semcom.scenarios import SCENARIOS, load_scenario, parse_scenario, scenario_json_schema
from semcom.scenarios.builtin import BUILTIN_DIR
from semcom.scenarios.schema import Scenario

# Their scenario files name a test factory by module path, which needs the user's opt-in.
pytestmark = pytest.mark.usefixtures("allow_code")

REPO = Path(__file__).resolve().parents[1]

BASE = """\
name: base
description: a valid scenario
seed: 1
dataset:
  name: mnist-sample
  images: 4
systems:
  - name: lin
    type: plugin
    factory: "test_runner_support:build_linear_system"
  - name: ref
    type: jscc
    model: mnist-mr3-awgn
  - name: digital
    type: sscc
    codec: jpeg
    mcs: 4QAM-1/2
    symbols_from: ref
channel:
  type: awgn
users:
  - name: near
    snr_db: [0, 10]
    resolution: 2
  - name: far
    snr_db: 5
    resolution: 1
"""


def _write(tmp_path: Path, text: str, name: str = "bad.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_base_is_valid(tmp_path: Path) -> None:
    sc = load_scenario(_write(tmp_path, BASE, "ok.yaml"))
    assert [s.label for s in sc.systems] == ["lin", "ref", "digital"]
    assert sc.snr_table() == {"near": [0.0, 10.0], "far": [5.0, 5.0]}
    assert sc.sweeping_users() == ["near"]
    assert sc.where(("users", 1, "resolution")).endswith("ok.yaml:27")


# (case, text replaced, replacement, field in the message, text on the reported line, words of the message)
BAD = [
    ("unknown top-level field", "seed: 1\n", "seed: 1\nsnr: 3\n", "snr", "snr: 3",
     ["unknown field 'snr'", "allowed: name, description, seed, draws"]),
    ("misspelt user field", "    snr_db: 5\n", "    snr: 5\n", "users[1].snr", "snr: 5",
     ["unknown field 'snr' (did you mean 'snr_db'?)", "allowed: name, snr_db, resolution, tasks"]),
    ("missing required field", "    snr_db: 5\n", "", "users[1].snr_db", "- name: far",
     ["missing required field 'snr_db'", "a number, a list of numbers, or {start, stop, step}"]),
    ("wrong word", "  type: awgn\n", "  type: awgn\n  block: frame\n", "channel.block", "block: frame",
     ["'frame' is not allowed", "allowed: 'image', 'layer' or 'symbol'"]),
    ("unknown system type", "    type: plugin\n", "    type: digital\n", "systems[0].type", "type: digital",
     ["'digital' is not allowed", "allowed: jscc, sscc, linear, plugin"]),
    ("field of another system type", "    model: mnist-mr3-awgn\n",
     "    model: mnist-mr3-awgn\n    codec: jpeg\n", "systems[1].codec", "    codec: jpeg\n  - name: digital",
     ["unknown field 'codec'; allowed: name, mode, type, model"]),
    ("SNR not a number", "    snr_db: 5\n", "    snr_db: five\n", "users[1].snr_db", "snr_db: five",
     ["valid number", "a number, a list of numbers, or {start, stop, step}"]),
    ("SNR range reversed", "    snr_db: 5\n", "    snr_db: {start: 10, stop: 0, step: 2}\n",
     "users[1].snr_db", "start: 10", ["stop (0.0) must not be below start (10.0)"]),
    ("SNR range without step", "    snr_db: 5\n", "    snr_db:\n      start: 0\n      stop: 4\n",
     "users[1].snr_db.step", "    snr_db:\n      start", ["missing required field 'step'"]),
    ("sweeps of different lengths", "    snr_db: 5\n", "    snr_db: [1, 2, 3]\n", "users[1].snr_db",
     "snr_db: [1, 2, 3]", ["sweeps 3 SNR points but 'near' sweeps 2", "same number of points"]),
    ("duplicate user", "  - name: far\n", "  - name: near\n", "users[1].name",
     "  - name: near\n    snr_db: 5", ["user name 'near' is used twice"]),
    ("resolution below 1", "    resolution: 1\n", "    resolution: 0\n", "users[1].resolution",
     "resolution: 0", ["greater than or equal to 1", "number of layers the user decodes"]),
    ("unknown task", "    resolution: 1\n", "    resolution: 1\n    tasks: [segmentation]\n",
     "users[1].tasks[0]", "tasks: [segmentation]",
     ["'segmentation' is not allowed", "'reconstruction' or 'classification'"]),
    ("k_factor on awgn", "  type: awgn\n", "  type: awgn\n  k_factor: 3\n", "channel.k_factor", "k_factor: 3",
     ["k_factor only applies to the rician channel"]),
    ("rician without k_factor", "  type: awgn\n", "  type: rician\n", "channel.type", "type: rician",
     ["rician channel needs k_factor"]),
    ("symbols_from unknown", "    symbols_from: ref\n", "    symbols_from: lin\n", "systems[2].symbols_from",
     "symbols_from: lin", ["'lin' is not a JSCC system", "JSCC systems: ref"]),
    ("unknown dataset", "  name: mnist-sample\n", "  name: imagenet\n", "dataset.name", "name: imagenet",
     ["unknown dataset 'imagenet'", "allowed: mnist, fashion-mnist, cifar10, mnist-sample"]),
    ("unknown channel", "  type: awgn\n", "  type: nakagami\n", "channel.type", "type: nakagami",
     ["unknown channel 'nakagami'", "allowed: awgn, rayleigh, rician"]),
    ("unknown zoo model", "model: mnist-mr3-awgn", "model: mnist-mr9", "systems[1].model", "model: mnist-mr9",
     ["unknown zoo model 'mnist-mr9'", "mnist-mr3-awgn"]),
    ("missing checkpoint", "model: mnist-mr3-awgn", "model: ckpt/none.safetensors", "systems[1].model",
     "model: ckpt", ["checkpoint file not found", "none.safetensors"]),
    ("negative draws", "seed: 1\n", "seed: 1\ndraws: -2\n", "draws", "draws: -2",
     ["greater than or equal to 1"]),
    ("missing section", "channel:\n  type: awgn\n", "channel:\n  type: awgn\ndatasets: {}\n", "datasets",
     "datasets: {}", ["unknown field 'datasets'"]),
]


@pytest.mark.parametrize(("case", "old", "new", "field", "marker", "words"), BAD, ids=[b[0] for b in BAD])
def test_bad_files_name_file_line_field(tmp_path: Path, case: str, old: str, new: str, field: str,
                                        marker: str, words: list[str]) -> None:
    assert old in BASE, case
    text = BASE.replace(old, new, 1)
    path = _write(tmp_path, text)
    line = text[:text.index(marker)].count("\n") + 1
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    first = str(info.value).splitlines()[0]
    assert first.startswith(f"{path}:{line}: {field}: "), first
    for word in words:
        assert word in first, first


def test_missing_top_level_section(tmp_path: Path) -> None:
    text = BASE[:BASE.index("dataset:")] + BASE[BASE.index("systems:"):]
    with pytest.raises(ScenarioError, match=r"bad\.yaml:1: dataset: missing required field 'dataset'"):
        load_scenario(_write(tmp_path, text))


def test_missing_system_type(tmp_path: Path) -> None:
    text = BASE.replace("    type: plugin\n", "", 1)
    with pytest.raises(ScenarioError, match=r"bad\.yaml:8: systems\[0\]\.type: missing; allowed: jscc, sscc, "
                                            r"linear, plugin"):
        load_scenario(_write(tmp_path, text))


def test_several_problems_one_message(tmp_path: Path) -> None:
    text = BASE.replace("seed: 1", "seed: x")
    text = text.replace("    resolution: 1\n", "    resolution: 1\n    colour: red\n")
    with pytest.raises(ScenarioError) as info:
        load_scenario(_write(tmp_path, text))
    lines = str(info.value).splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"{tmp_path / 'bad.yaml'}:3: seed: ")
    assert "users[1].colour: unknown field 'colour'" in lines[1]


def test_unknown_names_reported_with_the_other_problems(tmp_path: Path) -> None:
    """One round of fixes: an unknown channel is named beside schema and cross-field problems."""
    text = BASE.replace("  type: awgn\n", "  type: nakagami\n").replace("seed: 1", "seed: x")
    with pytest.raises(ScenarioError) as info:
        load_scenario(_write(tmp_path, text))
    message = str(info.value)
    assert "seed: " in message and "unknown channel 'nakagami'" in message
    text = BASE.replace("  type: awgn\n", "  type: nakagami\n").replace("symbols_from: ref", "symbols_from: lin")
    with pytest.raises(ScenarioError) as info:
        load_scenario(_write(tmp_path, text))
    message = str(info.value)
    assert "'lin' is not a JSCC system" in message and "unknown channel 'nakagami'" in message


def test_yaml_problems(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match=r"bad\.yaml:\d+: YAML syntax error"):
        load_scenario(_write(tmp_path, BASE.replace("  images: 4\n", "  images: [4\n")))
    with pytest.raises(ScenarioError, match=r"bad\.yaml:6: dataset\.name: duplicate key \(first on line 5\)"):
        load_scenario(_write(tmp_path, BASE.replace("  images: 4\n", "  name: mnist\n  images: 4\n")))
    with pytest.raises(ScenarioError, match=r"bad\.yaml:1: a scenario is a mapping"):
        load_scenario(_write(tmp_path, "- 1\n- 2\n"))
    with pytest.raises(ScenarioError, match=r"bad\.yaml:1: the file is empty"):
        load_scenario(_write(tmp_path, "# nothing\n"))
    with pytest.raises(ScenarioError, match=r"no such scenario file or built-in scenario; built-ins: .*"):
        load_scenario(tmp_path / "absent.yaml")


def test_unknown_codec_and_mcs(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match=r":16: systems\[2\]\.codec: unknown codec 'gif'; allowed: .*"):
        load_scenario(_write(tmp_path, BASE.replace("codec: jpeg", "codec: gif")))
    with pytest.raises(ScenarioError, match=r":17: systems\[2\]\.mcs: .*QPSK.*allowed: an MCS name such as"):
        load_scenario(_write(tmp_path, BASE.replace("mcs: 4QAM-1/2", "mcs: QPSK-half")))


def test_built_in_code_validation_without_file() -> None:
    data = {"name": "x", "dataset": {"name": "mnist-sample"}, "systems": [{"type": "jscc", "model": "m"}],
            "users": [{"name": "a", "snr_db": [1, 2], "resolution": 1}, {"name": "b", "snr_db": [1, 2, 3],
                                                                           "resolution": 1}]}
    with pytest.raises(ValueError, match=r"users\[1\]\.snr_db: user 'b' sweeps 3 SNR points"):
        Scenario.model_validate(data)
    data["users"][1]["snr_db"] = 4
    sc = Scenario.model_validate(data)
    assert sc.snr_table() == {"a": [1.0, 2.0], "b": [4.0, 4.0]}
    assert "model: m" in sc.text  # a scenario built in code still has a text for the results
    assert sc.where(("users", 0)) == "scenario"


def test_snr_ranges(tmp_path: Path) -> None:
    sc = parse_scenario(BASE.replace("snr_db: [0, 10]", "snr_db: {start: 0, stop: 1, step: 0.1}"))
    assert sc.snr_table()["near"] == [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    sc = parse_scenario(BASE.replace("snr_db: [0, 10]", "snr_db: {start: 0, stop: 9, step: 4}"))
    assert sc.snr_table()["near"] == [0.0, 4.0, 8.0]  # stop off the grid is not reached
    assert sc.num_points == 3


def test_builtin_scenarios_are_valid_and_copied() -> None:
    names = SCENARIOS.names()
    for required in ("quickstart", "paper-mnist-awgn", "paper-mnist-rayleigh", "paper-cifar10-awgn",
                     "paper-cifar10-rayleigh", "broadcast-rayleigh"):
        assert required in names
    for path in sorted(BUILTIN_DIR.glob("*.yaml")):
        sc = load_scenario(path)
        assert sc.name == path.stem
        entry = next(e for e in SCENARIOS.entries() if e.name == path.stem)
        assert entry.description == sc.description
        copy = REPO / "scenarios" / path.name
        assert copy.read_bytes() == path.read_bytes(), f"scenarios/{path.name} differs from {path}"
    copies = {p.name for p in (REPO / "scenarios").glob("*.yaml")}
    assert copies == {p.name for p in BUILTIN_DIR.glob("*.yaml")}
    quick = load_scenario("quickstart")
    assert quick.dataset.name == "mnist-sample"
    assert [(u.snr_values(), u.resolution) for u in quick.users] == [([0.0, 4.0, 8.0, 12.0, 16.0, 20.0], 3)]
    # the story on one sweep: the JSCC, the linear code it is built on, and the SSCC on one layer
    assert [s.type for s in quick.systems] == ["jscc", "linear", "sscc"] and quick.systems[2].one_layer
    broadcast = load_scenario("broadcast-rayleigh")
    assert len(broadcast.sweeping_users()) == 3 and broadcast.channel.type == "rayleigh"
    assert sorted({u.resolution for u in broadcast.users}) == [1, 2, 3]


def test_json_schema_file_is_current() -> None:
    schema = scenario_json_schema()
    on_disk = json.loads((REPO / "scenarios" / "scenario.schema.json").read_text(encoding="utf-8"))
    assert on_disk == schema, "regenerate: semcom validate --schema > scenarios/scenario.schema.json"
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) == {"name", "dataset", "systems", "users"}


def test_cli_validate() -> None:
    runner = CliRunner()
    ok = runner.invoke(app, ["validate", "quickstart"])
    assert ok.exit_code == 0, ok.output
    assert "ok:" in ok.output and "rx (0..20 dB, 3 layers" in ok.output
    schema = runner.invoke(app, ["validate", "--schema"])
    assert schema.exit_code == 0
    assert json.loads(schema.output) == scenario_json_schema()


def test_cli_validate_error_is_one_line(tmp_path: Path) -> None:
    """Through the console entry point: exit 1, one line on stderr, no traceback."""
    path = _write(tmp_path, BASE.replace("    snr_db: 5\n", "    snr: 5\n"))
    proc = subprocess.run([sys.executable, "-m", "semcom", "validate", str(path)], capture_output=True,
                          text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 1
    assert re.fullmatch(rf"error: {re.escape(str(path))}:26: users\[1\]\.snr: unknown field 'snr' \(did you "
                        r"mean 'snr_db'\?\); allowed: "
                        r"name, snr_db, resolution, tasks\n", proc.stderr), proc.stderr


def test_cli_module_and_registry_do_not_import_torch() -> None:
    """`semcom --help` and `semcom list scenarios` stay fast: no torch at import time."""
    code = ("import sys, semcom.cli.scenario\nfrom semcom.scenarios import SCENARIOS\n"
            "assert SCENARIOS.names()\nassert 'torch' not in sys.modules, 'torch was imported'")
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, timeout=60)


@pytest.mark.parametrize("value, word", [(".nan", "finite"), (".inf", "finite"),
                                          ("-500", "greater than or equal to -50"),
                                          ("[0, 400]", "less than or equal to 100")])
def test_snr_must_be_finite_and_bounded(tmp_path: Path, value: str, word: str) -> None:
    text = f"""\
name: bad
dataset: {{name: mnist-sample, images: 4}}
systems: [{{name: lin, type: linear, code: mnist-mr3-awgn}}]
users:
  - {{name: a, snr_db: {value}, resolution: 1}}
"""
    with pytest.raises(ScenarioError, match=rf"bad\.yaml:5: users\[0\]\.snr_db.*{word}"):
        load_scenario(_write(tmp_path, text))


def test_yaml_alias_bomb_is_refused_at_once(tmp_path: Path) -> None:
    """Nested aliases would expand to 10^9 items; the loader stops at the first alias, with its line."""
    import time

    layers = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    layers += [f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, "
               f"*a{i - 1}, *a{i - 1}, *a{i - 1}]" for i in range(1, 9)]
    text = "\n".join(layers) + "\nname: bomb\n"
    t0 = time.perf_counter()
    with pytest.raises(ScenarioError, match=r"bad\.yaml:1: a1\[0\]: repeats, through a YAML alias"):
        load_scenario(_write(tmp_path, text))
    assert time.perf_counter() - t0 < 5.0  # refused before anything is expanded
