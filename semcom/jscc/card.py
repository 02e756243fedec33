"""What a JSCC training run writes about its model: the card, its public copy and the zoo export.

A card (``NAME.json`` beside ``NAME.safetensors``) says how the model was made: data, channel,
training SNRs, the command and the flat training options (``train_config``; its architecture fields
are the trained model's, which with ``--init`` come from the starting checkpoint), where a
fine-tuned model started (``init_from``, the whole chain), and the validation (every epoch) and
test (at the end) numbers. The zoo copy (:func:`export`) is float16 and carries no path of the
training machine (:func:`public_card`).
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

from semcom.jscc.checkpoint import save_checkpoint, total_epochs
from semcom.jscc.config import TrainConfig
from semcom.jscc.model import MultiResJscc
from semcom.storage import sha256_file
from semcom.zoo import weights_dir

__all__ = ["effective_config", "epoch_card", "export", "init_info", "public_card", "run_card", "test_card"]

# what a card describing a checkpoint gets anew each time one is written
_FILE_FIELDS = ("architecture", "parameters", "weights_file", "size_bytes", "sha256", "storage_dtype")


def public_card(card: dict[str, Any]) -> dict[str, Any]:
    """``card`` without the training machine's data path: ``--data-root PATH`` reads ``--data-root DATA``.

    Cards ship with models; the folder a dataset sat in on the training machine means nothing to a
    user, who has a data root of their own.
    """
    out = json.loads(json.dumps(card))
    root = (out.get("train_config") or {}).get("data_root")
    if root:
        out["train_config"]["data_root"] = "DATA"
        if isinstance(out.get("command"), str):
            out["command"] = out["command"].replace(f"--data-root {root}", "--data-root DATA")
    if isinstance(out.get("init_from"), dict):
        out["init_from"] = public_card(out["init_from"])
    return out


def run_card(cfg: TrainConfig, model: MultiResJscc, data: dict[str, Any], command: str | None,
             processes: dict[str, Any] | None = None) -> dict[str, Any]:
    """The part of the card that holds for the whole run: ``data`` describes the training images.

    ``processes``: ``{"world_size": N, "backend": ...}`` of a run shared by processes started with
    ``torchrun`` (:meth:`semcom.distributed.ProcessGroup.describe`); a one-process run's card has no
    such field.
    """
    n_layers = model.num_layers
    spec = cfg.channel
    return {
        "name": cfg.zoo_name or Path(cfg.out).name,
        "description": f"{'multi-resolution' if n_layers > 1 else 'single-layer'} deep JSCC, {n_layers} layers, "
        f"{cfg.dataset}, {spec.type}",
        "dataset": data,
        "channel": {
            "name": spec.type,
            "block": spec.block,
            "csi": spec.csi,
            **({"k_factor": spec.k_factor} if spec.type == "rician" else {}),
        },
        "training_snr_db": {
            "distribution": "uniform per image" if cfg.snr_min < cfg.snr_max else "fixed",
            "min": cfg.snr_min,
            "max": cfg.snr_max,
        },
        "snr_side_information": cfg.architecture.snr_info and model.config.snr_info,
        "usage": (
            "one model for all SNRs: the decoders are told each layer's SNR"
            if model.config.snr_info
            else "decoders do not see the SNR"
        ),
        "bandwidth_ratio_cumulative": [round(r, 5) for r in model.config.bandwidth_ratios()],
        "layer_symbols": list(model.config.layer_symbols),
        "mode": cfg.mode,
        "command": command or " ".join(sys.argv),
        "train_config": effective_config(cfg, model),
        "init_from": init_info(cfg.init),
        **({"distributed": processes} if processes else {}),
    }


def epoch_card(
    run: dict[str, Any], cfg: TrainConfig, metrics: dict[str, Any], *, epochs: float, steps: int,
    epoch_seconds: list[float], progress: float | None,
) -> dict[str, Any]:
    """The card after an epoch: ``run`` plus the epochs (fractional when stopped mid-epoch), steps,
    timing, schedule progress (timed runs) and the validation ``metrics``."""
    return {
        **run,
        "epochs": epochs,
        "steps": steps,
        "seconds_per_epoch": round(float(np.mean(epoch_seconds)), 1) if epoch_seconds else None,
        "lr_schedule_progress": None if progress is None else round(progress, 3),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "validation": {
            **metrics,
            "dataset": cfg.dataset,
            "split": "validation",
            "images": f"first {metrics['count']} of the validation split",
            "channel": cfg.channel.type,
        },
    }


def test_card(card: dict[str, Any], cfg: TrainConfig, metrics: dict[str, Any], scored: int,
              split_size: int) -> dict[str, Any]:
    """``card`` with the test ``metrics`` (on ``scored`` of the ``split_size`` test images)."""
    keep = {k: v for k, v in card.items() if k not in _FILE_FIELDS}
    keep["test"] = {
        **metrics,
        "dataset": cfg.dataset,
        "split": "test",
        "images": "all" if scored == split_size else f"first {scored}",
        "channel": cfg.channel.type,
    }
    return keep


def effective_config(cfg: TrainConfig, model: MultiResJscc) -> dict[str, Any]:
    """``cfg``'s flat options, its architecture fields read off the model (with ``init`` the checkpoint's win)."""
    out = cfg.to_flat()
    arch = model.config.to_dict()
    out.update({k: arch[k] for k in out.keys() & arch.keys()})  # the options that are JsccConfig fields
    out["layers"] = model.num_layers
    out["layer_symbols"] = list(model.config.layer_symbols)
    return out


def init_info(init: str | None) -> dict[str, Any] | None:
    """Where a fine-tuned model started: the checkpoint, its name and its epochs (from its card)."""
    if not init:
        return None
    info: dict[str, Any] = {"path": init}
    if Path(init).is_file():
        info["sha256"] = sha256_file(init)
    card = Path(init).with_suffix(".json")
    if card.is_file():
        try:
            old = json.loads(card.read_text())
            info.update({"name": old.get("name"), "epochs": old.get("epochs"), "channel": old.get("channel")})
            info["total_epochs"] = total_epochs(old)
            info["heads_only"] = bool((old.get("train_config") or {}).get("heads_only"))
            # the whole recipe: the parent's own command and where it started from
            info["command"] = old.get("command")
            if old.get("init_from"):
                info["init_from"] = old["init_from"]
        except json.JSONDecodeError:
            pass
    return info


def export(model: MultiResJscc, cfg: TrainConfig, card: dict[str, Any]) -> Path:
    """Copy ``model`` into the zoo as ``cfg.zoo_name`` (float16, public card); returns the weights path."""
    if not cfg.zoo_name:
        raise ValueError("export needs a zoo name")
    target = Path(cfg.zoo_dir) if cfg.zoo_dir else weights_dir()
    return save_checkpoint(
        model, target / f"{cfg.zoo_name}.safetensors", public_card({**card, "name": cfg.zoo_name}),
        dtype=torch.float16,
    )
