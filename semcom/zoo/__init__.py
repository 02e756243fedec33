"""Pretrained JSCC models shipped with semcom: weights (safetensors) + model cards (JSON).

The zoo is data: :data:`ZOO` names each model and its one-line description; the files live in
``semcom/zoo/weights/NAME.safetensors`` and ``NAME.json``. :func:`load_model` checks the weights
against the sha256 in the card before building the model, and never runs code from the files.

>>> from semcom.zoo import load_model, list_models
>>> model = load_model("mnist-mr3-awgn")            # doctest: +SKIP
>>> [m.name for m in list_models() if m.available]  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from semcom.errors import CheckpointError
from semcom.registry import Registry

__all__ = [
    "MODELS",
    "ZOO",
    "ZooEntry",
    "list_models",
    "load_model",
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

MODELS = Registry("models", "semcom.models")


def weights_dir() -> Path:
    """Where the zoo's files live inside the installed package."""
    return Path(__file__).resolve().parent / "weights"


def weights_path(name: str) -> Path:
    """``weights/NAME.safetensors`` (it may not exist yet)."""
    return weights_dir() / f"{name}.safetensors"


@dataclass(frozen=True)
class ZooEntry:
    """One zoo model: name, description, whether its files are present, its card and file size."""

    name: str
    description: str
    available: bool
    path: Path
    size_bytes: int
    card: dict[str, Any]


def model_card(name: str) -> dict[str, Any]:
    """The JSON card of zoo model ``name``."""
    from semcom.jscc.checkpoint import load_card

    _check_name(name)
    return load_card(weights_path(name))


def _check_name(name: str) -> None:
    if name not in MODELS:
        # Registry.get raises UnknownNameError listing the names.
        MODELS.get(name)


def list_models() -> list[ZooEntry]:
    """All registered models, with their cards where the files are present."""
    from semcom.jscc.checkpoint import load_card

    out = []
    for entry in MODELS.entries():
        path = weights_path(entry.name)
        available = path.is_file() and path.with_suffix(".json").is_file()
        card: dict[str, Any] = {}
        if available:
            try:
                card = load_card(path)
            except CheckpointError as exc:
                card = {"error": str(exc)}
        out.append(
            ZooEntry(
                entry.name,
                entry.description,
                available,
                path,
                path.stat().st_size if path.is_file() else 0,
                card,
            )
        )
    return out


def load_model(name: str, device: str = "cpu") -> Any:
    """Load zoo model ``name`` (a :class:`~semcom.jscc.model.MultiResJscc`, eval mode).

    The weights' sha256 must equal the card's; the architecture in the weights must equal the card's.

    Raises:
        UnknownNameError: no such model.
        CheckpointError: files missing, corrupt or not matching their card.
    """
    return MODELS.create(name, device=device)


def _loader(name: str) -> Any:
    def load(device: str = "cpu") -> Any:
        from semcom.jscc.checkpoint import load_card, load_checkpoint
        from semcom.jscc.config import JsccConfig

        path = weights_path(name)
        if not path.is_file() or not path.with_suffix(".json").is_file():
            raise CheckpointError(
                f"zoo model '{name}' is registered but its files are missing ({path}); "
                "reinstall semcom or train it with bench/train_zoo.sh"
            )
        card = load_card(path)
        if "sha256" not in card or "architecture" not in card:
            raise CheckpointError(f"{path.with_suffix('.json')}: card lacks sha256 or architecture")
        try:
            expect = JsccConfig.from_dict(card["architecture"])
        except (ValueError, TypeError, KeyError) as exc:
            raise CheckpointError(f"{path.with_suffix('.json')}: invalid architecture ({exc})") from None
        return load_checkpoint(path, expect=expect, verify=True, map_location=device)

    load.__doc__ = ZOO[name]
    return load


for _name, _desc in ZOO.items():
    MODELS.add(_name, _loader(_name), _desc)
