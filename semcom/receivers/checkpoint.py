"""Receiver checkpoints: weights in safetensors, the card in JSON (:mod:`semcom.storage`, as every checkpoint).

``PATH.safetensors`` holds the receiver's weights and, in its metadata, a format tag
(``semcom-receiver/1``) and the receiver's constructor (``semcom_receiver``: registry name,
``layer_symbols``, ``num_classes``, ``image_shape``, ``coarse_groups`` and the keyword options).
``PATH.json`` (same stem) says how it was made: the frozen JSCC model it reads (zoo name or path and
the sha256 of that model's weights), dataset, weighting, channel, SNR range, epochs, the exact
command, test accuracy, and the sha256 of the weights file. Nothing is unpickled: loading never runs
code from the files. Receiver checkpoints that ship with semcom (``weights/NAME.safetensors``) are
named by ``NAME`` (:data:`SHELF`).

>>> path = save_receiver(run, "rx.safetensors", command="semcom train-receiver ...")  # doctest: +SKIP
>>> receiver, card = load_receiver(path)                                              # doctest: +SKIP
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from semcom import zoo
from semcom.errors import CheckpointError, SemcomError
from semcom.receivers.base import Receiver
from semcom.receivers.registry import RECEIVERS
from semcom.receivers.weighting import Weighting
from semcom.storage import Shelf, fill_module, resolve_weights, write_checkpoint

__all__ = ["FORMAT", "SHELF", "TrainedReceiver", "load_receiver", "model_sha256", "receiver_constructor",
           "save_receiver", "shipped_receiver", "weights_dir"]

FORMAT = "semcom-receiver/1"


def weights_dir() -> Path:
    """Where receiver checkpoints shipped with semcom live (package data)."""
    return Path(__file__).resolve().parent / "weights"


class _ShippedReceivers(Shelf):
    """The receiver checkpoints in :func:`weights_dir`, by file stem."""

    def folder(self) -> Path:
        return weights_dir()

    def unknown(self, name: str) -> CheckpointError:
        return CheckpointError(f"no receiver checkpoint '{name}' ships with semcom; shipped: "
                               f"{', '.join(self.names()) or '(none)'}; or give a .safetensors path")


#: The shipped receiver checkpoints as a shelf (for :func:`semcom.storage.resolve_weights`).
SHELF: Shelf = _ShippedReceivers()


def shipped_receiver(name: str) -> Path:
    """``weights/NAME.safetensors`` of a shipped receiver; CheckpointError listing them if absent."""
    return SHELF.locate(name)


@dataclass
class TrainedReceiver:
    """A trained receiver with what it was trained on: what :func:`save_receiver` writes.

    Attributes:
        receiver: the trained receiver.
        weighting: the task weighting it was trained with (its own parameters included).
        encoder: the frozen JSCC encoder it reads.
        config: the training settings (receiver name and options, model, dataset, channel, SNRs, ...).
        history: one record of mean losses per epoch.
    """

    receiver: Receiver
    weighting: Weighting
    encoder: Any
    config: dict[str, Any]
    history: list[dict[str, float]] = field(default_factory=list)


def model_sha256(model: str | Path | Any) -> str | None:
    """sha256 of the weights file a JSCC zoo name or checkpoint path names (None for a model object,
    or a name that names no file)."""
    if not isinstance(model, str | Path):
        return None
    try:
        return resolve_weights(model, zoo.SHELF).sha256
    except SemcomError:
        return None


def receiver_constructor(receiver: Receiver, name: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """What rebuilds ``receiver``: ``RECEIVERS.create(name, layer_symbols=.., .., **options)``."""
    return {
        "name": name,
        "layer_symbols": list(receiver.layer_symbols),
        "num_classes": receiver.num_classes,
        "image_shape": list(receiver.image_shape),
        "coarse_groups": None if receiver.coarse_groups is None else list(receiver.coarse_groups),
        "options": dict(options or {}),
    }


def save_receiver(
    trained: TrainedReceiver,
    path: str | Path,
    *,
    command: str | None = None,
    test: dict[str, Any] | None = None,
    dtype: torch.dtype = torch.float32,
) -> Path:
    """Write ``trained.receiver`` to ``path`` (``.safetensors``) and its card (``.json``).

    Args:
        trained: what :func:`~semcom.receivers.train_receiver` returned.
        path: the weights file (the suffix becomes ``.safetensors``).
        command: the exact command that made it (for the card).
        test: test results for the card, e.g. ``{"images": N, "rows": evaluate_receiver(...)}``.
        dtype: storage dtype (``torch.float16`` halves the file; loading gives float32).

    Returns the weights path.
    """
    cfg = trained.config
    constructor = receiver_constructor(trained.receiver, cfg["receiver"], cfg.get("receiver_kwargs"))
    try:
        constructor_json = json.dumps(constructor)
    except TypeError as exc:
        raise CheckpointError(f"receiver options are not JSON data ({exc}); cannot save them") from None
    model_sha = cfg.get("model_sha256")
    if model_sha is None and isinstance(cfg.get("model"), str):
        model_sha = model_sha256(cfg["model"])
    card: dict[str, Any] = {
        "format": FORMAT,
        "receiver": constructor,
        "model": {"name": cfg["model"],
                  "sha256": model_sha,
                  "layer_symbols": list(trained.encoder.layer_symbols)},
        "dataset": {"name": cfg.get("dataset"), "split": "train", "images": cfg.get("train_images")},
        "weighting": cfg.get("weighting"),
        "channel": {k: cfg.get(k) for k in ("channel", "block", "csi")},
        "training_snr_db": cfg.get("snr_db"),
        "side_snr": cfg.get("side_snr", "nominal"),
        "epochs": cfg.get("epochs"),
        "steps": cfg.get("steps"),
        "batch_size": cfg.get("batch_size"),
        "lr": cfg.get("lr"),
        "seed": cfg.get("seed"),
        "command": command,
        "history": trained.history,
        "test": test,
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    meta = {"format": FORMAT, "semcom_receiver": constructor_json}
    return write_checkpoint(trained.receiver.state_dict(), path, meta, card, dtype)


def load_receiver(
    source: str | Path, verify: bool = True, map_location: str | torch.device = "cpu",
) -> tuple[Receiver, dict[str, Any]]:
    """Rebuild the receiver a checkpoint describes and load its weights (eval mode).

    Args:
        source: the ``.safetensors`` file, or the name of a receiver checkpoint shipped with semcom.
        verify: check its sha256 against the card next to it (no card: refused unless the user opts in).
        map_location: device of the returned receiver.

    Returns:
        ``(receiver, card)``; the card is ``{}`` when no ``.json`` lies next to the file, and always
        has ``"receiver"`` (the constructor read from the weights file).

    Raises:
        CheckpointError: missing, corrupt, checksum mismatch, not a receiver checkpoint, unknown
            receiver name, or tensors that do not fit the receiver.
    """
    weights = resolve_weights(source, SHELF, what="receiver checkpoint")
    path = weights.path
    card = weights.verify("train it again with the command in the card") if verify else weights.card
    meta, state = weights.read("semcom_receiver", "receiver", FORMAT)
    try:
        ctor = json.loads(meta["semcom_receiver"])
        name = ctor["name"]
        kwargs = {"layer_symbols": tuple(ctor["layer_symbols"]), "num_classes": int(ctor["num_classes"]),
                  "image_shape": tuple(ctor["image_shape"]), "coarse_groups": ctor["coarse_groups"],
                  **ctor.get("options", {})}
    except (ValueError, TypeError, KeyError) as exc:
        raise CheckpointError(f"{path}: invalid receiver constructor in metadata ({exc})") from None
    if name not in RECEIVERS:
        raise CheckpointError(f"{path}: receiver '{name}' is not installed; known: {', '.join(RECEIVERS)}")
    try:
        receiver = RECEIVERS.create(name, **kwargs)
    except (ValueError, TypeError) as exc:
        raise CheckpointError(f"{path}: cannot build receiver '{name}' from its metadata ({exc})") from None
    fill_module(receiver, state, path, f"receiver '{name}'")
    card = {**card, "receiver": ctor}
    return receiver.to(map_location).eval(), card
