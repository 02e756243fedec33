"""The shipped zoo: files load, match their cards (checksum + architecture), and run."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import semcom.zoo as zoo
from semcom.channels import build_channel
from semcom.errors import ALLOW_UNVERIFIED_ENV, CheckpointError, SemcomWarning
from semcom.jscc import JsccConfig
from semcom.jscc.system import JsccSystem
from semcom.jscc.zoo import load_model
from semcom.registry import UnknownNameError
from semcom.storage import load_card, sha256_file

AVAILABLE = [m.name for m in zoo.list_models() if m.available]
REQUIRED_CARD_KEYS = {
    "name",
    "dataset",
    "channel",
    "training_snr_db",
    "snr_side_information",
    "epochs",
    "test",
    "command",
    "train_config",
    "library_versions",
    "sha256",
    "architecture",
    "size_bytes",
}


def test_registry_lists_all_names() -> None:
    names = [m.name for m in zoo.list_models()]
    assert set(zoo.ZOO) == set(names)
    assert "mnist-mr3-awgn" in AVAILABLE, "the quickstart model must ship with the package"
    with pytest.raises(UnknownNameError):
        load_model("no-such-model")


@pytest.mark.parametrize("name", AVAILABLE)
def test_zoo_file_matches_card(name: str) -> None:
    path = zoo.weights_path(name)
    card = load_card(path)
    assert REQUIRED_CARD_KEYS <= set(card), REQUIRED_CARD_KEYS - set(card)
    assert card["sha256"] == sha256_file(path)
    assert card["size_bytes"] == path.stat().st_size
    assert path.stat().st_size < 8 * 2**20, "zoo files must stay small"
    model = load_model(name)
    assert model.config == JsccConfig.from_dict(card["architecture"])
    assert list(model.layer_symbols) == card["layer_symbols"]
    n = len(card["test"]["psnr_db"])
    assert n == model.num_layers and len(card["test"]["psnr_db"][0]) == len(card["test"]["snr_db"])


@pytest.mark.parametrize("name", AVAILABLE)
def test_zoo_model_runs_as_system(name: str) -> None:
    system = JsccSystem(name)
    c, h, w = system.image_shape
    tx = system.prepare(torch.rand(2, c, h, w), [10.0])
    outs = system.receive(tx, build_channel("awgn", seed=0), 10.0, system.num_layers)
    assert len(outs) == system.num_layers
    assert all(o.images.shape == (2, c, h, w) for o in outs)


def test_mnist_quickstart_model_trained_without_the_offline_sample() -> None:
    card = zoo.model_card("mnist-mr3-awgn")
    assert card["train_config"]["exclude_mnist_sample"] is True
    # 60,000 minus the 5,000 of the offline sample minus the 5,000 of the validation split
    assert card["dataset"]["images"] == 50_000
    assert card["dataset"]["validation"]["images"] == 5_000


def test_corrupt_zoo_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = zoo.weights_path("mnist-mr3-awgn")
    shutil.copy(src, tmp_path / src.name)
    shutil.copy(src.with_suffix(".json"), tmp_path / src.with_suffix(".json").name)
    data = bytearray((tmp_path / src.name).read_bytes())
    data[len(data) // 2] ^= 0x01
    (tmp_path / src.name).write_bytes(bytes(data))
    monkeypatch.setattr(zoo, "weights_dir", lambda: tmp_path)
    with pytest.raises(CheckpointError, match="sha256"):
        load_model("mnist-mr3-awgn")
    (tmp_path / src.name).unlink()
    with pytest.raises(CheckpointError, match="missing"):
        load_model("mnist-mr3-awgn")


@pytest.mark.parametrize("card", sorted((Path(zoo.__file__).parent / "weights").glob("*.json"))
                         + sorted((Path(zoo.__file__).parent.parent / "receivers" / "weights").glob("*.json")),
                         ids=lambda p: p.name)
def test_shipped_cards_name_no_machine_paths(card: Path) -> None:
    """Cards ship with the package: a user's data root is their own, not the training machine's."""
    text = card.read_text()
    for path in ("/work/", "/root/", "/home/", "../shared"):
        assert path not in text, f"{card.name} names {path}"


def test_a_zoo_load_reads_its_card_once_and_hashes_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """JsccSystem + the results' description: one card read, one sha256 (verification and checksum share it)."""
    import semcom.storage as storage
    from semcom.scenarios.factory import describe_system
    from semcom.scenarios.schema import JsccSystemSpec

    reads: list[Path] = []
    hashes: list[Path] = []
    real_load, real_hash = storage.load_card, storage.sha256_file
    monkeypatch.setattr(storage, "load_card", lambda path: reads.append(Path(path)) or real_load(path))
    monkeypatch.setattr(storage, "sha256_file", lambda path: hashes.append(Path(path)) or real_hash(path))
    system = JsccSystem("mnist-mr3-awgn")
    desc = describe_system(JsccSystemSpec(type="jscc", model="mnist-mr3-awgn"), system, Path("."))
    path = zoo.weights_path("mnist-mr3-awgn")
    assert reads == [path] and hashes == [path]
    assert desc["checksums"] == {path.name: system.card["sha256"]}
    assert system.describe()["sha256"] == system.card["sha256"]


def test_one_rule_tells_zoo_names_from_files(tmp_path: Path) -> None:
    from semcom.storage import names_a_file, resolve_weights

    assert names_a_file("a/b") and names_a_file("a\\b") and names_a_file("m.safetensors") and names_a_file("m.pt")
    assert not names_a_file("mnist-mr3-awgn")
    shipped = resolve_weights("mnist-mr3-awgn", zoo.SHELF, tmp_path)
    assert shipped.source == "shipped" and shipped.path == zoo.weights_path("mnist-mr3-awgn")
    assert shipped.name == "mnist-mr3-awgn"
    src = zoo.weights_path("mnist-mr3-awgn")
    shutil.copy(src, tmp_path / "mine.safetensors")
    shutil.copy(src, tmp_path / "bare")
    for ref in ("mine.safetensors", Path("mine.safetensors"), "bare"):  # relative to base_dir
        got = resolve_weights(ref, zoo.SHELF, tmp_path)
        assert got.source == "file" and got.path.parent == tmp_path and got.card == {}
    with pytest.raises(UnknownNameError, match="mnist-mr3-awgn"):
        resolve_weights("no-such-model", zoo.SHELF, tmp_path)
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        resolve_weights("nowhere/m.safetensors", zoo.SHELF, tmp_path)
    # a path-shaped reference is a file even when a zoo name hides in it
    with pytest.raises(CheckpointError, match="not found"):
        resolve_weights(Path("mnist-mr3-awgn"), zoo.SHELF, tmp_path)
    # a checkpoint file loads as the same model as the zoo name, labelled by its stem; without a card
    # it cannot be verified, so only with the user's opt-in, and with a warning
    with pytest.raises(CheckpointError, match=r"mine\.safetensors: cannot be verified \(there is no card "
                                              r"mine\.json beside it\).*--allow-unverified"):
        JsccSystem(tmp_path / "mine.safetensors")
    with pytest.MonkeyPatch.context() as mp, pytest.warns(SemcomWarning, match="loaded without verification"):
        mp.setenv(ALLOW_UNVERIFIED_ENV, "1")
        system = JsccSystem(tmp_path / "mine.safetensors")
    assert system.name == "mine" and system.card == {}
    assert system.checksums == {"mine.safetensors": sha256_file(src)}
    shutil.copy(src.with_suffix(".json"), tmp_path / "mine.json")
    assert JsccSystem(tmp_path / "mine.safetensors").card["sha256"] == sha256_file(src)  # verified: no opt-in


def test_the_zoo_is_data_that_jscc_reads() -> None:
    """semcom.zoo builds no model: it imports nothing of semcom.jscc (the arrow goes jscc -> zoo)."""
    code = "import sys, semcom.zoo; sys.exit(any(m.startswith('semcom.jscc') for m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_semcom_models_verifies_what_it_lists(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A replaced zoo file is listed as failing, and the command exits with an error."""
    from typer.testing import CliRunner

    from semcom.cli.app import app

    ok = CliRunner().invoke(app, ["models", "--json"])
    assert ok.exit_code == 0, ok.output
    assert {row["check"] for row in json.loads(ok.output)} == {"ok"}
    fake = tmp_path / "weights"
    shutil.copytree(zoo.weights_dir(), fake)
    other = fake / "mnist-mr3-rayleigh.safetensors"
    shutil.copy(fake / "mnist-mr3-awgn.safetensors", other)  # replaced by another valid file
    monkeypatch.setattr(zoo, "weights_dir", lambda: fake)
    bad = CliRunner().invoke(app, ["models"])
    assert bad.exit_code == 1
    assert "mismatch" in bad.output
    assert "fail verification: mnist-mr3-rayleigh (mismatch)" in str(bad.exception)
    card = CliRunner().invoke(app, ["models", "mnist-mr3-rayleigh"])
    assert card.exit_code == 1 and "fails verification" in str(card.exception)
