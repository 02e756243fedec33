"""Fitting a linear analog code on a dataset, and its checkpoints (safetensors + JSON card).

A linear code checkpoint holds the transform (``mean``, ``basis``, ``lam``) and, in its metadata,
the :class:`~semcom.analog.code.LinearCodeConfig`; the card says what it was fitted on and how.
The files are written and read by :mod:`semcom.storage`, as every semcom checkpoint.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from semcom.analog.code import LinearAnalogCode, LinearCodeConfig
from semcom.analog.transform import fit_transform
from semcom.data import ImageDataset
from semcom.errors import CheckpointError
from semcom.storage import fill_module, resolve_weights, write_checkpoint

__all__ = ["FORMAT", "fit_linear_code", "load_linear_code", "save_linear_code"]

FORMAT = "semcom-linear/1"
_META_KEY = "semcom_linear_config"


def fit_linear_code(
    dataset: ImageDataset, config: LinearCodeConfig, batch_size: int = 2000
) -> tuple[LinearAnalogCode, dict[str, Any]]:
    """Fit ``config``'s transform on every image of ``dataset``; returns the code and a card.

    The card records the dataset (name, split, image count and the official indices' range), the
    transform and how long the fit took.
    """
    if tuple(dataset.shape) != tuple(config.image_shape):
        raise ValueError(f"code for images {config.image_shape}, dataset has {dataset.shape}")
    t0 = time.monotonic()
    batches = (images for images, _ in dataset.batches(batch_size))
    fitted = fit_transform(batches, config.image_shape, config.reals, config.transform)
    code = LinearAnalogCode(config)
    code.set_transform(fitted.mean, fitted.basis, fitted.lam)
    card = {
        "kind": "linear analog code",
        "dataset": {"name": dataset.name, "split": dataset.split, "images": len(dataset)},
        "transform": config.transform,
        "fit_seconds": round(time.monotonic() - t0, 1),
        "energy_kept": round(float(fitted.lam.sum()) / fitted.total_variance, 5),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(sys.argv),
    }
    return code.eval(), card


def save_linear_code(
    code: LinearAnalogCode, path: str | Path, card: dict[str, Any] | None = None, dtype: torch.dtype = torch.float32
) -> Path:
    """Write ``code`` to ``path`` (``.safetensors``) and its card (``.json``)."""
    full = {**(card or {}), "configuration": json.loads(code.config.to_json())}
    meta = {"format": FORMAT, _META_KEY: code.config.to_json()}
    return write_checkpoint(code.state_dict(), path, meta, full, dtype)


def load_linear_code(path: str | Path) -> tuple[LinearAnalogCode, dict[str, Any]]:
    """A linear code from a ``.safetensors`` file written by :func:`save_linear_code`, and its card.

    The weights' sha256 is checked against the card when there is one. (An anchored JSCC model
    carries its linear code too: :func:`semcom.scenarios.factory` takes it from there.)
    """
    weights = resolve_weights(Path(path), what="linear code checkpoint")
    card = weights.verify()
    meta, state = weights.read(_META_KEY, "linear analog code", FORMAT)
    try:
        config = LinearCodeConfig.from_dict(json.loads(meta[_META_KEY]))
    except (ValueError, TypeError, KeyError) as exc:
        raise CheckpointError(f"{weights.path}: invalid configuration in metadata ({exc})") from None
    code = LinearAnalogCode(config)
    fill_module(code, state, weights.path, "the configuration in its metadata")
    return code.eval(), card
