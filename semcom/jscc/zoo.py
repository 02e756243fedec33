"""JSCC models by name: the zoo's (:mod:`semcom.zoo`, which is data) built as models, and plug-ins'.

:data:`MODELS` holds a loader for every zoo model and for the models that plug-in packages add
through the ``semcom.models`` entry-point group (a factory taking ``device`` and returning a model);
``semcom list models`` reads it. :func:`open_model` is how every part of semcom loads a JSCC model
that a user names: a zoo name, a checkpoint file (:func:`semcom.storage.resolve_weights` decides
which) or a plug-in's model name.

>>> from semcom.jscc.zoo import load_model, open_model
>>> model = load_model("mnist-mr3-awgn")                    # doctest: +SKIP
>>> model, weights = open_model("runs/a/best.safetensors")  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from semcom import zoo
from semcom.jscc.checkpoint import load_weights
from semcom.registry import Registry, UnknownNameError
from semcom.storage import ResolvedWeights, resolve_weights

__all__ = ["MODELS", "load_model", "open_model"]

MODELS = Registry("models", "semcom.models")


def load_model(name: str, device: str | torch.device = "cpu") -> Any:
    """Load model ``name`` of :data:`MODELS` (a zoo model: a :class:`~semcom.jscc.model.MultiResJscc`, eval mode).

    A zoo model's weights must match the sha256 in its card, and its architecture the card's.

    Raises:
        UnknownNameError: no such model.
        CheckpointError: files missing, corrupt or not matching their card.
    """
    return MODELS.create(name, device=device)


def open_model(
    source: str | Path | ResolvedWeights,
    base_dir: str | Path | None = None,
    device: str | torch.device = "cpu",
) -> tuple[Any, ResolvedWeights | None]:
    """The JSCC model ``source`` names, and the weights it was loaded from (None for a plug-in's model).

    Args:
        source: a zoo name, a checkpoint path (relative to ``base_dir``), weights already resolved,
            or the name of a plug-in's model.
        base_dir: folder of relative paths (default: the working folder).
        device: where the model lives.

    Raises:
        UnknownNameError: neither a file nor a name in :data:`MODELS` (the message lists them).
        CheckpointError: as :func:`semcom.jscc.checkpoint.load_weights`.
    """
    if isinstance(source, ResolvedWeights):
        weights = source
    else:
        try:
            weights = resolve_weights(source, zoo.SHELF, base_dir)
        except UnknownNameError:  # not in the zoo and no such file: a plug-in's model, or unknown
            return MODELS.create(str(source), device=device), None
    return load_weights(weights, map_location=device), weights


def _shipped(name: str) -> Callable[..., Any]:
    def load(device: str | torch.device = "cpu") -> Any:
        return load_weights(resolve_weights(name, zoo.SHELF), map_location=device)

    load.__doc__ = zoo.ZOO[name]
    return load


for _name, _description in zoo.ZOO.items():
    MODELS.add(_name, _shipped(_name), _description)
