"""The shipped zoo: files load, match their cards (checksum + architecture), and run."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

import semcom.zoo as zoo
from semcom.channels import build_channel
from semcom.errors import CheckpointError
from semcom.jscc import JsccConfig, load_card
from semcom.jscc.checkpoint import sha256_file
from semcom.jscc.system import JsccSystem
from semcom.registry import UnknownNameError

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
        zoo.load_model("no-such-model")


@pytest.mark.parametrize("name", AVAILABLE)
def test_zoo_file_matches_card(name: str) -> None:
    path = zoo.weights_path(name)
    card = load_card(path)
    assert REQUIRED_CARD_KEYS <= set(card), REQUIRED_CARD_KEYS - set(card)
    assert card["sha256"] == sha256_file(path)
    assert card["size_bytes"] == path.stat().st_size
    assert path.stat().st_size < 8 * 2**20, "zoo files must stay small"
    model = zoo.load_model(name)
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
        zoo.load_model("mnist-mr3-awgn")
    (tmp_path / src.name).unlink()
    with pytest.raises(CheckpointError, match="missing"):
        zoo.load_model("mnist-mr3-awgn")


@pytest.mark.parametrize("card", sorted((Path(zoo.__file__).parent / "weights").glob("*.json"))
                         + sorted((Path(zoo.__file__).parent.parent / "receivers" / "weights").glob("*.json")),
                         ids=lambda p: p.name)
def test_shipped_cards_name_no_machine_paths(card: Path) -> None:
    """Cards ship with the package: a user's data root is their own, not the training machine's."""
    text = card.read_text()
    for path in ("/work/", "/root/", "/home/", "../shared"):
        assert path not in text, f"{card.name} names {path}"
