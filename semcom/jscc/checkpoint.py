"""JSCC checkpoints: weights in safetensors, the model card in JSON, training state loaded weights-only.

A checkpoint ``PATH.safetensors`` holds the weights and, in its metadata, the architecture
(``semcom_config``) and a format tag. Its card ``PATH.json`` (same stem) says how it was made and
carries the sha256 of the weights file; the files are written and read by :mod:`semcom.storage`,
which every semcom checkpoint shares. Training state for resuming (optimizer moments, step, epoch,
RNG) lives in ``PATH.train.pt`` and is read with ``torch.load(weights_only=True)``. Opening any of
these never runs code from the file: safetensors and JSON are pure data, and ``weights_only``
refuses pickled objects other than tensors and plain containers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from semcom.errors import CheckpointError
from semcom.jscc.anchored import build_jscc
from semcom.jscc.config import JsccConfig
from semcom.jscc.model import MultiResJscc
from semcom.storage import ResolvedWeights, card_path, fill_module, resolve_weights, write_checkpoint

__all__ = [
    "FORMAT",
    "epochs_label",
    "load_checkpoint",
    "load_weights",
    "save_checkpoint",
    "total_epochs",
]

FORMAT = "semcom-jscc/1"


def save_checkpoint(
    model: MultiResJscc,
    path: str | Path,
    card: dict[str, Any] | None = None,
    dtype: torch.dtype = torch.float32,
) -> Path:
    """Write ``model`` to ``path`` (``.safetensors``) and its card (``.json``, with sha256 and size).

    Returns the weights path. ``dtype=torch.float16`` halves the file (the zoo uses it); loading
    always gives float32 weights.
    """
    full = {**(card or {}), "architecture": model.config.to_dict()}
    meta = {"format": FORMAT, "semcom_config": model.config.to_json()}
    return write_checkpoint(model.state_dict(), path, meta, full, dtype)


def load_checkpoint(
    path: str | Path,
    expect: JsccConfig | None = None,
    verify: bool = True,
    map_location: str | torch.device = "cpu",
) -> MultiResJscc:
    """Build the model a checkpoint describes and load its weights (eval mode).

    Args:
        path: the ``.safetensors`` file.
        expect: if given, the checkpoint's architecture must equal it.
        verify: check the sha256 against the card next to the file (see
            :meth:`~semcom.storage.ResolvedWeights.verify`: no card, no load unless the user opts in).
        map_location: device of the returned model.

    Raises:
        CheckpointError: missing, corrupt, checksum mismatch, not a semcom JSCC checkpoint, or a
            different architecture than ``expect`` / than its tensors.
    """
    return load_weights(resolve_weights(Path(path)), expect, verify, map_location)


def load_weights(
    weights: ResolvedWeights,
    expect: JsccConfig | None = None,
    verify: bool = True,
    map_location: str | torch.device = "cpu",
) -> MultiResJscc:
    """Build the JSCC model of resolved weights (:func:`semcom.storage.resolve_weights`), eval mode.

    A shipped (zoo) model is held to its card: the card must give the sha256 and the architecture,
    the weights must match both (``expect`` and ``verify`` are the card's). A file is checked
    against its card when ``verify``, and against ``expect`` when given.

    Raises:
        CheckpointError: as :func:`load_checkpoint`, and a zoo card without sha256 or architecture.
    """
    path = weights.path
    if weights.source == "shipped":
        card = weights.card
        if "sha256" not in card or "architecture" not in card:
            raise CheckpointError(f"{card_path(path)}: card lacks sha256 or architecture")
        try:
            expect = JsccConfig.from_dict(card["architecture"])
        except (ValueError, TypeError, KeyError) as exc:
            raise CheckpointError(f"{card_path(path)}: invalid architecture ({exc})") from None
        verify = True
    if verify:
        weights.verify()
    meta, state = weights.read("semcom_config", "JSCC", FORMAT)
    try:
        config = JsccConfig.from_dict(json.loads(meta["semcom_config"]))
    except (ValueError, TypeError, KeyError) as exc:
        raise CheckpointError(f"{path}: invalid architecture in metadata ({exc})") from None
    if expect is not None and config != expect:
        raise CheckpointError(f"{path}: architecture {config} does not match the expected {expect}")
    model = build_jscc(config)
    fill_module(model, state, path, "the architecture in its metadata")
    return model.to(map_location).eval()


def total_epochs(card: dict[str, Any]) -> float | None:
    """Epochs of a model counting the runs it was fine-tuned from (its card's ``init_from`` chain)."""
    own = card.get("epochs")
    if own is None:
        return None
    parent = card.get("init_from") or {}
    before = parent.get("total_epochs", parent.get("epochs")) or 0
    return float(own) + float(before)


def _stages(card: dict[str, Any]) -> list[tuple[float, bool]]:
    """The training runs behind a model, first run first: ``(epochs, heads_only)`` each."""
    out: list[tuple[float, bool]] = []
    node: dict[str, Any] | None = card
    while node:
        if node.get("epochs") is None:
            break
        heads = node.get("heads_only")
        if heads is None:  # a card (train_config) or an older init_from record (only the command)
            heads = (node.get("train_config") or {}).get("heads_only") or "--heads-only" in (node.get("command") or "")
        out.append((float(node["epochs"]), bool(heads)))
        earlier = float(node.get("total_epochs") or node["epochs"]) - float(node["epochs"])
        node = node.get("init_from")
        if not node and earlier > 0:  # the record ends here but counted earlier runs: keep their total
            out.append((earlier, False))
    return out[::-1]


def epochs_label(card: dict[str, Any]) -> str:
    """``"12"``; ``"18 (12+6)"`` for a model fine-tuned from another; ``"15 (+4 heads only)"`` when a
    run trained only the semantic heads; ``"28 (15+13; +8 heads only)"`` for both; ``"-"`` when unknown."""
    if card.get("epochs") is None:
        return "-"
    stages = _stages(card)
    full = [e for e, heads in stages if not heads]
    heads = sum(e for e, h in stages if h)
    label = f"{sum(full):g}"
    parts = ["+".join(f"{e:g}" for e in full)] if len(full) > 1 else []
    if heads:
        parts.append(f"+{heads:g} heads only")
    return f"{label} ({'; '.join(parts)})" if parts else label
