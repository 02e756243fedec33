"""Pretrained JSCC models shipped with semcom, as data: names, weights (safetensors) and model cards (JSON).

:data:`ZOO` names each model and its one-line description; the files live in
``semcom/zoo/weights/NAME.safetensors`` and ``NAME.json``. This module lists them and reads their
cards; it builds no model. :data:`SHELF` is the zoo as a :class:`semcom.storage.Shelf`, through which
:func:`semcom.storage.resolve_weights` finds a zoo name's file, and
:func:`semcom.jscc.zoo.load_model` builds the model (after checking the weights against the sha256
in the card, never running code from the files).

>>> from semcom.zoo import list_models, model_card
>>> [m.name for m in list_models() if m.available]  # doctest: +SKIP
>>> model_card("mnist-mr3-awgn")["layer_symbols"]    # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from semcom.errors import CheckpointError
from semcom.registry import UnknownNameError
from semcom.storage import Shelf, card_path, load_card, sha256_file

__all__ = [
    "SHELF",
    "ZOO",
    "ZooEntry",
    "list_models",
    "model_card",
    "weights_dir",
    "weights_path",
]

#: name -> one-line description (the card says the rest).
ZOO: dict[str, str] = {
    "mnist-mr3-awgn": "MNIST, 3-layer multi-resolution JSCC anchored on a KLT linear code (44/43/43 symbols, "
    "rho=1/6), AWGN 0-20 dB, SNR-adaptive receivers",
    "mnist-mr3-rayleigh": "MNIST, 3-layer anchored JSCC, Rayleigh block fading (one h per image, perfect CSI), "
    "0-20 dB",
    "cifar10-mr3-awgn": "CIFAR-10, 3-layer anchored JSCC (192/160/160 symbols, rho=1/6; the transmitter is the "
    "KLT linear code, the receivers learn), AWGN 0-20 dB",
    "cifar10-mr3-rayleigh": "CIFAR-10, 3-layer anchored JSCC, Rayleigh block fading (perfect CSI), 0-20 dB",
    "cifar10-djscc-awgn": "CIFAR-10, single-layer anchored JSCC, 512 symbols (rho=1/6), AWGN 0-20 dB",
}


def weights_dir() -> Path:
    """Where the zoo's files live inside the installed package."""
    return Path(__file__).resolve().parent / "weights"


def weights_path(name: str) -> Path:
    """``weights/NAME.safetensors`` (it may not exist yet)."""
    return weights_dir() / f"{name}.safetensors"


class _ZooShelf(Shelf):
    """The zoo's names are registered in :data:`ZOO`; each needs its weights and its card."""

    def folder(self) -> Path:
        return weights_dir()

    def names(self) -> list[str]:
        return list(ZOO)

    def unknown(self, name: str) -> UnknownNameError:
        return UnknownNameError(f"unknown model '{name}'; available: {', '.join(sorted(ZOO))}")

    def locate(self, name: str) -> Path:
        if name not in ZOO:
            raise self.unknown(name)
        path = self.weights(name)
        if not path.is_file() or not card_path(path).is_file():
            raise CheckpointError(
                f"zoo model '{name}' is registered but its files are missing ({path}); "
                "reinstall semcom or train it with bench/train_zoo.sh"
            )
        return path


#: The zoo as a shelf of shipped weights (for :func:`semcom.storage.resolve_weights`).
SHELF: Shelf = _ZooShelf()


@dataclass(frozen=True)
class ZooEntry:
    """One zoo model: name, description, whether its files are present, its card and file size."""

    name: str
    description: str
    available: bool
    path: Path
    size_bytes: int
    card: dict[str, Any]

    def check(self) -> str:
        """``"ok"`` when the weights file's sha256 matches its card, else a word for what is wrong:
        ``missing`` (files), ``bad card`` (unreadable, or without a sha256) or ``mismatch`` (the file
        was replaced or damaged)."""
        if not self.available:
            return "missing"
        want = self.card.get("sha256")
        if "error" in self.card or not want:
            return "bad card"
        return "ok" if sha256_file(self.path) == want else "mismatch"


def model_card(name: str) -> dict[str, Any]:
    """The JSON card of zoo model ``name``."""
    if name not in ZOO:
        raise SHELF.unknown(name)
    return load_card(weights_path(name))


def list_models() -> list[ZooEntry]:
    """All zoo models by name, with their cards where the files are present."""
    out = []
    for name in sorted(ZOO):
        path = weights_path(name)
        available = path.is_file() and card_path(path).is_file()
        card: dict[str, Any] = {}
        if available:
            try:
                card = load_card(path)
            except CheckpointError as exc:
                card = {"error": str(exc)}
        out.append(ZooEntry(name, ZOO[name], available, path, path.stat().st_size if path.is_file() else 0, card))
    return out
