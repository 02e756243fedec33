"""Receiver checkpoints: weights in safetensors, the card in JSON (the JSCC checkpoints' format).

``PATH.safetensors`` holds the receiver's weights and, in its metadata, a format tag
(``semcom-receiver/1``) and the receiver's constructor (``semcom_receiver``: registry name,
``layer_symbols``, ``num_classes``, ``image_shape``, ``coarse_groups`` and the keyword options).
``PATH.json`` (same stem) says how it was made: the frozen JSCC model it reads (zoo name or path and
the sha256 of that model's weights), dataset, weighting, channel, SNR range, epochs, the exact
command, test accuracy, and the sha256 of the weights file. Nothing is unpickled: loading never runs
code from the files.

>>> path = save_receiver(run, "rx.safetensors", command="semcom train-receiver ...")  # doctest: +SKIP
>>> receiver, card = load_receiver(path)                                              # doctest: +SKIP
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from semcom.errors import CheckpointError
from semcom.jscc.checkpoint import card_path, library_versions, load_card, read_tensors, sha256_file
from semcom.receivers.base import Receiver
from semcom.receivers.training import TrainedReceiver

__all__ = ["FORMAT", "load_receiver", "model_weights_file", "receiver_constructor", "save_receiver",
           "shipped_receiver", "weights_dir"]

FORMAT = "semcom-receiver/1"


def weights_dir() -> Path:
    """Where receiver checkpoints shipped with semcom live (package data)."""
    return Path(__file__).resolve().parent / "weights"


def shipped_receiver(name: str) -> Path:
    """``weights/NAME.safetensors`` of a shipped receiver; CheckpointError listing them if absent."""
    path = weights_dir() / f"{name}.safetensors"
    if not path.is_file():
        known = sorted(p.stem for p in weights_dir().glob("*.safetensors"))
        raise CheckpointError(f"no receiver checkpoint '{name}' ships with semcom; shipped: "
                              f"{', '.join(known) or '(none)'}; or give a .safetensors path")
    return path


def model_weights_file(model: str | Path) -> Path | None:
    """The weights file of a JSCC model named as in :func:`~semcom.receivers.load_encoder`:
    a ``.safetensors`` path as given, a zoo name's file in the zoo (None if it is neither)."""
    path = Path(model)
    if path.suffix == ".safetensors" or path.is_file():
        return path
    from semcom.zoo import weights_path

    zoo = weights_path(str(model))
    return zoo if zoo.is_file() else None


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
    from safetensors.torch import save_file

    cfg = trained.config
    constructor = receiver_constructor(trained.receiver, cfg["receiver"], cfg.get("receiver_kwargs"))
    try:
        constructor_json = json.dumps(constructor)
    except TypeError as exc:
        raise CheckpointError(f"receiver options are not JSON data ({exc}); cannot save them") from None
    path = Path(path)
    if path.suffix != ".safetensors":
        path = path.with_suffix(".safetensors")
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu", dtype).contiguous() for k, v in trained.receiver.state_dict().items()}
    tmp = path.with_suffix(".safetensors.tmp")
    save_file(state, str(tmp), metadata={"format": FORMAT, "semcom_receiver": constructor_json})
    tmp.chmod(0o644)
    tmp.replace(path)
    model_sha = cfg.get("model_sha256")
    if model_sha is None and isinstance(cfg.get("model"), str):
        model_file = model_weights_file(cfg["model"])
        model_sha = sha256_file(model_file) if model_file is not None and model_file.is_file() else None
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
        "storage_dtype": str(dtype).removeprefix("torch."),
        "parameters": sum(int(v.numel()) for v in state.values()),
        "weights_file": path.name,
        "size_bytes": path.stat().st_size,
        "sha256": sha256_file(path),
        "library_versions": library_versions(),
    }
    cp = card_path(path)
    cp.with_suffix(".json.tmp").write_text(json.dumps(card, indent=2) + "\n")
    cp.with_suffix(".json.tmp").replace(cp)
    return path


def load_receiver(
    path: str | Path, verify: bool = True, map_location: str | torch.device = "cpu",
) -> tuple[Receiver, dict[str, Any]]:
    """Rebuild the receiver a checkpoint describes and load its weights (eval mode).

    Args:
        path: the ``.safetensors`` file.
        verify: check its sha256 against the card next to it (when there is one).
        map_location: device of the returned receiver.

    Returns:
        ``(receiver, card)``; the card is ``{}`` when no ``.json`` lies next to the file, and always
        has ``"receiver"`` (the constructor read from the weights file).

    Raises:
        CheckpointError: missing, corrupt, checksum mismatch, not a receiver checkpoint, unknown
            receiver name, or tensors that do not fit the receiver.
    """
    from semcom.receivers import RECEIVERS

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: receiver checkpoint not found")
    card: dict[str, Any] = {}
    if card_path(path).is_file():
        card = load_card(path)
        want = card.get("sha256")
        if verify and want and sha256_file(path) != want:
            raise CheckpointError(f"{path}: sha256 does not match its card {card_path(path).name} (file corrupt "
                                  "or replaced); train it again with the command in the card")
    meta, state = read_tensors(path, "semcom_receiver", "receiver", fmt=FORMAT)
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
    try:
        receiver.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise CheckpointError(f"{path}: weights do not fit receiver '{name}' ({first})") from None
    card = {**card, "receiver": ctor}
    return receiver.to(map_location).eval(), card
